package millrace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/noretry"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// Retention bounds a topic's stream. MaxLen and MaxAge alone delete the
// oldest entries whether or not every consumer group has read them: a group
// lagging further behind than the retention loses those messages.
// KeepUnacked never trims what a group has not acknowledged — up to the
// topic's Ceiling, so that one abandoned group cannot fill Redis.
//
// A Retention that chooses none of MaxLen, MaxAge, KeepUnacked and KeepAll
// (the zero Retention among them) means {KeepUnacked: true, MaxAge: 1h}:
// memory stays bounded by an hour of traffic plus what some group has not
// acknowledged yet, and never more than Ceiling entries (1,000,000) per
// topic; an hour of history stays for a group created later (it starts at
// the oldest entry) or a replay. KeepAll keeps everything.
type Retention struct {
	// MaxLen keeps about this many entries: XADD ... MAXLEN ~ MaxLen.
	// Redis trims whole nodes, so a few tens more may stay. 0 = no limit.
	MaxLen int64
	// MaxAge drops entries older than this, by the time in their IDs:
	// XADD ... MINID ~ <now-MaxAge> (with MaxLen, an XTRIM MINID ~ once per
	// pipeline and topic). Like MaxLen it trims whole nodes, so up to about a
	// hundred older entries may stay. 0 = no limit.
	MaxAge time.Duration
	// KeepUnacked makes retention safe: an entry is trimmed only once every
	// consumer group of the topic has read and acknowledged it (and, with
	// MaxAge, once it is also older than MaxAge), until the stream reaches
	// Ceiling. With neither MaxLen nor MaxAge, everything acknowledged by
	// all groups is trimmed. The Publisher trims every TrimInterval with
	// XINFO GROUPS, XPENDING and XTRIM MINID ~ the topics published to since
	// the last round. A topic without groups has nothing unacknowledged: it
	// is trimmed by MaxAge alone, and not at all without MaxAge. It cannot be
	// combined with MaxLen.
	KeepUnacked bool
	// Ceiling caps a KeepUnacked stream at this many entries however far
	// behind a group is: a group nobody reads any more (a renamed service, a
	// removed deployment) would otherwise keep every entry of the topic until
	// Redis reaches maxmemory and refuses every write of every topic.
	// Overflow says what happens at the ceiling. A count, not bytes or age:
	// XADD enforces it in the same step as the add, so the bound holds
	// between trim rounds and at any publish rate; memory is the ceiling
	// times the size of an entry (docs/production.md has measured sizes).
	// 0 = DefaultCeiling; NoCeiling removes it. Only with KeepUnacked.
	Ceiling int64
	// Overflow is what happens when a KeepUnacked stream reaches Ceiling.
	// Default: DropOldest.
	Overflow Overflow
	// KeepAll trims nothing: the stream grows until it is trimmed by hand
	// (admin.TrimMaxLen, TrimBefore) or Redis is full. It cannot be combined
	// with the other fields.
	KeepAll bool
}

// DefaultCeiling is the Ceiling of a KeepUnacked topic that sets none. An
// entry of a 16-byte message with a UUID and one metadata field takes about
// 120 bytes of Redis memory, of a 1 KB message about 1.2 KB (Redis 7.0): the
// default bounds such a topic at about 120 MB or 1.2 GB.
const DefaultCeiling = 1_000_000

// NoCeiling as Retention.Ceiling lets a KeepUnacked stream grow without
// bound while a group has not acknowledged its entries.
const NoCeiling = -1

// Overflow is what a KeepUnacked topic does at its Ceiling.
type Overflow int

