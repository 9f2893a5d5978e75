package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// Dispatcher carries out plans: the SES actions of each recipient first,
// then one message per destination with every recipient routed there and
// the outcomes of their SES actions. One failing action never stops the
// others; every outcome is in the results. What it does is what its parts
// do: a dry run is a Dispatcher whose parts only render (DryRun,
// suppression.DryRun, DryRunLogbook).
type Dispatcher struct {
	// Destinations and Notifiers are the destinations by name, and what
	// posts to each.
	Destinations map[string]*rules.Destination
	Notifiers    map[string]Notifier
	// SES carries out unsuppress and suppress; nil fails them (a rules
	// file without them needs no AWS client).
	SES Suppressor
	// Log carries out the log action; nil fails it.
	Log Logbook
}

// Folder decides, for each notice Dispatch is to post, whether it is
// posted or folded into a digest (a storm's, a sweep's summary), and in
// which thread it is posted.
type Folder interface {
	// Admit says whether the notice to dest, which n posts, is posted
	// (true) or folded (false, and then nothing of it is rendered), and
	// the ts of the thread its messages go in ("" for none). An error
	// fails the notify, and nothing is folded.
	Admit(ctx context.Context, dest *rules.Destination, n Notifier, notice *Notice) (posted bool, threadTS string, err error)
}

// Dispatch carries out plan and returns one result per step, in the order
// of plan.Steps. folder decides which notifies are folded into digests;
// a nil folder posts every notify.
func (d *Dispatcher) Dispatch(ctx context.Context, plan *route.Plan, folder Folder) []Result {
	steps := plan.Steps()
	results := make([]Result, 0, len(steps))
	var sesOut map[*ses.Recipient][]SESOutcome // made at the first SES action
	n := plan.Notification
	for _, s := range steps {
		r := Result{Step: s}
		switch s.Action.Kind {
		case rules.ActionDrop:
			r.Outcome = OutcomeDropped
		case rules.ActionLog:
			if d.Log != nil {
				r.Outcome = d.Log.Log(ctx, plan, s.Recipient)
			} else {
				r.Outcome, r.Err = OutcomeFailed, errors.New("no logbook")
			}
		case rules.ActionUnsuppress, rules.ActionSuppress:
			o := d.sesAction(ctx, s, n)
			if sesOut == nil {
				sesOut = map[*ses.Recipient][]SESOutcome{}
			}
			sesOut[s.Recipient] = append(sesOut[s.Recipient], o)
			r.Outcome, r.Err = o.Outcome, o.Err
		case rules.ActionNotify:
			d.notify(ctx, &r, n, sesOut, folder)
		}
		results = append(results, r)
	}
	return results
}

// Duplicates are the results of a notification already handled: every
// step is OutcomeDuplicate, and nothing is done again.
func Duplicates(plan *route.Plan) []Result {
	steps := plan.Steps()
	results := make([]Result, len(steps))
	for i, s := range steps {
		results[i] = Result{Step: s, Outcome: OutcomeDuplicate}
	}
	return results
}

func (d *Dispatcher) sesAction(ctx context.Context, s route.Step, n *ses.Notification) SESOutcome {
	switch {
	case d.SES == nil:
		return SESOutcome{Action: s.Action.Kind, Outcome: OutcomeFailed, Err: errors.New("no SES client")}
	case s.Action.Kind == rules.ActionUnsuppress:
		return d.SES.Unsuppress(ctx, s.Recipient)
	default:
		return d.SES.Suppress(ctx, s.Recipient, n.Event.Type)
	}
}

