package millrace_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/redistest"
)

// The minimal ACL rules of Millrace's roles, as documented in
// docs/production.md. Each list is the commands of one role; the keys of a
// topic are its stream and its "{topic}:..." auxiliary keys (dead letters,
// delayed set), so "~orders ~{orders}:*" grants one topic.
var (
	// aclPublisher: the script that adds a call's messages and records
	// the producer's sequence number (EVALSHA, EVAL when the script is not
	// cached, and the XADD, GET and SET it calls); ZADD and PUBLISH for
	// delayed messages. The version check needs nothing: without INFO it
	// probes with XAUTOCLAIM and takes NOPERM as "new enough". Add +wait
	// (or +waitaof) for Durability, +xtrim for a Retention with both MaxLen
	// and MaxAge, +exists for Idempotency.
	aclPublisher = []string{"+evalsha", "+eval", "+xadd", "+get", "+set", "+zadd", "+publish"}
	// aclRetention: what the default retention (KeepUnacked, MaxAge) runs
	// in the background of a Publisher: XINFO GROUPS, XPENDING (groups
	// with pending entries) and XTRIM.
	aclRetention = []string{"+xinfo|groups", "+xpending", "+xtrim"}
	// aclCeiling: what counting the entries a ceiling dropped runs in the
	// same background rounds (a script: XINFO STREAM, then XGROUP SETID and
	// HINCRBY for a group that lost entries). With RefusePublish the
	// publishing script also runs XLEN.
	aclCeiling = []string{"+xinfo|stream", "+xgroup|setid", "+hincrby"}
	// aclSubscriber (consumer group): create the group and join it, wait
	// for news (XREAD, XREVRANGE; CLIENT ID and UNBLOCK let a new
	// subscription interrupt the wait), read, ack, reclaim and redeliver, extend leases, hold the consumer name (GET, SET)
	// and prune idle consumers (Lua scripts),
	// dead-letter (XADD to "{topic}:dlq") and move due delayed messages (a
	// Lua script: EVALSHA, EVAL when the script is not cached, and the
	// commands the scripts call).
	aclSubscriber = []string{
		"+xgroup|create", "+xgroup|createconsumer", "+xreadgroup", "+xack", "+xpending", "+xclaim", "+xautoclaim",
		"+xread", "+xrevrange", "+client|id", "+client|unblock",
		"+xinfo|consumers", "+xgroup|delconsumer",
		"+xadd",
		"+get", "+set",
		"+evalsha", "+eval", "+time", "+zrangebyscore", "+zrange", "+zrem",
		"+subscribe",
	}
	// aclBroadcast (subscriber without a group): read and find the end
	// of the stream, and move due delayed messages.
	aclBroadcast = []string{"+xread", "+xrevrange", "+client|id", "+client|unblock", "+evalsha", "+eval", "+time", "+zrangebyscore", "+zrange", "+zrem", "+xadd", "+subscribe"}
)

// aclTopicKeys are the key patterns granting topic: its stream and its
// auxiliary keys.
func aclTopicKeys(topic string) []string {
	return []string{"~" + topic, "~{" + topic + "}:*", "&{" + topic + "}:delayed"}
}

// topoLogBuffer collects log output from many goroutines.
type topoLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *topoLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *topoLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// topoLoggerTo returns a logger writing every level, debug and trace
// included, into buf.
func topoLoggerTo(buf *topoLogBuffer) watermill.LoggerAdapter {
	return watermill.NewStdLoggerWithOut(buf, true, true)
}

// topoQuietLogger returns a logger that keeps the log of name (info and up)
// and prints its tail only if the test fails, so that noisy failover runs
// stay quiet when they pass.
func topoQuietLogger(t *testing.T, name string) watermill.LoggerAdapter {
	buf := &topoLogBuffer{}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
		t.Logf("--- last log lines of %s ---\n%s", name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
	})
	return watermill.NewStdLoggerWithOut(buf, false, false)
}

