# Millrace's make targets. `make test` is the CI entry point (.ci/run).
#
# The repository holds several Go modules: the library at the root and, each
# with its own go.mod, examples/, benchmarks/ and cmd/millrace/. The targets
# that vet and test run over every module found (any directory with a
# go.mod), each on its own with GOWORK=off, so every module is checked with
# exactly the dependencies its own go.mod gives it. go.work is for working
# by hand (`go run ./examples/quickstart` from the root).
#
# Tests need redis-server, redis-sentinel and redis-cli on PATH: the test
# packages start their own servers on loopback ports (internal/redistest).
# `make test` then runs a part of them again on Valkey (valkey-server,
# valkey-sentinel, valkey-cli from Debian 12's bookworm-backports), which it
# installs when missing; see test_valkey. No docker. The web console's tests
# (cmd/millrace/ui) drive Debian's chromium headless; `make test` installs it
# too when it is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

GO ?= go
# Flags of every `go test` run; TEST_FLAGS adds to them, e.g.
# make test TEST_FLAGS='-run TestPubSub -v'.
GOTEST_FLAGS ?= -race -count=1 -timeout 30m
TEST_FLAGS ?=
# Read by Watermill's universal suite in stress runs: how many times each
# stress test repeats.
STRESS_TEST_COUNT ?= 2
export STRESS_TEST_COUNT
# The root package's tests that `make test` (and `make test_valkey`) run
# again on Valkey, with REDISTEST_SERVER=valkey: Watermill's universal suite,
# the fault tests, Sentinel, Cluster, ACL, TLS and a full server. Every test:
# make test_valkey VALKEY_TESTS=.
VALKEY_TESTS ?= ^(TestPubSub|TestFault|TestSentinel|TestCluster|TestACL|TestTLS|TestRedisFull|TestCapacity)
# Packages whose every test runs on Valkey too: every other package of the
# root module (admin, dedup, partition and the internal ones, among them the
# server starter and the classification of server replies).
VALKEY_PACKAGES ?= ./admin ./dedup ./partition ./internal/...
# How long `make test` fuzzes the marshaler's decoding.
FUZZ_TIME ?= 15s
# Arguments of `make bench`, e.g. make bench BENCH_ARGS='-h'.
BENCH_ARGS ?=
# Arguments of `make chaos` and `make soak`, after the defaults they
# override, e.g. make chaos CHAOS_ARGS='-chaos.seed=7 -chaos.duration=10m'
# or make soak SOAK_ARGS='-soak.duration=5m'.
CHAOS_ARGS ?=
SOAK_ARGS ?=
# Where `make chaos` and `make soak` write their logs, report.txt and SVG.
CHAOS_DIR ?= $(or $(TMPDIR),/tmp)/millrace-chaos
SOAK_DIR ?= $(or $(TMPDIR),/tmp)/millrace-soak
# Arguments of `make bench-brokers`, e.g. make bench-brokers BROKERS_ARGS='-h'.
BROKERS_ARGS ?=
# The staticcheck release `make lint` installs (go install) and runs; its
# configuration is staticcheck.conf at the root.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

# Every module: the directories holding a go.mod, the root first.
MODULES := $(shell find . -name go.mod \
	-not -path './.git/*' -not -path '*/vendor/*' -not -path '*/testdata/*' \
	-printf '%h\n' | LC_ALL=C sort)

REDIS_TOOLS := redis-server redis-sentinel redis-cli
# Valkey, the second server the tests run on: Debian's valkey-server and
# valkey-sentinel 8.0 from bookworm-backports (valkey-cli comes with them).
VALKEY_TOOLS := valkey-server valkey-sentinel valkey-cli
# The apt sources file `make valkey-tools` writes when no apt source offers
# bookworm-backports yet.
BACKPORTS_LIST ?= /etc/apt/sources.list.d/bookworm-backports.list

.PHONY: test test_short test_stress test_valkey bench bench-brokers chaos soak fmt vet lint staticcheck quickstart deps redis-tools valkey-tools chromium modules

