package millrace_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/keys"
)

// eventLogger signals the Info lines a subscriber logs, by a part of their
// text, and passes everything to testLogger.
type eventLogger struct {
	watermill.LoggerAdapter
	mu    sync.Mutex
	waits map[string]chan struct{}
}

func newEventLogger(parts ...string) *eventLogger {
	l := &eventLogger{LoggerAdapter: testLogger, waits: map[string]chan struct{}{}}
	for _, p := range parts {
		l.waits[p] = make(chan struct{})
	}
	return l
}

func (l *eventLogger) Info(msg string, fields watermill.LogFields) {
	l.mu.Lock()
	for p, ch := range l.waits {
		if strings.Contains(msg, p) {
			close(ch)
			delete(l.waits, p)
		}
	}
	l.mu.Unlock()
	l.LoggerAdapter.Info(msg, fields)
}

func (l *eventLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

// logged is closed once a line containing part was logged.
func (l *eventLogger) logged(part string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.waits[part]; ok {
		return ch
	}
	done := make(chan struct{})
	close(done)
	return done
}

const (
	pausedLine  = "Consumer group is paused"
	resumedLine = "Consumer group is resumed"
)

// A paused group's subscriber stops taking new entries within a second,
// while it still finishes (and acknowledges) the message its handler holds;
// resumed, it takes the entries published meanwhile at once. Its claimer
// takes nothing over while paused either.
func TestPause_StopsWithinASecondFinishesHeldAndResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	log := newEventLogger(pausedLine, resumedLine)
	cfg := groupConfig("g")
	cfg.MaxInFlight = 1
	sub, err := millrace.NewSubscriber(e.client, cfg, log)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	ch := subscribe(t, sub, topic)
	adm := admin.New(e.client, admin.Options{})
	ctx := ctxTimeout(t, 30*time.Second)

	publish(t, pub, topic, "held")
	held := receive(t, ch)

	pausedAt := time.Now()
	changed, err := adm.PauseGroup(ctx, topic, "g")
	require.NoError(t, err)
	assert.True(t, changed)
	changed, err = adm.PauseGroup(ctx, topic, "g")
	require.NoError(t, err)
	assert.False(t, changed, "pausing again changes nothing")
	state, err := adm.GroupPaused(ctx, topic, "g")
	require.NoError(t, err)
	assert.True(t, state.Paused)
	assert.WithinDuration(t, time.Now(), state.Since, 5*time.Second)

	// Entries keep coming; the reader must notice the pause at a read. The
	// handler still holds its message.
	var published []string
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-log.logged(pausedLine):
			break wait
		case <-tick.C:
			published = append(published, publish(t, pub, topic, "during")[0].UUID)
		case <-ctx.Done():
			t.Fatal("the subscriber never noticed the pause")
		}
	}
	assert.Less(t, time.Since(pausedAt), time.Second, "stopped within a second")

	// Paused, it finishes what it holds: the handler's message and those
	// read before the pause was seen.
	held.Ack()
	var delivered []*message.Message
	for pendingCount(t, e.client, topic, "g") > 0 {
		select {
		case m := <-ch:
			delivered = append(delivered, m)
			m.Ack()
		case <-tick.C: // acknowledgements are sent in batches: look again
		case <-ctx.Done():
			t.Fatal("held entries were not finished while paused")
		}
	}
	published = append(published, publish(t, pub, topic, "after")[0].UUID)
	requireNoMessage(t, ch, 1500*time.Millisecond)
	requireNoPending(t, e.client, topic, "g")
	g, err := adm.Group(ctx, topic, "g")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, g.Lag, int64(len(published)-len(delivered)), "what was published while paused waits")

	changed, err = adm.ResumeGroup(ctx, topic, "g")
	require.NoError(t, err)
	assert.True(t, changed)
	got := map[string]bool{}
	for _, m := range delivered {
		got[m.UUID] = true
	}
	for len(got) < len(published) {
		m := receive(t, ch)
		got[m.UUID] = true
		m.Ack()
	}
	for _, id := range published {
		assert.True(t, got[id], "message %s published while paused is delivered after the resume", id)
	}
	select {
	case <-log.logged(resumedLine):
	case <-ctx.Done():
		t.Fatal("no resume logged")
	}
}

