package partition

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/membership"
)

// member is one Subscribe call of a BalancedSubscriber on a partitioned
// topic: it renews its membership every heartbeat, computes its share of
// the partitions from the live members (assign), and takes and releases
// partitions to match. Its run goroutine owns the partitions' state;
// the goroutines that take, forward and release a partition report back
// through events.
type member struct {
	name, topic, group string
	parts              []string // the partition topics
	client             redis.UniversalClient
	config             BalancedConfig
	logger             watermill.LoggerAdapter
	// values is Subscribe's context without its cancellation: messages'
	// contexts carry its values.
	values context.Context

	out    chan *message.Message // merged messages of the owned partitions
	events chan event
	owned  map[int]*owned // partitions taken, being taken or being released
	// log and takeLog rate-limit the failures of heartbeats and takes.
	log, takeLog errlog.Log
}

func newMember(s *BalancedSubscriber, name, topic string, parts []string, values context.Context) *member {
	return &member{
		name:   name,
		topic:  topic,
		group:  s.config.Subscriber.ConsumerGroup,
		parts:  parts,
		client: s.client,
		config: s.config,
		logger: s.logger.With(watermill.LogFields{
			"topic": topic, "consumer_group": s.config.Subscriber.ConsumerGroup, "member": name,
		}),
		values: values,
		out:    make(chan *message.Message),
		events: make(chan event),
		owned:  map[int]*owned{},
	}
}

// run takes part in the group until ctx ends or closing is closed, then
// hands every partition over, leaves, and closes out.
func (m *member) run(ctx context.Context, closing <-chan struct{}) {
	defer close(m.out)
	m.log, m.takeLog = errlog.New(m.logger), errlog.New(m.logger)
	tick := time.NewTicker(m.config.Heartbeat)
	defer tick.Stop()
	stop, done := closing, ctx.Done()
	leaving := false
	m.logger.Info("Joining the group", watermill.LogFields{"partitions": len(m.parts)})
	for {
		view, err := m.beat(leaving)
		if err == nil && !leaving {
			m.rebalance(view)
		}
		if leaving && len(m.owned) == 0 {
			m.leave()
			return
		}
		select {
		case <-tick.C:
		case ev := <-m.events:
			m.handle(ev)
		case <-done:
		case <-stop:
		}
		if !leaving && (ctx.Err() != nil || isClosed(closing)) {
			leaving, stop, done = true, nil, nil
			m.startLeaving()
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// beat renews the membership with what this member owns; failures are
// logged (rate-limited) and leave the partitions as they are.
func (m *member) beat(leaving bool) (membership.View, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.config.Heartbeat*4)
	defer cancel()
	rec := membership.Record{Partitions: len(m.parts), Owned: m.ownedList(), Leaving: leaving}
	view, err := membership.Beat(ctx, m.client, m.topic, m.group, m.name, m.config.memberTTL(), rec)
	if err != nil {
		m.log.Failure("Cannot renew the group membership; partitions stay as they are", err, nil)
		return view, err
	}
	m.log.Recovered("Renewing the group membership again", nil)
	return view, nil
}

// ownedList is the partitions this member holds, ascending: taken and not
// yet released.
func (m *member) ownedList() []int {
	owned := []int{}
	for p, o := range m.owned {
		if o.state != taking {
			owned = append(owned, p)
		}
	}
	slices.Sort(owned)
	return owned
}

// rebalance releases the partitions beyond this member's share and takes
// the free ones of its share, logging what moves.
func (m *member) rebalance(view membership.View) {
	a := assign(m.name, len(m.parts), m.ownedList(), view.Members)
	var take, release, cancelled, waiting []int
	for _, p := range a.target {
		switch {
		case m.owned[p] != nil:
		case a.busy[p]:
			waiting = append(waiting, p)
		default:
			take = append(take, p)
		}
	}
	for p, o := range m.owned {
		if (slices.Contains(a.target, p) && !a.contested[p]) || o.state == releasing {
			continue
		}
		if o.state == taking {
			cancelled = append(cancelled, p)
		} else {
			release = append(release, p)
		}
	}
	if len(take)+len(release)+len(cancelled) == 0 {
		return
	}
	slices.Sort(release)
	slices.Sort(cancelled)
	m.logger.Info("Rebalancing partitions", watermill.LogFields{
		"members": a.members, "owned": m.ownedList(), "target": a.target,
		"taking": take, "releasing": release, "not_taking": cancelled, "waiting_for": waiting,
	})
	for _, p := range release {
		m.release(m.owned[p])
	}
	for _, p := range cancelled {
		m.owned[p].stop()
	}
	for _, p := range take {
		m.take(p)
	}
}

// startLeaving hands every partition over: those taken are released, those
// being taken are given up.
func (m *member) startLeaving() {
	m.logger.Info("Leaving the group: handing partitions over", watermill.LogFields{"owned": m.ownedList()})
	for _, o := range m.owned {
		switch o.state {
		case taking:
			o.stop()
		case running:
			m.release(o)
		}
	}
}

// leave ends the membership at once, so the others do not wait for it to
// expire.
func (m *member) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	if _, err := membership.Leave(ctx, m.client, m.topic, m.group, m.name); err != nil {
		m.logger.Error("Cannot leave the group; the membership expires by itself", err, nil)
		return
	}
	m.logger.Info("Left the group", nil)
}

// leaveTimeout bounds the last membership call of a member.
const leaveTimeout = 5 * time.Second

// isInUse reports whether err says another live subscriber holds the
// partition's consumer name.
func isInUse(err error) bool { return errors.Is(err, millrace.ErrConsumerInUse) }
