package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/sesrouter/sesrouter/engine"
)

// Dispatcher carries out plans: the SES actions of each recipient first,
// then one message per destination with every recipient routed there and
// the outcomes of their SES actions. One failing action never stops the
// others; every outcome is in the results.
type Dispatcher struct {
	// Rules are the rules the plans come from (for their destinations).
	Rules *engine.Rules
	// SES carries out unsuppress and suppress; nil fails them (a rules
	// file without them needs no AWS client).
	SES *SuppressionList
	// Notifiers are the destinations by name.
	Notifiers map[string]Notifier
	// Logger receives the log action.
	Logger *slog.Logger
	// Seen, when set, makes a notification handled before in this process
	// (same SNS message id, or same feedback id and recipient) a
	// duplicate: no action, every result "duplicate". Not in a dry run.
	Seen *Seen
	// DryRun performs nothing: every action is "dry-run" (drop is
	// "dropped"), and a notify result carries the payload it would send.
	DryRun bool
}

// Dispatch carries out plan and returns one result per action, in the
// order of plan.Steps.
func (d *Dispatcher) Dispatch(ctx context.Context, plan *engine.Plan) []Result {
	steps := plan.Steps()
	if d.Seen != nil && !d.DryRun && len(steps) > 0 {
		keys := seenKeys(plan.Notification)
		if d.Seen.begin(keys) {
			return duplicates(steps)
		}
		results := d.dispatch(ctx, plan, steps)
		for _, r := range results {
			if r.Outcome == OutcomeFailed {
				d.Seen.forget(keys)
				break
			}
		}
		return results
	}
	return d.dispatch(ctx, plan, steps)
}

// duplicates are the results of a notification already handled: no
// action is taken again.
func duplicates(steps []engine.Step) []Result {
	results := make([]Result, len(steps))
	for i, s := range steps {
		results[i] = Result{Action: s.Action.String(), Outcome: OutcomeDuplicate, Step: s}
		if s.Recipient != nil {
			results[i].Recipient = s.Recipient.Address
		}
	}
	return results
}

func (d *Dispatcher) dispatch(ctx context.Context, plan *engine.Plan, steps []engine.Step) []Result {
	results := make([]Result, 0, len(steps))
	var ses map[*engine.Recipient][]SESOutcome // made at the first SES action
	n := plan.Notification
	for _, s := range steps {
		r := Result{Action: s.Action.String(), Step: s}
		if s.Recipient != nil {
			r.Recipient = s.Recipient.Address
		}
		switch s.Action.Kind {
		case engine.ActionDrop:
			r.Outcome = OutcomeDropped
		case engine.ActionLog:
			r.Outcome = OutcomeLogged
			if d.DryRun {
				r.Outcome = OutcomeDryRun
			} else {
				d.log(ctx, plan, s.Recipient)
			}
		case engine.ActionUnsuppress, engine.ActionSuppress:
			o := d.sesAction(ctx, s, n)
			if ses == nil {
				ses = map[*engine.Recipient][]SESOutcome{}
			}
			ses[s.Recipient] = append(ses[s.Recipient], o)
			r.Outcome, r.Error = o.Outcome, o.Error
		case engine.ActionNotify:
			r.Outcome, r.Error, r.Payload, r.Messages = d.notify(ctx, s, n, ses)
		}
		results = append(results, r)
	}
	return results
}

func (d *Dispatcher) sesAction(ctx context.Context, s engine.Step, n *engine.Notification) SESOutcome {
	switch {
	case d.DryRun:
		return SESOutcome{Action: s.Action.Kind, Outcome: OutcomeDryRun}
	case d.SES == nil:
		return SESOutcome{Action: s.Action.Kind, Outcome: OutcomeFailed, Error: "no SES client"}
	case s.Action.Kind == engine.ActionUnsuppress:
		return d.SES.Unsuppress(ctx, s.Recipient.Address)
	default:
		return d.SES.Suppress(ctx, s.Recipient.Address, n.Event.Type)
	}
}

// notify posts (or, in a dry run, renders) the messages of one notify
// step: posted when every part was posted, failed with the first error,
// digested when ctx's Batch (WithBatch) folds it into a digest.
func (d *Dispatcher) notify(ctx context.Context, s engine.Step, n *engine.Notification, ses map[*engine.Recipient][]SESOutcome) (outcome, errText string, payload json.RawMessage, msgs []Message) {
	notifier := d.Notifiers[s.Action.Destination]
	if notifier == nil {
		return OutcomeFailed, "destination " + s.Action.Destination + " is not set up", nil, nil
	}
	notice := Notice{Notification: n, Recipients: make([]NoticeRecipient, len(s.Recipients))}
	for i, dec := range s.Recipients {
		notice.Recipients[i] = NoticeRecipient{Recipient: dec.Recipient, Rule: decidingRule(dec), SES: ses[dec.Recipient]}
	}
	notice.Destination = d.Rules.Destinations[s.Action.Destination]
	msgs = BuildMessages(notice)
	if d.DryRun {
		if len(msgs) == 1 {
			return OutcomeDryRun, "", notifier.Payload(msgs[0]), msgs
		}
		parts := make([][]byte, len(msgs))
		for i, m := range msgs {
			parts[i] = notifier.Payload(m)
		}
		return OutcomeDryRun, "", append(append([]byte{'['}, bytes.Join(parts, []byte{','})...), ']'), msgs
	}
	if b := batchFrom(ctx); b != nil && !b.admit(s.Action.Destination, digestAfter(notice.Destination), len(msgs), &notice) {
		return OutcomeDigested, "", nil, nil // posted with the batch's digest
	}
	for i, m := range msgs {
		if err := notifier.Post(ctx, m); err != nil {
			if len(msgs) > 1 {
				return OutcomeFailed, fmt.Sprintf("part %d of %d: %v", i+1, len(msgs), err), nil, msgs
			}
			return OutcomeFailed, err.Error(), nil, msgs
		}
	}
	return OutcomePosted, "", nil, msgs
}

// decidingRule names the rule shown for a recipient: the one that decided,
// or the last that matched.
func decidingRule(d *engine.Decision) string {
	if d.Decider != nil {
		return d.Decider.Name
	}
	if len(d.Matched) > 0 {
		return d.Matched[len(d.Matched)-1].Name
	}
	return ""
}

func (d *Dispatcher) log(ctx context.Context, plan *engine.Plan, rc *engine.Recipient) {
	if d.Logger == nil {
		return
	}
	n := plan.Notification
	var rules []string
	for i := range plan.Recipients {
		if plan.Recipients[i].Recipient == rc {
			for _, r := range plan.Recipients[i].Matched {
				rules = append(rules, r.Name)
			}
		}
	}
	d.Logger.LogAttrs(ctx, slog.LevelInfo, "recipient",
		slog.String("input", n.Input), slog.String("type", n.Event.Type),
		slog.String("messageId", n.Mail.MessageID), slog.String("recipient", rc.Address),
		slog.String("status", rc.Status), slog.String("diagnosticCode", rc.DiagnosticCode),
		slog.String("rules", strings.Join(rules, ",")))
}
