package pipeline

import (
	"context"
	"sync"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Runner handles a stream of items. Items are read, routed and claimed in
// input order on the goroutine that calls Run, their actions run on up to
// Concurrency goroutines (with a Concurrency of 1, on the one that reads,
// each item's before the next is read), and each handled item is given to Emit in input
// order. At most Window items are in flight (read and not yet emitted):
// reading waits while the window is full, so memory stays flat whatever
// the input's size and the actions' pace. A Window of 1 reads an item
// only once the one before is emitted.
type Runner struct {
	Handler *Handler
	// Batch is what notifies fold into; nil folds nothing.
	Batch       *storm.Batch
	Concurrency int
	Window      int
	// Emit is called with each item once handled, in input order, on one
	// goroutine. A panic in Emit fails the item, which is emitted again
	// bare (its input, envelope and ids, and the panic): Emit should do
	// what may panic (writing the item out) before what counts it.
	Emit func(*Job)
	// Admit, when set, is asked about each item as it is read, before it
	// is routed or claimed: an item it refuses, or cannot vouch for now,
	// is emitted with Job.Refused or Job.Unverified and nothing done.
	Admit func(ses.Item) (refused, unverified error)
}

// Defaults of a Runner.
const (
	DefaultConcurrency = 16
	defaultWindow      = 256
)

// Run reads items with next until it reports false or ctx ends; actx is
// the context of the actions. When ctx ends, nothing more is read and the
// items already read are still handled; next must then return soon (close
// what it reads from: see Inputs). Run returns when every item read has
// been emitted, and every goroutine it started has ended.
//
// A panic while reading (in next) or handling an item fails that item,
// never the process; after a panic in next, reading stops, as the reader
// may be left in any state.
func (r *Runner) Run(ctx, actx context.Context, next func() (ses.Item, bool)) {
	window := r.Window
	if window < 1 {
		window = defaultWindow
	}
	conc := r.Concurrency
	if conc < 1 {
		conc = DefaultConcurrency
	}
	slots := make(chan struct{}, window) // one per item in flight
	queue := make(chan runJob, window)   // never full: it holds no more than the slots taken
	var writer sync.WaitGroup
	writer.Go(func() {
		for j := range queue {
			<-j.done
			r.emit(j.Job)
			<-slots
		}
	})
	// conc goroutines that live as long as Run, each taking the next
	// item to act on, rather than one started per item: a goroutine per
	// item grew its stack again for every item, two thirds of the CPU
	// time of a dry run's actions. With a Concurrency of 1, the items
	// are acted on one at a time in input order whichever goroutine
	// acts: the reading one does, and hands no item over.
	actors := conc
	if conc == 1 {
		actors = 0
	}
	work := make(chan runJob)
	var acting sync.WaitGroup
	for range actors {
		acting.Go(func() {
			for j := range work {
				r.act(actx, j)
			}
		})
	}
loop:
	for {
		select {
		case slots <- struct{}{}: // waits while the window is full
		case <-ctx.Done():
			break loop
		}
		if ctx.Err() != nil {
			<-slots
			break
		}
		j, more := r.take(next)
		if j.Job == nil {
			<-slots
			break
		}
		queue <- j
		switch {
		case j.Plan == nil || j.Panic != "":
			close(j.done)
		case conc == 1:
			r.act(actx, j)
		default:
			work <- j // waits while conc items are being acted on
		}
		if !more {
			break
		}
	}
	close(queue)
	close(work)
	acting.Wait()
	writer.Wait()
}

// act carries out j's actions, then marks it done.
func (r *Runner) act(actx context.Context, j runJob) {
	defer close(j.done)
	r.Handler.Act(actx, j.Job, r.Batch)
}

// runJob is a job in a Runner's queue; done is closed once its actions
// are.
type runJob struct {
	*Job
	done chan struct{}
}

// take reads the next item and prepares it: no Job when there is none.
// more is false after a panic in next, which fails a job of its own.
func (r *Runner) take(next func() (ses.Item, bool)) (j runJob, more bool) {
	defer func() {
		if p := recover(); p != nil {
			bare := &Job{Item: ses.Item{Input: readingInput}}
			r.Handler.panicked(bare, p)
			j, more = runJob{Job: bare, done: make(chan struct{})}, false
		}
	}()
	it, ok := next()
	if !ok {
		return runJob{}, false
	}
	if r.Admit != nil {
		if refused, unverified := r.Admit(it); refused != nil || unverified != nil {
			return runJob{Job: &Job{Item: it, Refused: refused, Unverified: unverified}, done: make(chan struct{})}, true
		}
	}
	return runJob{Job: r.Handler.Prepare(it), done: make(chan struct{})}, true
}

// readingInput names the item of a panic while reading: no input was
// read.
const readingInput = "(reading)"

// emit gives j to Emit; should Emit panic, j fails and is emitted again
// bare.
func (r *Runner) emit(j *Job) {
	defer func() {
		if p := recover(); p != nil {
			bare := &Job{Item: ses.Item{Input: j.Item.Input, Envelope: j.Item.Envelope,
				EnvelopeID: j.Item.EnvelopeID, SNSMessageID: j.Item.SNSMessageID}}
			r.Handler.panicked(bare, p)
			defer func() {
				if p := recover(); p != nil {
					r.Handler.panicked(bare, p) // logged; nothing more can be said of j
				}
			}()
			r.Emit(bare)
		}
	}()
	r.Emit(j)
}
