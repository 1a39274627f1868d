package millrace_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// idleClient is a client that is never used to talk to Redis: constructors
// do no I/O, so no server is needed for their validation tests.
func idleClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNewPublisher_NilClient(t *testing.T) {
	pub, err := millrace.NewPublisher(nil, millrace.PublisherConfig{}, nil)
	require.ErrorIs(t, err, millrace.ErrNilClient)
	assert.Nil(t, pub)
}

func TestNewSubscriber_NilClient(t *testing.T) {
	sub, err := millrace.NewSubscriber(nil, millrace.SubscriberConfig{ConsumerGroup: "g"}, nil)
	require.ErrorIs(t, err, millrace.ErrNilClient)
	assert.Nil(t, sub)
}

func TestPublisherConfig_Validate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     millrace.PublisherConfig
		wantErr string // "" = valid
		is      error
	}{
		{name: "zero value", cfg: millrace.PublisherConfig{}},
		{name: "limits", cfg: millrace.PublisherConfig{
			Retention:      millrace.Retention{MaxLen: 10, MaxAge: time.Hour},
			TopicRetention: map[string]millrace.Retention{"t": {MaxLen: 1}},
			MaxBatch:       1, Pipelines: 1,
		}},
		{name: "negative MaxLen", cfg: millrace.PublisherConfig{Retention: millrace.Retention{MaxLen: -1}}, wantErr: "MaxLen"},
		{name: "negative MaxAge", cfg: millrace.PublisherConfig{Retention: millrace.Retention{MaxAge: -time.Second}}, wantErr: "MaxAge"},
		{name: "negative topic MaxLen", cfg: millrace.PublisherConfig{TopicRetention: map[string]millrace.Retention{"orders": {MaxLen: -5}}}, wantErr: `"orders"`},
		{name: "negative topic MaxAge", cfg: millrace.PublisherConfig{TopicRetention: map[string]millrace.Retention{"orders": {MaxAge: -1}}}, wantErr: "MaxAge"},
		{name: "empty topic in TopicRetention", cfg: millrace.PublisherConfig{TopicRetention: map[string]millrace.Retention{"": {MaxLen: 1}}}, wantErr: "TopicRetention", is: millrace.ErrEmptyTopic},
		{name: "negative MaxBatch", cfg: millrace.PublisherConfig{MaxBatch: -1}, wantErr: "MaxBatch"},
		{name: "negative Pipelines", cfg: millrace.PublisherConfig{Pipelines: -1}, wantErr: "Pipelines"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}

			// The constructor refuses it too, with the same cause.
			pub, cerr := millrace.NewPublisher(idleClient(t), tc.cfg, nil)
			require.Error(t, cerr)
			assert.Nil(t, pub)
			assert.Contains(t, cerr.Error(), tc.wantErr)
			if tc.is != nil {
				assert.ErrorIs(t, cerr, tc.is)
			}
		})
	}
}

