package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
)

const routeText = `Reads SES notifications from each FILE (or standard input when there is no
FILE or FILE is -), routes every recipient by the rules, and says what was
done. A file holds one JSON document or many, one per line (NDJSON), in any
envelope sesrouter knows (Lambda SNS or SQS event, EventBridge event, SNS
HTTP body, bare SES JSON); it is streamed.

Without -dry-run it carries the actions out: unsuppress and suppress on the
SES account suppression list (the AWS SDK's configuration: AWS_REGION,
credentials, AWS_ENDPOINT_URL_SESV2, ...), then one Slack message per
destination and notification (SLACK_BOT_TOKEN for channel destinations, the
variable a destination's webhook_env names for webhooks). Notifications are
handled concurrently; the output keeps the input order. Posts are paced at
about one message per second per channel or webhook; once a destination has
taken its digest_after messages (default 10) in the run, its later
notifications are folded (outcome digested) into one digest message, posted
at the end and reported on standard error.

-dry-run evaluates and renders every action and prints what would be done,
with the exact Slack payload in JSON output, calling nothing outside the
process and needing no credentials. -explain shows, per recipient, every
rule tried, whether it matched and which rule decided.

Exit status: 0 all good; 1 some input could not be read, a rule failed or
an action failed; 2 bad usage, bad rules or missing configuration.`

type routeOptions struct {
	dryRun   bool
	explain  bool
	format   string
	progress bool
	// concurrency bounds the notifications whose actions run at once.
	concurrency int
	// timeout bounds the actions of one notification, retries included.
	timeout time.Duration
}

// Defaults of the live actions.
const (
	defaultConcurrency = 16
	defaultTimeout     = 2 * time.Minute
	// maxPending bounds the jobs read but not yet printed. It is larger
	// than the concurrency so that one notification waiting out a retry
	// does not stop the others behind it; memory stays bounded by it.
	maxPending = 1024
)

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
	rules, ok := loadRules(rulesPath(*rulesFlag, e), stderr)
	if !ok {
		return exitUsage
	}
	logger, err := newLogger(stderr, e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
		return exitUsage
	}
	opt.concurrency, opt.timeout = defaultConcurrency, defaultTimeout
	if e.actionTimeout > 0 {
		opt.timeout = e.actionTimeout
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	disp, err := newDispatcher(ctx, rules, e, logger, opt.dryRun, opt.concurrency)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter route: cannot carry out the actions:\n  %s\n", joinedLines(err))
		return exitUsage
	}
	// Progress goes to a terminal, and only when the output does not go
	// to that terminal too (the two would mix on one screen).
	opt.progress = e.stderrIsTTY && !e.stdoutIsTTY
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	// The run is one batch: each destination takes its digest_after
	// messages, and a digest of the rest at the end. A dry run renders
	// every message.
	var batch *actions.Batch
	if !opt.dryRun {
		batch = disp.NewBatch()
		ctx = actions.WithBatch(ctx, batch)
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	rt := &router{router: engine.NewRouter(rules), rules: rules, disp: disp, ctx: ctx, out: out, stderr: stderr, opt: opt, start: time.Now()}
	rt.startPipeline()
	for _, name := range files {
		if err := rt.file(name, stdin); err != nil {
			rt.waitPipeline()
			rt.flush()
			fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
			rt.stats.failed++
			rt.startPipeline()
		}
	}
	rt.waitPipeline()
	rt.flush()
	if batch != nil {
		rt.flushDigests(batch)
	}
	rt.summary()
	if rt.stats.failed > 0 {
		return exitFailed
	}
	return exitOK
}

type router struct {
	router *engine.Router
	rules  *engine.Rules
	disp   *actions.Dispatcher
	ctx    context.Context
	out    *bufio.Writer
	stderr io.Writer
	opt    routeOptions
	plan   engine.Plan
	line   []byte // the JSON line being written, reused

	// The live pipeline: jobs enter queue in input order, their actions
	// run at most opt.concurrency at a time, and the writer prints them
	// in input order. A dry run runs each job inline instead.
	queue      chan *job
	sem        chan struct{}
	writerDone chan struct{}

	start        time.Time
	lastProgress time.Time
	progressOn   bool
	inputs       int // counted as read, for progress
	stats        struct {
		notifications, recipients, skipped, failed int
	}
}

