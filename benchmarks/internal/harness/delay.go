package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
)

// DelayConfig is one run of the delayed-delivery figure.
type DelayConfig struct {
	Addr  string // redis-server address
	Topic string // a fresh topic, the base of the topic names
	Group string // a fresh consumer group
	// Topics are read by one Subscriber in Group; each gets one delayed
	// message per run.
	Topics int
	Delay  time.Duration // delay.For of every delayed message
	// BusyRate, when above 0, publishes that many plain messages a second to
	// every topic from before the delayed messages until they are all
	// handled. At 0 the subscriptions see nothing for Idle before them.
	BusyRate int
	Idle     time.Duration // quiet time before the delayed messages, without BusyRate
	// Spread publishes the delayed messages at random times over this span,
	// so that they meet the subscriptions' timers at every phase.
	Spread  time.Duration
	Timeout time.Duration // bound on waiting past the last due time
}

// Lateness is, for every delayed message of a run, the time its handler
// ran minus its due time (negative if it came early), sorted.
type Lateness struct {
	Sorted []time.Duration
}

// DelayedLateness publishes one message delayed by Delay (Watermill's
// delay.Message with delay.For) into each of Topics topics and measures how
// late each reaches the handler of the one Subscriber reading them all. The
// due time is taken just before delay.For, and travels in [SentKey].
func DelayedLateness(ctx context.Context, impl Impl, cfg DelayConfig) (Lateness, error) {
	topics := TopicNames(cfg.Topic, cfg.Topics)
	subClient, pubClient := NewClientPool(cfg.Addr, len(topics)+64), NewClient(cfg.Addr)
	defer subClient.Close()
	defer pubClient.Close()
	var (
		mu    sync.Mutex
		late  []time.Duration
		plain atomic.Int64
		warm  = make(chan struct{})
		done  = make(chan struct{})
	)
	handle := func(due int64) {
		now := time.Now().UnixNano()
		if due == 0 {
			if plain.Add(1) == int64(len(topics)) {
				close(warm)
			}
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if late = append(late, time.Duration(now-due)); len(late) == len(topics) {
			close(done)
		}
	}
	cons, err := impl.Consume(ctx, subClient, ConsumeSpec{Topics: topics, Group: cfg.Group, Subscribers: 1}, handle)
	if err != nil {
		return Lateness{}, fmt.Errorf("start consumer: %w", err)
	}
	defer cons.Close()
	sender, err := impl.NewSender(pubClient)
	if err != nil {
		return Lateness{}, err
	}
	defer sender.Close()
	for _, topic := range topics {
		if err := sender.Send(ctx, topic, []*message.Message{newMessage([]byte("warm-up"))}); err != nil {
			return Lateness{}, fmt.Errorf("publish: %w", err)
		}
	}
	if err := waitClosed(ctx, warm, cfg.Timeout); err != nil {
		return Lateness{}, fmt.Errorf("warm-up: %w", err)
	}
	if cfg.BusyRate > 0 {
		busyCtx, stop := context.WithCancel(ctx)
		var busy sync.WaitGroup
		busy.Go(func() { publishSteadily(busyCtx, sender, topics, cfg.BusyRate) })
		defer func() { stop(); busy.Wait() }() // before sender.Close
	} else if err := Sleep(ctx, cfg.Idle); err != nil {
		return Lateness{}, err
	}
	if err := publishDelayed(ctx, sender, topics, cfg.Delay, cfg.Spread); err != nil {
		return Lateness{}, err
	}
	if err := waitClosed(ctx, done, cfg.Delay+cfg.Timeout); err != nil {
		mu.Lock()
		defer mu.Unlock()
		return Lateness{}, fmt.Errorf("%d of %d delayed messages: %w", len(late), len(topics), err)
	}
	mu.Lock()
	defer mu.Unlock()
	sorted := slices.Clone(late)
	slices.Sort(sorted)
	return Lateness{Sorted: sorted}, nil
}

// publishDelayed publishes one message delayed by d to each topic, in random
// order at random times over spread.
func publishDelayed(ctx context.Context, sender Sender, topics []string, d, spread time.Duration) error {
	at := make([]time.Duration, len(topics))
	for i := range at {
		at[i] = rand.N(spread + 1)
	}
	slices.Sort(at)
	order := rand.Perm(len(topics))
	t0 := time.Now()
	for i, offset := range at {
		if err := Sleep(ctx, time.Until(t0.Add(offset))); err != nil {
			return err
		}
		msg := newMessage([]byte("delayed"))
		due := time.Now().Add(d)
		delay.Message(msg, delay.For(d))
		msg.Metadata.Set(SentKey, strconv.FormatInt(due.UnixNano(), 10))
		if err := sender.Send(ctx, topics[order[i]], []*message.Message{msg}); err != nil {
			return fmt.Errorf("publish delayed: %w", err)
		}
	}
	return nil
}

// publishSteadily publishes rate plain messages a second to each of topics,
// round robin, until ctx is done. Errors end it early: the figure then
// measures a less busy topic, which the delayed messages' wait still bounds.
func publishSteadily(ctx context.Context, sender Sender, topics []string, rate int) {
	interval := time.Second / time.Duration(rate*len(topics))
	t0 := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		if Sleep(ctx, time.Until(t0.Add(time.Duration(i)*interval))) != nil {
			return
		}
		if sender.Send(ctx, topics[i%len(topics)], []*message.Message{newMessage([]byte("busy"))}) != nil {
			return
		}
	}
}