// aclServer is a Redis server whose default user (no password) is the
// admin that creates the restricted users.
type aclServer struct {
	srv   *redistest.Server
	admin *redis.Client
}

func newACLServer(t *testing.T) *aclServer {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	return &aclServer{srv: srv, admin: srv.Client(t)}
}

// setUser creates (or replaces) user with exactly commands on keys, and
// returns a client logged in as user. The client does not retry, so NOPERM
// and connection errors come back at once.
func (a *aclServer) setUser(t *testing.T, user, password string, commands, keys []string) *redis.Client {
	t.Helper()
	args := []interface{}{"acl", "setuser", user, "reset", "on", ">" + password}
	for _, r := range slices.Concat(keys, commands) {
		args = append(args, r)
	}
	require.NoError(t, a.admin.Do(context.Background(), args...).Err())
	o := a.srv.Options(t)
	o.Username, o.Password = user, password
	o.MaxRetries = -1
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// without returns rules less rule.
func aclWithout(rules []string, rule string) []string {
	return slices.DeleteFunc(slices.Clone(rules), func(r string) bool { return r == rule })
}

func topoDelayed(payload string, d time.Duration) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
	delay.Message(msg, delay.For(d))
	return msg
}

// aclConsume acks messages whose payload starts with "ack" and nacks the
// others, until ch closes.
func aclConsume(ch <-chan *message.Message, got chan<- string) {
	for msg := range ch {
		if strings.HasPrefix(string(msg.Payload), "ack") {
			msg.Ack()
		} else {
			msg.Nack()
		}
		select {
		case got <- string(msg.Payload):
		default:
		}
	}
}

// A publisher and a subscriber whose users have exactly the documented
// rules do everything end to end: publish, delayed publish, consume, ack,
// nack and redeliver, dead-letter, release on Close, broadcast.
func TestACL_MinimalRulesWork(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	logs := &topoLogBuffer{}
	logger := topoLoggerTo(logs)
	const pubPass, subPass, bcPass = "pub-Secret-9f2c", "sub-Secret-71ab", "bc-Secret-4d0e"
	topic := "orders"
	pubClient := a.setUser(t, "publisher", pubPass, slices.Concat(aclPublisher, aclRetention, aclCeiling), aclTopicKeys(topic))
	subClient := a.setUser(t, "subscriber", subPass, aclSubscriber, aclTopicKeys(topic))
	bcClient := a.setUser(t, "watcher", bcPass, aclBroadcast, aclTopicKeys(topic))

	pub, err := millrace.NewPublisher(pubClient, millrace.PublisherConfig{}, logger)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := millrace.NewSubscriber(subClient, millrace.SubscriberConfig{
		ConsumerGroup: "workers", MaxDeliveries: 2, ClaimMinIdle: time.Second,
		BlockTime: 100 * time.Millisecond, NackBackoff: 10 * time.Millisecond, CloseTimeout: time.Second,
		PruneConsumersAfter: 100 * time.Millisecond,
	}, logger)
	require.NoError(t, err)
	bc, err := millrace.NewSubscriber(bcClient, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond}, logger)
	require.NoError(t, err)

	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	bch, err := bc.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	got := make(chan string, 100)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		aclConsume(ch, got)
	}()

	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("ack-1")), message.NewMessage(watermill.NewUUID(), []byte("poison"))))
	require.NoError(t, pub.Publish(topic, topoDelayed("ack-delayed", 200*time.Millisecond)))

	seen := map[string]int{}
	deadline := time.After(15 * time.Second)
	for seen["ack-1"] == 0 || seen["ack-delayed"] == 0 || seen["poison"] < 2 {
		select {
		case p := <-got:
			seen[p]++
		case <-deadline:
			t.Fatalf("deliveries so far: %v", seen)
		}
	}
	// The poison message was delivered twice and then dead-lettered.
	require.Eventually(t, func() bool { return xlen(t, a.admin, millrace.DeadLetterTopic(topic)) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return pendingCount(t, a.admin, topic, "workers") == 0 }, 10*time.Second, 20*time.Millisecond)

	broadcast := map[string]bool{}
	for len(broadcast) < 3 {
		msg := receive(t, bch)
		broadcast[string(msg.Payload)] = true
		msg.Ack()
	}

	// One message left in a handler is released (XCLAIM) by Close.
	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("held"))))
	require.Eventually(t, func() bool { return pendingCount(t, a.admin, topic, "workers") == 1 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, sub.Close())
	require.NoError(t, bc.Close())
	<-consumed

	out := logs.String()
	assert.NotContains(t, out, "NOPERM", "a command or key of the flow is missing from the rules")
	for _, pw := range []string{pubPass, subPass, bcPass} {
		assert.NotContains(t, out, pw, "a password in the log")
	}
}

