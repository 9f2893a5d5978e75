package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Sweep is a request to reconcile the SES account suppression list with
// the rules: every entry is routed as a notification of its own
// (event.envelope "sweep", event.type Bounce or Complaint from the entry's
// reason, event.timestamp its LastUpdateTime, recipient.address the
// entry; the rest empty), and what the rules keep deliverable is taken
// off the list.
type Sweep struct {
	// Reason is BOUNCE or COMPLAINT, or "" for both.
	Reason string
	// Since, when positive, reads only the entries last updated within
	// it.
	Since time.Duration
	// Rate is how many SES calls (list and delete together) a second.
	Rate float64
}

// DefaultSweepRate is the rate of a sweep's SES calls that sets none: one
// a second. SES does not publish a rate for the suppression-list
// operations; the SES API v2 management operations are throttled at
// about one request a second by default, and the SDK's retryer absorbs
// an occasional TooManyRequestsException beyond.
const DefaultSweepRate = 1.0

// sweepPageSize is how many entries one ListSuppressedDestinations call
// asks for: SES's largest page.
const sweepPageSize = 1000

// CheckSweep checks a sweep's settings.
func CheckSweep(s Sweep) error {
	switch {
	case s.Reason != "" && s.Reason != string(types.SuppressionListReasonBounce) && s.Reason != string(types.SuppressionListReasonComplaint):
		return fmt.Errorf("reason is BOUNCE or COMPLAINT, not %q", s.Reason)
	case s.Since < 0:
		return fmt.Errorf("since is a positive duration, not %s", s.Since)
	case !(s.Rate > 0) || math.IsInf(s.Rate, 1) || float64(time.Second)/s.Rate >= math.MaxInt64:
		// NaN, and an interval beyond a time.Duration, would come out
		// as no pace at all.
		return fmt.Errorf("rate is a positive number of calls a second, not %v", s.Rate)
	}
	return nil
}

// SweepRequest reads a Lambda invocation's payload as a sweep request,
// {"sesrouter":"sweep"} with optional "reason", "since" (a Go duration)
// and "rate" (SES calls a second), as sweep's flags: it reports whether
// the payload is one, and what is wrong with it when it is one that
// cannot be read.
func SweepRequest(payload []byte) (Sweep, bool, error) {
	req := Sweep{Rate: DefaultSweepRate}
	if !bytes.Contains(payload, []byte(`"sesrouter"`)) {
		return req, false, nil
	}
	var m map[string]jsontext.Value
	if json.Unmarshal(payload, &m) != nil || m["sesrouter"] == nil {
		return req, false, nil
	}
	var kind, since string
	for k, v := range m {
		var err error
		switch k {
		case "sesrouter":
			err = json.Unmarshal(v, &kind)
		case "reason":
			err = json.Unmarshal(v, &req.Reason)
		case "since":
			if err = json.Unmarshal(v, &since); err == nil && since != "" {
				req.Since, err = time.ParseDuration(since)
			}
		case "rate":
			err = json.Unmarshal(v, &req.Rate)
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return req, true, fmt.Errorf("sweep request: %s: %w", strconv.Quote(k), err)
		}
	}
	if kind != "sweep" {
		return req, true, fmt.Errorf("sweep request: \"sesrouter\" is %q, want \"sweep\"", kind)
	}
	return req, true, CheckSweep(req)
}

// SweepResult says what a sweep did.
type SweepResult struct {
	// Result is the run's counts and its output's first write error.
	Result
	// Entries is how many entries were read; Complete whether the whole
	// list was (false when ctx ended first: a later sweep goes on, since
	// the entries taken off are no longer listed).
	Entries  int
	Complete bool
}

// sweepFlushTime is how long a sweep's summaries get to be posted, even
// after the sweep was stopped: they say what was done.
const sweepFlushTime = 30 * time.Second

