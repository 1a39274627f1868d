package millrace

import "context"

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
