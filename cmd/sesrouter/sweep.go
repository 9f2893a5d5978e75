package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/sesrouter/sesrouter/pipeline"
)

const sweepText = `Reconciles the SES account suppression list with the rules: every entry is
routed as a notification of its own (event.envelope "sweep", event.type
Bounce or Complaint from its reason, recipient.address the entry) and what
the rules unsuppress is taken off the list. Only unsuppress and log are
carried out; each destination a rule notifies gets one summary message at
the end. -dry-run reads the list and posts and removes nothing. SES calls
are paced at -rate a second. SIGINT stops cleanly with a summary.`

func cmdSweep(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("sweep", "sweep [-rules FILE] [-dry-run] [-format text|json] [-reason BOUNCE|COMPLAINT] [-since DURATION] [-rate N]", sweepText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	dryRun := fs.Bool("dry-run", false, "remove and post nothing; print what would be done")
	format := fs.String("format", "text", "output `format`: text or json (one line per entry a rule matched)")
	req := pipeline.Sweep{Rate: pipeline.DefaultSweepRate}
	fs.StringVar(&req.Reason, "reason", "", "only the entries listed for `REASON`: BOUNCE or COMPLAINT")
	fs.DurationVar(&req.Since, "since", 0, "only the entries listed or updated within `DURATION` (0: all)")
	fs.Float64Var(&req.Rate, "rate", pipeline.DefaultSweepRate, "SES calls a second, listing and removing together")
	args, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	if !noArgs("sweep", args, stderr) {
		return exitUsage
	}
	if err := pipeline.CheckSweep(req); err != nil {
		fmt.Fprintf(stderr, "sesrouter sweep: %v\n", err)
		return exitUsage
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "sesrouter sweep: -format is text or json, not %q\n", *format)
		return exitUsage
	}
	cfg, parts, ok := setup("sweep", *rulesFlag, e, stderr, 1)
	if !ok {
		return exitUsage
	}
	ses, err := parts.SES(context.Background())
	h := &pipeline.Handler{Router: cfg.Router, Dispatcher: cfg.DryRun()}
	if err == nil && !*dryRun {
		h, err = parts.Handler(context.Background(), cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter sweep: cannot read the suppression list: %s\n", joinedLines(err))
		return exitUsage
	}
	h.Logger = nil
	out, err := pipeline.NewOutput(stdout, *format, false, *dryRun, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter sweep: %v\n", err)
		return exitUsage
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 1)
	e.notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer e.stop(sigs)
	code = exitOK
	go func() {
		if s, ok := <-sigs; ok {
			code = signalCode(s)
			stop()
		}
	}()
	start := time.Now()
	res := h.Sweep(ctx, ses, *dryRun, req, func(j *pipeline.Job) { out.Job(j) })
	out.Close()
	done := "the whole list"
	if !res.Complete {
		done = "stopped before the end of the list"
	}
	fmt.Fprintf(stderr, "sesrouter sweep: %d entries read (%s); %s, in %s\n", res.Entries, done, res.Tally.Summary(), time.Since(start).Round(time.Millisecond))
	if code == exitOK && (res.Tally.Failed > 0 || res.Tally.DigestsFailed > 0) {
		code = exitFailed
	}
	return code
}

// lambdaSweep runs a scheduled sweep within the invocation's deadline;
// a list too long for one run is finished by the next ones, since the
// entries taken off are no longer listed.
func lambdaSweep(ctx context.Context, parts *pipeline.Parts, h *pipeline.Handler, req pipeline.Sweep, stdout io.Writer) error {
	ses, err := parts.SES(ctx)
	if err != nil {
		return err
	}
	res := h.Sweep(ctx, ses, false, req, func(j *pipeline.Job) { h.Log(ctx, j) })
	pipeline.WriteMetrics(stdout, time.Now(), res.Tally, pipeline.SweepMetrics(res)...)
	h.Logger.Info("sweep", "entries", res.Entries, "complete", res.Complete, "summary", res.Tally.Summary())
	return nil
}