// notify posts (or renders) the messages of one notify step into r:
// posted when every part was posted, failed with the first error,
// digested when folder folds it. A notice whose recipients would take
// more than the destination's digest_after messages takes digest_after
// messages and one digest of the recipients left (foldRecipients).
func (d *Dispatcher) notify(ctx context.Context, r *Result, n *ses.Notification, sesOut map[*ses.Recipient][]SESOutcome, folder Folder) {
	name := r.Step.Action.Destination
	notifier, dest := d.Notifiers[name], d.Destinations[name]
	if notifier == nil || dest == nil {
		r.Outcome, r.Err = OutcomeFailed, fmt.Errorf("destination %s is not set up", name)
		return
	}
	notice := Notice{Notification: n, Mention: dest.Mention, Recipients: make([]NoticeRecipient, len(r.Step.Recipients)),
		Destination: dest.Name, Unsuppress: dest.HasButton(rules.ButtonUnsuppress)}
	for i, dec := range r.Step.Recipients {
		notice.Recipients[i] = NoticeRecipient{Recipient: dec.Recipient, Rule: DecidingRule(dec), SES: sesOut[dec.Recipient]}
	}
	// A notice counts once toward the storm limit, however many parts it
	// takes; one folded into a digest is never rendered on its own.
	threadTS := ""
	if folder != nil {
		posted, ts, err := folder.Admit(ctx, dest, notifier, &notice)
		if err != nil {
			r.Outcome, r.Err = OutcomeFailed, err
			return
		}
		if !posted {
			r.Outcome = OutcomeDigested // posted with the folder's digest
			return
		}
		threadTS = ts
	}
	r.Messages = BuildMessages(notice)
	if after, _ := dest.StormLimits(); len(r.Messages) > after {
		// Its recipients fold as a storm's notices do: one notification
		// takes at most digest_after messages of its own, then one digest.
		r.Messages = foldRecipients(notice, dest, after)
	}
	for i := range r.Messages {
		r.Messages[i].ThreadTS = threadTS // in the storm's thread, while it lasts
	}
	for i, m := range r.Messages {
		outcome, err := notifier.Post(ctx, m)
		if err != nil {
			if len(r.Messages) > 1 {
				err = fmt.Errorf("part %d of %d: %w", i+1, len(r.Messages), err)
			}
			r.Outcome, r.Err = OutcomeFailed, err
			return
		}
		r.Outcome = outcome
	}
	if r.Outcome == OutcomeDryRun {
		r.Payload = payloads(notifier, r.Messages)
	}
}

// payloads are the bodies of msgs: one, or an array of several. Each
// body is compact JSON as the notifier marshalled it, and is not
// marshalled again.
func payloads(n Notifier, msgs []Message) jsontext.Value {
	if len(msgs) == 1 {
		return n.Payload(msgs[0])
	}
	b := []byte{'['}
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, n.Payload(m)...)
	}
	return append(b, ']')
}

// DecidingRule names the rule shown for a recipient: the one that
// decided, or the last that matched.
func DecidingRule(d *route.Decision) string {
	if d.Decider != nil {
		return d.Decider.Name
	}
	if len(d.Matched) > 0 {
		return d.Matched[len(d.Matched)-1].Name
	}
	return ""
}

// Logbook carries out the log action.
type Logbook interface {
	// Log writes one line about recipient r of plan and says what became
	// of it.
	Log(ctx context.Context, plan *route.Plan, r *ses.Recipient) Outcome
}

// SlogLogbook writes the log action's line to a slog.Logger.
type SlogLogbook struct{ Logger *slog.Logger }

var _ Logbook = SlogLogbook{}

// Log implements Logbook: one info line naming the notification, the
// recipient and the rules that matched.
func (l SlogLogbook) Log(ctx context.Context, plan *route.Plan, rc *ses.Recipient) Outcome {
	n := plan.Notification
	var rules []string
	for i := range plan.Recipients {
		if plan.Recipients[i].Recipient == rc {
			for _, r := range plan.Recipients[i].Matched {
				rules = append(rules, r.Name)
			}
		}
	}
	l.Logger.LogAttrs(ctx, slog.LevelInfo, "recipient",
		slog.String("input", n.Input), slog.String("type", n.Event.Type),
		slog.String("messageId", n.Mail.MessageID), slog.String("recipient", rc.Address),
		slog.String("status", rc.Status), slog.String("diagnosticCode", rc.DiagnosticCode),
		slog.String("rules", strings.Join(rules, ",")))
	return OutcomeLogged
}

// dryRunLogbook logs nothing.
type dryRunLogbook struct{}

// DryRunLogbook returns a Logbook that writes nothing: every log is
// OutcomeDryRun.
func DryRunLogbook() Logbook { return dryRunLogbook{} }

// Log implements Logbook.
func (dryRunLogbook) Log(context.Context, *route.Plan, *ses.Recipient) Outcome {
	return OutcomeDryRun
}
