package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// Line is route's JSON output for one input, as docs/commands.md documents
// it: a notification with its recipients and results, or an input that
// was skipped or could not be read.
type Line struct {
	Input      string          `json:"input"`
	Envelope   string          `json:"envelope,omitempty"`
	Type       string          `json:"type,omitempty"`
	MessageID  string          `json:"messageId,omitempty"`
	Recipients []LineRecipient `json:"recipients,omitzero"`
	Results    []LineResult    `json:"results,omitzero"`
	Duplicate  bool            `json:"duplicate,omitempty"`
	Skipped    string          `json:"skipped,omitempty"`
	Error      string          `json:"error,omitempty"`
}

// LineRecipient is one recipient of a Line.
type LineRecipient struct {
	Address string `json:"address"`
	// Raw is the address as SES wrote it, when it differs from Address.
	Raw       string      `json:"raw,omitempty"`
	Rules     []string    `json:"rules"`
	Actions   []string    `json:"actions"`
	Unmatched bool        `json:"unmatched,omitempty"`
	Error     string      `json:"error,omitempty"`
	Tried     []LineTrial `json:"tried,omitzero"`
}

// LineTrial is one rule tried for a recipient (with -explain).
type LineTrial struct {
	Rule    string `json:"rule"`
	Matched bool   `json:"matched"`
	Decided bool   `json:"decided,omitempty"`
	Error   string `json:"error,omitempty"`
}