// Every rule is needed: a user without one of them fails with a clear
// NOPERM error, from Publish or Subscribe when they run the command, and
// otherwise in the subscription's log (the subscription keeps retrying, as
// it does when Redis is down). The log never shows a password, even when
// the subscriber's password is changed under it.
func TestACL_EachRuleIsNeeded(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	const password = "Very-Secret-Pw-0b7e"
	logs := &topoLogBuffer{}

	t.Run("publisher", func(t *testing.T) {
		for _, rule := range aclPublisher {
			topic := "p" + strings.Trim(rule, "+|")
			c := a.setUser(t, "pub-"+topic, password, aclWithout(aclPublisher, rule), aclTopicKeys(topic))
			ruleLogs := &topoLogBuffer{}
			pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Retention: millrace.Retention{KeepAll: true}}, topoLoggerTo(ruleLogs))
			require.NoError(t, err)
			msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
			if rule == "+zadd" || rule == "+publish" {
				msg = topoDelayed("x", time.Minute)
			}
			err = pub.Publish(topic, msg)
			if rule == "+evalsha" || rule == "+eval" || rule == "+get" || rule == "+set" {
				// The script is refused before it writes anything: the
				// Publisher says so and turns to plain XADD.
				require.NoError(t, err, "Publish without %s", rule)
				aclWaitLogged(t, ruleLogs, "Cannot publish with the retry-safe script")
				logs.Write([]byte(ruleLogs.String()))
				require.NoError(t, pub.Close())
				continue
			}
			if rule == "+publish" {
				// The announcement is best effort: the message is kept and
				// the refusal logged.
				require.NoError(t, err)
				aclWaitMatched(t, ruleLogs, aclNoPermToRun("publish"))
				logs.Write([]byte(ruleLogs.String()))
				require.NoError(t, pub.Close())
				continue
			}
			require.Error(t, err, "Publish without %s", rule)
			assert.Contains(t, err.Error(), "NOPERM", "Publish without %s", rule)
			assert.Contains(t, err.Error(), strings.TrimPrefix(rule, "+"), "the error names the command")
			require.NoError(t, pub.Close())
		}
		// Durability needs +wait: with it, the call gets past ACL (and WAIT
		// finds no replica on this lone server); without, NOPERM.
		for _, granted := range []bool{true, false} {
			topic := fmt.Sprintf("pwait%v", granted)
			rules := aclPublisher
			if granted {
				rules = append(slices.Clone(aclPublisher), "+wait")
			}
			c := a.setUser(t, "pub-"+topic, password, rules, aclTopicKeys(topic))
			pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{
				Durability: millrace.Durability{Replicas: 1, Timeout: 10 * time.Millisecond},
				Retention:  millrace.Retention{KeepAll: true},
			}, topoLoggerTo(logs))
			require.NoError(t, err)
			err = pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x")))
			require.Error(t, err)
			if granted {
				assert.ErrorIs(t, err, millrace.ErrNotDurable)
			} else {
				assert.Regexp(t, aclNoPermToRun("wait"), err.Error())
			}
			require.NoError(t, pub.Close())
		}

		// Keys outside the pattern are refused too.
		c := a.setUser(t, "pub-keys", password, aclPublisher, aclTopicKeys("orders"))
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Retention: millrace.Retention{KeepAll: true}}, nil)
		require.NoError(t, err)
		defer pub.Close()
		err = pub.Publish("payments", message.NewMessage(watermill.NewUUID(), []byte("x")))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "NOPERM")
		assert.Contains(t, err.Error(), "key")
	})

	cases := map[string]struct{ commands, keys func(topic string) []string }{}
	for _, rule := range aclSubscriber {
		cases["without "+rule] = struct{ commands, keys func(string) []string }{
			func(string) []string { return aclWithout(aclSubscriber, rule) }, aclTopicKeys,
		}
	}
	// CLIENT UNBLOCK is sent when a subscription starts waiting while the
	// wait in flight does not cover its stream: a second topic.
	cases["without +client|unblock"] = struct{ commands, keys func(string) []string }{
		func(string) []string { return aclWithout(aclSubscriber, "+client|unblock") },
		func(topic string) []string { return append(aclTopicKeys(topic), aclTopicKeys(topic+"-2")...) },
	}
	cases["without the auxiliary keys"] = struct{ commands, keys func(string) []string }{
		func(string) []string { return aclSubscriber }, func(topic string) []string { return []string{"~" + topic} },
	}
	t.Run("subscriber", func(t *testing.T) {
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				topic := "s" + strings.NewReplacer("+", "", "|", "", " ", "").Replace(name)
				// A server of its own: scripts are cached per server, and
				// one cached by another user would hide a missing +eval.
				a := newACLServer(t)
				c := a.setUser(t, topic, password, tc.commands(topic), tc.keys(topic))
				caseLogs := &topoLogBuffer{}
				sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{
					ConsumerGroup: "workers", MaxDeliveries: 1, ClaimMinIdle: 200 * time.Millisecond,
					BlockTime: 100 * time.Millisecond, NackBackoff: 10 * time.Millisecond, CloseTimeout: 500 * time.Millisecond,
					PruneConsumersAfter: 100 * time.Millisecond,
				}, topoLoggerTo(caseLogs))
				require.NoError(t, err)
				defer sub.Close()
				// The admin publishes: the subscriber's rules are under test.
				adminPub, err := millrace.NewPublisher(a.admin, millrace.PublisherConfig{}, nil)
				require.NoError(t, err)
				defer adminPub.Close()
				require.NoError(t, adminPub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("ack")), message.NewMessage(watermill.NewUUID(), []byte("nack"))))
				require.NoError(t, adminPub.Publish(topic, topoDelayed("ack-later", 100*time.Millisecond)))

				ch, err := sub.Subscribe(context.Background(), topic)
				if err != nil {
					assert.Contains(t, err.Error(), "NOPERM", "Subscribe's error")
					assert.Equal(t, "without +xgroup|create", name, "only group creation fails Subscribe: %v", err)
					logs.Write([]byte(err.Error() + "\n"))
					return
				}
				go aclConsume(ch, nil)
				cmd := strings.TrimPrefix(strings.TrimPrefix(name, "without "), "+")
				if cmd == "client|unblock" {
					aclAwaitIdle(t, a.admin, topic)
					ch2, err := sub.Subscribe(context.Background(), topic+"-2")
					require.NoError(t, err)
					go aclConsume(ch2, nil)
				}
				switch cmd {
				case "time", "zrange", "zrangebyscore", "zrem", "xadd", "the auxiliary keys",
					"xinfo|consumers", "xgroup|delconsumer", "get", "set", "xclaim":
					// Called by a script (the delayed-message mover, the
					// consumer pruner, the consumer-name lease, the claim
					// for delivery; xadd also by dead-lettering), or a key
					// refusal.
					aclWaitMatched(t, caseLogs, aclRefusals)
				default:
					aclWaitMatched(t, caseLogs, aclNoPermToRun(cmd))
				}
				if cmd == "xreadgroup" {
					// The refusal is the read's, not the shared wait's.
					assert.NotContains(t, caseLogs.String(), "Cannot wait for new entries with the other subscriptions")
				}
				logs.Write([]byte(caseLogs.String()))
				start := time.Now()
				require.NoError(t, sub.Close())
				t.Logf("close took %s", time.Since(start))
			})
		}
	})

	t.Run("password changed under a running subscriber", func(t *testing.T) {
		ctx := context.Background()
		c := a.setUser(t, "rotated", password, aclSubscriber, aclTopicKeys("rotated"))
		caseLogs := &topoLogBuffer{}
		sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{ConsumerGroup: "workers", BlockTime: 100 * time.Millisecond}, topoLoggerTo(caseLogs))
		require.NoError(t, err)
		defer sub.Close()
		_, err = sub.Subscribe(ctx, "rotated")
		require.NoError(t, err)
		require.NoError(t, a.admin.Do(ctx, "acl", "setuser", "rotated", "resetpass", ">Another-Secret-Pw-55").Err())
		require.NoError(t, a.admin.Do(ctx, "client", "kill", "user", "rotated").Err())
		aclWaitLogged(t, caseLogs, "WRONGPASS")
		logs.Write([]byte(caseLogs.String()))
	})

	out := logs.String()
	t.Logf("a sample of the errors:\n%s", aclSampleLines(out, "NOPERM", 4))
	for _, secret := range []string{password, "Another-Secret-Pw-55"} {
		assert.NotContains(t, out, secret, "a password in the log")
	}
}

