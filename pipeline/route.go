package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
)

// Output shows what a run did as it does it: each handled item, in input
// order, then each digest, then Close. Package pipeline/output writes it
// as JSON, text or HTML.
type Output interface {
	// Job shows one handled item.
	Job(*Job) error
	// Digest shows a digest posted (or rendered) at the end of the run.
	Digest(actions.DigestResult) error
	// Close ends the output and writes what is buffered.
	Close() error
}

// Route is route's run: the items next yields go through a Runner
// (reading and routing on one goroutine, actions on others), each shown
// by out as it is done, then the run's digests are posted and shown too.
// A dry run (dryRun) acts on one item at a time.
// It returns the tally. When stop is closed, reading stops, the actions
// in flight get drain to finish before they are cancelled, and Route
// returns even if a rule is still running; the digests get drain too.
// digest is told of each digest (for a line on standard error).
func Route(h *Handler, out Output, dryRun bool, progress *Progress, next func() (engine.Item, bool), stop <-chan struct{},
	drain time.Duration, digest func(actions.DigestResult)) (*Tally, error) {
	readCtx, stopReading := context.WithCancel(context.Background())
	defer stopReading()
	actCtx, abort := context.WithCancel(context.Background())
	defer abort()
	tally := NewTally()
	var mu sync.Mutex // the emitter against a return after a stop
	var outErr error
	closed := false
	batch := h.NewBatch(false)
	// A dry run acts on one item at a time: it calls nothing outside the
	// process, so concurrency would only make which notifications a storm
	// folds vary from run to run.
	conc := DefaultConcurrency
	if dryRun {
		conc = 1
	}
	r := Runner{Handler: h, Batch: batch, Concurrency: conc, Emit: func(j *Job) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		tally.Add(j)
		progress.Done(tally)
		if err := out.Job(j); err != nil && outErr == nil {
			outErr = err
			stopReading()
		}
	}}
	done := make(chan struct{})
	go func() {
		r.Run(readCtx, actCtx, func() (engine.Item, bool) {
			it, ok := next()
			if ok {
				progress.Read()
			}
			return it, ok
		})
		close(done)
	}()
	select {
	case <-done:
	case <-stop:
		stopReading()
		t := time.AfterFunc(drain, abort)
		defer t.Stop()
		select {
		case <-done:
		case <-time.After(drain + time.Second): // a rule that does not return
		}
	}
	mu.Lock()
	closed = true
	mu.Unlock()
	progress.Clear()
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	h.FlushDigests(dctx, batch, tally, func(r actions.DigestResult) {
		if err := out.Digest(r); err != nil && outErr == nil {
			outErr = err
		}
		digest(r)
	})
	if err := out.Close(); err != nil && outErr == nil {
		outErr = err
	}
	return tally, outErr
}