// LineResult is one result of a Line.
type LineResult struct {
	Action    string          `json:"action"`
	Recipient string          `json:"recipient,omitempty"`
	Outcome   actions.Outcome `json:"outcome"`
	Error     string          `json:"error,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
}

// newLine is j as a Line; explain adds every rule tried.
func newLine(j *Job, explain bool) Line {
	it := &j.Item
	l := Line{Input: it.Input, Envelope: it.Envelope, Skipped: it.Skipped, Duplicate: j.Duplicate}
	if it.Err != nil {
		l.Error = it.Err.Error()
	}
	if j.Panic != "" {
		l.Error = "panic: " + j.Panic
	}
	if j.Plan == nil {
		return l
	}
	n := j.Plan.Notification
	l.Type, l.MessageID = n.Event.Type, n.Mail.MessageID
	l.Recipients = make([]LineRecipient, len(j.Plan.Recipients))
	for i := range j.Plan.Recipients {
		d := &j.Plan.Recipients[i]
		r := LineRecipient{Address: d.Recipient.Address, Rules: []string{}, Actions: []string{}, Unmatched: d.Unmatched}
		if d.Recipient.Raw != d.Recipient.Address {
			r.Raw = d.Recipient.Raw
		}
		for _, m := range d.Matched {
			r.Rules = append(r.Rules, m.Name)
		}
		for _, a := range d.Actions {
			r.Actions = append(r.Actions, a.String())
		}
		if d.Err != nil {
			r.Error = d.Err.Error()
		}
		if explain {
			r.Tried = []LineTrial{}
			for _, t := range d.Trials {
				lt := LineTrial{Rule: t.Rule.Name, Matched: t.Matched, Decided: t.Rule == d.Decider}
				if t.Err != nil {
					lt.Error = t.Err.Error()
				}
				r.Tried = append(r.Tried, lt)
			}
		}
		l.Recipients[i] = r
	}
	l.Results = make([]LineResult, len(j.Results))
	for i := range j.Results {
		r := &j.Results[i]
		lr := LineResult{Action: r.Action(), Recipient: r.Recipient(), Outcome: r.Outcome, Payload: r.Payload}
		if r.Err != nil {
			lr.Error = r.Err.Error()
		}
		l.Results[i] = lr
	}
	return l
}

// Output writes route's output: one JSON line per input (format json) or
// a few lines of text per input for people (format text).
type Output struct {
	w       *bufio.Writer
	enc     *json.Encoder
	format  string
	explain bool
	dryRun  bool
	dests   map[string]*rules.Destination
	page    *page // the HTML page, for format html
}

// NewOutput returns an Output writing to w in format: "json", "text", or
// "html" (one page of every message rendered, for a dry run). explain
// shows every rule tried; dryRun shows the messages a dry run renders.
// cfg's destinations describe where notifies post.
func NewOutput(w io.Writer, format string, explain, dryRun bool, cfg *Config) (*Output, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	o := &Output{w: bw, enc: enc, format: format, explain: explain, dryRun: dryRun, dests: actions.ByName(cfg.Destinations)}
	switch format {
	case "json", "text":
	case "html":
		o.page = newPage(bw, cfg)
	default:
		return nil, fmt.Errorf("unknown output format %q", format)
	}
	return o, nil
}

// Job writes one handled input.
func (o *Output) Job(j *Job) error {
	switch o.format {
	case "json":
		return o.enc.Encode(newLine(j, o.explain))
	case "html":
		return o.page.job(j)
	}
	o.text(j)
	return nil
}

// Digest writes a digest posted (or rendered) at the end of the run: in
// the HTML page and the text output; JSON output has one line per input
// and leaves digests to the summary on standard error.
func (o *Output) Digest(r actions.DigestResult) error {
	switch o.format {
	case "html":
		return o.page.digest(r)
	case "text":
		fmt.Fprintf(o.w, "digest to %s: %s\n", r.Destination, r.Outcome)
		if r.Err != nil {
			fmt.Fprintf(o.w, "  error: %s\n", ses.Safe(r.Err.Error()))
		}
		for _, line := range strings.Split(actions.Preview(r.Message), "\n") {
			fmt.Fprintf(o.w, "  │ %s\n", ses.Safe(line))
		}
		o.w.WriteByte('\n')
	}
	return nil
}

// Close ends the output (the HTML page's end) and writes what is
// buffered.
func (o *Output) Close() error {
	if o.page != nil {
		if err := o.page.close(); err != nil {
			return err
		}
	}
	return o.w.Flush()
}

func (o *Output) text(j *Job) {
	w := o.w
	it := &j.Item
	switch {
	case it.Err != nil:
		fmt.Fprintf(w, "%s (%s): error: %s\n\n", ses.Safe(it.Input), it.Envelope, ses.Safe(it.Err.Error()))
		return
	case j.Panic != "":
		fmt.Fprintf(w, "%s (%s): error: panic: %s\n\n", ses.Safe(it.Input), it.Envelope, ses.Safe(j.Panic))
		return
	case j.Plan == nil:
		fmt.Fprintf(w, "%s (%s): skipped: %s\n\n", ses.Safe(it.Input), it.Envelope, ses.Safe(it.Skipped))
		return
	}
	n := j.Plan.Notification
	fmt.Fprintf(w, "%s (%s): %s\n", ses.Safe(it.Input), it.Envelope, ses.Safe(describeEvent(n)))
	if n.Event.Envelope == ses.EnvelopeSweep {
		fmt.Fprintf(w, "  on the suppression list since %s\n", ses.Safe(orDash(n.Event.Timestamp)))
	} else {
		fmt.Fprintf(w, "  mail %s from %s", ses.Safe(orDash(n.Mail.MessageID)), ses.Safe(orDash(n.Mail.Source)))
		if n.Mail.Subject != "" {
			fmt.Fprintf(w, ", subject %q", n.Mail.Subject)
		}
		if n.Event.Timestamp != "" {
			fmt.Fprintf(w, ", at %s", ses.Safe(n.Event.Timestamp))
		}
		w.WriteByte('\n')
	}
	if j.Duplicate {
		w.WriteString("  duplicate: handled before in this run, nothing done again\n")
	}
	width := 0
	for i := range j.Plan.Recipients {
		width = max(width, len(ses.Safe(j.Plan.Recipients[i].Recipient.Address)))
	}
	for i := range j.Plan.Recipients {
		d := &j.Plan.Recipients[i]
		addr := ses.Safe(d.Recipient.Address)
		fmt.Fprintf(w, "  %-*s  %s\n", width, addr, describeDecision(d))
		if d.Recipient.Raw != d.Recipient.Address {
			fmt.Fprintf(w, "  %-*s  (as SES wrote it: %s)\n", width, "", ses.Safe(d.Recipient.Raw))
		}
		if d.Recipient.Invalid != "" {
			fmt.Fprintf(w, "  %-*s  %s\n", width, "", ses.Safe(d.Recipient.Invalid))
		}
		if d.Err != nil && !o.explain { // -explain shows it on the rule
			fmt.Fprintf(w, "  %-*s  error: %s\n", width, "", ses.Safe(d.Err.Error()))
		}
		if o.explain {
			for _, t := range d.Trials {
				mark, note := "no ", ""
				switch {
				case t.Err != nil:
					mark = "err"
					note = "  (failed: " + strings.TrimPrefix(t.Err.Error(), "rule "+strconv.Quote(t.Rule.Name)+": ") + ")"
				case t.Rule == d.Decider:
					mark, note = "yes", "  (decides)"
				case t.Matched:
					mark, note = "yes", "  (continue)"
				}
				fmt.Fprintf(w, "  %-*s    %s %s%s\n", width, "", mark, t.Rule.Name, ses.Safe(note))
			}
		}
	}
	for i := range j.Results {
		r := &j.Results[i]
		fmt.Fprintf(w, "  %s: %s\n", r.Outcome, o.describeResult(r))
		if r.Err != nil {
			fmt.Fprintf(w, "    error: %s\n", ses.Safe(r.Err.Error()))
		}
		if r.Outcome == actions.OutcomeDryRun || (o.dryRun && len(r.Messages) > 0) {
			for k, m := range r.Messages {
				if len(r.Messages) > 1 {
					fmt.Fprintf(w, "    message %d of %d:\n", k+1, len(r.Messages))
				}
				for _, line := range strings.Split(actions.Preview(m), "\n") {
					fmt.Fprintf(w, "    │ %s\n", ses.Safe(line))
				}
			}
		}
	}
	w.WriteByte('\n')
}

func describeEvent(n *ses.Notification) string {
	s := n.Event.Type
	switch n.Event.Type {
	case ses.TypeBounce:
		if n.Bounce.Type == "" && n.Bounce.SubType == "" {
			return s
		}
		s += " " + n.Bounce.Type + "/" + n.Bounce.SubType
	case ses.TypeComplaint:
		if ft := n.Complaint.FeedbackType; ft != "" {
			s += " " + ft
		}
		if st := n.Complaint.SubType; st != "" {
			s += " " + st
		}
	case ses.TypeDeliveryDelay:
		s += " " + n.Delay.Type
	}
	return s
}

func describeDecision(d *route.Decision) string {
	switch {
	case d.Err != nil:
		return "a rule failed: no action"
	case d.Unmatched:
		return "no rule matched: no action"
	}
	names := make([]string, len(d.Matched))
	for i, r := range d.Matched {
		names[i] = r.Name
	}
	acts := make([]string, len(d.Actions))
	for i, a := range d.Actions {
		acts[i] = a.String()
	}
	return strings.Join(names, " + ") + " -> " + strings.Join(acts, ", ")
}

func (o *Output) describeResult(r *actions.Result) string {
	s := r.Step
	switch s.Action.Kind {
	case rules.ActionNotify:
		addrs := make([]string, len(s.Recipients))
		for i, d := range s.Recipients {
			addrs[i] = ses.Safe(d.Recipient.Address)
		}
		where := s.Action.Destination
		if d := o.dests[where]; d != nil {
			where += " (" + d.Describe() + ")"
		}
		return fmt.Sprintf("post to %s about %s", where, strings.Join(addrs, ", "))
	case rules.ActionUnsuppress:
		return "take " + ses.Safe(r.Recipient()) + " off the SES account suppression list"
	case rules.ActionSuppress:
		return "put " + ses.Safe(r.Recipient()) + " on the SES account suppression list"
	case rules.ActionLog:
		return "log " + ses.Safe(r.Recipient())
	}
	return ses.Safe(r.Recipient())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
