package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// Status of a doctor check.
const (
	statusOK   = "ok"
	statusInfo = "info"
	statusWarn = "warn"
	statusFail = "fail"
)

type check struct {
	Name   string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Advice string `json:"advice,omitempty"`
}

func (a *app) doctorCommand() *cobra.Command {
	var (
		topic   string
		aclUser string
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that the Redis server suits Millrace (version, eviction, persistence, ACL, ...)",
		Long: `Check the Redis server Millrace runs on and say what to fix:

  version      Redis 6.2 or newer (XAUTOCLAIM); 7.0 adds lag, 7.2 reliable idle times
  eviction     maxmemory-policy must not evict streams (allkeys-* can; noeviction is safe)
  persistence  AOF with appendfsync always/everysec, or acknowledged messages die with a restart
  replication  this must be the master; replicas are reported
  acl          the user may run every command Millrace uses (ACL DRYRUN when allowed,
               otherwise harmless probes on a key that does not exist)
  cluster      Cluster health, and dead-letter streams in their topic's slot

Exit status 1 when a check fails, 0 otherwise (warnings included).`,
		Example: `  millrace doctor
  millrace doctor --acl-user app --topic orders
  millrace doctor --json`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := a.call(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			d := &doctor{ctx: ctx, c: c, topic: topic, aclUser: aclUser, kind: a.target.kind}
			checks := d.run()
			failed := false
			for _, ch := range checks {
				failed = failed || ch.Status == statusFail
			}
			if a.json {
				if err := a.printJSON(checks); err != nil {
					return err
				}
			} else {
				var rows [][]string
				for _, ch := range checks {
					rows = append(rows, []string{ch.Name, strings.ToUpper(ch.Status), ch.Detail})
				}
				if err := a.table([]string{"CHECK", "STATUS", "DETAIL"}, rows); err != nil {
					return err
				}
				var advice []string
				for _, ch := range checks {
					if ch.Advice != "" && (ch.Status == statusWarn || ch.Status == statusFail) {
						advice = append(advice, fmt.Sprintf("- %s: %s", ch.Name, ch.Advice))
					}
				}
				if len(advice) > 0 {
					a.printf("\nTo do:\n%s\n", strings.Join(advice, "\n"))
				}
			}
			if failed {
				if !a.json {
					fmt.Fprintln(a.stderr, "millrace: doctor found problems")
				}
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "millrace-doctor", "topic whose keys the ACL check uses")
	cmd.Flags().StringVar(&aclUser, "acl-user", "", "check this ACL user's rights instead of the connected user's (needs ACL DRYRUN rights)")
	return cmd
}

type doctor struct {
	ctx     context.Context
	c       redis.UniversalClient
	topic   string
	aclUser string
	kind    connKind
	info    map[string]string
}

func (d *doctor) run() []check {
	d.info = map[string]string{}
	if raw, err := d.c.Info(d.ctx, "server", "memory", "persistence", "replication", "cluster").Result(); err == nil {
		sc := bufio.NewScanner(strings.NewReader(raw))
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
				d.info[k] = v
			}
		}
	}
	return []check{d.version(), d.eviction(), d.persistence(), d.replication(), d.acl(), d.cluster()}
}

func (d *doctor) version() check {
	ch := check{Name: "version"}
	v := d.info["redis_version"]
	parts := strings.SplitN(v, ".", 3)
	major, minor := 0, 0
	if len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(parts[1])
	}
	switch {
	case v == "":
		ch.Status, ch.Detail = statusWarn, "cannot read redis_version (INFO server refused?)"
		ch.Advice = "allow INFO for this user"
	case d.info["redis_mode"] == "sentinel":
		ch.Status, ch.Detail = statusFail, "connected to a Sentinel, not to a data node"
		ch.Advice = "use redis-sentinel://host:26379/master-name to reach the master through Sentinel"
	case major < 6 || (major == 6 && minor < 2):
		ch.Status, ch.Detail = statusFail, "Redis "+v+": Millrace needs 6.2 or newer (XAUTOCLAIM)"
		ch.Advice = "upgrade Redis to 7.2 or newer"
	case major == 6:
		ch.Status, ch.Detail = statusWarn, "Redis "+v+": works; no lag figure before 7.0 (Millrace computes one) and consumer idle times count only reads that got entries"
		ch.Advice = "upgrade to 7.2 or newer for lag and reliable idle times"
	case major == 7 && minor < 2:
		ch.Status, ch.Detail = statusOK, "Redis "+v+" (before 7.2, consumer idle times count only reads that got entries)"
	default:
		ch.Status, ch.Detail = statusOK, "Redis "+v
	}
	return ch
}

