package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Handler handles items by one set of rules: route, claim, act, account,
// log. A reload of the rules makes a new Handler with the same Seen (and
// the dispatcher's storm and pacers), so that a reload forgets nothing.
type Handler struct {
	Router     *route.Router
	Dispatcher *actions.Dispatcher
	// Seen makes a notification handled before in this process a
	// duplicate: nothing is done again. nil (a dry run) acts on every
	// copy.
	Seen *dedup.Seen
	// Logger gets one line per item handled (Lambda, serve); nil writes
	// none.
	Logger *slog.Logger
	// Timeout bounds the actions of one item, retries included; 0 leaves
	// it to ctx.
	Timeout time.Duration
	// Storm is the destinations' storm state, which outlives batches and
	// reloads; nil folds nothing.
	Storm *storm.Storm
	// Gate decides which items of a Lambda invocation may be acted on
	// (Invoke); nil acts on every item read.
	Gate *Gate
	// State is the fleet state shared by every process of a deployment
	// (SESROUTER_STATE_TABLE): a notification Seen lets through is then
	// claimed in it too. nil: state is per process.
	State state.Store
	// ReadState, for a handler without State (a dry run), is the fleet
	// state history(kind, window) reads: read, never written. nil (and no
	// State): every history count is 0.
	ReadState state.Store

	// only, when set, leaves out of each plan what the run has nothing to
	// do for (a sweep's suppress).
	only func(*route.Plan)
}

// NewBatch returns a batch of h's storm; keep as for storm.NewBatch.
// Without a storm there is none: nothing is folded.
func (h *Handler) NewBatch(keep bool) *storm.Batch {
	if h.Storm == nil {
		return nil
	}
	return storm.NewBatch(h.Storm, keep)
}

// FlushDigests posts the digests of batch (nil: none), logs one line for
// each, counts them in t, hands each to show (when not nil), and returns
// the inputs folded into digests that were not posted, with why: nobody
// has seen them. Their keys are forgotten, so that a new delivery is
// acted on. A panic while making or posting the digests is recovered: it
// is a failed digest of its own, and err, since which inputs were folded
// into what is then unknown.
func (h *Handler) FlushDigests(ctx context.Context, batch *storm.Batch, t *Tally, show func(storm.DigestResult)) (lost map[string]error, err error) {
	return h.flush(ctx, batch, t, show, "digest", "digest")
}

// flush is FlushDigests, logging each digest as msg, with its text as
// textKey.
func (h *Handler) flush(ctx context.Context, batch *storm.Batch, t *Tally, show func(storm.DigestResult), msg, textKey string) (lost map[string]error, err error) {
	if batch == nil {
		return nil, nil
	}
	results, err := flushBatch(ctx, batch)
	if err != nil {
		if h.Logger != nil {
			h.Logger.Error("panic while posting the digests", slog.String("panic", err.Error()))
		}
		results = append(results, storm.DigestResult{Destination: "(unknown)", Outcome: actions.OutcomeFailed, Err: err})
	}
	for _, r := range results {
		t.AddDigest(r)
		if show != nil {
			show(r)
		}
		attrs := []slog.Attr{slog.String("destination", r.Destination), slog.String("outcome", string(r.Outcome)),
			slog.Int("notifications", r.Notifications), slog.Int("recipients", r.Recipients), slog.String(textKey, r.Message.Text)}
		if r.Outcome != actions.OutcomeFailed {
			if h.Logger != nil {
				h.Logger.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
			}
			continue
		}
		if h.Logger != nil {
			h.Logger.LogAttrs(ctx, slog.LevelError, msg, append(attrs, slog.String("error", r.Err.Error()))...)
		}
		if h.Seen != nil {
			h.Seen.Forget(r.Keys...)
		}
		h.releaseFleet(ctx, r.Claims)
		if lost == nil {
			lost = map[string]error{}
		}
		for _, in := range r.Inputs {
			lost[in] = fmt.Errorf("digest to %s not posted: %w", r.Destination, r.Err)
		}
	}
	return lost, err
}

// flushBatch posts batch's digests, turning a panic into err.
func flushBatch(ctx context.Context, batch *storm.Batch) (results []storm.DigestResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return batch.Flush(ctx), nil
}

// Job is one item on its way through the pipeline.
type Job struct {
	Item ses.Item
	// Plan is what the rules decided; nil when Item holds no notification.
	Plan *route.Plan
	// Duplicate says that the notification was handled before: nothing
	// was done.
	Duplicate bool
	// Results are what became of the plan's steps.
	Results []actions.Result
	// Panic is set when handling the item panicked: the item fails, the
	// process lives on.
	Panic string
	// DigestErr is set when a digest this item was folded into could not
	// be posted: nobody has seen it.
	DigestErr error
	// Refused is set when the item must never be acted on (a Gate found
	// it forged, or from a source nobody wired): nothing is done, and it
	// is not delivered again. Unverified is set when it could not be
	// checked now (its signing certificate could not be fetched): nothing
	// is done, and it fails, so that it is delivered again.
	Refused, Unverified error

	// claim is the item's claim against duplicates (nil: not claimed);
	// unsettled says that it was still waiting for another copy's outcome
	// when its time ran out: it failed, and nothing was done.
	claim     *dedup.Claim
	unsettled bool
	// fleet is the job's claim in the state table, while held.
	fleet *fleetClaim
}

