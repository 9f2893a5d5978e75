package pipeline

import (
	"context"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Result is what a run of route or sweep came to.
type Result struct {
	// Tally counts what was handled, digests included.
	Tally *Tally
	// WriteErr is the first error writing the output; reading stopped
	// there.
	WriteErr error
}

// Failed reports whether the run failed: an item or a digest did, or the
// output could not be written (each is reported).
func (r Result) Failed() bool {
	return r.WriteErr != nil || r.Tally.Failed > 0 || r.Tally.DigestsFailed > 0
}

// run is the one handling path of route and sweep: the items go through
// a Runner; each handled item is written (those show keeps) and counted,
// and a write error stops the reading; then the batch's digests are
// posted, counted and written, and the output is closed.
type run struct {
	// runner reads, routes and acts; its Emit is the run's.
	runner Runner
	// actx is the context of the actions.
	actx context.Context
	// show says which handled items are written; nil: all.
	show  func(*Job) bool
	write func(*Job) error
	// digest writes a digest; nil: none.
	digest func(storm.DigestResult) error
	// close ends the output; nil: nothing to end.
	close func() error
	// progress is told of each item read and handled; nil: none.
	progress *Progress
	// The digests are posted within flushWithin under flushCtx, each
	// logged as flushMsg with its text as flushKey.
	flushCtx           context.Context
	flushWithin        time.Duration
	flushMsg, flushKey string
}

// do runs the items next yields until there are none, ctx ends or the
// output cannot be written; stop, when not nil, is then called to make a
// read in progress return (see Inputs.Close).
func (r *run) do(ctx context.Context, next func() (ses.Item, bool), stop func()) Result {
	res := Result{Tally: NewTally()}
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	if stop != nil {
		stopped := make(chan struct{})
		unhook := context.AfterFunc(rctx, func() { stop(); close(stopped) })
		defer func() {
			if !unhook() {
				<-stopped
			}
		}()
	}
	runner := r.runner
	runner.Emit = func(j *Job) {
		// Written first: should writing panic, the item is emitted
		// again bare, and counted once.
		if res.WriteErr == nil && (r.show == nil || r.show(j)) {
			if err := r.write(j); err != nil {
				res.WriteErr = err
				stopReading()
			}
		}
		res.Tally.Add(j)
		if r.progress != nil {
			r.progress.Done(res.Tally)
		}
	}
	read := next
	if r.progress != nil {
		read = func() (ses.Item, bool) {
			it, ok := next()
			if ok {
				r.progress.Read()
			}
			return it, ok
		}
	}
	runner.Run(rctx, r.actx, read)
	if r.progress != nil {
		r.progress.Clear()
	}
	fctx, cancel := context.WithTimeout(r.flushCtx, r.flushWithin)
	defer cancel()
	// A panic while posting is a failed digest of its own, shown and
	// counted: nothing more to do with it here.
	_, _ = runner.Handler.flush(fctx, runner.Batch, res.Tally, func(d storm.DigestResult) {
		if r.digest == nil {
			return
		}
		if err := r.digest(d); err != nil && res.WriteErr == nil {
			res.WriteErr = err
		}
	}, r.flushMsg, r.flushKey)
	if r.close != nil {
		if err := r.close(); err != nil && res.WriteErr == nil {
			res.WriteErr = err
		}
	}
	return res
}

// Output shows what a run did as it does it: each handled item, in input
// order, then each digest, then Close. Package pipeline/output writes it
// as JSON, text or HTML.
type Output interface {
	// Job shows one handled item.
	Job(*Job) error
	// Digest shows a digest posted (or rendered) at the end of the run.
	Digest(storm.DigestResult) error
	// Close ends the output and writes what is buffered.
	Close() error
}

// Route is route's run: the items next yields go through a Runner, each
// written by out as it is done (a dry run, dryRun, acts on one item at a
// time), then the run's digests are posted and
// written too, and digest (when not nil) is told of each, for a line on
// standard error.
//
// When ctx ends, reading stops (stop, when not nil, is called to make a
// read in progress return: Inputs.Close) and the actions in flight get
// drain to finish before they are cancelled; when now ends, they are
// cancelled at once. The digests get drain too, within now.
func Route(ctx, now context.Context, h *Handler, out Output, dryRun bool, progress *Progress, next func() (ses.Item, bool), stop func(),
	drain time.Duration, digest func(storm.DigestResult)) Result {
	actx, cancel := drainContext(ctx, now, drain)
	defer cancel()
	// A dry run acts on one item at a time: it calls nothing outside the
	// process, so concurrency would only make which notifications a storm
	// folds vary from run to run.
	conc := DefaultConcurrency
	if dryRun {
		conc = 1
	}
	r := &run{
		runner: Runner{Handler: h, Batch: h.NewBatch(false), Concurrency: conc},
		actx:   actx, write: out.Job, close: out.Close, progress: progress,
		digest: func(d storm.DigestResult) error {
			err := out.Digest(d)
			if digest != nil {
				digest(d)
			}
			return err
		},
		flushCtx: now, flushWithin: drain, flushMsg: "digest", flushKey: "digest",
	}
	return r.do(ctx, next, stop)
}

// drainContext returns a context that ends d after ctx ends, or as soon
// as now does.
func drainContext(ctx, now context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	dctx, cancel := context.WithCancel(now)
	unhook := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(d, cancel)
		context.AfterFunc(dctx, func() { t.Stop() })
	})
	return dctx, func() {
		unhook()
		cancel()
	}
}
