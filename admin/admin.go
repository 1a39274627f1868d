// Package admin is the operator API of Millrace: it reads the state of
// topics (stream length, consumer groups with their lag, pending entries,
// consumers, dead letters) and acts on them (replays or purges dead
// letters, creates, moves or deletes consumer groups, prunes dead
// consumers, trims streams, moves due delayed messages).
//
// Everything is a method of one [Admin] over a Redis client:
//
//	a := admin.New(client, admin.Options{})
//	stats, err := a.Topic(ctx, "orders")
//	res, err := a.ReplayDeadLetters(ctx, "orders", admin.ReplayOptions{DryRun: true})
//
// The reads send only cheap commands (XINFO STREAM, XINFO GROUPS, XINFO
// CONSUMERS, XPENDING summary, XRANGE ... COUNT 1, XLEN, HGETALL of the
// topic's overflow counts), never XINFO STREAM FULL, so they can run all
// day, e.g. behind a Prometheus scrape.
package admin

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
)

// Options configure an [Admin]. The zero value is valid.
type Options struct {
	// DeadLetterTopic names the dead-letter topic of a topic. Every method
	// that touches dead letters uses it: DeadLetters, DeadLetter,
	// ReplayDeadLetters, PurgeDeadLetters, and the DeadLetters count of
	// Topic and Stats. Set it to the subscribers'
	// SubscriberConfig.DeadLetterTopic. Default: millrace.DeadLetterTopic,
	// "{topic}:dlq".
	DeadLetterTopic func(topic string) string
	// AbandonedAfter is how long a group's oldest unread entry must have
	// waited, with no consumer of the group seen, for GroupStats.Abandoned.
	// Default: 24h.
	AbandonedAfter time.Duration
}

// DefaultAbandonedAfter is Options.AbandonedAfter's default.
const DefaultAbandonedAfter = 24 * time.Hour

func (o *Options) setDefaults() {
	if o.DeadLetterTopic == nil {
		o.DeadLetterTopic = millrace.DeadLetterTopic
	}
	if o.AbandonedAfter <= 0 {
		o.AbandonedAfter = DefaultAbandonedAfter
	}
}

// Admin reads and operates the topics of one Redis database (or Cluster).
// It is safe for concurrent use. It borrows the client and never closes it.
type Admin struct {
	client redis.UniversalClient
	opts   Options
	// noScript is set once the server refused the stats script (an ACL
	// user without @scripting): the reads use plain commands from then on.
	noScript atomic.Bool
}

// New returns an Admin over client.
func New(client redis.UniversalClient, opts Options) *Admin {
	opts.setDefaults()
	return &Admin{client: client, opts: opts}
}

// deadLetterTopic is the dead-letter topic of topic.
func (a *Admin) deadLetterTopic(topic string) string { return a.opts.DeadLetterTopic(topic) }

// deadLetterStream is the stream that holds topic's dead letters.
func (a *Admin) deadLetterStream(topic string) string {
	return keys.Stream(a.deadLetterTopic(topic))
}

// checkTopic refuses an empty topic.
func checkTopic(topic string) error {
	if topic == "" {
		return millrace.ErrEmptyTopic
	}
	return nil
}

// checkID refuses anything but a full entry ID.
func checkID(id string) error {
	if !entryid.Valid(id) {
		return fmt.Errorf("invalid entry ID %q: want <milliseconds>-<sequence>", id)
	}
	return nil
}