const (
	// DropOldest trims the oldest entries, read or not (XADD ... MAXLEN ~
	// Ceiling): Publish always works and Redis stays alive; a group behind
	// loses what was trimmed before it read it. Each loss is counted per
	// group (admin.GroupStats.Dropped, the exporter's
	// millrace_group_dropped_entries_total), logged by the Publisher and
	// shown as a problem by `millrace doctor` and the console. Like
	// RabbitMQ's x-overflow drop-head. Redis trims whole nodes, so the
	// stream holds at most Ceiling + stream-node-max-entries (100) entries.
	DropOldest Overflow = iota
	// RefusePublish keeps every unacknowledged entry and fails a Publish
	// that would take the stream past Ceiling with ErrTopicFull, adding none
	// of its messages (counted: admin.TopicStats.Refused). Like RabbitMQ's
	// x-overflow reject-publish. It needs the publishing scripts: not with
	// PlainXAdd.
	RefusePublish
)

func (o Overflow) String() string {
	switch o {
	case DropOldest:
		return "DropOldest"
	case RefusePublish:
		return "RefusePublish"
	}
	return fmt.Sprintf("Overflow(%d)", int(o))
}

// defaultRetention is the meaning of a Retention that chooses nothing.
var defaultRetention = Retention{KeepUnacked: true, MaxAge: time.Hour}

// resolved is r, with the default mode when r chooses none (its Ceiling and
// Overflow kept).
func (r Retention) resolved() Retention {
	if r.MaxLen == 0 && r.MaxAge == 0 && !r.KeepUnacked && !r.KeepAll {
		r.KeepUnacked, r.MaxAge = defaultRetention.KeepUnacked, defaultRetention.MaxAge
	}
	return r
}

func (r Retention) validate() error {
	if r.MaxLen < 0 {
		return fmt.Errorf("MaxLen must not be negative, got %d", r.MaxLen)
	}
	if r.MaxAge < 0 {
		return fmt.Errorf("MaxAge must not be negative, got %s", r.MaxAge)
	}
	if r.KeepAll && (r.MaxLen > 0 || r.MaxAge > 0 || r.KeepUnacked) {
		return errors.New("KeepAll cannot be combined with MaxLen, MaxAge or KeepUnacked")
	}
	if r.KeepUnacked && r.MaxLen > 0 {
		return errors.New("KeepUnacked cannot be combined with MaxLen: trimming by count cannot spare unacknowledged entries")
	}
	if r.Ceiling < NoCeiling {
		return fmt.Errorf("Ceiling must be positive, 0 (DefaultCeiling) or NoCeiling, got %d", r.Ceiling)
	}
	if r.Overflow != DropOldest && r.Overflow != RefusePublish {
		return fmt.Errorf("Overflow must be DropOldest or RefusePublish, got %d", int(r.Overflow))
	}
	if r = r.resolved(); !r.KeepUnacked && (r.Ceiling != 0 || r.Overflow != DropOldest) {
		return errors.New("Ceiling and Overflow apply to KeepUnacked only: MaxLen bounds the stream itself, MaxAge and KeepAll are chosen bounds")
	}
	return nil
}

// ceiling is r's ceiling in entries, 0 when it has none.
func (r Retention) ceiling() int64 {
	switch {
	case !r.KeepUnacked || r.Ceiling == NoCeiling:
		return 0
	case r.Ceiling == 0:
		return DefaultCeiling
	}
	return r.Ceiling
}

// addMaxLen is the MAXLEN of the publishing scripts' XADD: MaxLen, or the
// ceiling when it drops, or minus the ceiling when it refuses (the scripts
// then check the length first and trim nothing), 0 for none.
func (r Retention) addMaxLen() int64 {
	if r.MaxLen > 0 {
		return r.MaxLen
	}
	c := r.ceiling()
	if r.Overflow == RefusePublish {
		return -c
	}
	return c
}

// trimsInPipeline reports whether a pipeline to the topic ends with XTRIM:
// when MaxLen takes XADD's one trimming clause and MaxAge needs another.
func (r Retention) trimsInPipeline() bool { return r.MaxAge > 0 && r.MaxLen > 0 && !r.KeepUnacked }

// minID is XADD's MINID clause for MaxAge, when XADD trims by age.
func (r Retention) minID() string {
	if r.MaxAge == 0 || r.MaxLen > 0 || r.KeepUnacked {
		return ""
	}
	return entryid.MinAt(time.Now().Add(-r.MaxAge))
}