// Prepare routes an item and claims its notification against duplicates.
// The runners call it in input order: the first copy of a duplicated
// notification is the one acted on. A copy that comes while another is
// being handled is not yet a duplicate: Act waits for the other's outcome.
func (h *Handler) Prepare(it ses.Item) (j *Job) {
	j = &Job{Item: it}
	defer h.recover(j)
	if it.Notification == nil {
		return j
	}
	j.Plan = h.Router.Route(it.Notification)
	if h.only != nil {
		h.only(j.Plan)
	}
	if h.Seen != nil && (len(j.Plan.Steps()) > 0 || h.usesHistory()) {
		j.claim = h.Seen.Begin(it.Notification)
		j.Duplicate = j.claim.Duplicate
	}
	return j
}

// Act carries out a prepared job's actions, folding its notifies into
// batch (nil: none folded). It may run concurrently with other Acts.
//
// A job whose notification is being handled by another copy first waits
// for that copy's outcome (within ctx and Timeout): when it succeeded,
// the job is a duplicate; when it failed, the job acts in its place. A
// job still waiting when its time runs out fails, so that it is
// delivered again: a copy is never acknowledged before the first copy's
// outcome is known. A job whose actions fail releases its claim, so that
// the next copy acts.
func (h *Handler) Act(ctx context.Context, j *Job, batch *storm.Batch) {
	defer h.recover(j)
	if j.Plan == nil || j.Panic != "" || !h.settle(ctx, j) {
		return
	}
	if j.Duplicate {
		j.Results = actions.Duplicates(j.Plan)
		return
	}
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	if j.claim != nil {
		ok := false
		// Deferred, so that a panic releases the claims too.
		defer func() { h.endFleet(ctx, j, ok); j.claim.End(ok) }()
		if h.State != nil {
			held, err := h.claimFleet(ctx, j)
			switch {
			case err != nil:
				j.Results = failSteps(j.Plan, err)
				return
			case !held:
				// Another process holds it or acted on it: this copy
				// does nothing. Seen forgets it (End(false)), so that
				// a later copy asks the table again.
				j.Duplicate = true
				j.Results = actions.Duplicates(j.Plan)
				return
			}
			if err := h.routeHistory(ctx, j); err != nil {
				j.Results = failSteps(j.Plan, err)
				return
			}
		}
		j.Results = h.Dispatcher.Dispatch(ctx, j.Plan, batch)
		ok = !actions.Failed(j.Results)
		return
	}
	if h.State == nil && h.ReadState != nil {
		if err := h.historyFrom(ctx, j, h.ReadState, false); err != nil {
			j.Results = failSteps(j.Plan, err)
			return
		}
	}
	j.Results = h.Dispatcher.Dispatch(ctx, j.Plan, batch)
}

// settle waits, when another copy of j's notification is being handled,
// for that copy's outcome, then claims the notification again, until j
// holds it or is a duplicate. It reports false when ctx ends, or Timeout
// passes, first: j then fails, every step with why, and holds nothing.
// A job that has no claim, or whose claim is settled, returns at once.
func (h *Handler) settle(ctx context.Context, j *Job) bool {
	if j.unsettled {
		return false
	}
	if j.claim == nil || j.claim.Wait == nil {
		return true
	}
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	if h.Logger != nil {
		h.Logger.LogAttrs(ctx, slog.LevelInfo, "waiting for another copy", slog.String("input", j.Item.Input),
			slog.String("snsMessageId", j.Item.SNSMessageID), slog.String("sesMessageId", j.Item.Notification.Mail.MessageID))
	}
	for j.claim.Wait != nil {
		select {
		case <-j.claim.Wait:
			j.claim = h.Seen.Begin(j.Item.Notification)
		case <-ctx.Done():
			err := fmt.Errorf("another copy of this notification is still being handled: %w", context.Cause(ctx))
			steps := j.Plan.Steps()
			j.Results = make([]actions.Result, len(steps))
			for i, s := range steps {
				j.Results[i] = actions.Result{Step: s, Outcome: actions.OutcomeFailed, Err: err}
			}
			j.claim, j.unsettled = nil, true
			return false
		}
	}
	j.Duplicate = j.claim.Duplicate
	return true
}

// recover turns a panic while handling j into j's failure.
func (h *Handler) recover(j *Job) {
	if p := recover(); p != nil {
		h.panicked(j, p)
	}
}

// panicked makes the panic p, recovered while handling j, j's failure,
// and logs it with the stack.
func (h *Handler) panicked(j *Job, p any) {
	j.Panic = fmt.Sprint(p)
	if h.Logger != nil {
		h.Logger.Error("panic while handling an input", slog.String("input", j.Item.Input),
			slog.String("panic", j.Panic), slog.String("stack", string(debug.Stack())))
	}
}