// The pause survives the subscribers: one started while the group is
// paused takes nothing, from its first read on, until the group is resumed.
func TestPause_SurvivesSubscriberRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	first := e.subscriber(t, groupConfig("g"))
	ch := subscribe(t, first, topic)
	adm := admin.New(e.client, admin.Options{})
	ctx := ctxTimeout(t, 30*time.Second)

	_, err := adm.PauseGroup(ctx, topic, "g")
	require.NoError(t, err)
	require.NoError(t, first.Close())
	requireClosed(t, ch)

	sent := publish(t, pub, topic, "while down")
	log := newEventLogger(pausedLine, resumedLine)
	sub, err := millrace.NewSubscriber(e.client, groupConfig("g"), log)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	ch = subscribe(t, sub, topic)
	takesOnlyOnceResumed(ctx, t, log, adm, topic, ch, sent[0].UUID)
	<-log.logged(resumedLine)
	state, err := adm.GroupPaused(ctx, topic, "g")
	require.NoError(t, err)
	assert.False(t, state.Paused)
}

// Pausing a group that does not exist is refused; resuming one never
// paused changes nothing.
func TestPause_UnknownGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm := admin.New(e.client, admin.Options{})
	ctx := ctxTimeout(t, 10*time.Second)
	topic := newTopic()
	_, err := adm.PauseGroup(ctx, topic, "nosuch")
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)
	changed, err := adm.ResumeGroup(ctx, topic, "nosuch")
	require.NoError(t, err)
	assert.False(t, changed)
}

// A pause key that is not a stream (written by something else) is logged
// and ignored: the subscription consumes.
func TestPause_WrongTypeKeyIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	require.NoError(t, e.client.Set(context.Background(), keys.Paused(topic, "g"), "x", 0).Err())
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	sent := publish(t, e.publisher(t, millrace.PublisherConfig{}), topic, "x")
	m := receive(t, ch)
	assert.Equal(t, sent[0].UUID, m.UUID)
	m.Ack()
}

// Without XREAD (no shared wait for news) a paused subscriber looks at the
// pause once a second, and takes the entries once resumed; without
// XREVRANGE it cannot see pauses at all, says so, and consumes.
func TestPause_NarrowACL(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	adm := admin.New(a.admin, admin.Options{})
	for name, missing := range map[string]string{"no-xread": "+xread", "no-xrevrange": "+xrevrange"} {
		t.Run(name, func(t *testing.T) {
			ctx := ctxTimeout(t, 30*time.Second)
			topic := "t-" + name
			rules := slices.DeleteFunc(slices.Clone(aclSubscriber), func(r string) bool { return r == missing })
			c := a.setUser(t, name, "Secret-"+name, rules, aclTopicKeys(topic))
			require.NoError(t, a.admin.XGroupCreateMkStream(ctx, topic, "g", "$").Err())
			_, err := adm.PauseGroup(ctx, topic, "g")
			require.NoError(t, err)
			log := newEventLogger(pausedLine, resumedLine)
			sub, err := millrace.NewSubscriber(c, groupConfig("g"), log)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, sub.Close()) })
			ch := subscribe(t, sub, topic)
			pub, err := millrace.NewPublisher(a.admin, millrace.PublisherConfig{}, testLogger)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, pub.Close()) })
			sent := publish(t, pub, topic, "x")

			if missing == "+xrevrange" {
				m := receive(t, ch) // pauses unseen
				assert.Equal(t, sent[0].UUID, m.UUID)
				m.Ack()
				return
			}
			takesOnlyOnceResumed(ctx, t, log, adm, topic, ch, sent[0].UUID)
		})
	}
}

// takesOnlyOnceResumed waits for the subscriber logging to log to see the
// pause of group "g" on topic, checks that it takes nothing meanwhile,
// resumes the group and receives the message want from ch.
func takesOnlyOnceResumed(ctx context.Context, t *testing.T, log *eventLogger, adm *admin.Admin, topic string, ch <-chan *message.Message, want string) {
	t.Helper()
	select {
	case <-log.logged(pausedLine):
	case <-ctx.Done():
		t.Fatal("the subscriber did not see the pause")
	}
	requireNoMessage(t, ch, time.Second)
	_, err := adm.ResumeGroup(ctx, topic, "g")
	require.NoError(t, err)
	m := receive(t, ch)
	assert.Equal(t, want, m.UUID)
	m.Ack()
}
