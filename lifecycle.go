package millrace

import (
	"context"
	"time"
)

// loop is the lifecycle of a background component of a subscription: start
// runs its goroutine once, stop cancels the goroutine's context and waits
// for it to return. The context is a child of the one the component was
// built with, so the goroutine also ends when that one ends.
type loop struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newLoop(parent context.Context) loop {
	ctx, cancel := context.WithCancel(parent)
	return loop{ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// goRun runs f(ctx) in the component's goroutine.
func (l *loop) goRun(f func(ctx context.Context)) {
	go func() {
		defer close(l.done)
		f(l.ctx)
	}()
}

// stop ends the goroutine and waits for it.
func (l *loop) stop() {
	l.cancel()
	<-l.done
}

// bounded bounds one Redis call of a background component, go-redis's own
// retries included, to finalCallTimeout past block (the call's BLOCK, 0 for
// none): a call in flight when the subscription ends is not interrupted
// (go-redis does not watch a context's cancellation), and Close waits for
// it, so that is how long an unresponsive Redis can make it wait.
func bounded(ctx context.Context, block time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, finalCallTimeout+max(block, 0))
}