// Sweep reads the suppression list with client, page by page (memory stays
// flat whatever its length), routes each entry, and carries out its
// unsuppress (a delete) and log actions; suppress has nothing to do and
// is left out, and drop does nothing. Notifies are not posted per entry:
// each destination gets one summary at the end. SES calls wait their
// turn at req.Rate, list calls and deletes alike. Each entry a rule
// matched is handed to emit. In a dry run (dryRun, and h's dispatcher
// only renders), nothing is deleted or posted.
//
// When ctx ends, the sweep stops between entries, the deletes in flight
// are cut, and the summaries are still posted (within 30 s).
func (h *Handler) Sweep(ctx context.Context, client SESAPI, dryRun bool, req Sweep, emit func(*Job)) SweepResult {
	return h.sweep(ctx, context.WithoutCancel(ctx), client, dryRun, req, &run{write: func(j *Job) error { emit(j); return nil }})
}

// SweepTo is Sweep written to out as route writes its items, with the
// same handling path: each entry a rule matched is written, a write
// error stops the sweep, and summary (when not nil) is told of each
// summary posted. The summaries are posted even once ctx has ended,
// until now ends.
func (h *Handler) SweepTo(ctx, now context.Context, client SESAPI, dryRun bool, req Sweep, out Output, summary func(storm.DigestResult)) SweepResult {
	r := &run{write: out.Job, close: out.Close}
	if summary != nil {
		r.digest = func(d storm.DigestResult) error { summary(d); return nil }
	}
	return h.sweep(ctx, now, client, dryRun, req, r)
}

// sweep runs a sweep through r, its summaries posted under fctx.
func (h *Handler) sweep(ctx, fctx context.Context, client SESAPI, dryRun bool, req Sweep, r *run) SweepResult {
	pacer := pace.NewPacer(time.Duration(float64(time.Second)/req.Rate), 1)
	d := *h.Dispatcher
	d.SES = suppression.SweepSES(client, pacer)
	if dryRun {
		d.SES = suppression.DryRun()
	}
	// A sweep's entries are no notifications: nothing to claim against
	// duplicates, no storm; no timeout of its own for an entry's actions,
	// whose delete waits its turn at the sweep's rate; one entry at a
	// time, each read once the one before is done, so that a stop comes
	// between two entries.
	sh := *h
	sh.Dispatcher, sh.Seen, sh.Storm, sh.Timeout, sh.only = &d, nil, nil, 0, sweepOnly
	r.runner = Runner{Handler: &sh, Batch: storm.NewSweepBatch(), Concurrency: 1, Window: 1}
	r.actx = ctx
	r.show = func(j *Job) bool { return j.Plan == nil || matched(j.Plan) }
	r.flushCtx, r.flushWithin, r.flushMsg, r.flushKey = fctx, sweepFlushTime, "sweep summary", "summary"
	l := &sweepList{ctx: ctx, ses: client, pacer: pacer,
		in: &sesv2.ListSuppressedDestinationsInput{PageSize: aws.Int32(sweepPageSize)}}
	if req.Reason != "" {
		l.in.Reasons = []types.SuppressionListReason{types.SuppressionListReason(req.Reason)}
	}
	if req.Since > 0 {
		l.in.StartDate = aws.Time(time.Now().Add(-req.Since))
	}
	res := r.do(ctx, l.next, nil)
	return SweepResult{Result: res, Entries: l.entries, Complete: l.complete}
}

// sweepList yields the entries of the suppression list as items, one
// page at a time.
type sweepList struct {
	ctx   context.Context
	ses   suppression.SESLister
	pacer *pace.Pacer
	in    *sesv2.ListSuppressedDestinationsInput
	page  []types.SuppressedDestinationSummary
	// entries counts the entries read; last says the page read is the
	// list's last, failed that a list call failed, complete that every
	// entry was read.
	entries                int
	last, failed, complete bool
}

