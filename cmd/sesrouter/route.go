package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
)

const routeText = `Reads SES notifications from each FILE (or standard input when there is no
FILE or FILE is -), routes every recipient by the rules, and says what was
done. A file holds one JSON document or many, one per line (NDJSON), in any
envelope sesrouter knows (Lambda SNS or SQS event, EventBridge event, SNS
HTTP body, bare SES JSON); it is streamed.

-dry-run evaluates and renders every action and prints what would be done,
calling nothing outside the process. -explain shows, per recipient, every
rule tried, whether it matched and which rule decided.

Exit status: 0 all good; 1 some input could not be read or a rule failed;
2 bad usage or bad rules.`

type routeOptions struct {
	dryRun   bool
	explain  bool
	format   string
	progress bool
}

func cmdRoute(args []string, stdin io.Reader, stdout, stderr io.Writer, e env) int {
	fs := newFlags("route", "route [-rules FILE] [-dry-run] [-explain] [-format text|json] [FILE ...]", routeText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	var opt routeOptions
	fs.BoolVar(&opt.dryRun, "dry-run", false, "perform nothing; print what would be done")
	fs.BoolVar(&opt.explain, "explain", false, "show every rule tried for every recipient")
	fs.StringVar(&opt.format, "format", "text", "output `format`: text (for people) or json (one line per notification)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if opt.format != "text" && opt.format != "json" {
		fmt.Fprintf(stderr, "sesrouter route: -format is text or json, not %q\n", opt.format)
		return exitUsage
	}
	if !opt.dryRun {
		fmt.Fprintln(stderr, "sesrouter route: only -dry-run is available in this version: live Slack and SES actions are not built yet")
		return exitUsage
	}
	rules, ok := loadRules(rulesPath(*rulesFlag, e), stderr)
	if !ok {
		return exitUsage
	}
	// Progress goes to a terminal, and only when the output does not go
	// to that terminal too (the two would mix on one screen).
	opt.progress = e.stderrIsTTY && !e.stdoutIsTTY
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	rt := &router{router: engine.NewRouter(rules), rules: rules, out: out, stderr: stderr, opt: opt, start: time.Now()}
	for _, name := range files {
		if err := rt.file(name, stdin); err != nil {
			rt.flush()
			fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
			rt.stats.failed++
		}
	}
	rt.flush()
	rt.summary()
	if rt.stats.failed > 0 {
		return exitFailed
	}
	return exitOK
}

type router struct {
	router *engine.Router
	rules  *engine.Rules
	out    *bufio.Writer
	stderr io.Writer
	opt    routeOptions
	plan   engine.Plan

	start        time.Time
	lastProgress time.Time
	progressOn   bool
	stats        struct {
		items, notifications, recipients, skipped, failed int
	}
}

func (rt *router) file(name string, stdin io.Reader) error {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	rd := engine.NewReader(r, name)
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		rt.item(&it)
		if rt.opt.progress && rt.stats.items%1024 == 0 {
			rt.showProgress(it.Input)
		}
	}
}

func (rt *router) item(it *engine.Item) {
	rt.stats.items++
	switch {
	case it.Err != nil:
		rt.stats.failed++
	case it.Skipped != "":
		rt.stats.skipped++
	default:
		rt.stats.notifications++
		rt.stats.recipients += len(it.Notification.Recipients)
		rt.router.RouteInto(&rt.plan, it.Notification)
		for i := range rt.plan.Recipients {
			if rt.plan.Recipients[i].Err != nil {
				rt.stats.failed++
				break
			}
		}
	}
	var results []actions.Result
	if it.Notification != nil {
		results = actions.DryRun(&rt.plan)
	}
	if rt.opt.format == "json" {
		rt.writeJSON(it, results)
	} else {
		rt.writeText(it, results)
	}
}

