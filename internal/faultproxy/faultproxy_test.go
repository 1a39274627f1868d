package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func roundTrip(c net.Conn, line string) (string, error) {
	if err := c.SetDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestProxy(t *testing.T) {
	p, err := Start(echoServer(t))
	require.NoError(t, err)
	defer p.Close()

	a, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer a.Close()
	got, err := roundTrip(a, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello\n", got)

	require.True(t, p.CutRandom(rand.New(rand.NewPCG(1, 2))))
	_, err = roundTrip(a, "again")
	require.Error(t, err, "the cut connection is closed")
	assert.Equal(t, 1, p.Cuts())
	require.Eventually(t, func() bool { return !p.CutRandom(rand.New(rand.NewPCG(1, 2))) }, time.Second, 5*time.Millisecond, "no live connection left")

	p.SetMode(Reject)
	r, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer r.Close()
	_, err = roundTrip(r, "x")
	require.Error(t, err, "a rejected connection is closed at once")
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "closed (EOF or reset), not left hanging: %v", err)

	p.SetMode(Blackhole)
	b, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer b.Close()
	_, err = roundTrip(b, "x")
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "a swallowed connection never answers: %v", err)
	assert.Equal(t, 1, p.CutAll(), "the swallowed connection is live")

	p.SetMode(Forward)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	got, err = roundTrip(c, "back")
	require.NoError(t, err)
	assert.Equal(t, "back\n", got)
}

func TestCommand(t *testing.T) {
	assert.True(t, Command("XADD")([]string{"xadd", "s", "*", "f", "v"}))
	assert.False(t, Command("XADD")([]string{"XLEN", "s"}))
	assert.False(t, Command("XADD")(nil))
	assert.True(t, Command("CLIENT", "UNBLOCK")([]string{"client", "Unblock", "7"}))
	assert.False(t, Command("CLIENT", "UNBLOCK")([]string{"CLIENT", "ID"}))
	assert.False(t, Command("CLIENT", "UNBLOCK")([]string{"CLIENT"}))
}

// fakeReply is what fakeRedis sends for one command: optional push
// messages, then the reply.
type fakeReply struct{ push, reply string }

// fakeReplies hold every RESP2 and RESP3 type, nested, with attributes and
// pushes, and a reply larger than the proxy's buffers.
var fakeReplies = []fakeReply{
	{reply: "+OK\r\n"},
	{reply: "-ERR wrong\r\n"},
	{reply: ":-42\r\n"},
	{reply: "$5\r\nhello\r\n"},
	{reply: "$-1\r\n"},
	{reply: "$0\r\n\r\n"},
	{reply: "$10\r\nab\r\n\r\ncdef\r\n"},
	{reply: "*-1\r\n"},
	{reply: "*0\r\n"},
	{reply: "*3\r\n$1\r\na\r\n*2\r\n:1\r\n%1\r\n+k\r\n~2\r\n,1.5\r\n#t\r\n*-1\r\n"},
	{reply: "%2\r\n+a\r\n(12345678901234567890\r\n$1\r\nb\r\n_\r\n"},
	{reply: "~2\r\n=15\r\ntxt:Some string\r\n,-inf\r\n"},
	{reply: "!21\r\nSYNTAX invalid syntax\r\n"},
	{reply: "|1\r\n+key-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$4\r\nreal\r\n"},
	{reply: "*2\r\n|1\r\n+ttl\r\n:3\r\n+x\r\n#f\r\n"},
	{push: ">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n", reply: "+after a push\r\n"},
	{push: ">1\r\n+p1\r\n>1\r\n+p2\r\n", reply: ":7\r\n"},
	{reply: "$100000\r\n" + strings.Repeat("x", 100000) + "\r\n"},
	{reply: "*2\r\n$70000\r\n" + strings.Repeat("y", 70000) + "\r\n:1\r\n"},
	{reply: "+last\r\n"},
}