// aclRefusals matches the ways Redis 7.0 and Valkey 8.0 say a user lacks a
// right: NOPERM for a command, key or channel called directly; for one
// called by a script, Redis 7.0's error reply saying "The user executing
// the script can't" run the command (access the key, publish to the
// channel), and Valkey's "ACL failure in script".
var aclRefusals = regexp.MustCompile(`NOPERM|The user executing the script can't|ACL failure in script`)

// aclNoPermToRun matches the refusal of cmd called directly, as Redis 7.0
// words it ("NOPERM this user has no permissions to run the 'cmd'
// command") and as Valkey 8.0 does ("NOPERM User <name> has no permissions
// to run the 'cmd' command").
func aclNoPermToRun(cmd string) *regexp.Regexp {
	return regexp.MustCompile(`NOPERM (this user|User \S+) has no permissions to run the '` + regexp.QuoteMeta(cmd) + `' command`)
}

// aclWaitLogged waits until buf holds one of substrs.
func aclWaitLogged(t *testing.T, buf *topoLogBuffer, substrs ...string) {
	t.Helper()
	quoted := make([]string, len(substrs))
	for i, s := range substrs {
		quoted[i] = regexp.QuoteMeta(s)
	}
	aclWaitMatched(t, buf, regexp.MustCompile(strings.Join(quoted, "|")))
}