func (d *doctor) eviction() check {
	ch := check{Name: "eviction"}
	policy := d.info["maxmemory_policy"]
	limit := d.info["maxmemory_human"]
	if d.info["maxmemory"] == "0" {
		limit = "no limit"
	}
	switch {
	case policy == "":
		ch.Status, ch.Detail = statusWarn, "cannot read maxmemory_policy (INFO memory)"
	case strings.HasPrefix(policy, "allkeys-"):
		ch.Status = statusFail
		ch.Detail = fmt.Sprintf("maxmemory-policy %s (maxmemory %s): Redis may evict streams, losing messages, groups and pending entries", policy, limit)
		ch.Advice = "set maxmemory-policy noeviction (publishing then fails loudly when memory is full)"
	case strings.HasPrefix(policy, "volatile-"):
		ch.Status = statusWarn
		ch.Detail = fmt.Sprintf("maxmemory-policy %s (maxmemory %s): streams have no TTL and are not evicted, but other keys are", policy, limit)
		ch.Advice = "prefer noeviction on a Redis that holds queues"
	default:
		ch.Status, ch.Detail = statusOK, fmt.Sprintf("maxmemory-policy %s (maxmemory %s)", policy, limit)
	}
	return ch
}

func (d *doctor) persistence() check {
	ch := check{Name: "persistence"}
	aof := d.info["aof_enabled"] == "1"
	fsync := d.configGet("appendfsync")
	save, saveKnown := d.configGet("save"), d.configKnown("save")
	switch {
	case aof && fsync == "always":
		ch.Status, ch.Detail = statusOK, "AOF on, appendfsync always: every acknowledged write survives a crash"
	case aof && fsync == "everysec":
		ch.Status, ch.Detail = statusOK, "AOF on, appendfsync everysec: a crash may lose the last second of writes"
	case aof && fsync == "no":
		ch.Status, ch.Detail = statusWarn, "AOF on, appendfsync no: the OS decides when writes reach the disk"
		ch.Advice = "set appendfsync everysec (or always)"
	case aof:
		ch.Status, ch.Detail = statusOK, "AOF on (appendfsync unknown: CONFIG GET refused)"
	case saveKnown && strings.TrimSpace(save) == "":
		ch.Status, ch.Detail = statusFail, "AOF off and no RDB snapshots: a restart loses every message, group and pending entry"
		ch.Advice = "set appendonly yes and appendfsync everysec (or always)"
	case saveKnown:
		ch.Status, ch.Detail = statusWarn, "AOF off, RDB snapshots only (save "+save+"): a crash loses the messages since the last snapshot"
		ch.Advice = "set appendonly yes and appendfsync everysec (or always)"
	default:
		ch.Status, ch.Detail = statusWarn, "AOF off (RDB snapshot schedule unknown: CONFIG GET refused)"
		ch.Advice = "set appendonly yes and appendfsync everysec (or always)"
	}
	return ch
}

// configGet is a CONFIG GET value, "" when unknown.
func (d *doctor) configGet(name string) string {
	v, err := d.c.ConfigGet(d.ctx, name).Result()
	if err != nil {
		return ""
	}
	return v[name]
}

func (d *doctor) configKnown(name string) bool {
	v, err := d.c.ConfigGet(d.ctx, name).Result()
	if err != nil {
		return false
	}
	_, ok := v[name]
	return ok
}

func (d *doctor) replication() check {
	ch := check{Name: "replication"}
	role := d.info["role"]
	switch role {
	case "slave", "replica":
		ch.Status = statusFail
		ch.Detail = fmt.Sprintf("connected to a replica of %s:%s: writes are refused or lost", d.info["master_host"], d.info["master_port"])
		ch.Advice = "connect to the master (through Sentinel: redis-sentinel://host:26379/master-name)"
	case "master":
		n, _ := strconv.Atoi(d.info["connected_slaves"])
		if n == 0 {
			ch.Status, ch.Detail = statusInfo, "master without replicas: losing this machine loses the data"
		} else {
			ch.Status, ch.Detail = statusOK, fmt.Sprintf("master with %d connected replica(s); a failover may lose the last writes (Publisher Durability waits for replicas)", n)
		}
	default:
		ch.Status, ch.Detail = statusWarn, "cannot read the role (INFO replication)"
	}
	return ch
}

// aclCommand is one command Millrace sends, in a form that changes nothing
// on a key that does not exist; required commands are needed by the
// Publisher and Subscriber, the others by options and operations.
type aclCommand struct {
	name     string
	args     func(stream, dlq string) []interface{}
	required bool
	minMajor int // Redis major version that has the command
	minMinor int
}