// job is one input on its way through route.
type job struct {
	it      engine.Item
	plan    *engine.Plan
	results []actions.Result
	done    chan struct{}
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
		if rt.opt.progress && rt.inputs%1024 == 0 {
			rt.showProgress(it.Input)
		}
	}
}

func (rt *router) item(it *engine.Item) {
	rt.inputs++
	j := &job{it: *it}
	if n := it.Notification; n != nil {
		if rt.opt.dryRun {
			rt.router.RouteInto(&rt.plan, n) // printed before the next one is routed
			j.plan = &rt.plan
		} else {
			j.plan = rt.router.Route(n)
		}
	}
	if rt.opt.dryRun {
		if j.plan != nil {
			j.results = rt.disp.Dispatch(rt.ctx, j.plan)
		}
		rt.emit(j)
		return
	}
	j.done = make(chan struct{})
	rt.queue <- j // blocks while the window is full: memory stays bounded
	if j.plan == nil || len(j.plan.Recipients) == 0 {
		close(j.done)
		return
	}
	rt.sem <- struct{}{}
	go func() {
		defer func() { <-rt.sem; close(j.done) }()
		ctx, cancel := context.WithTimeout(rt.ctx, rt.opt.timeout)
		defer cancel()
		j.results = rt.disp.Dispatch(ctx, j.plan)
	}()
}

// startPipeline starts the writer of the live pipeline.
func (rt *router) startPipeline() {
	if rt.opt.dryRun {
		return
	}
	rt.queue = make(chan *job, maxPending)
	rt.sem = make(chan struct{}, rt.opt.concurrency)
	rt.writerDone = make(chan struct{})
	go func() {
		defer close(rt.writerDone)
		for j := range rt.queue {
			<-j.done
			rt.emit(j)
		}
	}()
}

// waitPipeline waits until every job read so far is done and printed.
func (rt *router) waitPipeline() {
	if rt.opt.dryRun {
		return
	}
	close(rt.queue)
	<-rt.writerDone
}

// emit counts and prints one job, in input order.
func (rt *router) emit(j *job) {
	it := &j.it
	failed := false
	switch {
	case it.Err != nil:
		failed = true
	case it.Skipped != "":
		rt.stats.skipped++
	default:
		rt.stats.notifications++
		rt.stats.recipients += len(it.Notification.Recipients)
		for i := range j.plan.Recipients {
			failed = failed || j.plan.Recipients[i].Err != nil
		}
		for _, r := range j.results {
			failed = failed || r.Outcome == actions.OutcomeFailed
		}
	}
	if failed {
		rt.stats.failed++
	}
	if rt.opt.format == "json" {
		rt.writeJSON(j)
	} else {
		rt.writeText(j)
	}
}