// refusesAtCeiling reports whether any topic's ceiling refuses.
func (c PublisherConfig) refusesAtCeiling() bool {
	if r := c.Retention.resolved(); r.ceiling() > 0 && r.Overflow == RefusePublish {
		return true
	}
	for _, r := range c.TopicRetention {
		if r = r.resolved(); r.ceiling() > 0 && r.Overflow == RefusePublish {
			return true
		}
	}
	return false
}

// countRefused counts the messages of g in the topic's overflow hash when
// its ceiling refused them. The count is a figure for operators: sent
// once, a lost reply loses it rather than counting twice.
func (p *Publisher) countRefused(ctx context.Context, c redis.UniversalClient, g *topicGroup) {
	if !rediserr.IsTopicFull(g.err) {
		return
	}
	err := noretry.Do(ctx, c, "hincrby", keys.Overflow(g.topic), keys.OverflowRefused, g.messages).Err()
	if err != nil {
		p.logger.Error("Cannot count messages refused at the topic's ceiling", err, watermill.LogFields{"topic": g.topic})
	}
}

// keepsUnacked reports whether any topic's retention is KeepUnacked.
func (c PublisherConfig) keepsUnacked() bool {
	if c.Retention.resolved().KeepUnacked {
		return true
	}
	for _, r := range c.TopicRetention {
		if r.resolved().KeepUnacked {
			return true
		}
	}
	return false
}

// retention is topic's retention, the zero Retention resolved.
func (c PublisherConfig) retention(topic string) Retention {
	if r, ok := c.TopicRetention[topic]; ok {
		return r.resolved()
	}
	return c.Retention.resolved()
}

// trimmer applies KeepUnacked retention: every interval, each topic published
// to since the last round is trimmed (XTRIM MINID ~) up to the oldest entry
// that some consumer group has not read or not acknowledged yet, and no
// further than MaxAge allows. stop runs one last round.
type trimmer struct {
	loop
	client   redis.UniversalClient
	config   PublisherConfig
	logger   watermill.LoggerAdapter
	interval time.Duration

	topics sync.Map // topic → struct{}: published to since the last round
	drops  map[dropKey]*dropLog
}

// dropKey is a group of a topic whose entries the ceiling dropped.
type dropKey struct{ topic, group string }

// dropLog is what was dropped from one group since it was last logged.
type dropLog struct {
	logged  time.Time
	entries int64
	unknown bool
}

// dropLogEvery is how often the drops of one group are logged, at most: a
// group nobody reads loses entries at every trim round.
const dropLogEvery = time.Minute

func newTrimmer(client redis.UniversalClient, config PublisherConfig, logger watermill.LoggerAdapter) *trimmer {
	return &trimmer{
		loop:     newLoop(context.Background()),
		client:   client,
		config:   config,
		logger:   logger,
		interval: config.TrimInterval,
		drops:    make(map[dropKey]*dropLog),
	}
}

func (t *trimmer) start() { t.goRun(t.run) }

// touch notes that topic was published to. Publish calls it every time:
// a topic already noted costs a lock-free read.
func (t *trimmer) touch(topic string) {
	if _, ok := t.topics.Load(topic); !ok {
		t.topics.Store(topic, struct{}{})
	}
}

func (t *trimmer) run(ctx context.Context) {
	ticker := time.NewTicker(t.interval)
	defer ticker.Stop()
	log := errlog.New(t.logger)
	for {
		select {
		case <-ticker.C:
			t.round(&log)
		case <-ctx.Done():
			t.round(&log)
			return
		}
	}
}