// Kinds of failure, from the least to the most retryable.
const (
	// FailUnreadable: the input could not be read. A new delivery of it
	// will not read better.
	FailUnreadable = "unreadable"
	// failRule: a rule failed at run time for some recipient, which then
	// got no action. Deterministic: a retry would fail the same way.
	failRule = "rule"
	// FailAction: an action failed (Slack, SES, a digest); a retry may
	// succeed.
	FailAction = "action"
	// failUnverified: the input's signature could not be checked (its
	// certificate could not be fetched), so nothing was done; a retry may
	// succeed.
	failUnverified = "unverified"
)

// Failures says why the job counts as failed, one error per cause, each
// naming its kind; none when it does not. This is the one place that
// decides what failed.
func (j *Job) Failures() []Failure {
	var out []Failure
	if j.Item.Err != nil {
		out = append(out, Failure{FailUnreadable, fmt.Errorf("unreadable: %w", j.Item.Err)})
	}
	if j.Unverified != nil {
		out = append(out, Failure{failUnverified, fmt.Errorf("not verified: %w", j.Unverified)})
	}
	if j.Panic != "" {
		out = append(out, Failure{FailAction, errors.New("panic: " + j.Panic)})
	}
	if j.Plan != nil {
		for i := range j.Plan.Recipients {
			if err := j.Plan.Recipients[i].Err; err != nil {
				out = append(out, Failure{failRule, fmt.Errorf("recipient %s: %w", j.Plan.Recipients[i].Recipient.Address, err)})
			}
		}
	}
	for i := range j.Results {
		r := &j.Results[i]
		if r.Outcome != actions.OutcomeFailed {
			continue
		}
		who := r.Action()
		if rc := r.Recipient(); rc != "" {
			who += " " + rc
		}
		out = append(out, Failure{FailAction, fmt.Errorf("%s: %w", who, r.Err)})
	}
	if j.DigestErr != nil {
		out = append(out, Failure{FailAction, j.DigestErr})
	}
	return out
}

// Failure is one reason an item failed.
type Failure struct {
	// Kind is FailUnreadable, failRule, FailAction or failUnverified.
	Kind string
	Err  error
}

// Failed reports whether the job failed at all.
func (j *Job) Failed() bool { return len(j.Failures()) > 0 }

// failureText joins the failures, for a log line or an answer.
func failureText(fs []Failure) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Err.Error()
	}
	return strings.Join(parts, "; ")
}

// Log writes the one log line of a handled job: ids, type, and per
// recipient the deciding rule, actions and outcomes; at error level when
// it failed.
func (h *Handler) Log(ctx context.Context, j *Job) {
	if h.Logger == nil {
		return
	}
	it := &j.Item
	attrs := []slog.Attr{slog.String("input", it.Input), slog.String("envelope", it.Envelope)}
	if it.EnvelopeID != "" {
		attrs = append(attrs, slog.String("envelopeId", it.EnvelopeID))
	}
	if it.SNSMessageID != "" {
		attrs = append(attrs, slog.String("snsMessageId", it.SNSMessageID))
	}
	level, msg := slog.LevelInfo, "notification"
	switch {
	case j.Refused != nil:
		level, msg = slog.LevelWarn, "refused input"
		attrs = append(attrs, slog.String("reason", j.Refused.Error()))
		attrs = appendOrigin(attrs, it)
	case j.Unverified != nil:
		level, msg = slog.LevelError, "input not verified"
		attrs = append(attrs, slog.String("error", j.Unverified.Error()))
		attrs = appendOrigin(attrs, it)
	case it.Err != nil:
		level, msg = slog.LevelError, "unreadable input"
		attrs = append(attrs, slog.String("error", it.Err.Error()))
	case it.Notification == nil:
		msg = "skipped"
		attrs = append(attrs, slog.String("reason", it.Skipped))
	default:
		n := it.Notification
		v := j.View(false)
		attrs = append(attrs, slog.String("sesMessageId", n.Mail.MessageID), slog.String("type", n.Event.Type),
			slog.Any("recipients", v.Recipients), slog.Any("results", v.Results))
		if fs := j.Failures(); len(fs) > 0 {
			level = slog.LevelError
			attrs = append(attrs, slog.String("failure", failureText(fs)))
		}
	}
	h.Logger.LogAttrs(ctx, level, msg, attrs...)
}

// appendOrigin adds to a log line where a refused or unverified item says
// it came from: the SNS topic, the SQS queue, the EventBridge account.
func appendOrigin(attrs []slog.Attr, it *ses.Item) []slog.Attr {
	if it.TopicArn != "" {
		attrs = append(attrs, slog.String("topicArn", it.TopicArn))
	}
	if it.Origin.Queue != "" {
		attrs = append(attrs, slog.String("queueArn", it.Origin.Queue))
	}
	if it.Origin.EventBridge {
		attrs = append(attrs, slog.String("account", it.Origin.Account))
	}
	return attrs
}
