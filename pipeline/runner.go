package pipeline

import (
	"context"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// Runner handles a stream of items. Items are routed and claimed in input
// order on the goroutine that calls Run, their actions run on up to
// Concurrency goroutines, and each handled item is given to Emit in input
// order. At most Window items are in flight (read and not yet emitted):
// reading waits while the window is full, so memory stays flat whatever
// the input's size and the actions' pace.
type Runner struct {
	Handler *Handler
	// Batch is what notifies fold into; nil folds nothing.
	Batch       *actions.Batch
	Concurrency int
	Window      int
	// Emit is called with each item once handled, in input order, on one
	// goroutine.
	Emit func(*Job)
}

// Defaults of a Runner.
const (
	DefaultConcurrency = 16
	DefaultWindow      = 256
)

// Run reads items with next until it reports false or ctx ends; actx is
// the context of the actions. When ctx ends, reading stops at once (the
// goroutine reading and routing is left behind, should next or a rule be
// stuck) and the items already read are still handled. Run returns when
// every item taken has been emitted.
func (r *Runner) Run(ctx, actx context.Context, next func() (ses.Item, bool)) {
	window := r.Window
	if window < 1 {
		window = DefaultWindow
	}
	conc := r.Concurrency
	if conc < 1 {
		conc = DefaultConcurrency
	}
	type job struct {
		*Job
		done chan struct{}
	}
	// Read and route on a goroutine of their own, in input order.
	prepared := make(chan *Job)
	go func() {
		defer close(prepared)
		for {
			it, ok := next()
			if !ok {
				return
			}
			select {
			case prepared <- r.Handler.Prepare(it):
			case <-ctx.Done():
				return
			}
		}
	}()
	queue := make(chan job, window-1) // and one in the writer's hands
	written := make(chan struct{})
	go func() {
		defer close(written)
		for j := range queue {
			<-j.done
			r.Emit(j.Job)
		}
	}()
	sem := make(chan struct{}, conc)
loop:
	for {
		var pj *Job
		select {
		case <-ctx.Done():
			break loop
		case p, ok := <-prepared:
			if !ok {
				break loop
			}
			pj = p
		}
		j := job{Job: pj, done: make(chan struct{})}
		queue <- j // waits while the window is full
		if j.Plan == nil {
			close(j.done)
			continue
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; close(j.done) }()
			r.Handler.Act(actx, j.Job, r.Batch)
		}()
	}
	close(queue)
	<-written
}