func TestSubscriberConfig_Validate(t *testing.T) {
	neg := func(f func(*millrace.SubscriberConfig)) millrace.SubscriberConfig {
		c := millrace.SubscriberConfig{ConsumerGroup: "g"}
		f(&c)
		return c
	}
	cases := []struct {
		name    string
		cfg     millrace.SubscriberConfig
		wantErr []string // nil = valid
	}{
		{name: "zero value (broadcast)", cfg: millrace.SubscriberConfig{}},
		{name: "group", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", MaxDeliveries: 5}},
		{name: "start oldest", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: millrace.StartOldest}},
		{name: "start newest", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: millrace.StartNewest}},
		{name: "start at entry ID", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: "1700000000000-0"}},
		{name: "ClaimMinIdle 10ms", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", ClaimMinIdle: 10 * time.Millisecond}},

		{name: "negative ClaimMinIdle", cfg: neg(func(c *millrace.SubscriberConfig) { c.ClaimMinIdle = -1 }), wantErr: []string{"ClaimMinIdle"}},
		{name: "negative MaxDeliveries", cfg: neg(func(c *millrace.SubscriberConfig) { c.MaxDeliveries = -1 }), wantErr: []string{"MaxDeliveries"}},
		{name: "negative Prefetch", cfg: neg(func(c *millrace.SubscriberConfig) { c.Prefetch = -1 }), wantErr: []string{"Prefetch"}},
		{name: "negative MaxInFlight", cfg: neg(func(c *millrace.SubscriberConfig) { c.MaxInFlight = -1 }), wantErr: []string{"MaxInFlight"}},
		{name: "negative BlockTime", cfg: neg(func(c *millrace.SubscriberConfig) { c.BlockTime = -time.Second }), wantErr: []string{"BlockTime"}},
		{name: "BlockTime under 1ms", cfg: neg(func(c *millrace.SubscriberConfig) { c.BlockTime = 500 * time.Microsecond }), wantErr: []string{"BlockTime must be at least 1ms"}},
		{name: "negative ClaimInterval", cfg: neg(func(c *millrace.SubscriberConfig) { c.ClaimInterval = -1 }), wantErr: []string{"ClaimInterval"}},
		{name: "negative ClaimBatch", cfg: neg(func(c *millrace.SubscriberConfig) { c.ClaimBatch = -1 }), wantErr: []string{"ClaimBatch"}},
		{name: "negative AckBatch", cfg: neg(func(c *millrace.SubscriberConfig) { c.AckBatch = -1 }), wantErr: []string{"AckBatch"}},
		{name: "negative AckInterval", cfg: neg(func(c *millrace.SubscriberConfig) { c.AckInterval = -1 }), wantErr: []string{"AckInterval"}},
		{name: "negative NackBackoff", cfg: neg(func(c *millrace.SubscriberConfig) { c.NackBackoff = -1 }), wantErr: []string{"NackBackoff"}},
		{name: "negative NackBackoffMax", cfg: neg(func(c *millrace.SubscriberConfig) { c.NackBackoffMax = -1 }), wantErr: []string{"NackBackoffMax"}},
		{name: "negative CloseTimeout", cfg: neg(func(c *millrace.SubscriberConfig) { c.CloseTimeout = -1 }), wantErr: []string{"CloseTimeout"}},
		{name: "NackBackoffMax below NackBackoff", cfg: neg(func(c *millrace.SubscriberConfig) {
			c.NackBackoff, c.NackBackoffMax = time.Second, time.Millisecond
		}), wantErr: []string{"NackBackoffMax"}},
		{name: "ClaimMinIdle below 10ms", cfg: neg(func(c *millrace.SubscriberConfig) { c.ClaimMinIdle = time.Millisecond }), wantErr: []string{"ClaimMinIdle"}},
		{name: "MaxDeliveries without group", cfg: millrace.SubscriberConfig{MaxDeliveries: 3}, wantErr: []string{"MaxDeliveries", "ConsumerGroup"}},
		{name: "NewGroupStartID word", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: "newest"}, wantErr: []string{"NewGroupStartID", `"newest"`}},
		{name: "NewGroupStartID >", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: ">"}, wantErr: []string{"NewGroupStartID"}},
		{name: "NewGroupStartID without sequence", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: "1700000000000"}, wantErr: []string{"NewGroupStartID"}},
		{name: "NewGroupStartID non-numeric sequence", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: "1700000000000-x"}, wantErr: []string{"NewGroupStartID"}},
		{name: "NewGroupStartID negative", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: "-1-0"}, wantErr: []string{"NewGroupStartID"}},
		{name: "NewGroupStartID three parts", cfg: millrace.SubscriberConfig{ConsumerGroup: "g", NewGroupStartID: "1-2-3"}, wantErr: []string{"NewGroupStartID"}},
		{name: "every invalid field is reported", cfg: millrace.SubscriberConfig{Prefetch: -1, AckBatch: -2, MaxDeliveries: 1}, wantErr: []string{"Prefetch", "AckBatch", "ConsumerGroup"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				assert.Contains(t, err.Error(), want)
			}

			sub, cerr := millrace.NewSubscriber(idleClient(t), tc.cfg, nil)
			require.Error(t, cerr, "the constructor must refuse the config too")
			assert.Nil(t, sub)
			for _, want := range tc.wantErr {
				assert.Contains(t, cerr.Error(), want)
			}
		})
	}
}

