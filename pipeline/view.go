package pipeline

import (
	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// View is one handled item as sesrouter shows it, built once from a
// finished Job: every fact of it that an output shows, and nothing to
// derive again. As JSON it is route's line for the item, as
// docs/commands.md shows it; the members marked json:"-" are for the
// text output and the HTML page (package pipeline/output) only. A Job's
// log line shows its recipients and results.
type View struct {
	Input    string `json:"input"`
	Envelope string `json:"envelope,omitzero"`
	// Type and MessageID are the notification's event type and SES
	// message id.
	Type       string          `json:"type,omitzero"`
	MessageID  string          `json:"messageId,omitzero"`
	Recipients []ViewRecipient `json:"recipients,omitzero"`
	Results    []ViewResult    `json:"results,omitzero"`
	Duplicate  bool            `json:"duplicate,omitzero"`
	Skipped    string          `json:"skipped,omitzero"`
	// Error says why the item failed as a whole: it could not be read
	// (Unreadable), or handling it panicked ("panic: " and Panic).
	Error string `json:"error,omitzero"`

	Unreadable bool   `json:"-"`
	Panic      string `json:"-"`
	// Event describes the notification routed; nil when there was none
	// (the input was skipped or unreadable).
	Event *ViewEvent `json:"-"`
}

// ViewEvent is what the text output and the HTML page say of a
// notification besides its type and message id.
type ViewEvent struct {
	notification *ses.Notification
	// Sweep says that the notification is an entry of the suppression
	// list, read by a sweep, rather than an event SES sent.
	Sweep bool
	// Timestamp is the event's; Source and Subject the mail's.
	Timestamp, Source, Subject string
}

// Title names the event type and subtype (actions.EventTitle), made when
// asked for: the JSON output does not show it.
func (e *ViewEvent) Title() []string { return actions.EventTitle(e.notification) }

// ViewRecipient is one recipient of a View and what the rules decided
// for it.
type ViewRecipient struct {
	Address string `json:"address"`
	// Raw is the address as SES wrote it, when it differs from Address.
	Raw string `json:"raw,omitzero"`
	// Rules are the rules that matched; Actions what they ask for.
	Rules     []string `json:"rules"`
	Actions   []string `json:"actions"`
	Unmatched bool     `json:"unmatched,omitzero"`
	// Error is a rule's failure: the recipient got no action.
	Error string `json:"error,omitzero"`
	// Tried are the rules tried, in order: with explain only.
	Tried []ViewTrial `json:"tried,omitzero"`
	// History are the history(kind, window) counts the rules saw, in
	// the order asked: with explain only, and only when some rule asked.
	History []ViewHistory `json:"history,omitzero"`

	// Invalid says why the address is not a valid mailbox ("" when it
	// is).
	Invalid string `json:"-"`
}

// ViewTrial is one rule tried for a recipient.
type ViewTrial struct {
	Rule    string `json:"rule"`
	Matched bool   `json:"matched"`
	// Decided says that this rule ended the evaluation.
	Decided bool   `json:"decided,omitzero"`
	Error   string `json:"error,omitzero"`
}

// ViewHistory is one history(kind, window) a rule asked for a
// recipient, and the count it saw.
type ViewHistory struct {
	Kind   string `json:"kind"`
	Window string `json:"window"`
	Count  int    `json:"count"`
}

// ViewResult is what became of one step of the plan.
type ViewResult struct {
	// Action is the action as the rules name it: "unsuppress",
	// "notify:ses-alerts".
	Action string `json:"action"`
	// Recipient is the address of a per-recipient action; "" for a
	// notify.
	Recipient string          `json:"recipient,omitzero"`
	Outcome   actions.Outcome `json:"outcome"`
	Error     string          `json:"error,omitzero"`
	// Payload is, for a notify only rendered, the exact JSON body that
	// would be sent to Slack (actions.Result.Payload), written in the
	// JSON line as it is.
	Payload jsontext.Value `json:"payload,omitzero"`

	Kind rules.ActionKind `json:"-"`
	// Destination is a notify's destination, and About the addresses of
	// the recipients it tells of.
	Destination string   `json:"-"`
	About       []string `json:"-"`
	// Messages are a notify's messages, posted or rendered.
	Messages []actions.Message `json:"-"`
}

// View returns the job's view; explain adds every rule tried for every
// recipient. Call it once the job is finished: it shares the job's
// messages and payloads.
func (j *Job) View(explain bool) View {
	it := &j.Item
	v := View{Input: it.Input, Envelope: it.Envelope, Skipped: it.Skipped, Duplicate: j.Duplicate, Panic: j.Panic}
	if it.Err != nil {
		v.Error, v.Unreadable = it.Err.Error(), true
	}
	if j.Panic != "" {
		v.Error = "panic: " + j.Panic
	}
	if j.Plan == nil {
		return v
	}
	n := j.Plan.Notification
	v.Type, v.MessageID = n.Event.Type, n.Mail.MessageID
	v.Event = &ViewEvent{notification: n, Sweep: n.Event.Envelope == ses.EnvelopeSweep,
		Timestamp: n.Event.Timestamp, Source: n.Mail.Source, Subject: n.Mail.Subject}
	v.Recipients = make([]ViewRecipient, len(j.Plan.Recipients))
	for i := range j.Plan.Recipients {
		d := &j.Plan.Recipients[i]
		r := ViewRecipient{Address: d.Recipient.Address, Rules: make([]string, len(d.Matched)),
			Actions: make([]string, len(d.Actions)), Unmatched: d.Unmatched, Invalid: d.Recipient.Invalid}
		if d.Recipient.Raw != d.Recipient.Address {
			r.Raw = d.Recipient.Raw
		}
		for k, m := range d.Matched {
			r.Rules[k] = m.Name
		}
		for k, a := range d.Actions {
			r.Actions[k] = a.String()
		}
		if d.Err != nil {
			r.Error = d.Err.Error()
		}
		if explain {
			r.Tried = make([]ViewTrial, len(d.Trials))
			for k, t := range d.Trials {
				r.Tried[k] = ViewTrial{Rule: t.Rule.Name, Matched: t.Matched, Decided: t.Rule == d.Decider}
				if t.Err != nil {
					r.Tried[k].Error = t.Err.Error()
				}
			}
			for _, hs := range d.History {
				r.History = append(r.History, ViewHistory{Kind: hs.Kind, Window: hs.Window, Count: hs.Count})
			}
		}
		v.Recipients[i] = r
	}
	v.Results = make([]ViewResult, len(j.Results))
	for i := range j.Results {
		r := &j.Results[i]
		vr := ViewResult{Action: r.Action(), Recipient: r.Recipient(), Outcome: r.Outcome, Payload: r.Payload,
			Kind: r.Step.Action.Kind, Destination: r.Step.Action.Destination, Messages: r.Messages}
		if r.Err != nil {
			vr.Error = r.Err.Error()
		}
		if len(r.Step.Recipients) > 0 {
			vr.About = make([]string, len(r.Step.Recipients))
			for k, d := range r.Step.Recipients {
				vr.About[k] = d.Recipient.Address
			}
		}
		v.Results[i] = vr
	}
	return v
}
