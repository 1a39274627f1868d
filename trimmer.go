package millrace

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/rediserr"
)

// DefaultTrimInterval is how often a Publisher trims topics whose retention
// keeps unacknowledged entries ([Retention.KeepUnacked]).
const DefaultTrimInterval = time.Second

// trimmer applies KeepUnacked retention: every interval, each topic published
// to since the last round is trimmed (XTRIM MINID ~) up to the oldest entry
// that some consumer group has not read or not acknowledged yet, and no
// further than MaxAge allows.
type trimmer struct {
	client   redis.UniversalClient
	config   PublisherConfig
	logger   watermill.LoggerAdapter
	interval time.Duration

	mu     sync.Mutex
	topics map[string]struct{}

	stop chan struct{}
	done chan struct{}
}

func newTrimmer(client redis.UniversalClient, config PublisherConfig, logger watermill.LoggerAdapter) *trimmer {
	return &trimmer{
		client:   client,
		config:   config,
		logger:   logger,
		interval: config.TrimInterval,
		topics:   map[string]struct{}{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

func (t *trimmer) start() { go t.run() }

// stop ends the goroutine after one last round.
func (t *trimmer) stopAndWait() {
	close(t.stop)
	<-t.done
}

// touch notes that topic was published to.
func (t *trimmer) touch(topic string) {
	t.mu.Lock()
	t.topics[topic] = struct{}{}
	t.mu.Unlock()
}

func (t *trimmer) run() {
	defer close(t.done)
	ticker := time.NewTicker(t.interval)
	defer ticker.Stop()
	log := errorLog{logger: t.logger}
	for {
		select {
		case <-ticker.C:
			t.round(&log)
		case <-t.stop:
			t.round(&log)
			return
		}
	}
}

func (t *trimmer) round(log *errorLog) {
	t.mu.Lock()
	topics := t.topics
	t.topics = map[string]struct{}{}
	t.mu.Unlock()
	// One deadline for the whole round, so that Close stays bounded however
	// many topics wait when Redis is unreachable.
	ctx, cancel := context.WithTimeout(context.Background(), finalCallTimeout)
	defer cancel()
	for topic := range topics {
		err := trimAcked(ctx, t.client, streamKey(topic), t.config.retention(topic).MaxAge)
		if err != nil {
			log.failure("Cannot trim acknowledged entries", err, watermill.LogFields{"topic": topic})
			t.touch(topic) // try again next round
		}
	}
}

// trimAcked trims stream below the oldest entry any group still needs, and
// keeps entries younger than maxAge (0 = no age limit). A stream without
// consumer groups is not trimmed: nothing says its entries were consumed.
func trimAcked(ctx context.Context, client redis.UniversalClient, stream string, maxAge time.Duration) error {
	minID, ok, err := oldestNeeded(ctx, client, stream)
	if err != nil || !ok {
		return err
	}
	if maxAge > 0 {
		if byAge := entryid.MinAt(time.Now().Add(-maxAge)); entryid.Compare(byAge, minID) < 0 {
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