# in_modules runs $(1) in every module, on its own (GOWORK=off). It goes on
# after a failing module and fails at the end, naming the modules that failed
# and repeating what their failing tests printed, so that the end of a long
# log says why.
define in_modules
	@failed=""; log="$$(mktemp)"; trap 'rm -f "$$log" "$$log.out"' EXIT; \
	for m in $(MODULES); do \
		echo "==> $$m: $(strip $(1))"; \
		if ! (cd "$$m" && GOWORK=off $(1)) 2>&1 | tee "$$log.out"; then \
			failed="$$failed $$m"; \
			{ echo "==> failures in $$m:"; \
			  awk '/^[ \t]*--- FAIL/ { keep = 1; print; next } \
			       /^(panic:|WARNING: DATA RACE|# )/ { keep = 60 } \
			       keep == 1 && /^[ \t]/ { print; next } \
			       keep > 1 { print; keep--; next } \
			       { keep = 0 }' "$$log.out" | head -n 600; } >> "$$log"; \
		fi; \
		rm -f "$$log.out"; \
	done; \
	if [ -n "$$failed" ]; then cat "$$log" >&2; echo "FAILED in:$$failed" >&2; exit 1; fi
endef

# valkey_tests runs VALKEY_TESTS of the root package, VALKEY_PACKAGES and
# Watermill's TestReconnect (without -race, as on Redis) on Valkey.
define valkey_tests
	@echo "==> .: on Valkey $$(valkey-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') (REDISTEST_SERVER=valkey: $$(command -v valkey-server), valkey-sentinel, valkey-cli): -run '$(VALKEY_TESTS)' ., $(VALKEY_PACKAGES) and TestReconnect"
	REDISTEST_SERVER=valkey GOWORK=off $(GO) test $(GOTEST_FLAGS) -run '$(VALKEY_TESTS)' .
	REDISTEST_SERVER=valkey GOWORK=off $(GO) test $(GOTEST_FLAGS) $(VALKEY_PACKAGES)
	REDISTEST_SERVER=valkey GO=$(GO) bash scripts/test-reconnect.sh
endef

## test: vet and test every module with -race (the CI entry point), then the
## tests that cannot run under -race, a short fuzz of the marshaler, a
## short stress run of the suite, and the Valkey run (test_valkey).
test: redis-tools valkey-tools chromium
	$(call in_modules,$(GO) vet ./... && $(GO) test $(GOTEST_FLAGS) $(TEST_FLAGS) ./...)
	@echo "==> .: Watermill's TestReconnect, without -race (its harness races on its own slice)"
	GO=$(GO) bash scripts/test-reconnect.sh
	@echo "==> .: fuzzing the marshaler's decoding for $(FUZZ_TIME)"
	GOWORK=off $(GO) test -run '^$$' -fuzz '^FuzzDefaultMarshalerUnmarshal$$' -fuzztime $(FUZZ_TIME) .
	@echo "==> .: universal suite stress run, STRESS_TEST_COUNT=$(STRESS_TEST_COUNT)"
	GOWORK=off $(GO) test $(GOTEST_FLAGS) -tags stress -run '^TestPubSub_Stress$$' .
	$(valkey_tests)

## test_valkey: the Valkey step of `make test` alone: with
## REDISTEST_SERVER=valkey, so that internal/redistest starts valkey-server
## and valkey-sentinel instead of redis-server and redis-sentinel, the root
## package's VALKEY_TESTS, every test of VALKEY_PACKAGES and Watermill's
## TestReconnect. Installs Valkey from bookworm-backports when missing.
test_valkey: valkey-tools
	$(valkey_tests)

## test_short: the same with -short.
test_short: redis-tools chromium
	$(call in_modules,$(GO) vet ./... && $(GO) test $(GOTEST_FLAGS) -short $(TEST_FLAGS) ./...)

## test_stress: the tests built with -tags stress (STRESS_TEST_COUNT=2 by default).
test_stress: redis-tools
	@echo "STRESS_TEST_COUNT=$(STRESS_TEST_COUNT)"
	$(call in_modules,$(GO) test $(GOTEST_FLAGS) -tags stress $(TEST_FLAGS) ./...)

# Arguments of `make order-check`, e.g.
# make order-check ORDER_CHECK_ARGS='-order.messages=20000 -order.seed=7'.
ORDER_CHECK_ARGS ?= -order.messages=100000 -order.keys=1000 -order.duration=60s

.PHONY: order-check
## order-check: the long order check (partition/ordercheck_test.go): member
## processes of one group on a 12-partition topic join, Close and are
## SIGKILLed while 100k messages over 1,000 keys are published; fails on a
## lost message or a key handled out of order, and logs how long each
## rebalance took. `make test` runs a short form of it.
order-check: redis-tools
	cd partition && GOWORK=off $(GO) test -count=1 -timeout 60m -v -run '^TestOrderCheck$$' . -args $(ORDER_CHECK_ARGS)