func (t *trimmer) round(log *errlog.Log) {
	var topics []string
	t.topics.Range(func(k, _ any) bool {
		t.topics.Delete(k) // a Publish from now on notes it again
		topics = append(topics, k.(string))
		return true
	})
	// One deadline for the whole round, so that Close stays bounded however
	// many topics wait when Redis is unreachable.
	ctx, cancel := context.WithTimeout(context.Background(), finalCallTimeout)
	defer cancel()
	for _, topic := range topics {
		r := t.config.retention(topic)
		err := trimAcked(ctx, t.client, streamKey(topic), r.MaxAge)
		if err != nil {
			log.Failure("Cannot trim acknowledged entries", err, watermill.LogFields{"topic": topic})
			t.touch(topic) // try again next round
			continue
		}
		if r.ceiling() > 0 && r.Overflow == DropOldest {
			t.settleDropped(ctx, log, topic, r.ceiling())
		}
	}
}

// settleDropped counts, logs and settles what the ceiling trimmed from the
// groups of topic before they read it (streams.SettleDropped).
func (t *trimmer) settleDropped(ctx context.Context, log *errlog.Log, topic string, ceiling int64) {
	dropped, err := streams.SettleDropped(ctx, t.client, streamKey(topic), keys.Overflow(topic), keys.OverflowDropped)
	if err != nil {
		log.Failure("Cannot count the entries dropped at the topic's ceiling", err, watermill.LogFields{"topic": topic})
		t.touch(topic)
		return
	}
	now := time.Now()
	for _, d := range dropped {
		k := dropKey{topic, d.Group}
		l := t.drops[k]
		if l == nil {
			l = &dropLog{}
			t.drops[k] = l
		}
		if d.Entries < 0 {
			l.unknown = true
		} else {
			l.entries += d.Entries
		}
		if !l.logged.IsZero() && now.Sub(l.logged) < dropLogEvery {
			continue
		}
		fields := watermill.LogFields{"topic": topic, "group": d.Group, "ceiling": ceiling, "dropped": l.entries}
		if l.unknown {
			fields["dropped"] = fmt.Sprintf("at least %d", l.entries)
		}
		t.logger.Error("Dropped entries the group had not read: the topic reached its ceiling (Retention.Ceiling); "+
			"delete the group if it is abandoned, or raise the ceiling", nil, fields)
		*l = dropLog{logged: now}
	}
}

// trimAcked trims stream below the oldest entry any group still needs, and
// keeps entries younger than maxAge (0 = no age limit). A stream without
// consumer groups has nothing unacknowledged: it is trimmed by maxAge alone,
// and not at all without one.
func trimAcked(ctx context.Context, client redis.UniversalClient, stream string, maxAge time.Duration) error {
	minID, hasGroups, err := oldestNeeded(ctx, client, stream)
	if err != nil || (!hasGroups && maxAge == 0) {
		return err
	}
	if maxAge > 0 {
		if byAge := entryid.MinAt(time.Now().Add(-maxAge)); !hasGroups || entryid.Compare(byAge, minID) < 0 {
			minID = byAge
		}
	}
	return client.XTrimMinIDApprox(ctx, stream, minID, 0).Err()
}

// oldestNeeded is the smallest entry ID that some group of stream has not
// acknowledged: its oldest pending entry, or the entry after the last one
// it read. ok is false when the stream has no groups.
func oldestNeeded(ctx context.Context, client redis.UniversalClient, stream string) (id string, ok bool, err error) {
	groups, err := client.XInfoGroups(ctx, stream).Result()
	if err != nil {
		if rediserr.IsNil(err) || rediserr.IsNoSuchKey(err) {
			return "", false, nil
		}
		return "", false, err
	}
	for _, g := range groups {
		needed := entryid.Next(g.LastDeliveredID)
		if g.Pending > 0 {
			summary, err := client.XPending(ctx, stream, g.Name).Result()
			if err != nil {
				return "", false, err
			}
			if summary.Count > 0 && entryid.Compare(summary.Lower, needed) < 0 {
				needed = summary.Lower
			}
		}
		if !ok || entryid.Compare(needed, id) < 0 {
			id, ok = needed, true
		}
	}
	return id, ok, nil
}