var aclCommands = []aclCommand{
	{name: "XADD", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xadd", s, "nomkstream", "*", "f", "v"} }},
	{name: "XREADGROUP", required: true, args: func(s, _ string) []interface{} {
		return []interface{}{"xreadgroup", "group", "g", "c", "count", 1, "streams", s, ">"}
	}},
	{name: "XREAD", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xread", "count", 1, "streams", s, "0"} }},
	{name: "XACK", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xack", s, "g", "0-1"} }},
	{name: "XAUTOCLAIM", required: true, args: func(s, _ string) []interface{} {
		return []interface{}{"xautoclaim", s, "g", "c", 0, "0-0", "count", 1}
	}},
	{name: "XCLAIM", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xclaim", s, "g", "c", 0, "0-1", "justid"} }},
	{name: "XPENDING", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xpending", s, "g"} }},
	{name: "XGROUP CREATE", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "create", s, "g", "$"} }},
	{name: "XREVRANGE", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xrevrange", s, "+", "-", "count", 1} }},
	{name: "XADD (dead letters)", required: true, args: func(_, q string) []interface{} { return []interface{}{"xadd", q, "nomkstream", "*", "f", "v"} }},
	{name: "MULTI", required: true, args: func(string, string) []interface{} { return []interface{}{"multi"} }},
	{name: "EXEC", required: true, args: func(string, string) []interface{} { return []interface{}{"exec"} }},
	{name: "INFO", required: true, args: func(string, string) []interface{} { return []interface{}{"info", "server"} }},
	{name: "XTRIM", args: func(s, _ string) []interface{} { return []interface{}{"xtrim", s, "maxlen", "~", 1000000000} }},
	{name: "ZADD", args: func(s, _ string) []interface{} {
		return []interface{}{"zadd", millrace.DelayedKey(s), "xx", 0, "m"} // delayed messages
	}},
	{name: "SET", args: func(s, _ string) []interface{} { return []interface{}{"set", s + ":millrace-doctor-dedup", "v", "xx"} }},
	{name: "WAIT", args: func(string, string) []interface{} { return []interface{}{"wait", 0, 1} }},
	{name: "WAITAOF", minMajor: 7, minMinor: 2, args: func(string, string) []interface{} { return []interface{}{"waitaof", 0, 0, 1} }},
	{name: "XINFO STREAM", args: func(s, _ string) []interface{} { return []interface{}{"xinfo", "stream", s} }},
	{name: "XINFO GROUPS", args: func(s, _ string) []interface{} { return []interface{}{"xinfo", "groups", s} }},
	{name: "XINFO CONSUMERS", args: func(s, _ string) []interface{} { return []interface{}{"xinfo", "consumers", s, "g"} }},
	{name: "XLEN", args: func(_, q string) []interface{} { return []interface{}{"xlen", q} }},
	{name: "XRANGE", args: func(_, q string) []interface{} { return []interface{}{"xrange", q, "-", "+", "count", 1} }},
	{name: "XDEL", args: func(_, q string) []interface{} { return []interface{}{"xdel", q, "0-1"} }},
	{name: "XGROUP SETID", args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "setid", s, "g", "$"} }},
	{name: "XGROUP DESTROY", args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "destroy", s, "g"} }},
	{name: "XGROUP DELCONSUMER", args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "delconsumer", s, "g", "c"} }},
	{name: "EVALSHA", args: func(s, _ string) []interface{} {
		return []interface{}{"evalsha", "0000000000000000000000000000000000000000", 1, s}
	}},
	{name: "EVAL", args: func(s, _ string) []interface{} { return []interface{}{"eval", "return 1", 1, s} }},
	{name: "SCAN", args: func(string, string) []interface{} { return []interface{}{"scan", 0, "count", 1} }},
	{name: "TIME", args: func(string, string) []interface{} { return []interface{}{"time"} }},
}

