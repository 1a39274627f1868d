package chaos

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/millrace/millrace"
)

// publishWorkers is how many Publish calls may be in flight at once.
const publishWorkers = 8

// publishing publishes numbered messages at a fixed rate until stopped.
// When every worker is blocked (Redis frozen, WAIT timing out), up to two
// seconds of messages queue up; later ticks are dropped.
type publishing struct {
	stop    chan struct{}
	jobs    chan int
	wg      sync.WaitGroup
	dropped atomic.Int64 // ticks dropped because the queue was full
}

func startPublishing(pub *millrace.Publisher, events *eventWriter, rate int) *publishing {
	p := &publishing{stop: make(chan struct{}), jobs: make(chan int, 2*rate)}
	for range publishWorkers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for seq := range p.jobs {
				msg, class := newMessage(seq)
				start := time.Now()
				err := pub.Publish(topic, msg)
				// The log is on local disk; a write error is not a Redis
				// fault and shows as a lost message.
				_ = events.publish(Publish{UUID: msg.UUID, Class: class, Start: start, End: time.Now(), Outcome: publishOutcome(err)})
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(p.jobs)
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		seq := 0
		for {
			var now time.Time
			select {
			case <-p.stop:
				return
			case now = <-tick.C:
			}
			for due := int(now.Sub(start).Seconds() * float64(rate)); seq < due; seq++ {
				select {
				case p.jobs <- seq:
				default: // workers blocked and the queue full: the tick is dropped
					p.dropped.Add(1)
				}
			}
		}
	}()
	return p
}

// close stops publishing and waits until every Publish call returned.
func (p *publishing) close() {
	close(p.stop)
	p.wg.Wait()
}
