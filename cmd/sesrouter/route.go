package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/output"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

const routeText = `Reads SES notifications from each FILE (- or none: standard input), in any
envelope, one JSON document, many, or an array; routes every recipient by
the rules and carries out the actions: SES suppression-list changes, then
Slack messages, paced per channel and folded into digests in a storm.
Every FILE is opened and the rules loaded before anything is done.

-dry-run calls nothing outside the process and needs no credentials: it
prints what would be done (with the exact Slack payloads in -format json;
-format html renders every message as Slack shows it). Its history(kind,
window) reads $SESROUTER_STATE_TABLE when set, never writing it, and is 0
without it. -explain shows every rule tried for every recipient, and the
history counts each rule saw.

SIGINT or SIGTERM stops reading, lets the notifications in flight finish
(at most 10 s), posts the digests and exits 130 or 143; a second signal
exits at once. Exit status: 0 all good; 1 an input, a rule or an action
failed; 2 bad usage, rules or configuration.`

// drainTime is how long the notifications in flight get after a signal.
const drainTime = 10 * time.Second

func cmdRoute(sig *signals, args []string, stdin io.Reader, stdout, stderr io.Writer, e env) int {
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
	if err := pipeline.CheckFiles(files); err != nil {
		fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
		return exitUsage
	}
	if *dryRun && e.getenv("GOGC") == "" {
		// A dry run's live heap is a few MB, and nearly all it allocates
		// is garbage at once: collecting at 200% spends a fifth less time.
		// Put back on return, so that a caller in the same process (a
		// test, a benchmark's baseline) keeps its own setting.
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	cfg, parts, ok := setup("route", *rulesFlag, *dryRun, e, stderr, pipeline.DefaultConcurrency)
	if !ok {
		return exitUsage
	}
	// A dry run folds storms as a live run would, so that it shows what
	// would happen: the digests too.
	// Its history(kind, window) reads the state table, when there is
	// one, and never writes it; without one every count is 0.
	h := &pipeline.Handler{Router: cfg.Router, Dispatcher: cfg.DryRun(), Storm: storm.New(), ReadState: parts.State}
	if _, _, uses := cfg.Rules.UsesHistory(); uses && *dryRun && parts.State == nil {
		fmt.Fprintln(stderr, "sesrouter route: SESROUTER_STATE_TABLE is not set: every history(kind, window) counts 0 in this dry run")
	}
	var pacers *pace.Pacers
	if !*dryRun {
		var err error
		if h, err = parts.Handler(sig.ctx, cfg); err != nil {
			return cannot("route", err, stderr)
		}
		h.Logger, pacers = nil, parts.Slack.Pacers // route reports on standard output, not in a log line per input
	}
	out, err := output.New(stdout, *format, *explain, *dryRun, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter route: %v\n", err)
		return exitUsage
	}
	progress := pipeline.NewProgress(stderr, e.stderrIsTTY && !e.stdoutIsTTY, pacers)
	drain := drainTime
	if e.drain > 0 {
		drain = e.drain
	}
	start := time.Now()
	in := pipeline.Files(files, stdin)
	wait := onStop(sig.ctx, func() {
		s, _ := stoppedBy(sig.ctx)
		fmt.Fprintf(stderr, "sesrouter route: %v: stopped reading; finishing the notifications in flight (at most %s)\n", s, drain)
	})
	res := pipeline.Route(sig.ctx, sig.now, h, out, *dryRun, progress, in.Next, func() { in.Close() }, drain, digestLine("route", stderr))
	wait()
	return finish("route", res, res.Tally.Summary(), start, sig.ctx, stderr)
}