// fakeRedis answers the i-th command (from 1) of each connection with
// fakeReplies[i-1], counting commands the way Redis does: arrays of bulk
// strings, and non-blank inline lines. It closes a connection after the
// last reply.
func fakeRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for _, fr := range fakeReplies {
					if err := skipCommand(r); err != nil {
						return
					}
					if _, err := io.WriteString(c, fr.push+fr.reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// skipCommand reads one command from r, skipping what Redis ignores.
func skipCommand(r *bufio.Reader) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "*") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil {
			return err
		}
		if n <= 0 {
			continue
		}
		for range n {
			hdr, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			m, err := strconv.Atoi(strings.TrimSpace(hdr[1:]))
			if err != nil {
				return err
			}
			if _, err := r.Discard(m + 2); err != nil {
				return err
			}
		}
		return nil
	}
}

// fakeCommands are one command per fake reply, the i-th (from 1) with i as
// its second argument, in several forms: a large argument, an inline
// command, and what Redis ignores (a blank line, an empty array) between
// commands.
func fakeCommands() []byte {
	var b bytes.Buffer
	for i := range fakeReplies {
		k := strconv.Itoa(i + 1)
		switch i {
		case 2:
			big := strings.Repeat("z", 70000)
			fmt.Fprintf(&b, "*3\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(big), big)
		case 4:
			fmt.Fprintf(&b, "PING %s\r\n", k)
		case 6:
			fmt.Fprintf(&b, "\r\n*0\r\n*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", len(k), k)
		default:
			fmt.Fprintf(&b, "*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", len(k), k)
		}
	}
	return b.Bytes()
}

// fakeBytes returns the pushes and replies for the first n commands.
func fakeBytes(n int) string {
	var b strings.Builder
	for _, fr := range fakeReplies[:n] {
		b.WriteString(fr.push + fr.reply)
	}
	return b.String()
}

// readAll reads from c until it is closed.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	got, err := io.ReadAll(c)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection was not closed: %v", err)
	return got
}

func requireClosed(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reply was not lost")
	}
}

func TestLoseReplyEveryType(t *testing.T) {
	p, err := Start(fakeRedis(t))
	require.NoError(t, err)
	defer p.Close()
	cmds := fakeCommands()

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	_, err = c.Write(cmds)
	require.NoError(t, err)
	require.Equal(t, fakeBytes(len(fakeReplies)), string(readAll(t, c)), "unarmed, every byte is passed on")
	c.Close()

	for i := range fakeReplies {
		t.Run(strconv.Itoa(i+1), func(t *testing.T) {
			k := strconv.Itoa(i + 1)
			done := p.LoseReply(func(args []string) bool { return len(args) >= 2 && args[1] == k })
			c, err := net.Dial("tcp", p.Addr())
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write(cmds)
			require.NoError(t, err)
			want := fakeBytes(i) + fakeReplies[i].push
			assert.Equal(t, want, string(readAll(t, c)))
			requireClosed(t, done)
		})
	}
}

func TestLoseReplyRearm(t *testing.T) {
	p, err := Start(fakeRedis(t))
	require.NoError(t, err)
	defer p.Close()

	replaced := p.LoseReply(Command("NOPE"))
	done := p.LoseReply(Command("ECHO"))
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(fakeCommands())
	require.NoError(t, err)
	assert.Empty(t, readAll(t, c), "the first ECHO's reply is lost")
	requireClosed(t, done)
	select {
	case <-replaced:
		t.Fatal("a replaced arming fired")
	default:
	}

	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Write(fakeCommands())
	require.NoError(t, err)
	assert.Equal(t, fakeBytes(len(fakeReplies)), string(readAll(t, c2)), "an arming fires once")
}