// writeJSON writes the line of SPEC's "JSON output" for one input:
//
//	{"input","envelope","type","messageId","recipients":[{"address","rules","actions",
//	 "unmatched"?,"error"?,"tried"?}],"results":[{"action","recipient"?,"outcome","error"?,"payload"?}]}
//
// or {"input","envelope","skipped"|"error"} for an input that is not a
// notification. It is written by hand, not through encoding/json: the
// dry run's payloads are JSON already, and encoding/json would check and
// compact every one of them again.
func (rt *router) writeJSON(j *job) {
	it := &j.it
	b := rt.line[:0]
	b = append(b, `{"input":`...)
	b = actions.AppendJSONString(b, it.Input)
	b = append(b, `,"envelope":`...)
	b = actions.AppendJSONString(b, it.Envelope)
	n := it.Notification
	if n == nil {
		if it.Skipped != "" {
			b = append(b, `,"skipped":`...)
			b = actions.AppendJSONString(b, it.Skipped)
		}
		if it.Err != nil {
			b = append(b, `,"error":`...)
			b = actions.AppendJSONString(b, it.Err.Error())
		}
		rt.line = append(b, "}\n"...)
		rt.out.Write(rt.line)
		return
	}
	b = append(b, `,"type":`...)
	b = actions.AppendJSONString(b, n.Event.Type)
	b = append(b, `,"messageId":`...)
	b = actions.AppendJSONString(b, n.Mail.MessageID)
	b = append(b, `,"recipients":[`...)
	for i := range j.plan.Recipients {
		d := &j.plan.Recipients[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"address":`...)
		b = actions.AppendJSONString(b, d.Recipient.Address)
		b = append(b, `,"rules":[`...)
		for k, r := range d.Matched {
			if k > 0 {
				b = append(b, ',')
			}
			b = actions.AppendJSONString(b, r.Name)
		}
		b = append(b, `],"actions":[`...)
		for k, a := range d.Actions {
			if k > 0 {
				b = append(b, ',')
			}
			b = actions.AppendJSONString(b, a.String())
		}
		b = append(b, ']')
		if d.Unmatched {
			b = append(b, `,"unmatched":true`...)
		}
		if d.Err != nil {
			b = append(b, `,"error":`...)
			b = actions.AppendJSONString(b, d.Err.Error())
		}
		if rt.opt.explain && len(d.Trials) > 0 {
			b = append(b, `,"tried":[`...)
			for k, t := range d.Trials {
				if k > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"rule":`...)
				b = actions.AppendJSONString(b, t.Rule.Name)
				b = append(b, `,"matched":`...)
				b = strconv.AppendBool(b, t.Matched)
				if t.Rule == d.Decider {
					b = append(b, `,"decided":true`...)
				}
				if t.Err != nil {
					b = append(b, `,"error":`...)
					b = actions.AppendJSONString(b, t.Err.Error())
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"results":[`...)
	for i, r := range j.results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"action":`...)
		b = actions.AppendJSONString(b, r.Action)
		if r.Recipient != "" {
			b = append(b, `,"recipient":`...)
			b = actions.AppendJSONString(b, r.Recipient)
		}
		b = append(b, `,"outcome":`...)
		b = actions.AppendJSONString(b, r.Outcome)
		if r.Error != "" {
			b = append(b, `,"error":`...)
			b = actions.AppendJSONString(b, r.Error)
		}
		if len(r.Payload) > 0 {
			b = append(b, `,"payload":`...)
			b = append(b, r.Payload...) // valid JSON, made by actions
		}
		b = append(b, '}')
	}
	rt.line = append(b, "]}\n"...)
	rt.out.Write(rt.line)
}

func (rt *router) writeText(j *job) {
	w := rt.out
	it := &j.it
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
	for i := range j.plan.Recipients {
		d := &j.plan.Recipients[i]
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
	for _, r := range j.results {
		fmt.Fprintf(w, "  %s: %s\n", r.Outcome, rt.describeResult(r))
		if r.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", r.Error)
		}
		if rt.opt.dryRun {
			for i, m := range r.Messages {
				if len(r.Messages) > 1 {
					fmt.Fprintf(w, "    message %d of %d:\n", i+1, len(r.Messages))
				}
				for _, line := range strings.Split(actions.Preview(m), "\n") {
					fmt.Fprintf(w, "    │ %s\n", line)
				}
			}
		}
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
	rate := float64(rt.inputs) / now.Sub(rt.start).Seconds()
	if r := []rune(input); len(r) > 40 { // one terminal row, so that \r erases it all
		input = "…" + string(r[len(r)-39:])
	}
	fmt.Fprintf(rt.stderr, "\r\033[Ksesrouter: %d inputs, %.0f/s, at %s", rt.inputs, rate, input)
}

func (rt *router) flush() {
	rt.out.Flush()
	if rt.progressOn {
		fmt.Fprint(rt.stderr, "\r\033[K")
		rt.progressOn = false
	}
}

// flushDigests posts the run's digests and says how each went, one line
// each; a digest not posted counts as a failure.
func (rt *router) flushDigests(b *actions.Batch) {
	ctx, cancel := context.WithTimeout(rt.ctx, rt.opt.timeout)
	defer cancel()
	for _, r := range b.Flush(ctx) {
		dest := strings.TrimPrefix(r.Action, "digest:")
		what := r.Messages[0].Text
		if r.Outcome == actions.OutcomeFailed {
			rt.stats.failed++
			fmt.Fprintf(rt.stderr, "sesrouter route: digest to %s not posted (%s): %s\n", dest, what, r.Error)
			continue
		}
		fmt.Fprintf(rt.stderr, "sesrouter route: digest to %s %s: %s\n", dest, r.Outcome, what)
	}
}

func (rt *router) summary() {
	s := rt.stats
	fmt.Fprintf(rt.stderr, "sesrouter route: %s (%s), %d skipped, %d failed, in %s\n",
		plural(s.notifications, "notification"), plural(s.recipients, "recipient"), s.skipped, s.failed,
		time.Since(rt.start).Round(time.Millisecond))
}