// next returns the next entry, listing the next page when needed. A list
// call that fails is an item of its own, the last.
func (l *sweepList) next() (ses.Item, bool) {
	for len(l.page) == 0 {
		if l.failed {
			return ses.Item{}, false
		}
		if l.last {
			l.complete = true
			return ses.Item{}, false
		}
		if l.pacer.Wait(l.ctx) != nil {
			return ses.Item{}, false
		}
		page, err := l.ses.ListSuppressedDestinations(l.ctx, l.in)
		if err != nil {
			l.failed = true
			if l.ctx.Err() != nil {
				return ses.Item{}, false
			}
			return ses.Item{Input: "suppression list", Envelope: ses.EnvelopeSweep,
				Err: fmt.Errorf("ListSuppressedDestinations: %w", err)}, true
		}
		l.page = page.SuppressedDestinationSummaries
		if page.NextToken == nil || *page.NextToken == "" {
			l.last = true
		} else {
			l.in.NextToken = page.NextToken
		}
	}
	e := l.page[0]
	l.page = l.page[1:]
	l.entries++
	return sweepItem(l.entries, e), true
}

// sweepItem is the i-th entry of the list as an item to route.
func sweepItem(i int, e types.SuppressedDestinationSummary) ses.Item {
	typ := ses.TypeBounce
	if e.Reason == types.SuppressionListReasonComplaint {
		typ = ses.TypeComplaint
	}
	n := &ses.Notification{Input: "suppression list #" + strconv.Itoa(i), Format: "sweep",
		Event:      ses.Event{Type: typ, Envelope: ses.EnvelopeSweep},
		Recipients: []ses.Recipient{ses.NewRecipient(aws.ToString(e.EmailAddress))}}
	if e.LastUpdateTime != nil {
		n.Event.Timestamp = e.LastUpdateTime.UTC().Format(time.RFC3339)
	}
	return ses.Item{Input: n.Input, Envelope: ses.EnvelopeSweep, Notification: n}
}

// sweepOnly leaves out of a sweep's plan what a sweep has nothing to do
// for: suppress (the address is on the list already).
func sweepOnly(p *route.Plan) {
	for i := range p.Recipients {
		d := &p.Recipients[i]
		kept := d.Actions[:0]
		for _, a := range d.Actions {
			if a.Kind != rules.ActionSuppress {
				kept = append(kept, a)
			}
		}
		d.Actions = kept
	}
}

// matched reports whether a rule matched (or failed) for some recipient.
func matched(p *route.Plan) bool {
	for i := range p.Recipients {
		if !p.Recipients[i].Unmatched {
			return true
		}
	}
	return false
}

// SweepMetrics are a sweep's own metrics: SweepEntries read and
// SweepRemoved taken off the list.
func SweepMetrics(r SweepResult) []Metric {
	return []Metric{{Name: "SweepEntries", Count: r.Entries}, {Name: "SweepRemoved", Count: r.Tally.Outcomes[actions.OutcomeRemoved]}}
}

// Summary says what the sweep came to, in a line:
//
//	12 entries read (the whole list); 12 notifications (12 recipients), …
func (r SweepResult) Summary() string {
	done := "the whole list"
	if !r.Complete {
		done = "stopped before the end of the list"
	}
	return fmt.Sprintf("%d entries read (%s); %s", r.Entries, done, r.Tally.Summary())
}

// InvokeSweep is a scheduled sweep in Lambda: within ctx's deadline (a
// list too long for one run is finished by the next ones, since the
// entries taken off are no longer listed), each entry a rule matched
// logged, the metrics written to metrics.
func (h *Handler) InvokeSweep(ctx context.Context, parts *Parts, req Sweep, metrics io.Writer) error {
	client, err := parts.SES(ctx)
	if err != nil {
		return err
	}
	res := h.Sweep(ctx, client, false, req, func(j *Job) { h.Log(ctx, j) })
	if err := WriteMetrics(metrics, time.Now(), res.Tally, SweepMetrics(res)...); err != nil {
		h.Logger.Warn("the sweep's metrics were not written", "error", err.Error())
	}
	h.Logger.Info("sweep", "entries", res.Entries, "complete", res.Complete, "summary", res.Tally.Summary())
	return nil
}