// aclWaitMatched waits until buf holds a match of re.
func aclWaitMatched(t *testing.T, buf *topoLogBuffer, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if re.MatchString(buf.String()) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing matching %q logged within 10s; log:\n%s", re, buf.String())
}

// aclSampleLines returns up to n distinct lines of s containing substr.
func aclSampleLines(s, substr string, n int) string {
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, substr) {
			continue
		}
		i := strings.Index(l, "msg=")
		key := l[max(0, i):]
		if !seen[key] && len(out) < n {
			seen[key] = true
			out = append(out, strings.TrimSpace(key))
		}
	}
	return fmt.Sprint(strings.Join(out, "\n"))
}

// A dead letter refused by ACL names the refusal in the log. (Dead letters
// were once written in MULTI/EXEC, whose EXECABORT hid the NOPERM of the
// queued XADD.)
func TestACL_DeadLetterRefusalIsNamed(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	topic := "orders"
	// Everything but XADD on the dead-letter stream's key.
	c := a.setUser(t, "worker", "Worker-Secret-3c1d", aclSubscriber, []string{"~" + topic, "~{" + topic + "}:delayed"})
	logs := &topoLogBuffer{}
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{
		ConsumerGroup: "workers", MaxDeliveries: 1, BlockTime: 100 * time.Millisecond,
		NackBackoff: 10 * time.Millisecond, CloseTimeout: 500 * time.Millisecond,
	}, topoLoggerTo(logs))
	require.NoError(t, err)
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	go aclConsume(ch, nil)
	adminPub, err := millrace.NewPublisher(a.admin, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	defer adminPub.Close()
	require.NoError(t, adminPub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("poison"))))

	aclWaitLogged(t, logs, "Cannot dead-letter entry")
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "Cannot dead-letter entry") {
			line = l
			break
		}
	}
	assert.Contains(t, line, "NOPERM", "the dead-letter error names the refusal")
}

