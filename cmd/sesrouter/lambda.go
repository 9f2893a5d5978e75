package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/pipeline"
)

const lambdaText = `Runs as an AWS Lambda function (the default when AWS_LAMBDA_RUNTIME_API is
set): SQS, SNS and EventBridge events, detected by content, and the
scheduled sweep ({"sesrouter":"sweep"}), and the presses of Slack buttons
through the function URL, signed with $SLACK_SIGNING_SECRET. The rules are loaded, and the
Slack and SES clients built and checked, once at init: a problem fails
init with one clear line. SQS: batchItemFailures names exactly the records
to deliver again (a failed action or digest, an unreadable body); SNS and
EventBridge: the invocation fails. A rule that fails at run time is logged
and counted (RuleErrors), never retried. Rules in S3 (s3://BUCKET/KEY) are
looked at again as an invocation starts once $SESROUTER_RULES_REFRESH
(default 1m; 0s: every invocation) has passed; new rules that do not load
are refused (RulesRefused): the rules in force stay.

Every SNS envelope, in an SNS record or an SQS body, is acted on only when
its signature verifies, as in serve (SESROUTER_VERIFY_SNS=off: not
checked; SESROUTER_SNS_CERT_DIR: certificates from a folder), and, with
SESROUTER_TOPICS, only for those topics. An SQS body that carries no
signature (bare SES JSON, an EventBridge event) is acted on only from a
queue of SESROUTER_QUEUES; an EventBridge event only of the function's
account. What is refused is logged and never retried; a record whose
certificate could not be fetched is retried.`

// Settings of an invocation.
const (
	lambdaConcurrency = 8   // the records of a batch acted on at once
	lambdaWindow      = 256 // the records in flight: memory stays flat
)

func cmdLambda(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("lambda", "lambda [-rules FILE]", lambdaText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml, else $LAMBDA_TASK_ROOT/rules.yaml)")
	if code := parseNoArgs(fs, args); code >= 0 {
		return code
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
func lambdaInit(rulesFlag string, stdout, stderr io.Writer, e env) (func(context.Context, jsontext.Value) (any, error), bool) {
	start := time.Now()
	gate, err := lambdaGate(e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter lambda: %v\n", err)
		return nil, false
	}
	live, parts, ok := setupLive("lambda", rulesFlag, e, stdout, stderr, lambdaConcurrency, gate)
	if !ok {
		return nil, false
	}
	if gate.Verifier == nil {
		parts.Logger.Warn("SESROUTER_VERIFY_SNS is off: SNS envelopes are acted on without their signature checked")
	}
	presses, ok := interactions("lambda", live, parts, e, stdout, stderr)
	if !ok {
		return nil, false
	}
	parts.Logger.Debug("init done", slog.Duration("init", time.Since(start)))
	return func(ctx context.Context, payload jsontext.Value) (any, error) {
		// The whole invocation is handled by the rules in force as it
		// starts: new ones come into force between invocations.
		if req, ok := functionURLRequest(payload); ok {
			return pressAnswer(ctx, presses, req), nil
		}
		rules := live.Refresh(ctx)
		h, cfg := rules.Handler, rules.Config
		actx, cancel := pipeline.ActionContext(ctx, defaultTimeout)
		defer cancel()
		if req, ok, err := pipeline.SweepRequest(payload); ok {
			if err != nil {
				return nil, err
			}
			return nil, h.InvokeSweep(actx, parts, req, stdout)
		}
		inv := h.Invoke(actx, payload, lambdaConcurrency, lambdaWindow)
		pipeline.WriteMetrics(stdout, time.Now(), inv.Tally, pipeline.StormMetrics(parts.Storm, cfg.Destinations, time.Now())...)
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

// functionURLRequest reads payload as a request through the function's
// URL (Slack's button presses), telling it by content as the other
// events are: an object with rawPath and requestContext.http.
func functionURLRequest(payload []byte) (*events.LambdaFunctionURLRequest, bool) {
	if !bytes.Contains(payload, []byte(`"rawPath"`)) || !bytes.Contains(payload, []byte(`"requestContext"`)) {
		return nil, false
	}
	var shape struct {
		RawPath        *string `json:"rawPath"`
		RequestContext *struct {
			HTTP *struct {
				Method string `json:"method"`
			} `json:"http"`
		} `json:"requestContext"`
	}
	if json.Unmarshal(payload, &shape) != nil || shape.RawPath == nil || shape.RequestContext == nil || shape.RequestContext.HTTP == nil {
		return nil, false
	}
	var req events.LambdaFunctionURLRequest
	if json.Unmarshal(payload, &req) != nil {
		return nil, false
	}
	return &req, true
}

// pressAnswer answers a request through the function URL with presses.
func pressAnswer(ctx context.Context, presses *slack.Interactions, req *events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	reply := func(status int, body []byte) events.LambdaFunctionURLResponse {
		r := events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{}, Body: string(body)}
		if body != nil {
			r.Headers["Content-Type"] = "application/json"
		}
		return r
	}
	if req.RequestContext.HTTP.Method != http.MethodPost {
		return reply(http.StatusMethodNotAllowed, nil)
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return reply(http.StatusBadRequest, nil)
		}
		body = b
	}
	if len(body) > slack.MaxInteraction {
		return reply(http.StatusRequestEntityTooLarge, nil)
	}
	header := http.Header{}
	for k, v := range req.Headers {
		header.Set(k, v)
	}
	return reply(presses.Handle(ctx, header, body))
}
