package ui

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/millrace/millrace/admin"
)

// round is what one sampling round keeps for the charts: a few numbers per
// topic and group, so that the history stays small.
type round struct {
	at     time.Time
	topics map[string]topicPoint
}

type topicPoint struct {
	length, added, deadLetters, refused int64
	groups                              map[string]groupPoint
}

type groupPoint struct {
	lag, pending, read, dropped int64
}

func newRound(at time.Time, stats []admin.TopicStats) round {
	r := round{at: at, topics: make(map[string]topicPoint, len(stats))}
	for _, s := range stats {
		p := topicPoint{length: s.Length, added: s.EntriesAdded, deadLetters: s.DeadLetters, refused: s.Refused, groups: make(map[string]groupPoint, len(s.Groups))}
		for _, g := range s.Groups {
			p.groups[g.Name] = groupPoint{lag: g.Lag, pending: g.Pending, read: g.EntriesRead, dropped: g.Dropped}
		}
		r.topics[s.Topic] = p
	}
	return r
}

// snapshot is what the handlers read: the newest figures and the history,
// never Redis.
type snapshot struct {
	seq     uint64 // rounds done, failed ones included
	at      time.Time
	stats   []admin.TopicStats
	history []round // oldest first, the newest is the round of stats
	err     error   // of the last round, nil when it read Redis
	// downSince is when the rounds began to fail, zero while they read
	// Redis.
	downSince time.Time
}

// sampler is the server's one loop that reads Redis: every interval it
// reads the figures of every topic with admin.Stats (two pipelined round
// trips whatever the number of topics) and keeps them in a bounded history. Open pages never read
// these figures from Redis themselves; they are told of each round.
type sampler struct {
	admin     *admin.Admin
	topics    []string // fixed topics; nil: discovered
	interval  time.Duration
	discovery time.Duration
	timeout   time.Duration
	log       *slog.Logger
	now       func() time.Time

	kick chan struct{}

	mu           sync.Mutex
	seq          uint64
	history      *ring[round]
	latest       []admin.TopicStats
	latestAt     time.Time
	lastErr      error
	downSince    time.Time
	discovered   []string
	discoveredAt time.Time
	subs         map[chan uint64]struct{}
}

func newSampler(a *admin.Admin, cfg Config, log *slog.Logger) *sampler {
	return &sampler{
		admin:     a,
		topics:    cfg.Topics,
		interval:  cfg.Interval,
		discovery: cfg.DiscoveryInterval,
		timeout:   cfg.Timeout,
		log:       log,
		now:       time.Now,
		kick:      make(chan struct{}, 1),
		history:   newRing[round](int(cfg.History / cfg.Interval)),
		subs:      map[chan uint64]struct{}{},
	}
}

// run samples every interval, and at once when kicked, until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// refresh asks for a round now (after an action), without waiting for it.
func (s *sampler) refresh() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sample runs one round and tells the subscribers. A round that times out
// counts as failed: a Redis that does not answer is down.
func (s *sampler) sample(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	at := s.now()
	topics, err := s.topicList(ctx, at)
	var stats []admin.TopicStats
	if err == nil && len(topics) > 0 {
		stats, err = s.admin.Stats(ctx, topics...)
	}
	if parent.Err() != nil {
		return // shutting down
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if err != nil {
		if s.lastErr == nil {
			s.downSince = at
			s.log.Warn("cannot read the topics", "err", err)
		}
		s.lastErr = err
	} else {
		if s.lastErr != nil {
			s.log.Info("reading the topics again", "down_for", at.Sub(s.downSince).Round(time.Millisecond))
		}
		s.lastErr, s.downSince = nil, time.Time{}
		s.latest, s.latestAt = stats, at
		s.history.push(newRound(at, stats))
	}
	for ch := range s.subs {
		select {
		case ch <- s.seq:
		default: // the page has not fetched the last round yet
		}
	}
}

func (s *sampler) topicList(ctx context.Context, at time.Time) ([]string, error) {
	if len(s.topics) > 0 {
		return s.topics, nil
	}
	s.mu.Lock()
	list, when := s.discovered, s.discoveredAt
	s.mu.Unlock()
	if list != nil && at.Sub(when) < s.discovery {
		return list, nil
	}
	list, err := s.admin.Topics(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.discovered, s.discoveredAt = list, at
	s.mu.Unlock()
	return list, nil
}

// rediscover makes the next round list the topics again.
func (s *sampler) rediscover() {
	s.mu.Lock()
	s.discovered = nil
	s.mu.Unlock()
}

func (s *sampler) snapshot() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot{seq: s.seq, at: s.latestAt, stats: s.latest, history: s.history.values(), err: s.lastErr, downSince: s.downSince}
}

// subscribe returns a channel that receives the round number after each
// round, and the function that ends the subscription.
func (s *sampler) subscribe() (<-chan uint64, func()) {
	ch := make(chan uint64, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}
