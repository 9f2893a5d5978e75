package output

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// textWriter writes a few lines for people per input: what it is, what the
// rules decided for each recipient, what became of each action, and, in
// a dry run, each Slack message as Slack would show it. Everything that
// comes from an event is quoted when it holds a control or bidi
// character (engine.Safe).
type textWriter struct {
	w       *bufio.Writer
	explain bool
	dryRun  bool
	dests   map[string]*rules.Destination
}

// Job writes one handled input.
func (o *textWriter) Job(j *pipeline.Job) error {
	v := j.View(o.explain)
	o.item(&v)
	return nil
}

// Digest writes a digest posted (or rendered) at the end of the run.
func (o *textWriter) Digest(r storm.DigestResult) error {
	fmt.Fprintf(o.w, "digest to %s: %s\n", r.Destination, r.Outcome)
	if r.Err != nil {
		fmt.Fprintf(o.w, "  error: %s\n", ses.Safe(r.Err.Error()))
	}
	o.preview("  ", r.Message)
	o.w.WriteByte('\n')
	return nil
}

// Close writes what is buffered.
func (o *textWriter) Close() error { return o.w.Flush() }

func (o *textWriter) item(v *pipeline.View) {
	w := o.w
	switch {
	case v.Unreadable:
		fmt.Fprintf(w, "%s (%s): error: %s\n\n", ses.Safe(v.Input), v.Envelope, ses.Safe(v.Error))
		return
	case v.Panic != "":
		fmt.Fprintf(w, "%s (%s): error: panic: %s\n\n", ses.Safe(v.Input), v.Envelope, ses.Safe(v.Panic))
		return
	case v.Event == nil:
		fmt.Fprintf(w, "%s (%s): skipped: %s\n\n", ses.Safe(v.Input), v.Envelope, ses.Safe(v.Skipped))
		return
	}
	e := v.Event
	fmt.Fprintf(w, "%s (%s): %s\n", ses.Safe(v.Input), v.Envelope, ses.Safe(strings.Join(e.Title(), " ")))
	if e.Sweep {
		fmt.Fprintf(w, "  on the suppression list since %s\n", ses.Safe(orDash(e.Timestamp)))
	} else {
		fmt.Fprintf(w, "  mail %s from %s", ses.Safe(orDash(v.MessageID)), ses.Safe(orDash(e.Source)))
		if e.Subject != "" {
			fmt.Fprintf(w, ", subject %q", e.Subject)
		}
		if e.Timestamp != "" {
			fmt.Fprintf(w, ", at %s", ses.Safe(e.Timestamp))
		}
		w.WriteByte('\n')
	}
	if v.Duplicate {
		w.WriteString("  duplicate: handled before in this run, nothing done again\n")
	}
	width := 0
	for i := range v.Recipients {
		width = max(width, len(ses.Safe(v.Recipients[i].Address)))
	}
	for i := range v.Recipients {
		r := &v.Recipients[i]
		fmt.Fprintf(w, "  %-*s  %s\n", width, ses.Safe(r.Address), decision(r))
		if r.Raw != "" {
			fmt.Fprintf(w, "  %-*s  (as SES wrote it: %s)\n", width, "", ses.Safe(r.Raw))
		}
		if r.Invalid != "" {
			fmt.Fprintf(w, "  %-*s  %s\n", width, "", ses.Safe(r.Invalid))
		}
		if r.Error != "" && !o.explain { // -explain shows it on the rule
			fmt.Fprintf(w, "  %-*s  error: %s\n", width, "", ses.Safe(r.Error))
		}
		for _, t := range r.Tried {
			mark, note := "no ", ""
			switch {
			case t.Error != "":
				mark = "err"
				note = "  (failed: " + strings.TrimPrefix(t.Error, "rule "+strconv.Quote(t.Rule)+": ") + ")"
			case t.Decided:
				mark, note = "yes", "  (decides)"
			case t.Matched:
				mark, note = "yes", "  (continue)"
			}
			fmt.Fprintf(w, "  %-*s    %s %s%s\n", width, "", mark, t.Rule, ses.Safe(note))
		}
		for _, h := range r.History {
			fmt.Fprintf(w, "  %-*s    history(%q, %q) = %d\n", width, "", h.Kind, h.Window, h.Count)
		}
	}
	for i := range v.Results {
		r := &v.Results[i]
		fmt.Fprintf(w, "  %s: %s\n", r.Outcome, o.result(r))
		if r.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", ses.Safe(r.Error))
		}
		if r.Outcome == actions.OutcomeDryRun || (o.dryRun && len(r.Messages) > 0) {
			for k, m := range r.Messages {
				if len(r.Messages) > 1 {
					fmt.Fprintf(w, "    message %d of %d:\n", k+1, len(r.Messages))
				}
				o.preview("    ", m)
			}
		}
	}
	w.WriteByte('\n')
}

// preview writes m as actions.Preview shows it, each line indented and
// ruled on its left.
func (o *textWriter) preview(indent string, m actions.Message) {
	for _, line := range strings.Split(actions.Preview(m), "\n") {
		fmt.Fprintf(o.w, "%s│ %s\n", indent, ses.Safe(line))
	}
}

// decision says what the rules decided for r: "keep + notify ->
// unsuppress, notify:ses-alerts".
func decision(r *pipeline.ViewRecipient) string {
	switch {
	case r.Error != "":
		return "a rule failed: no action"
	case r.Unmatched:
		return "no rule matched: no action"
	}
	return strings.Join(r.Rules, " + ") + " -> " + strings.Join(r.Actions, ", ")
}

// result says what a result's action is about: "post to ses-alerts
// (Slack webhook $URL) about a@x.com", "take a@x.com off the SES account
// suppression list".
func (o *textWriter) result(r *pipeline.ViewResult) string {
	switch r.Kind {
	case rules.ActionNotify:
		addrs := make([]string, len(r.About))
		for i, a := range r.About {
			addrs[i] = ses.Safe(a)
		}
		where := r.Destination
		if d := o.dests[where]; d != nil {
			where += " (" + d.Describe() + ")"
		}
		return fmt.Sprintf("post to %s about %s", where, strings.Join(addrs, ", "))
	case rules.ActionUnsuppress:
		return "take " + ses.Safe(r.Recipient) + " off the SES account suppression list"
	case rules.ActionSuppress:
		return "put " + ses.Safe(r.Recipient) + " on the SES account suppression list"
	case rules.ActionLog:
		return "log " + ses.Safe(r.Recipient)
	}
	return ses.Safe(r.Recipient)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