// Retention with both MaxLen and MaxAge needs +xtrim (XADD takes one
// trimming clause, MaxAge then comes as an XTRIM). The messages are added
// all the same, so Publish succeeds, but the refusal must be logged:
// otherwise the stream grows without bound and nobody is told.
func TestACL_TrimRefusalIsLogged(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	topic := "orders"
	c := a.setUser(t, "trimless", "Trimless-Secret-8a2f", aclPublisher, aclTopicKeys(topic))
	logs := &topoLogBuffer{}
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Retention: millrace.Retention{MaxLen: 1000, MaxAge: time.Hour}}, topoLoggerTo(logs))
	require.NoError(t, err)
	defer pub.Close()
	// Two messages: a lone one skips the pipeline that trims.
	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x")), message.NewMessage(watermill.NewUUID(), []byte("y"))))
	assert.Eventually(t, func() bool {
		return aclNoPermToRun("xtrim").MatchString(logs.String())
	}, 2*time.Second, 10*time.Millisecond, "the refused XTRIM is not logged; log:\n%s", logs)

	// The default retention trims in the background, with each of
	// aclRetention: without one, Publish succeeds and the refusal is logged.
	for _, rule := range aclRetention {
		topic := "r" + strings.Trim(rule, "+|")
		c := a.setUser(t, "pub-"+topic, "Trimless-Secret-8a2f", slices.Concat(aclPublisher, aclWithout(aclRetention, rule)), aclTopicKeys(topic))
		logs := &topoLogBuffer{}
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{TrimInterval: 10 * time.Millisecond}, topoLoggerTo(logs))
		require.NoError(t, err)
		// A group with a pending entry, so that XPENDING runs.
		require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))))
		require.NoError(t, a.admin.XGroupCreate(context.Background(), topic, "g", "0").Err())
		require.NoError(t, a.admin.XReadGroup(context.Background(), &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{topic, ">"}}).Err())
		require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("y"))))
		cmd := strings.TrimPrefix(rule, "+")
		assert.Eventually(t, func() bool {
			return aclNoPermToRun(cmd).MatchString(logs.String())
		}, 5*time.Second, 10*time.Millisecond, "without %s the trimming is refused and logged; log:\n%s", rule, logs)
		require.NoError(t, pub.Close())
	}
}

// With NoDelayedMover a broadcast subscriber is read-only: a user with only
// XREAD, XREVRANGE, CLIENT ID and CLIENT UNBLOCK consumes, and nothing it runs is refused (a poll of
// the delayed set would be, and would be logged).
func TestACL_ReadOnlyBroadcastWithoutDelayedMover(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	logs := &topoLogBuffer{}
	topic := "orders"
	client := a.setUser(t, "reader", "reader-Secret-1", []string{"+xread", "+xrevrange", "+client|id", "+client|unblock"}, aclTopicKeys(topic))
	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		BlockTime: 100 * time.Millisecond, NoDelayedMover: true,
	}, topoLoggerTo(logs))
	require.NoError(t, err)
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)

	// The delayed set holds a due message: a mover would move it, and
	// without rights for that it would log NOPERM.
	pub := newACLPublisherAsAdmin(t, a)
	require.NoError(t, pub.Publish(topic, topoDelayed("delayed", time.Millisecond)))
	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("now"))))
	msg := receive(t, ch)
	assert.Equal(t, "now", string(msg.Payload))
	msg.Ack()
	// The subscription has made reads (and, had it a mover, its first poll
	// at start) before the message arrived.
	require.NoError(t, sub.Close())
	assert.NotContains(t, logs.String(), "NOPERM")
	assert.EqualValues(t, 1, a.admin.ZCard(context.Background(), millrace.DelayedKey(topic)).Val(), "nothing moved the delayed message")
}