func TestValidate_DoesNotMutate(t *testing.T) {
	t.Run("subscriber", func(t *testing.T) {
		for _, cfg := range []millrace.SubscriberConfig{
			{},                     // every field left to its default
			{ConsumerGroup: "g"},   // group, defaults
			{MaxDeliveries: 3},     // invalid
			{ClaimMinIdle: -1},     // invalid
			{NewGroupStartID: "x"}, // invalid
		} {
			before := cfg
			_ = cfg.Validate()
			assert.Equal(t, before, cfg)
		}
	})
	t.Run("publisher", func(t *testing.T) {
		topics := map[string]millrace.Retention{"a": {}, "b": {MaxLen: -1}}
		cfg := millrace.PublisherConfig{TopicRetention: topics}
		require.Error(t, cfg.Validate())
		assert.Equal(t, millrace.PublisherConfig{TopicRetention: topics}, cfg)
		assert.Equal(t, map[string]millrace.Retention{"a": {}, "b": {MaxLen: -1}}, topics, "TopicRetention map changed")
		assert.Nil(t, cfg.Marshaler, "Validate must not fill in defaults")
		assert.Zero(t, cfg.MaxBatch)
	})
	t.Run("constructors take the config by value", func(t *testing.T) {
		topics := map[string]millrace.Retention{"a": {MaxLen: 7}}
		pcfg := millrace.PublisherConfig{TopicRetention: topics}
		pub, err := millrace.NewPublisher(idleClient(t), pcfg, nil)
		require.NoError(t, err)
		require.NoError(t, pub.Close())
		assert.Equal(t, map[string]millrace.Retention{"a": {MaxLen: 7}}, topics)
		assert.Nil(t, pcfg.Marshaler)

		scfg := millrace.SubscriberConfig{ConsumerGroup: "g"}
		sub, err := millrace.NewSubscriber(idleClient(t), scfg, nil)
		require.NoError(t, err)
		require.NoError(t, sub.Close())
		assert.Equal(t, millrace.SubscriberConfig{ConsumerGroup: "g"}, scfg)
	})
}

// With a group and no Consumer, a unique name is generated; a given name is
// kept; broadcast subscribers have none.
func TestNewSubscriber_ConsumerName(t *testing.T) {
	c := idleClient(t)
	newSub := func(cfg millrace.SubscriberConfig) *millrace.Subscriber {
		sub, err := millrace.NewSubscriber(c, cfg, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		return sub
	}
	a := newSub(millrace.SubscriberConfig{ConsumerGroup: "g"})
	b := newSub(millrace.SubscriberConfig{ConsumerGroup: "g"})
	assert.NotEmpty(t, a.Consumer())
	assert.NotEmpty(t, b.Consumer())
	assert.NotEqual(t, a.Consumer(), b.Consumer(), "generated consumer names must be unique")
	assert.Equal(t, "worker-1", newSub(millrace.SubscriberConfig{ConsumerGroup: "g", Consumer: "worker-1"}).Consumer())
	assert.Empty(t, newSub(millrace.SubscriberConfig{}).Consumer(), "broadcast subscribers have no consumer name")
}

// A zero config gets working defaults: a new group starts at the oldest
// entry (StartOldest) and hands out one message at a time (MaxInFlight 1,
// so stream order), and a nil logger is allowed everywhere.
func TestDefaults_Observable(t *testing.T) {
	e := newEnv(t)
	topic := newTopic()

	pub, err := millrace.NewPublisher(e.client, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	before := publish(t, pub, topic, "before-subscribe")

	sub, err := millrace.NewSubscriber(e.client, millrace.SubscriberConfig{
		ConsumerGroup: "defaults",
		BlockTime:     100 * time.Millisecond, // only to keep Close fast
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	// SubscribeInitialize creates the group without reading, so the start
	// position can be seen before a read moves it.
	require.NoError(t, sub.SubscribeInitialize(topic))
	g, ok := groupInfo(t, e.client, topic, "defaults")
	require.True(t, ok)
	assert.Equal(t, "0-0", g.LastDeliveredID, "default NewGroupStartID is StartOldest")
	ch := subscribe(t, sub, topic)

	after := publish(t, pub, topic, "after-subscribe")

	first := receive(t, ch)
	assert.Equal(t, before[0].UUID, first.UUID, "the group starts at the oldest entry")
	// One in flight: the second message waits for the first one's Ack.
	requireNoMessage(t, ch, 300*time.Millisecond)
	first.Ack()
	second := receive(t, ch)
	assert.Equal(t, after[0].UUID, second.UUID)
	second.Ack()
}
