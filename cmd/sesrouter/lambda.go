package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/sesrouter/sesrouter/pipeline"
)

const lambdaText = `Runs as an AWS Lambda function (the default when AWS_LAMBDA_RUNTIME_API is
set): one handler for SQS, SNS and EventBridge events, detected by content,
and for the scheduled sweep ({"sesrouter":"sweep"}). The rules are loaded
and compiled, and the Slack and SES clients built and their credentials
checked, once at init; a rules file that does not load, or credentials
that cannot be found, fail init with one clear line.

A destination's storm state lives as long as the container: once it has
had digest_after messages within its digest_window, its later
notifications are folded into one digest per invocation, posted before the
invocation returns. Posts are paced at the destination's pace times
SESROUTER_CONCURRENCY (how many containers may post at once).

SQS: batchItemFailures names exactly the records with a failed action, an
unreadable body, or folded into a digest that could not be posted, so that
only those are delivered again. SNS and EventBridge: the invocation fails
when an action failed. A rule that fails at run time is logged and counted
(RuleErrors) but never retried: a retry would fail the same way.`

// Settings of an invocation.
const (
	lambdaConcurrency = 8   // the records of a batch acted on at once
	lambdaWindow      = 256 // the records in flight: memory stays flat
)

func cmdLambda(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("lambda", "lambda [-rules FILE]", lambdaText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml, else $LAMBDA_TASK_ROOT/rules.yaml)")
	args, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	if !noArgs("lambda", args, stderr) {
		return exitUsage
	}
	if e.getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		fmt.Fprintln(stderr, "sesrouter lambda: not running in AWS Lambda (AWS_LAMBDA_RUNTIME_API is not set); to try events locally, use sesrouter route -dry-run FILE")
		return exitUsage
	}
	invoke, ok := lambdaInit(*rulesFlag, stdout, stderr, e)
	if !ok {
		return exitUsage
	}
	lambda.Start(invoke)
	return exitOK // lambda.Start returns only when the runtime API goes away
}

// lambdaInit does the init: rules, logger, clients. On failure it prints
// why and reports false.
func lambdaInit(rulesFlag string, stdout, stderr io.Writer, e env) (func(context.Context, json.RawMessage) (any, error), bool) {
	cfg, ok := loadRules(rulesPath(rulesFlag, e), stderr)
	if !ok {
		return nil, false
	}
	logger, err := newLogger(stderr, e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter lambda: %v\n", err)
		return nil, false
	}
	l, err := newLive(e, logger, lambdaConcurrency)
	var h *pipeline.Handler
	if err == nil {
		h, err = l.handler(context.Background(), cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter lambda: cannot carry out the actions:\n  %s\n", joinedLines(err))
		return nil, false
	}
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		actx, cancel := pipeline.ActionContext(ctx, defaultTimeout)
		defer cancel()
		if req, ok := pipeline.SweepRequest(payload); ok {
			return nil, lambdaSweep(actx, l, h, cfg, req, stdout)
		}
		inv := h.Invoke(actx, payload, lambdaConcurrency, lambdaWindow)
		pipeline.WriteMetrics(stdout, time.Now(), inv.Tally, l.stormMetrics(cfg)...)
		switch {
		case inv.Err != nil:
			return nil, inv.Err
		case inv.SQS:
			failures := []events.SQSBatchItemFailure{}
			for _, id := range inv.FailedIDs {
				failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: id})
			}
			return events.SQSEventResponse{BatchItemFailures: failures}, nil
		}
		return nil, nil
	}, true
}

// stormMetrics are a Storming metric per destination: 1 while its
// notifies are being folded, else 0.
func (l *live) stormMetrics(cfg *pipeline.Config) []pipeline.Metric {
	var ms []pipeline.Metric
	now := time.Now()
	for _, d := range cfg.Destinations {
		v := 0
		if l.storm.Storming(d, now) {
			v = 1
		}
		ms = append(ms, pipeline.Metric{Name: "Storming", Dims: map[string]string{"Destination": d.Name}, Count: v})
	}
	return ms
}
