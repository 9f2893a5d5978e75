package main

import (
	"fmt"
	"io"
	"time"

	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/output"
)

const sweepText = `Reconciles the SES account suppression list with the rules: every entry is
routed as a notification of its own (event.envelope "sweep", event.type
Bounce or Complaint from its reason, recipient.address the entry) and what
the rules unsuppress is taken off the list. Only unsuppress and log are
carried out; each destination a rule notifies gets one summary message at
the end. -dry-run reads the list and posts and removes nothing. SES calls
are paced at -rate a second. SIGINT stops cleanly with a summary.`

func cmdSweep(sig *signals, args []string, _ io.Reader, stdout, stderr io.Writer, e env) int {
	fs := newFlags("sweep", "sweep [-rules FILE] [-dry-run] [-format text|json] [-reason BOUNCE|COMPLAINT] [-since DURATION] [-rate N]", sweepText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	dryRun := fs.Bool("dry-run", false, "remove and post nothing; print what would be done")
	format := fs.String("format", "text", "output `format`: text or json (one line per entry a rule matched)")
	req := pipeline.Sweep{Rate: pipeline.DefaultSweepRate}
	fs.StringVar(&req.Reason, "reason", "", "only the entries listed for `REASON`: BOUNCE or COMPLAINT")
	fs.DurationVar(&req.Since, "since", 0, "only the entries listed or updated within `DURATION` (0: all)")
	fs.Float64Var(&req.Rate, "rate", pipeline.DefaultSweepRate, "SES calls a second, listing and removing together")
	if code := parseNoArgs(fs, args); code >= 0 {
		return code
	}
	if err := pipeline.CheckSweep(req); err != nil {
		fmt.Fprintf(stderr, "sesrouter sweep: %v\n", err)
		return exitUsage
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "sesrouter sweep: -format is text or json, not %q\n", *format)
		return exitUsage
	}
	cfg, parts, ok := setup("sweep", *rulesFlag, false, e, stderr, 1)
	if !ok {
		return exitUsage
	}
	ses, err := parts.SES(sig.ctx)
	h := &pipeline.Handler{Router: cfg.Router, Dispatcher: cfg.DryRun()}
	if err == nil && !*dryRun {
		h, err = parts.Handler(sig.ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter sweep: cannot read the suppression list: %s\n", joinedLines(err))
		return exitUsage
	}
	h.Logger = nil // sweep reports on standard output, not in a log line per entry
	out, err := output.New(stdout, *format, false, *dryRun, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter sweep: %v\n", err)
		return exitUsage
	}
	start := time.Now()
	res := h.SweepTo(sig.ctx, sig.now, ses, *dryRun, req, out, digestLine("sweep", stderr))
	return finish("sweep", res.Result, res.Summary(), start, sig.ctx, stderr)
}