func (d *doctor) acl() check {
	ch := check{Name: "acl"}
	stream := d.topic
	dlq := millrace.DeadLetterTopic(d.topic)
	major, minor := 0, 0
	if parts := strings.SplitN(d.info["redis_version"], ".", 3); len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(parts[1])
	}
	has := func(c aclCommand) bool {
		return major > c.minMajor || (major == c.minMajor && minor >= c.minMinor)
	}

	user := d.aclUser
	if user == "" {
		u, err := d.c.Do(d.ctx, "acl", "whoami").Text()
		if err == nil {
			user = u
		}
	}
	var denied []aclCommand
	method := ""
	if user != "" && major >= 7 {
		method = "ACL DRYRUN"
		for _, c := range aclCommands {
			if !has(c) {
				continue
			}
			args := append([]interface{}{"acl", "dryrun", user}, c.args(stream, dlq)...)
			res, err := d.c.Do(d.ctx, args...).Text()
			if err != nil {
				if rediserr.IsNoPerm(err) && d.aclUser == "" {
					method = "" // no right to ask: probe instead
					denied = nil
					break
				}
				if rediserr.IsNoPerm(err) || rediserr.IsUnknownCommand(err) || rediserr.IsNoSuchUser(err) {
					ch.Status, ch.Detail = statusWarn, "cannot check the rights of user "+user+": "+err.Error()
					return ch
				}
				ch.Status, ch.Detail = statusWarn, "ACL DRYRUN failed: "+err.Error()
				return ch
			}
			if res != "OK" {
				denied = append(denied, c)
			}
		}
	}
	if method == "" {
		if d.aclUser != "" {
			ch.Status, ch.Detail = statusWarn, "cannot check another user before Redis 7.0 (no ACL DRYRUN)"
			return ch
		}
		method = "probes"
		probe := d.topic + ":millrace-doctor-probe"
		probeDLQ := millrace.DeadLetterTopic(probe)
		n, err := d.c.Exists(d.ctx, probe, probeDLQ).Result()
		if err == nil && n > 0 {
			ch.Status, ch.Detail = statusWarn, "cannot probe: key "+probe+" exists"
			return ch
		}
		for _, c := range aclCommands {
			if !has(c) || c.name == "MULTI" || c.name == "EXEC" {
				continue
			}
			if err := d.c.Do(d.ctx, c.args(probe, probeDLQ)...).Err(); rediserr.IsNoPerm(err) {
				denied = append(denied, c)
			}
		}
		_, err = d.c.TxPipelined(d.ctx, func(p redis.Pipeliner) error {
			p.XLen(d.ctx, probe)
			return nil
		})
		if rediserr.IsNoPerm(err) {
			denied = append(denied, aclCommand{name: "MULTI/EXEC", required: true})
		}
	}
	who := "user " + user
	if user == "" {
		who = "this connection"
	}
	var req, opt []string
	for _, c := range denied {
		if c.required {
			req = append(req, c.name)
		} else {
			opt = append(opt, c.name)
		}
	}
	switch {
	case len(req) > 0:
		ch.Status = statusFail
		ch.Detail = fmt.Sprintf("%s may not run %s (needed by publishers and subscribers)", who, strings.Join(req, ", "))
		if len(opt) > 0 {
			ch.Detail += fmt.Sprintf(", nor %s (used by options and operations tools)", strings.Join(opt, ", "))
		}
		ch.Detail += " [" + method + "]"
		ch.Advice = "grant the stream commands, e.g. ACL SETUSER <user> +@stream +multi +exec +info, and +@scripting for the CLI"
	case len(opt) > 0:
		ch.Status = statusWarn
		ch.Detail = fmt.Sprintf("%s may run what publishers and subscribers need, but not %s (used by options and operations tools) [%s]", who, strings.Join(opt, ", "), method)
		ch.Advice = "grant those commands to the users of the options and tools that need them"
	default:
		ch.Status = statusOK
		ch.Detail = fmt.Sprintf("%s may run every command Millrace uses on topic %s [%s]", who, d.topic, method)
	}
	return ch
}

func (d *doctor) cluster() check {
	ch := check{Name: "cluster"}
	if d.info["cluster_enabled"] != "1" {
		ch.Status = statusOK
		ch.Detail = "not a cluster; Millrace's keys are Cluster-ready (a topic's dead-letter stream shares its slot)"
		return ch
	}
	if d.kind != kindCluster {
		ch.Status = statusWarn
		ch.Detail = "the server is a Cluster node but the URL is not a Cluster URL: keys on other nodes answer MOVED"
		ch.Advice = "connect with redis-cluster://host:port"
		return ch
	}
	state := ""
	if cc, ok := d.c.(*redis.ClusterClient); ok {
		info, err := cc.ClusterInfo(d.ctx).Result()
		if err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
					state = v
				}
			}
		}
	}
	if state != "ok" {
		ch.Status, ch.Detail = statusFail, "cluster_state "+dash(state)
		ch.Advice = "fix the cluster: every slot must be served (CLUSTER INFO)"
		return ch
	}
	topics, err := admin.New(d.c, admin.Options{}).Topics(d.ctx)
	if err != nil {
		ch.Status, ch.Detail = statusWarn, "cluster_state ok; cannot list streams: "+err.Error()
		return ch
	}
	// Streams named like dead-letter streams of another layout ("orders:dlq")
	// live in another slot than their topic.
	var misplaced []string
	for _, t := range topics {
		if base, ok := strings.CutSuffix(t, ":dlq"); ok && keys.Slot(base) != keys.Slot(t) {
			misplaced = append(misplaced, t)
		}
	}
	if len(misplaced) > 0 {
		ch.Status = statusWarn
		ch.Detail = "cluster_state ok; these look like dead-letter streams outside their topic's slot: " + strings.Join(misplaced, ", ")
		ch.Advice = "use the default DeadLetterTopic (\"{topic}:dlq\") so that dead-lettering is one atomic step"
		return ch
	}
	ch.Status = statusOK
	ch.Detail = fmt.Sprintf("cluster_state ok; %d topic(s), each with its dead-letter stream in its slot", len(topics))
	return ch
}
