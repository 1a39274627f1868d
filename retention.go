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
	"github.com/millrace/millrace/internal/rediserr"
)

// Retention bounds a topic's stream. MaxLen and MaxAge alone delete the
// oldest entries whether or not every consumer group has read them: a group
// lagging further behind than the retention loses those messages.
// KeepUnacked never trims what a group has not acknowledged.
//
// The zero Retention is the default, {KeepUnacked: true, MaxAge: 1h}:
// memory stays bounded by an hour of traffic plus what some group has not
// acknowledged yet, and an hour of history stays for a group created later
// (it starts at the oldest entry) or a replay. KeepAll keeps everything.
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
	// MaxAge, once it is also older than MaxAge). With neither MaxLen nor
	// MaxAge, everything acknowledged by all groups is trimmed. The Publisher
	// trims every TrimInterval with XINFO GROUPS, XPENDING and XTRIM MINID ~
	// the topics published to since the last round. A topic without groups
	// has nothing unacknowledged: it is trimmed by MaxAge alone, and not at
	// all without MaxAge. It cannot be combined with MaxLen.
	KeepUnacked bool
	// KeepAll trims nothing: the stream grows until it is trimmed by hand
	// (admin.TrimMaxLen, TrimBefore) or Redis is full. It cannot be combined
	// with the other fields.
	KeepAll bool
}

// defaultRetention is the zero Retention's meaning.
var defaultRetention = Retention{KeepUnacked: true, MaxAge: time.Hour}

// resolved is r, or the default for the zero Retention.
func (r Retention) resolved() Retention {
	if r == (Retention{}) {
		return defaultRetention
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
	return nil
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
}

func newTrimmer(client redis.UniversalClient, config PublisherConfig, logger watermill.LoggerAdapter) *trimmer {
	return &trimmer{
		loop:     newLoop(context.Background()),
		client:   client,
		config:   config,
		logger:   logger,
		interval: config.TrimInterval,
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
		err := trimAcked(ctx, t.client, streamKey(topic), t.config.retention(topic).MaxAge)
		if err != nil {
			log.Failure("Cannot trim acknowledged entries", err, watermill.LogFields{"topic": topic})
			t.touch(topic) // try again next round
		}
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
