package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
)

const lambdaText = `Runs as an AWS Lambda function (the default when AWS_LAMBDA_RUNTIME_API is
set): one handler for SNS, SQS and EventBridge events, detected by content.
The rules are loaded and compiled, and the Slack and SES clients built, once
at init; a rules file that does not load fails init with check's message.

Posts are paced at about one message per second per channel or webhook. An
invocation is one batch: once a destination has taken its digest_after
messages (default 10), its later notifications are folded (outcome
digested) into one digest message, posted at the end of the invocation.

SQS: the response names, in batchItemFailures, exactly the records with a
failed action or an unreadable body, or folded into a digest that could not
be posted, so that only those are retried. SNS and
EventBridge: the invocation fails when an action failed, so that Lambda's
retries and on-failure destination take over.`

// lambdaConcurrency bounds the records of one batch handled at once.
const lambdaConcurrency = 8

func cmdLambda(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("lambda", "lambda [-rules FILE]", lambdaText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml, else $LAMBDA_TASK_ROOT/rules.yaml)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	h, code := newLambdaHandler(*rulesFlag, stdout, stderr, e)
	if h == nil {
		return code
	}
	h.logger.Debug("init done", slog.Duration("init", time.Since(e.start)))
	lambda.Start(h.invoke)
	return exitOK // lambda.Start returns only when the runtime API goes away
}

// lambdaHandler is what init builds once and every invocation uses.
type lambdaHandler struct {
	router  *engine.Router
	disp    *actions.Dispatcher
	logger  *slog.Logger
	metrics io.Writer // CloudWatch Embedded Metric Format lines
}

// newLambdaHandler does the init: rules, logger, clients. On failure it
// prints why and returns the exit status.
func newLambdaHandler(rulesFlag string, stdout, stderr io.Writer, e env) (*lambdaHandler, int) {
	rules, ok := loadRules(rulesPath(rulesFlag, e), stderr)
	if !ok {
		return nil, exitUsage
	}
	logger, err := newLogger(stderr, e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter lambda: %v\n", err)
		return nil, exitUsage
	}
	disp, err := newDispatcher(context.Background(), rules, e, logger, false, lambdaConcurrency)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter lambda: cannot carry out the actions:\n  %s\n", joinedLines(err))
		return nil, exitUsage
	}
	return &lambdaHandler{router: engine.NewRouter(rules), disp: disp, logger: logger, metrics: stdout}, exitOK
}

// handled is one input of an invocation, once handled.
type handled struct {
	item    engine.Item
	plan    *engine.Plan
	results []actions.Result
	// failure says why the input counts as failed ("" when it does not).
	failure string
}

// invoke handles one invocation: an SQS batch gets a partial batch
// response; an SNS or EventBridge event an error when anything failed.
func (h *lambdaHandler) invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	items := engine.Decode("invocation", payload)
	done := make([]handled, len(items))
	actx, cancel := actionContext(ctx)
	defer cancel()
	// The invocation is one batch: each destination takes its
	// digest_after messages, and a digest of the rest at the end.
	batch := h.disp.NewBatch()
	actx = actions.WithBatch(actx, batch)
	sem := make(chan struct{}, lambdaConcurrency)
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			done[i] = h.handle(actx, items[i])
		}()
	}
	wg.Wait()
	h.flushDigests(actx, batch, done)
	h.writeMetrics(done)

	sqs := false
	var failures []events.SQSBatchItemFailure
	var failed []string
	for _, d := range done {
		if d.item.Envelope == engine.EnvelopeSQS {
			sqs = true
		}
		if d.failure == "" {
			continue
		}
		failed = append(failed, d.item.Input+": "+d.failure)
		if d.item.Envelope == engine.EnvelopeSQS && d.item.EnvelopeID != "" {
			failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: d.item.EnvelopeID})
		}
	}
	switch {
	case sqs && len(failures) == len(failed):
		return events.SQSEventResponse{BatchItemFailures: append([]events.SQSBatchItemFailure{}, failures...)}, nil
	case len(failed) > 0:
		// Not SQS, or an SQS failure without a message id to name: the
		// whole invocation fails, and Lambda (or the queue) retries it.
		return nil, fmt.Errorf("%d of %d notifications failed: %s", len(failed), len(done), strings.Join(failed, "; "))
	}
	return nil, nil
}

// flushDigests posts the batch's digests and logs one line for each. The
// notifications folded into a digest that was not posted count as failed,
// so that SQS delivers them again: nobody has seen them.
func (h *lambdaHandler) flushDigests(ctx context.Context, b *actions.Batch, done []handled) {
	failed := map[string]string{}
	for _, r := range b.Flush(ctx) {
		dest := strings.TrimPrefix(r.Action, "digest:")
		attrs := []slog.Attr{slog.String("destination", dest), slog.String("outcome", r.Outcome), slog.String("digest", r.Messages[0].Text)}
		if r.Outcome == actions.OutcomeFailed {
			failed[dest] = r.Error
			h.logger.LogAttrs(ctx, slog.LevelError, "digest", append(attrs, slog.String("error", r.Error))...)
			continue
		}
		h.logger.LogAttrs(ctx, slog.LevelInfo, "digest", attrs...)
	}
	if len(failed) == 0 {
		return
	}
	for i := range done {
		for _, r := range done[i].results {
			dest := r.Step.Action.Destination
			if err, ok := failed[dest]; ok && r.Outcome == actions.OutcomeDigested {
				why := "digest to " + dest + " not posted: " + err
				if done[i].failure != "" {
					why = done[i].failure + "; " + why
				}
				done[i].failure = why
			}
		}
	}
}