// proxied starts a redis-server (or takes REDIS_URL), a proxy in front of
// it, and returns a client through the proxy with maxRetries (0: go-redis's
// default), a client straight to the server, and a key prefix of the test.
func proxied(t *testing.T, maxRetries int) (*Proxy, *redis.Client, *redis.Client, string) {
	t.Helper()
	srv := redistest.StartFromEnv(t)
	p, err := Start(srv.Addr())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	o := srv.Options(t)
	o.Addr = p.Addr()
	o.MaxRetries = maxRetries
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return p, c, srv.Client(t), fmt.Sprintf("faultproxy:%s:%d:", t.Name(), time.Now().UnixNano())
}

func requireNetworkError(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var rerr redis.Error
	require.False(t, errors.As(err, &rerr), "a network error, not a reply from Redis: %v", err)
}

func TestLoseReplyXAdd(t *testing.T) {
	ctx := context.Background()
	p, c, direct, key := proxied(t, -1)
	s := key + "s"
	require.NoError(t, c.Ping(ctx).Err())

	done := p.LoseReply(Command("XADD"))
	err := c.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []any{"f", "v"}}).Err()
	requireNetworkError(t, err)
	requireClosed(t, done)
	assert.Equal(t, int64(1), direct.XLen(ctx, s).Val(), "Redis ran the XADD whose reply was lost")
	assert.Equal(t, 0, p.Cuts())

	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []any{"f", "v"}}).Err(), "the next command gets a new connection and its reply")
	assert.Equal(t, int64(2), direct.XLen(ctx, s).Val())
}

// With its default MaxRetries, go-redis sends a command again, on a new
// connection, when the reply is lost: a non-idempotent command runs twice
// and the caller sees a success.
func TestLoseReplyXAddRetriedByGoRedis(t *testing.T) {
	ctx := context.Background()
	p, c, direct, key := proxied(t, 0)
	s := key + "s"

	done := p.LoseReply(Command("XADD"))
	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []any{"f", "v"}}).Err())
	requireClosed(t, done)
	assert.Equal(t, int64(2), direct.XLen(ctx, s).Val(), "the XADD ran twice")
}

func TestLoseReplyInPipeline(t *testing.T) {
	ctx := context.Background()
	p, c, direct, key := proxied(t, -1)
	a, s, b := key+"a", key+"s", key+"b"
	require.NoError(t, c.Ping(ctx).Err())

	done := p.LoseReply(Command("XADD"))
	cmds, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, a, "1", 0)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []any{"f", "v"}})
		pipe.Set(ctx, b, "2", 0)
		return nil
	})
	requireNetworkError(t, err)
	requireClosed(t, done)
	require.Len(t, cmds, 3)
	// go-redis marks every command of a failed pipeline with the error, also
	// those whose reply it read.
	for _, cmd := range cmds {
		requireNetworkError(t, cmd.Err())
	}
	assert.Equal(t, "OK", cmds[0].(*redis.StatusCmd).Val(), "the reply before the lost one reached the client")

	assert.Equal(t, "1", direct.Get(ctx, a).Val())
	assert.Equal(t, int64(1), direct.XLen(ctx, s).Val(), "Redis ran the XADD whose reply was lost")
	// SET b ran too if it reached the proxy before the XADD's reply came
	// back, which is usual for a pipeline written in one go, but not certain.
	t.Logf("SET after the lost reply ran: %v", direct.Exists(ctx, b).Val() == 1)
}

