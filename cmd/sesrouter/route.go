package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
	"github.com/sesrouter/sesrouter/pipeline"
)

const routeText = `Reads SES notifications from each FILE (or standard input when there is no
FILE or FILE is -), routes every recipient by the rules, and says what was
done. A file holds one JSON document, many (one per line, or concatenated),
or a JSON array of them, in any envelope sesrouter knows (Lambda SNS or SQS
event, EventBridge event, SNS HTTP body, bare SES JSON); it is streamed.
Every FILE is opened and the rules loaded before anything is done.

Without -dry-run it carries the actions out: unsuppress and suppress on the
SES account suppression list (the AWS SDK's configuration: AWS_REGION,
credentials, AWS_ENDPOINT_URL_SESV2, ...), then one Slack message per
destination and notification (SLACK_BOT_TOKEN for channel destinations, the
variable a destination's webhook_env names for webhooks), paced per channel
or webhook (the destination's pace). Once a destination has had its
digest_after messages within its digest_window, its later notifications
are folded (outcome digested) into one digest message, posted at the end.

-dry-run evaluates and renders every action and prints what would be done,
with the exact Slack payload in JSON output, calling nothing outside the
process and needing no credentials; -format html writes one page showing
every message as Slack lays it out. -explain shows, per recipient, every
rule tried, whether it matched and which rule decided.

SIGINT or SIGTERM stops reading, lets the notifications in flight finish
(at most 10 s), posts the digests, prints the summary and exits 130 or
143; a second signal exits at once.

Exit status: 0 all good; 1 some input could not be read, a rule failed or
an action failed; 2 bad usage, bad rules or missing configuration.`

// drainTime is how long the notifications in flight get after a signal.
const drainTime = 10 * time.Second

func cmdRoute(args []string, stdin io.Reader, stdout, stderr io.Writer, e env) int {
	fs := newFlags("route", "route [-rules FILE] [-dry-run] [-explain] [-format text|json|html] [FILE ...]", routeText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	dryRun := fs.Bool("dry-run", false, "perform nothing; print what would be done")
	explain := fs.Bool("explain", false, "show every rule tried for every recipient")
	format := fs.String("format", "text", "output `format`: text (for people), json (one line per input) or html (with -dry-run: the messages as Slack shows them)")
	files, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	switch {
	case *format != "text" && *format != "json" && *format != "html":
		fmt.Fprintf(stderr, "sesrouter route: -format is text, json or html, not %q\n", *format)
		return exitUsage
	case *format == "html" && !*dryRun:
		fmt.Fprintln(stderr, "sesrouter route: -format html shows what a dry run would post: add -dry-run")
		return exitUsage
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, name := range files {
		if name == "-" {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
			return exitUsage
		}
		f.Close()
	}
	cfg, ok := loadRules(rulesPath(*rulesFlag, e), stderr)
	if !ok {
		return exitUsage
	}
	logger, err := newLogger(stderr, e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
		return exitUsage
	}
	h := &pipeline.Handler{Router: cfg.Router, Dispatcher: cfg.DryRun()}
	var pacers *actions.Pacers
	if !*dryRun {
		l, err := newLive(e, logger, pipeline.DefaultConcurrency)
		if err == nil {
			h, err = l.handler(context.Background(), cfg)
			pacers = l.pacers
		}
		if err != nil {
			fmt.Fprintf(stderr, "sesrouter route: cannot carry out the actions:\n  %s\n", joinedLines(err))
			return exitUsage
		}
		h.Logger = nil // route reports on standard output, not in a log line per input
	}
	out, err := pipeline.NewOutput(stdout, *format, *explain, *dryRun, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
		return exitUsage
	}
	progress := pipeline.NewProgress(stderr, e.stderrIsTTY && !e.stdoutIsTTY, pacers)
	return routeRun(h, out, progress, newFiles(files, stdin), stderr, e)
}

// routeRun routes what files yield, watching for signals on this
// goroutine while reading, routing and acting run on others.
func routeRun(h *pipeline.Handler, out *pipeline.Output, progress *pipeline.Progress, files *fileItems, stderr io.Writer, e env) int {
	start := time.Now()
	sigs := make(chan os.Signal, 2)
	e.notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer e.stop(sigs)
	readCtx, stopReading := context.WithCancel(context.Background())
	defer stopReading()
	actCtx, abort := context.WithCancel(context.Background())
	defer abort()

	tally := pipeline.NewTally()
	var mu sync.Mutex // the emitter against a return after a signal
	closed := false
	batch := h.NewBatch(false)
	r := pipeline.Runner{Handler: h, Batch: batch, Emit: func(j *pipeline.Job) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		tally.Add(j)
		progress.Done(tally)
		if err := out.Job(j); err != nil {
			stopReading()
		}
	}}
	done := make(chan struct{})
	go func() {
		r.Run(readCtx, actCtx, func() (engine.Item, bool) { progress.Read(); return files.next() })
		close(done)
	}()
	code := exitOK
	select {
	case <-done:
	case s := <-sigs:
		code = signalCode(s)
		stopReading()
		fmt.Fprintf(stderr, "sesrouter route: %v: stopped reading; finishing the notifications in flight (at most %s)\n", s, drainTime)
		t := time.AfterFunc(drainTime, abort)
		defer t.Stop()
		select {
		case <-done:
		case <-sigs:
			return code // a second signal: at once
		case <-time.After(drainTime + time.Second): // a rule that does not return
		}
	}
	mu.Lock()
	closed = true
	mu.Unlock()
	progress.Clear()
	dctx, cancel := context.WithTimeout(context.Background(), drainTime)
	defer cancel()
	h.FlushDigests(dctx, batch, tally)
	if err := out.Close(); err != nil {
		fmt.Fprintf(stderr, "sesrouter route: writing the output: %v\n", err)
		code = max(code, exitFailed)
	}
	fmt.Fprintf(stderr, "sesrouter route: %s, in %s\n", tally.Summary(), time.Since(start).Round(time.Millisecond))
	if code == exitOK && (tally.Failed > 0 || tally.DigestsFailed > 0) {
		code = exitFailed
	}
	return code
}

// signalCode is the exit status for a signal: 128 + its number.
func signalCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 128 + int(syscall.SIGINT)
}

// fileItems yields the items of a list of files, in order; a file that
// cannot be opened or read yields an item of its own, with the error.
type fileItems struct {
	names []string
	stdin io.Reader
	cur   *engine.Reader
	close func() error
	name  string
}

func newFiles(names []string, stdin io.Reader) *fileItems { return &fileItems{names: names, stdin: stdin} }

func (f *fileItems) next() (engine.Item, bool) {
	for {
		if f.cur == nil {
			if len(f.names) == 0 {
				return engine.Item{}, false
			}
			f.name, f.names = f.names[0], f.names[1:]
			var r io.Reader = f.stdin
			f.close = func() error { return nil }
			if f.name != "-" {
				file, err := os.Open(f.name)
				if err != nil {
					return engine.Item{Input: f.name, Err: err}, true
				}
				r, f.close = file, file.Close
			}
			f.cur = engine.NewReader(r, f.name)
		}
		it, err := f.cur.Next()
		if err == nil {
			return it, true
		}
		f.cur = nil
		f.close()
		if err != io.EOF {
			return engine.Item{Input: f.name, Err: fmt.Errorf("reading %s: %w", f.name, err)}, true
		}
	}
}