# Arguments of `make stage-check`, e.g.
# make stage-check STAGE_CHECK_ARGS='-stagecheck.seed=7 -stagecheck.duration=10m'.
STAGE_CHECK_ARGS ?=

.PHONY: stage-check
## stage-check: the long stage check (chaos/stagecheck, not in CI): for 3
## minutes a Router handler with millrace.Stage turns inputs into 1-3
## outputs each while its consumer processes are SIGKILLed mid-handler and
## their connections cut or a commit's reply lost; fails unless every
## input's outputs are in the output topic exactly once and no input is
## lost. With STAGE_CHECK_ARGS=-stagecheck.plain it runs the same handler
## through the plain Router, and must fail. `make test` runs its short form
## (10 s, seed 1, and 8 s of the plain Router that it must catch).
stage-check: redis-tools
	cd chaos && GOWORK=off $(GO) test -race -count=1 -timeout 60m -v -run '^TestStageCheck$$' ./stagecheck \
		-args -stagecheck.duration=3m $(STAGE_CHECK_ARGS)

## vet: go vet every module.
vet:
	$(call in_modules,$(GO) vet ./...)

## lint: staticcheck every module (the pinned STATICCHECK_VERSION).
lint: staticcheck
	$(call in_modules,$(STATICCHECK) ./...)

# staticcheck installs the pinned staticcheck unless that version is there.
staticcheck:
	@if ! "$(STATICCHECK)" -version 2>/dev/null | grep -q "$(STATICCHECK_VERSION:v%=%)"; then \
		echo "installing staticcheck $(STATICCHECK_VERSION)"; \
		GOWORK=off GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi

## fmt: fail if any Go file is not gofmt-formatted.
fmt:
	@files="$$(find . -name '*.go' -not -path './.git/*' -not -path '*/vendor/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$files" ]; then \
		echo "gofmt needed on these files (run gofmt -w):" >&2; echo "$$files" >&2; exit 1; \
	fi; \
	echo "gofmt: all files formatted"