// actionContext bounds the actions so that the invocation returns before
// the function's deadline: a second, or a tenth of the time left when
// that is less, is kept for the response.
func actionContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, defaultTimeout)
	}
	margin := min(time.Second, time.Until(dl)/10)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

// handle routes one input, carries out its actions and logs one line.
func (h *lambdaHandler) handle(ctx context.Context, it engine.Item) handled {
	d := handled{item: it}
	switch {
	case it.Err != nil:
		d.failure = "unreadable: " + it.Err.Error()
	case it.Notification != nil:
		d.plan = h.router.Route(it.Notification)
		d.results = h.disp.Dispatch(ctx, d.plan)
		var why []string
		for _, dec := range d.plan.Recipients {
			if dec.Err != nil {
				why = append(why, dec.Err.Error())
			}
		}
		for _, r := range d.results {
			if r.Outcome == actions.OutcomeFailed {
				who := r.Action
				if r.Recipient != "" {
					who += " " + r.Recipient
				}
				why = append(why, who+": "+r.Error)
			}
		}
		d.failure = strings.Join(why, "; ")
	}
	h.logHandled(ctx, &d)
	return d
}

// logHandled writes the one log line of an input: ids, type, and per
// recipient the deciding rule, actions and outcomes.
func (h *lambdaHandler) logHandled(ctx context.Context, d *handled) {
	it := &d.item
	attrs := []slog.Attr{
		slog.String("input", it.Input), slog.String("envelope", it.Envelope),
	}
	if it.EnvelopeID != "" {
		attrs = append(attrs, slog.String("envelopeId", it.EnvelopeID))
	}
	if it.SNSMessageID != "" {
		attrs = append(attrs, slog.String("snsMessageId", it.SNSMessageID))
	}
	level, msg := slog.LevelInfo, "notification"
	switch {
	case it.Err != nil:
		level, msg = slog.LevelError, "unreadable input"
		attrs = append(attrs, slog.String("error", it.Err.Error()))
	case it.Notification == nil:
		msg = "skipped"
		attrs = append(attrs, slog.String("reason", it.Skipped))
	default:
		n := it.Notification
		attrs = append(attrs, slog.String("sesMessageId", n.Mail.MessageID), slog.String("type", n.Event.Type))
		recips := make([]logRecipient, len(d.plan.Recipients))
		for i := range d.plan.Recipients {
			dec := &d.plan.Recipients[i]
			lr := logRecipient{Address: dec.Recipient.Address, Unmatched: dec.Unmatched, Actions: []string{}}
			if dec.Decider != nil {
				lr.Rule = dec.Decider.Name
			}
			for _, a := range dec.Actions {
				lr.Actions = append(lr.Actions, a.String())
			}
			if dec.Err != nil {
				lr.Error = dec.Err.Error()
			}
			recips[i] = lr
		}
		attrs = append(attrs, slog.Any("recipients", recips), slog.Any("results", d.results))
		if d.failure != "" {
			level = slog.LevelError
			attrs = append(attrs, slog.String("failure", d.failure))
		}
	}
	h.logger.LogAttrs(ctx, level, msg, attrs...)
}

// logRecipient is a recipient in a notification's log line.
type logRecipient struct {
	Address   string   `json:"address"`
	Rule      string   `json:"rule,omitempty"`
	Actions   []string `json:"actions"`
	Unmatched bool     `json:"unmatched,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// writeMetrics writes CloudWatch Embedded Metric Format lines for one
// invocation: notifications by type, recipients by deciding rule, and
// actions by kind and outcome.
func (h *lambdaHandler) writeMetrics(done []handled) {
	byType, byRule, byOutcome := map[string]int{}, map[string]int{}, map[[2]string]int{}
	for _, d := range done {
		switch {
		case d.item.Err != nil:
			byType["(unreadable)"]++
		case d.item.Notification == nil:
			byType["(skipped)"]++
		default:
			byType[d.item.Notification.Event.Type]++
			for _, dec := range d.plan.Recipients {
				rule := "(unmatched)"
				switch {
				case dec.Decider != nil:
					rule = dec.Decider.Name
				case len(dec.Matched) > 0:
					rule = dec.Matched[len(dec.Matched)-1].Name
				}
				byRule[rule]++
			}
			for _, r := range d.results {
				kind, _, _ := strings.Cut(r.Action, ":")
				byOutcome[[2]string{kind, r.Outcome}]++
			}
		}
	}
	now := time.Now().UnixMilli()
	for _, t := range slices.Sorted(maps.Keys(byType)) {
		h.emf(now, []string{"Type"}, map[string]string{"Type": t}, "Notifications", byType[t])
	}
	for _, r := range slices.Sorted(maps.Keys(byRule)) {
		h.emf(now, []string{"Rule"}, map[string]string{"Rule": r}, "Recipients", byRule[r])
	}
	keys := slices.SortedFunc(maps.Keys(byOutcome), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		h.emf(now, []string{"Action", "Outcome"}, map[string]string{"Action": k[0], "Outcome": k[1]}, "Actions", byOutcome[k])
	}
}

// emf writes one Embedded Metric Format document: one count metric in the
// sesrouter namespace, with its dimensions.
func (h *lambdaHandler) emf(ts int64, dims []string, values map[string]string, metric string, count int) {
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": ts,
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "sesrouter",
				"Dimensions": [][]string{dims},
				"Metrics":    []any{map[string]string{"Name": metric, "Unit": "Count"}},
			}},
		},
		metric: count,
	}
	for k, v := range values {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return
	}
	h.metrics.Write(append(b, '\n'))
}