func TestForwardRedis(t *testing.T) {
	ctx := context.Background()
	_, c, direct, key := proxied(t, -1)

	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := range 100 {
				k := fmt.Sprintf("%sk%d:%d", key, g, i)
				v := strings.Repeat(strconv.Itoa(i), i*50)
				if !assert.NoError(t, c.Set(ctx, k, v, 0).Err()) {
					return
				}
				if !assert.Equal(t, v, c.Get(ctx, k).Val()) {
					return
				}
			}
		})
	}
	wg.Wait()

	counter := key + "counter"
	cmds, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for range 1000 {
			pipe.Incr(ctx, counter)
		}
		return nil
	})
	require.NoError(t, err)
	for i, cmd := range cmds {
		require.Equal(t, int64(i+1), cmd.(*redis.IntCmd).Val())
	}

	h, set, s, z := key+"h", key+"set", key+"s", key+"z"
	require.NoError(t, direct.HSet(ctx, h, "f1", "v1", "f2", "v2").Err())
	require.NoError(t, direct.SAdd(ctx, set, "m1", "m2", "m3").Err())
	require.NoError(t, direct.ZAdd(ctx, z, redis.Z{Score: 1.5, Member: "m"}).Err())
	for i := range 3 {
		require.NoError(t, direct.XAdd(ctx, &redis.XAddArgs{Stream: s, ID: fmt.Sprintf("%d-1", i+1), Values: []any{"f", strconv.Itoa(i), "g", ""}}).Err())
	}

	hm, err := c.Do(ctx, "HGETALL", h).Result()
	require.NoError(t, err)
	assert.Equal(t, map[any]any{"f1": "v1", "f2": "v2"}, hm, "a RESP3 map")
	assert.Equal(t, map[string]string{"f1": "v1", "f2": "v2"}, c.HGetAll(ctx, h).Val())
	assert.ElementsMatch(t, []string{"m1", "m2", "m3"}, c.SMembers(ctx, set).Val())
	assert.Equal(t, 1.5, c.ZScore(ctx, z, "m").Val())
	msgs, err := c.XRange(ctx, s, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	for i, m := range msgs {
		assert.Equal(t, redis.XMessage{ID: fmt.Sprintf("%d-1", i+1), Values: map[string]any{"f": strconv.Itoa(i), "g": ""}}, m)
	}
	assert.ErrorIs(t, c.Get(ctx, key+"missing").Err(), redis.Nil)
	assert.Equal(t, "PONG", c.Ping(ctx).Val())
}

// TestLoseReplyAfterRESP3 has Redis send attributes, pushes and every RESP3
// type (DEBUG PROTOCOL) before the reply that is lost. It starts a server of
// its own: DEBUG is off unless enable-debug-command allows it.
func TestLoseReplyAfterRESP3(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"enable-debug-command local"}})
	p, err := Start(srv.Addr())
	require.NoError(t, err)
	defer p.Close()

	var cmds strings.Builder
	cmds.WriteString("HELLO 3\r\n")
	for _, typ := range []string{"attrib", "push", "map", "set", "bignum", "double", "true", "false", "null", "verbatim", "array", "string", "integer"} {
		fmt.Fprintf(&cmds, "*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$%d\r\n%s\r\n", len(typ), typ)
	}
	cmds.WriteString("*1\r\n$4\r\nPING\r\n")
	// The client id in HELLO's reply differs between connections.
	id := regexp.MustCompile(`(\$2\r\nid\r\n):\d+\r\n`)

	d, err := net.Dial("tcp", srv.Addr())
	require.NoError(t, err)
	defer d.Close()
	_, err = io.WriteString(d, cmds.String())
	require.NoError(t, err)
	require.NoError(t, d.SetReadDeadline(time.Now().Add(5*time.Second)))
	var direct []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(direct, []byte("+PONG\r\n")) {
		n, err := d.Read(buf)
		require.NoError(t, err)
		direct = append(direct, buf[:n]...)
	}
	require.Contains(t, string(direct), "|1\r\n", "Redis sent an attribute")
	require.Contains(t, string(direct), ">2\r\n", "Redis sent a push")

	done := p.LoseReply(Command("PING"))
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, cmds.String())
	require.NoError(t, err)
	got := readAll(t, c)
	requireClosed(t, done)
	assert.Equal(t,
		id.ReplaceAllString(strings.TrimSuffix(string(direct), "+PONG\r\n"), "${1}:ID\r\n"),
		id.ReplaceAllString(string(got), "${1}:ID\r\n"))
}

