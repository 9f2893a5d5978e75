package pipeline

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// Invocation is what one Lambda invocation came to.
type Invocation struct {
	// SQS says that the event was an SQS batch: FailedIDs are then the
	// messageIds of the records to report in batchItemFailures, so that
	// only they are delivered again.
	SQS       bool
	FailedIDs []string
	// Err is set when the invocation must fail as a whole, so that Lambda
	// (or the queue) delivers it again: an SNS or EventBridge event
	// whose action failed or could not be read, or an SQS record that
	// failed without a messageId to name.
	Err error
	// Tally counts what the invocation did.
	Tally *Tally
}

// record is what an invocation keeps of each item it handled: little,
// so that a batch of 10,000 records stays small.
type record struct {
	input, envelope, id string
	retry               error // why the item is to be delivered again
	digested            bool  // folded into a digest
}

// Invoke handles one Lambda invocation: every item of payload (an SQS,
// SNS or EventBridge event) through a Runner, its digests posted before
// it returns. Items are decoded one at a time, at most window in flight.
// A rule that fails is logged and counted (RuleErrors), never retried:
// a retry would fail the same way and repeat the other recipients'
// actions. An action that fails, or an input that cannot be read, is
// retried: the SQS record is named in FailedIDs, an SNS or EventBridge
// event fails the invocation. When ctx ends, the records not yet acted
// on are reported failed, never dropped. With h.Gate, each item is
// checked as it is read: one refused is logged and counted, never acted
// on nor retried; one that could not be verified now is retried.
func (h *Handler) Invoke(ctx context.Context, payload []byte, concurrency, window int) Invocation {
	inv := Invocation{Tally: NewTally()}
	batch := h.NewBatch(true)
	var recs []record
	r := Runner{Handler: h, Batch: batch, Concurrency: concurrency, Window: window, Admit: h.Gate.admit(ctx), Emit: func(j *Job) {
		h.Log(ctx, j) // first: should it panic, the item is emitted again bare, and counted once
		inv.Tally.Add(j)
		rec := record{input: j.Item.Input, envelope: j.Item.Envelope, id: j.Item.EnvelopeID}
		for _, f := range j.Failures() {
			if f.Kind != failRule && rec.retry == nil {
				rec.retry = f.Err
			}
		}
		for i := range j.Results {
			if j.Results[i].Outcome == actions.OutcomeDigested {
				rec.digested = true
			}
		}
		recs = append(recs, rec)
	}}
	next, stop := iter.Pull(ses.Items("invocation", payload))
	defer stop()
	// Every record is read and emitted, even once ctx has ended: a record
	// left unread would be named neither acted on nor failed, and SQS
	// would delete it. Past the deadline its actions fail at once, and it
	// is delivered again.
	r.Run(context.WithoutCancel(ctx), ctx, next)
	lost, flushErr := h.FlushDigests(ctx, batch, inv.Tally, nil)

	var whole []string
	for i := range recs {
		rec := &recs[i]
		if err, ok := lost[rec.input]; ok && rec.retry == nil {
			rec.retry = err
		}
		if flushErr != nil && rec.digested && rec.retry == nil {
			rec.retry = fmt.Errorf("digests not posted: %w", flushErr) // which one it was folded into is unknown
		}
		if rec.envelope == ses.EnvelopeSQS {
			inv.SQS = true
		}
		if rec.retry == nil {
			continue
		}
		if rec.envelope == ses.EnvelopeSQS && rec.id != "" {
			inv.FailedIDs = append(inv.FailedIDs, rec.id)
			continue
		}
		whole = append(whole, rec.input+": "+rec.retry.Error())
	}
	if len(whole) > 0 {
		// Not SQS, or an SQS failure without a message id to name: the
		// whole invocation fails, and Lambda (or the queue) retries it.
		inv.Err = fmt.Errorf("%d of %d inputs failed: %s", len(whole), len(recs), strings.Join(whole, "; "))
	}
	return inv
}

// ActionContext bounds the actions of an invocation so that it returns
// before the function's deadline: a second, or a tenth of the time left
// when that is less, is kept for the response. Without a deadline, it is
// fallback.
func ActionContext(ctx context.Context, fallback time.Duration) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, fallback)
	}
	margin := min(time.Second, time.Until(dl)/10)
	return context.WithDeadline(ctx, dl.Add(-margin))
}