// newACLPublisherAsAdmin is a Publisher with every right.
func newACLPublisherAsAdmin(t *testing.T, a *aclServer) *millrace.Publisher {
	t.Helper()
	pub, err := millrace.NewPublisher(a.admin, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	return pub
}

// aclAwaitIdle waits until a client is blocked in the XREAD that waits for
// news (CLIENT LIST: flags b, cmd xread).
func aclAwaitIdle(t *testing.T, admin *redis.Client, topic string) {
	t.Helper()
	require.Eventually(t, func() bool {
		list, err := admin.ClientList(context.Background()).Result()
		require.NoError(t, err)
		for _, l := range strings.Split(list, "\n") {
			if strings.Contains(l, "user="+topic+" ") && strings.Contains(l, " flags=b ") && strings.Contains(l, " cmd=xread ") {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no XREAD blocked for news")
}

// Counting the entries a ceiling dropped needs each rule of aclCeiling:
// without one, Publish still works and the refusal is logged; with all, the
// drops are counted. RefusePublish needs XLEN: without it Publish fails.
func TestACL_Ceiling(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	ctx := context.Background()
	publish100 := func(pub *millrace.Publisher, topic string) error {
		msgs := make([]*message.Message, 100)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("m"))
		}
		return pub.Publish(topic, msgs...)
	}
	for _, rule := range append([]string{""}, aclCeiling...) {
		topic := "c" + strings.Trim(rule, "+|")
		c := a.setUser(t, "pub-"+topic, "Ceiling-Secret-5e1d", slices.Concat(aclPublisher, aclRetention, aclWithout(aclCeiling, rule)), aclTopicKeys(topic))
		logs := &topoLogBuffer{}
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Retention: millrace.Retention{Ceiling: 100}}, topoLoggerTo(logs))
		require.NoError(t, err)
		require.NoError(t, a.admin.XGroupCreateMkStream(ctx, topic, "gone", "$").Err())
		for range 3 {
			require.NoError(t, publish100(pub, topic))
		}
		require.NoError(t, pub.Close()) // its last round counts
		n, err := a.admin.HGet(ctx, keys.Overflow(topic), keys.OverflowDropped+"gone").Int()
		if rule == "" {
			require.NoError(t, err)
			assert.Positive(t, n)
			assert.NotContains(t, logs.String(), "Cannot count the entries dropped")
			continue
		}
		assert.ErrorIs(t, err, redis.Nil, "without %s", rule)
		assert.Contains(t, logs.String(), "Cannot count the entries dropped", "without %s; log:\n%s", rule, logs)
	}

	for _, withXLen := range []bool{true, false} {
		rules := slices.Concat(aclPublisher, aclRetention, aclCeiling)
		topic := "refuse"
		if withXLen {
			rules = append(rules, "+xlen")
			topic = "refuse-xlen"
		}
		c := a.setUser(t, "pub-"+topic, "Refuse-Secret-0b9c", rules, aclTopicKeys(topic))
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Retention: millrace.Retention{Ceiling: 150, Overflow: millrace.RefusePublish}}, testLogger)
		require.NoError(t, err)
		require.NoError(t, a.admin.XGroupCreateMkStream(ctx, topic, "gone", "$").Err())
		err = publish100(pub, topic)
		if withXLen {
			require.NoError(t, err)
			require.ErrorIs(t, publish100(pub, topic), millrace.ErrTopicFull)
		} else {
			require.Error(t, err)
			assert.True(t, rediserr.IsNoPerm(err), "the script's refusal: %v", err)
		}
		require.NoError(t, pub.Close())
	}
}