// jsonNotification is one line of SPEC's JSON output for a notification.
type jsonNotification struct {
	Input      string           `json:"input"`
	Envelope   string           `json:"envelope"`
	Type       string           `json:"type"`
	MessageID  string           `json:"messageId"`
	Recipients []jsonRecipient  `json:"recipients"`
	Results    []actions.Result `json:"results"`
}

type jsonRecipient struct {
	Address   string      `json:"address"`
	Rules     []string    `json:"rules"`
	Actions   []string    `json:"actions"`
	Unmatched bool        `json:"unmatched,omitempty"`
	Error     string      `json:"error,omitempty"`
	Tried     []jsonTrial `json:"tried,omitempty"`
}

type jsonTrial struct {
	Rule    string `json:"rule"`
	Matched bool   `json:"matched"`
	Decided bool   `json:"decided,omitempty"`
	Error   string `json:"error,omitempty"`
}

// jsonOther is the JSON line of an input that is not a notification.
type jsonOther struct {
	Input    string `json:"input"`
	Envelope string `json:"envelope"`
	Skipped  string `json:"skipped,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (rt *router) writeJSON(it *engine.Item, results []actions.Result) {
	var v any
	if n := it.Notification; n != nil {
		jn := jsonNotification{Input: it.Input, Envelope: it.Envelope, Type: n.Event.Type, MessageID: n.Mail.MessageID,
			Recipients: make([]jsonRecipient, len(rt.plan.Recipients)), Results: results}
		for i := range rt.plan.Recipients {
			d := &rt.plan.Recipients[i]
			jr := jsonRecipient{Address: d.Recipient.Address, Rules: make([]string, len(d.Matched)),
				Actions: make([]string, len(d.Actions)), Unmatched: d.Unmatched}
			for j, r := range d.Matched {
				jr.Rules[j] = r.Name
			}
			for j, a := range d.Actions {
				jr.Actions[j] = a.String()
			}
			if d.Err != nil {
				jr.Error = d.Err.Error()
			}
			if rt.opt.explain {
				for _, t := range d.Trials {
					jt := jsonTrial{Rule: t.Rule.Name, Matched: t.Matched, Decided: t.Rule == d.Decider}
					if t.Err != nil {
						jt.Error = t.Err.Error()
					}
					jr.Tried = append(jr.Tried, jt)
				}
			}
			jn.Recipients[i] = jr
		}
		v = jn
	} else {
		jo := jsonOther{Input: it.Input, Envelope: it.Envelope, Skipped: it.Skipped}
		if it.Err != nil {
			jo.Error = it.Err.Error()
		}
		v = jo
	}
	b, err := json.Marshal(v)
	if err != nil { // cannot happen with these types; never lose the line
		b, _ = json.Marshal(jsonOther{Input: it.Input, Envelope: it.Envelope, Error: "encoding output: " + err.Error()})
	}
	rt.out.Write(b)
	rt.out.WriteByte('\n')
}

func (rt *router) writeText(it *engine.Item, results []actions.Result) {
	w := rt.out
	n := it.Notification
	switch {
	case it.Err != nil:
		fmt.Fprintf(w, "%s (%s): error: %v\n\n", it.Input, it.Envelope, it.Err)
		return
	case n == nil:
		fmt.Fprintf(w, "%s (%s): skipped: %s\n\n", it.Input, it.Envelope, it.Skipped)
		return
	}
	fmt.Fprintf(w, "%s (%s): %s\n", it.Input, it.Envelope, describeEvent(n))
	fmt.Fprintf(w, "  mail %s from %s", orDash(n.Mail.MessageID), orDash(n.Mail.Source))
	if n.Mail.Subject != "" {
		fmt.Fprintf(w, ", subject %q", n.Mail.Subject)
	}
	if n.Event.Timestamp != "" {
		fmt.Fprintf(w, ", at %s", n.Event.Timestamp)
	}
	w.WriteByte('\n')
	if len(n.Recipients) == 0 {
		w.WriteString("  no recipients\n")
	}
	width := 0
	for _, r := range n.Recipients {
		width = max(width, len(r.Address))
	}
	for i := range rt.plan.Recipients {
		d := &rt.plan.Recipients[i]
		fmt.Fprintf(w, "  %-*s  %s\n", width, d.Recipient.Address, describeDecision(d))
		if d.Err != nil && !rt.opt.explain { // -explain shows it on the rule
			fmt.Fprintf(w, "  %-*s  error: %v\n", width, "", d.Err)
		}
		if rt.opt.explain {
			for _, t := range d.Trials {
				mark := "no "
				switch {
				case t.Err != nil:
					mark = "err"
				case t.Matched:
					mark = "yes"
				}
				note := ""
				switch {
				case t.Err != nil:
					note = "  (failed: " + strings.TrimPrefix(t.Err.Error(), "rule "+strconv.Quote(t.Rule.Name)+": ") + ")"
				case t.Rule == d.Decider:
					note = "  (decides)"
				case t.Matched:
					note = "  (continue)"
				}
				fmt.Fprintf(w, "  %-*s    %s %s%s\n", width, "", mark, t.Rule.Name, note)
			}
		}
	}
	for _, r := range results {
		fmt.Fprintf(w, "  %s: %s\n", r.Outcome, rt.describeResult(r))
	}
	w.WriteByte('\n')
}

func describeEvent(n *engine.Notification) string {
	s := n.Event.Type
	switch n.Event.Type {
	case engine.TypeBounce:
		s += " " + n.Bounce.Type + "/" + n.Bounce.SubType
	case engine.TypeComplaint:
		if ft := n.Complaint.FeedbackType; ft != "" {
			s += " " + ft
		}
		if st := n.Complaint.SubType; st != "" {
			s += " " + st
		}
	case engine.TypeDeliveryDelay:
		s += " " + n.Delay.Type
	}
	return s
}

func describeDecision(d *engine.Decision) string {
	if d.Unmatched {
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

func (rt *router) describeResult(r actions.Result) string {
	s := r.Step
	switch s.Action.Kind {
	case engine.ActionNotify:
		addrs := make([]string, len(s.Recipients))
		for i, d := range s.Recipients {
			addrs[i] = d.Recipient.Address
		}
		where := s.Action.Destination
		if d := rt.rules.Destinations[where]; d != nil {
			where += " (" + d.Describe() + ")"
		}
		return fmt.Sprintf("post to %s about %s", where, strings.Join(addrs, ", "))
	case engine.ActionUnsuppress:
		return "take " + r.Recipient + " off the SES account suppression list"
	case engine.ActionSuppress:
		return "put " + r.Recipient + " on the SES account suppression list"
	case engine.ActionLog:
		return "log " + r.Recipient
	case engine.ActionDrop:
		return r.Recipient
	}
	return r.Action + " " + r.Recipient
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// showProgress prints a progress line on the terminal, at most once a
// second and only once the run has lasted a second.
func (rt *router) showProgress(input string) {
	now := time.Now()
	if now.Sub(rt.start) < time.Second || now.Sub(rt.lastProgress) < time.Second {
		return
	}
	rt.lastProgress = now
	rt.progressOn = true
	rate := float64(rt.stats.items) / now.Sub(rt.start).Seconds()
	if r := []rune(input); len(r) > 40 { // one terminal row, so that \r erases it all
		input = "…" + string(r[len(r)-39:])
	}
	fmt.Fprintf(rt.stderr, "\r\033[Ksesrouter: %d inputs, %.0f/s, at %s", rt.stats.items, rate, input)
}

func (rt *router) flush() {
	rt.out.Flush()
	if rt.progressOn {
		fmt.Fprint(rt.stderr, "\r\033[K")
		rt.progressOn = false
	}
}

func (rt *router) summary() {
	s := rt.stats
	fmt.Fprintf(rt.stderr, "sesrouter route: %s (%s), %d skipped, %d failed, in %s\n",
		plural(s.notifications, "notification"), plural(s.recipients, "recipient"), s.skipped, s.failed,
		time.Since(rt.start).Round(time.Millisecond))
}