## bench: run the benchmark program of benchmarks/.
bench:
	@if [ ! -f benchmarks/go.mod ]; then \
		echo "bench: benchmarks/ does not exist yet (no benchmarks/go.mod); nothing to run" >&2; exit 1; \
	fi
	@if ! ls benchmarks/cmd/bench/*.go >/dev/null 2>&1; then \
		echo "bench: benchmarks/cmd/bench has no Go program yet; nothing to run" >&2; exit 1; \
	fi
	cd benchmarks && GOWORK=off $(GO) run ./cmd/bench $(BENCH_ARGS)

## chaos: the long chaos run of chaos/ (not in CI): a Router workload on
## Sentinel under random, overlapping faults for 5 minutes, then the check
## that no confirmed message was lost; report.txt and chaos.svg in CHAOS_DIR.
chaos: redis-tools
	cd chaos && GOWORK=off $(GO) test -race -count=1 -timeout 3h -run '^TestChaos$$' -v . \
		-args -chaos.duration=5m -chaos.dir='$(CHAOS_DIR)' $(CHAOS_ARGS)

## soak: the soak run of chaos/soak (not in CI): 20 minutes of churn, then
## the check that nothing grew without bound; report.txt and soak.svg in
## SOAK_DIR. Built without -race: the race detector's own memory grows with
## every goroutine started, which would hide the process's RSS (the short
## form in `make test` runs with -race and leaves RSS unjudged).
soak: redis-tools
	cd chaos && GOWORK=off $(GO) test -count=1 -timeout 3h -run '^TestSoak$$' -v ./soak \
		-args -soak.duration=20m -soak.dir='$(SOAK_DIR)' $(SOAK_ARGS)

## bench-brokers: first the AMQP tests (-tags brokers), then
## Millrace on a durable Redis (AOF everysec) beside
## Watermill's AMQP adapter on RabbitMQ, both started by the program on
## loopback (benchmarks/cmd/brokers; several minutes; not part of `make test`
## or CI). Installs Debian's rabbitmq-server with apt-get when missing; where
## systemd runs, the package also starts its own service, which the
## benchmark does not use (systemctl disable --now rabbitmq-server).
bench-brokers: redis-tools
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
		echo "rabbitmq-server not found; installing with apt-get"; \
		sudo=""; \
		if [ "$$(id -u)" != 0 ]; then \
			if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
			else echo "not root and no sudo: install rabbitmq-server by hand" >&2; exit 1; fi; \
		fi; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server; \
	fi
	cd benchmarks && GOWORK=off $(GO) test -race -count=1 -tags brokers -run '^(TestAMQP|TestRunTinyMatrix)$$' . ./cmd/brokers
	cd benchmarks && GOWORK=off $(GO) run ./cmd/brokers $(BROKERS_ARGS)

## quickstart: run the quickstart example (embedded miniredis unless REDIS_URL is set).
quickstart:
	$(GO) run ./examples/quickstart

## deps: download every module's dependencies into the module cache. Offline
## runs work once they are there (GOFLAGS=-mod=mod is not used: go.sum files
## are complete, so nothing is resolved anew).
deps:
	$(call in_modules,$(GO) mod download)

## modules: list the modules the targets run over.
modules:
	@printf '%s\n' $(MODULES)

# redis-tools makes sure the Redis binaries the tests start are installed,
# installing Debian's packages when one is missing (as root, or with sudo).
redis-tools:
	@missing=""; \
	for t in $(REDIS_TOOLS); do command -v "$$t" >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		for t in $$missing; do echo "$$t not found; installing with apt-get"; done; \
		sudo=""; \
		if [ "$$(id -u)" != 0 ]; then \
			if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
			else echo "not root and no sudo: install redis-server redis-sentinel redis-tools by hand" >&2; exit 1; fi; \
		fi; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-sentinel redis-tools; \
		for t in $(REDIS_TOOLS); do \
			command -v "$$t" >/dev/null 2>&1 || { echo "$$t still not found after apt-get install" >&2; exit 1; }; \
		done; \
	fi; \
	redis-server --version

# valkey-tools makes sure valkey-server, valkey-sentinel and valkey-cli are
# installed, installing Debian's valkey-server and valkey-sentinel from
# bookworm-backports when one is missing (as root, or with sudo). Without an
# apt source for bookworm-backports it first writes one, BACKPORTS_LIST, on
# the Debian mirror the system's sources already use and signed by Debian's
# archive keyring. Only for Debian 12 (bookworm): elsewhere install Valkey 8
# by hand.
valkey-tools:
	@missing=""; \
	for t in $(VALKEY_TOOLS); do command -v "$$t" >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		for t in $$missing; do echo "$$t not found; installing valkey-server and valkey-sentinel from bookworm-backports"; done; \
		. /etc/os-release 2>/dev/null || true; \
		if [ "$${VERSION_CODENAME:-}" != bookworm ]; then \
			echo "not Debian 12 (bookworm): install valkey-server, valkey-sentinel and valkey-cli 8.0 by hand" >&2; exit 1; \
		fi; \
		sudo=""; \
		if [ "$$(id -u)" != 0 ]; then \
			if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
			else echo "not root and no sudo: install valkey-server and valkey-sentinel (bookworm-backports) by hand" >&2; exit 1; fi; \
		fi; \
		sources="$$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"; \
		if [ -z "$$sources" ] || ! grep -hv '^[[:space:]]*#' $$sources | grep -qw 'bookworm-backports'; then \
			mirror="$$(grep -hv '^[[:space:]]*#' $$sources /dev/null | grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$$)' | head -n 1 | tr -d '[:space:]')"; \
			mirror="$${mirror%/}"; mirror="$${mirror:-http://deb.debian.org/debian}"; \
			echo "adding bookworm-backports ($$mirror) in $(BACKPORTS_LIST)"; \
			echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $$mirror bookworm-backports main" | \
				$$sudo tee $(BACKPORTS_LIST) >/dev/null; \
		fi; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports valkey-server valkey-sentinel; \
		for t in $(VALKEY_TOOLS); do \
			command -v "$$t" >/dev/null 2>&1 || { echo "$$t still not found after apt-get install" >&2; exit 1; }; \
		done; \
	fi; \
	valkey-server --version

# chromium makes sure Debian's chromium, which the web console's browser
# tests start headless, is installed, installing it with apt-get when
# missing (as root, or with sudo).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "chromium not found; installing with apt-get"; \
		sudo=""; \
		if [ "$$(id -u)" != 0 ]; then \
			if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
			else echo "not root and no sudo: install chromium by hand" >&2; exit 1; fi; \
		fi; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
		command -v chromium >/dev/null 2>&1 || { echo "chromium still not found after apt-get install" >&2; exit 1; }; \
	fi; \
	chromium --version