// Replies on a subscribed connection do not pair one to one with commands,
// so its commands are never matched.
func TestLoseReplySkipsSubscribed(t *testing.T) {
	ctx := context.Background()
	p, c, _, key := proxied(t, -1)
	ps := c.Subscribe(ctx, key+"ch")
	defer ps.Close()
	_, err := ps.Receive(ctx)
	require.NoError(t, err)

	done := p.LoseReply(Command("PING"))
	require.NoError(t, ps.Ping(ctx))
	requireNetworkError(t, c.Ping(ctx).Err())
	requireClosed(t, done)
}

// live returns how many connections p holds.
func live(p *Proxy) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// port returns the port of addr.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

// serverPort returns the tcp_port in INFO server of the server that c's
// connection reaches.
func serverPort(t *testing.T, c interface {
	Info(context.Context, ...string) *redis.StringCmd
}) string {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^tcp_port:(\d+)\r?$`).FindStringSubmatch(info)
	require.NotNil(t, m, "tcp_port in INFO server")
	return m[1]
}

func TestSetTarget(t *testing.T) {
	ctx := context.Background()
	a := redistest.Start(t, redistest.Options{NoAOF: true})
	b := redistest.Start(t, redistest.Options{NoAOF: true})
	p, err := Start(a.Addr())
	require.NoError(t, err)
	defer p.Close()
	key := "faultproxy:TestSetTarget"
	require.NoError(t, b.Client(t).Set(ctx, key, "on b", 0).Err())

	o := a.Options(t)
	o.Addr = p.Addr()
	o.MaxRetries = -1
	old := redis.NewClient(o)
	defer old.Close()
	require.Equal(t, port(t, a.Addr()), serverPort(t, old))
	require.Equal(t, uint32(1), old.PoolStats().TotalConns, "one idle connection to a in the pool")

	p.SetTarget(b.Addr())

	fresh := redis.NewClient(o)
	defer fresh.Close()
	assert.Equal(t, port(t, b.Addr()), serverPort(t, fresh), "a new client reaches b")
	assert.Equal(t, "on b", fresh.Get(ctx, key).Val())

	held := old.Conn()
	defer held.Close()
	assert.Equal(t, port(t, a.Addr()), serverPort(t, held), "the live connection still reaches a")
	assert.ErrorIs(t, held.Get(ctx, key).Err(), redis.Nil)
	assert.Equal(t, port(t, b.Addr()), serverPort(t, old), "a new connection of the same client reaches b")
	assert.Equal(t, "on b", old.Get(ctx, key).Val())
	assert.Equal(t, uint32(2), old.PoolStats().TotalConns)
	assert.Equal(t, 3, live(p))
}

// clientInfo returns the line of CLIENT LIST about the client with id, or
// "" when there is none.
func clientInfo(t *testing.T, direct *redis.Client, id int64) string {
	t.Helper()
	list, err := direct.ClientList(context.Background()).Result()
	require.NoError(t, err)
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, fmt.Sprintf("id=%d ", id)) {
			return line
		}
	}
	return ""
}

func TestCutIdle(t *testing.T) {
	ctx := context.Background()
	p, c, direct, key := proxied(t, -1)
	k := key + "list"

	blocker := c.Conn()
	defer blocker.Close()
	blockerID, err := blocker.ClientID(ctx).Result()
	require.NoError(t, err)
	popped := make(chan *redis.StringSliceCmd, 1)
	go func() { popped <- blocker.BLPop(ctx, 0, k) }()
	blocked := func() bool {
		info := clientInfo(t, direct, blockerID)
		return strings.Contains(info, " flags=b ") && strings.Contains(info, " cmd=blpop ")
	}
	require.Eventually(t, blocked, 5*time.Second, 5*time.Millisecond, "BLPOP is blocked")

	idleID, err := c.ClientID(ctx).Result()
	require.NoError(t, err)
	require.Equal(t, uint32(2), c.PoolStats().TotalConns, "the blocked connection and an idle one")
	require.Equal(t, 2, live(p))

	assert.Equal(t, 1, p.CutIdle())
	assert.Equal(t, 1, p.Cuts())
	require.Eventually(t, func() bool { return live(p) == 1 }, 5*time.Second, 5*time.Millisecond, "the idle connection is gone")
	require.Eventually(t, func() bool { return clientInfo(t, direct, idleID) == "" }, 5*time.Second, 5*time.Millisecond, "Redis saw the idle connection close")
	assert.True(t, blocked(), "BLPOP is still blocked")
	select {
	case cmd := <-popped:
		t.Fatalf("BLPOP returned: %v", cmd)
	case <-time.After(50 * time.Millisecond):
	}

	require.NoError(t, direct.RPush(ctx, k, "v").Err())
	select {
	case cmd := <-popped:
		require.NoError(t, cmd.Err())
		assert.Equal(t, []string{k, "v"}, cmd.Val())
	case <-time.After(5 * time.Second):
		t.Fatal("BLPOP did not return")
	}

	id, err := c.ClientID(ctx).Result()
	require.NoError(t, err, "the pool drops the cut connection and dials a new one")
	assert.NotEqual(t, idleID, id)
	assert.Equal(t, 1, p.Cuts())
}

// Connections whose replies do not pair with commands are never idle.
func TestCutIdleKeepsUntracked(t *testing.T) {
	ctx := context.Background()
	p, c, direct, key := proxied(t, -1)
	ch := key + "ch"

	ps := c.Subscribe(ctx, ch)
	defer ps.Close()
	_, err := ps.Receive(ctx)
	require.NoError(t, err)

	mon, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer mon.Close()
	require.NoError(t, mon.SetDeadline(time.Now().Add(5*time.Second)))
	monr := bufio.NewReader(mon)
	_, err = io.WriteString(mon, "MONITOR\r\n")
	require.NoError(t, err)
	line, err := monr.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", line)

	require.NoError(t, c.Ping(ctx).Err())
	require.Equal(t, 3, live(p))
	assert.Equal(t, 1, p.CutIdle(), "the pooled connection after its PING")
	require.Eventually(t, func() bool { return live(p) == 2 }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, direct.Publish(ctx, ch, "m").Err())
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := ps.ReceiveMessage(rctx)
	require.NoError(t, err, "the subscribed connection was kept")
	assert.Equal(t, "m", msg.Payload)
	for !strings.Contains(line, "publish") {
		line, err = monr.ReadString('\n')
		require.NoError(t, err, "the MONITOR connection was kept")
	}

	e, err := Start(echoServer(t))
	require.NoError(t, err)
	defer e.Close()
	raw, err := net.Dial("tcp", e.Addr())
	require.NoError(t, err)
	defer raw.Close()
	got, err := roundTrip(raw, "hello")
	require.NoError(t, err)
	require.Equal(t, "hello\n", got)
	silent, err := net.Dial("tcp", e.Addr())
	require.NoError(t, err)
	defer silent.Close()
	require.Eventually(t, func() bool { return live(e) == 2 }, 5*time.Second, 5*time.Millisecond)
	e.SetMode(Blackhole)
	hole, err := net.Dial("tcp", e.Addr())
	require.NoError(t, err)
	defer hole.Close()
	require.Eventually(t, func() bool { return live(e) == 3 }, 5*time.Second, 5*time.Millisecond)

	assert.Equal(t, 1, e.CutIdle(), "only the connection that sent nothing: non-RESP traffic and swallowed connections are kept")
	assert.Empty(t, readAll(t, silent))
	got, err = roundTrip(raw, "again")
	require.NoError(t, err)
	assert.Equal(t, "again\n", got)
}
