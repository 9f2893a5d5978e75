package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// lambdaRules notify every bounce to the webhook in $SLACK_WEBHOOK_TEST,
// except those at broken.example, which go to a webhook that does not
// exist ($SLACK_WEBHOOK_GONE), and unsuppress no-suppress addresses.
const lambdaRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      pace: 0s
  gone:
    slack:
      webhook_env: SLACK_WEBHOOK_GONE
      pace: 0s
rules:
  - name: broken
    when: recipient.domain == "broken.example"
    actions: [{notify: gone}]
  - name: keep
    when: recipient.local startsWith "no-suppress"
    actions: [unsuppress, {notify: hook}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// lambdaInvoke is the handler lambdaInit gives lambda.Start.
type lambdaInvoke = func(context.Context, jsontext.Value) (any, error)

// lambdaTopic is the SNS topic of the in-process Lambda tests' events.
const lambdaTopic = "arn:aws:sns:us-east-1:123456789012:ses"

// lambdaAccount is the account of the function the in-process tests
// invoke (lambdaContext).
const lambdaAccount = "123456789012"

// lambdaContext is the context of an invocation of the function of
// lambdaAccount, as the runtime gives it.
func lambdaContext() context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		AwsRequestID: "req-1", InvokedFunctionArn: "arn:aws:lambda:us-east-1:" + lambdaAccount + ":function:sesrouter"})
}

// newTestLambda builds the handler as init does, against the fakes, with
// rules; SNS signatures are checked with the certificate of the signer
// it returns (SESROUTER_SNS_CERT_DIR).
func newTestLambda(t *testing.T, rules string) (lambdaInvoke, *liveFakes, *syncBuffer, *syncBuffer, *intaketest.Signer) {
	t.Helper()
	f := startLambdaFakes(t)
	sg := intaketest.NewSigner(t)
	f.vars["SESROUTER_SNS_CERT_DIR"] = sg.CertDir
	invoke, stdout, stderr := initTestLambda(t, rules, testEnv(f.vars))
	return invoke, f, stdout, stderr, sg
}

// startLambdaFakes starts the fakes for lambdaRules: SLACK_WEBHOOK_GONE
// is a webhook the Slack fake does not know.
func startLambdaFakes(t *testing.T) *liveFakes {
	t.Helper()
	f := startLiveFakes(t)
	f.vars["SLACK_WEBHOOK_GONE"] = f.slack.URL() + "/services/T000/B000/NOSUCHHOOK"
	return f
}

// initTestLambda runs the function's init with rules in e, and fails t
// if it fails.
func initTestLambda(t *testing.T, rules string, e env) (lambdaInvoke, *syncBuffer, *syncBuffer) {
	t.Helper()
	path := writeFile(t, t.TempDir(), "rules.yaml", rules)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	invoke, ok := lambdaInit(path, stdout, stderr, e)
	if !ok {
		t.Fatalf("init failed:\n%s", stderr.String())
	}
	return invoke, stdout, stderr
}

// sqsEvent wraps SES bodies in SNS envelopes signed by sg in an SQS
// event, one record per body, with message ids m1, m2, …
func sqsEvent(t *testing.T, sg *intaketest.Signer, bodies ...string) jsontext.Value {
	t.Helper()
	var recs []events.SQSMessage
	for i, b := range bodies {
		m := sg.Notification(t, lambdaTopic, "sns-"+string(rune('a'+i)), b)
		recs = append(recs, sqsRecord("m"+string(rune('1'+i)), string(intaketest.Body(m))))
	}
	return sqsRecords(t, recs...)
}

// lambdaQueue is the queue of the in-process Lambda tests' SQS records.
const lambdaQueue = "arn:aws:sqs:us-east-1:123456789012:ses-feedback"

// sqsRecord is an SQS record of lambdaQueue with body.
func sqsRecord(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, EventSource: "aws:sqs", EventSourceARN: lambdaQueue}
}

// sqsRecords is an SQS event of records.
func sqsRecords(t testing.TB, records ...events.SQSMessage) jsontext.Value {
	t.Helper()
	return mustJSON(t, events.SQSEvent{Records: records})
}

// snsRecordEvent is a Lambda SNS event of m as the Lambda service writes
// it: SigningCertUrl and UnsubscribeUrl, Subject null when m has none,
// the MessageAttributes object, and SignatureVersion 1 whatever m says
// (SNS writes 1 in every Lambda record).
func snsRecordEvent(t testing.TB, m *ses.SNSMessage) jsontext.Value {
	t.Helper()
	sns := map[string]any{
		"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn, "Subject": m.Subject, "Message": m.Message,
		"Timestamp": m.Timestamp, "SignatureVersion": "1", "Signature": m.Signature,
		"SigningCertUrl": m.SigningCertURL, "UnsubscribeUrl": m.UnsubscribeURL, "MessageAttributes": map[string]any{},
	}
	return mustJSON(t, map[string]any{"Records": []any{map[string]any{
		"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": m.TopicArn + ":sub-1", "Sns": sns}}})
}

func TestLambdaSQSPartialBatch(t *testing.T) {
	invoke, f, stdout, stderr, sg := newTestLambda(t, lambdaRules)
	payload := sqsEvent(t, sg,
		strings.TrimSpace(liveBounce(t, "ses-1", "a@example.com")),
		strings.TrimSpace(liveBounce(t, "ses-2", "b@broken.example")),
		"{not json",
		strings.TrimSpace(liveBounce(t, "ses-4", "c@example.com")),
	)
	out, err := invoke(lambdaContext(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	resp, ok := out.(events.SQSEventResponse)
	if !ok {
		t.Fatalf("response %T, want events.SQSEventResponse", out)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	if strings.Join(ids, ",") != "m2,m3" {
		t.Errorf("batchItemFailures %v, want exactly m2 (its post failed) and m3 (unreadable)", ids)
	}
	if n := len(f.slack.Posts()); n != 2 {
		t.Errorf("%d posts, want 2 (m1 and m4)", n)
	}
	checkContains(t, "log", stderr.String(), `"msg":"notification"`, `"envelopeId":"m1"`, `"snsMessageId":"sns-a"`,
		`"sesMessageId":"ses-1"`, `"rules":["bounces"]`, `"outcome":"posted"`, `"level":"ERROR","msg":"unreadable input"`)
	checkContains(t, "metrics", stdout.String(), `"Namespace":"sesrouter"`, `"Type":"Bounce","_aws"`, `"Notifications":3`)
}

func TestLambdaSNSFailureIsAnError(t *testing.T) {
	invoke, f, _, _, sg := newTestLambda(t, lambdaRules)
	sns := func(id, body string) jsontext.Value {
		return snsRecordEvent(t, sg.Notification(t, lambdaTopic, id, body))
	}
	first := sns("sns-1", liveBounce(t, "ok-1", "a@example.com"))
	if out, err := invoke(lambdaContext(), first); err != nil || out != nil {
		t.Errorf("a posted bounce: response %v, error %v; want none", out, err)
	}
	_, err := invoke(lambdaContext(), sns("sns-2", liveBounce(t, "bad-1", "b@broken.example")))
	if err == nil {
		t.Fatal("a bounce whose post fails: no error, so Lambda would not retry it")
	}
	checkContains(t, "error", err.Error(), "1 of 1 inputs failed: invocation#1: notify:gone: slack server error: 404 Not Found: no_service ("+hintWebhook("SLACK_WEBHOOK_GONE")+")")
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	// SNS delivers the first one again: acted on once, and no error.
	if out, err := invoke(lambdaContext(), first); err != nil || out != nil {
		t.Errorf("a redelivered bounce: response %v, error %v; want none", out, err)
	}
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts after the redelivery, want still 1", n)
	}
}

func TestLambdaEventBridge(t *testing.T) {
	invoke, f, _, _, _ := newTestLambda(t, lambdaRules)
	detail := strings.Replace(strings.TrimSpace(liveBounce(t, "eb-1", "no-suppress-1@example.com")), `"notificationType"`, `"eventType"`, 1)
	f.ses.Suppress("no-suppress-1@example.com", "BOUNCE", time.Date(2024, 4, 1, 9, 30, 0, 0, time.UTC))
	payload := `{"version":"0","id":"eb-id","detail-type":"Email Bounced","source":"aws.ses","account":"` + lambdaAccount + `",` +
		`"time":"2024-05-01T10:00:03Z","region":"us-east-1","resources":[],"detail":` + detail + `}`
	if out, err := invoke(lambdaContext(), jsontext.Value(payload)); err != nil || out != nil {
		t.Fatalf("response %v, error %v; want none", out, err)
	}
	if _, listed := f.ses.Suppressed("no-suppress-1@example.com"); listed {
		t.Error("the address is still on the suppression list")
	}
	checkContains(t, "post", postText(t, onePost(t, f)), "no-suppress-1@example.com", "removed from the suppression list")
}

// TestLambdaActionsStopBeforeTheDeadline invokes with a deadline of 2 s
// a batch whose post Slack holds for 10 s: the invocation answers before
// its context ends, exactly when its actions are cut (a tenth of the time
// left before the deadline, so that the response goes out in time),
// naming the record whose post was cut, for the queue to deliver again.
// It runs on a testing/synctest bubble's clock, with the Slack fake in
// memory, so that the response's own work takes no time of the 200 ms.
func TestLambdaActionsStopBeforeTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slack := actionstest.NewSlackInMemory(t)
		sg := intaketest.NewSigner(t)
		e := testEnv(map[string]string{"SLACK_WEBHOOK_TEST": slack.WebhookURL("hook"), "SESROUTER_SNS_CERT_DIR": sg.CertDir})
		e.slackClient = slack.HTTPClient()
		rules := writeFile(t, t.TempDir(), "rules.yaml", "version: 1\ndestinations:\n  hook:\n    slack:\n      webhook_env: SLACK_WEBHOOK_TEST\n      pace: 0s\n"+
			"rules:\n  - name: bounces\n    when: event.type == \"Bounce\"\n    actions: [{notify: hook}]\n")
		var stderr syncBuffer
		invoke, ok := lambdaInit(rules, io.Discard, &stderr, e)
		if !ok {
			t.Fatalf("init failed:\n%s", stderr.String())
		}
		slack.Script(actionstest.FaultSlow(10 * time.Second))
		ctx, cancel := context.WithTimeout(lambdaContext(), 2*time.Second)
		defer cancel()
		start := time.Now()
		out, err := invoke(ctx, sqsEvent(t, sg, strings.TrimSpace(liveBounce(t, "slow-1", "a@example.com"))))
		if err != nil {
			t.Fatalf("invoke: %v", err)
		}
		if took := time.Since(start); took != 1800*time.Millisecond {
			t.Errorf("the invocation returned after %s, want 1.8s (its deadline, less a tenth of the time left)", took)
		}
		if resp, ok := out.(events.SQSEventResponse); !ok || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m1" {
			t.Errorf("response %+v, want m1 in batchItemFailures", out)
		}
		synctest.Wait() // the fake sees the client go
		if c := slack.Counts(); len(slack.Posts()) != 0 || c.Abandoned != 1 {
			t.Errorf("%d posts, counts %+v; want none, and the post given up", len(slack.Posts()), c)
		}
	})
}

// withTags returns the notification sesJSON (one line) with mail.tags
// set to tags.
func withTags(t *testing.T, sesJSON string, tags map[string][]string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(sesJSON), &doc); err != nil {
		t.Fatal(err)
	}
	doc["mail"].(map[string]any)["tags"] = tags
	return string(mustJSON(t, doc))
}

// TestLambdaRuleErrorIsNotRetried invokes an SQS batch of two records by
// rules whose first rule fails at run time for a mail without a campaign
// tag, before a catch-all that suppresses: the first record's recipient
// gets no action (no SES call for it), the failure is logged at error
// level naming the rule and the input, and counted (RuleErrors), but the
// record is not in batchItemFailures: a new delivery would fail the same
// way and repeat the other recipients' actions. The second record, with a
// tag, is suppressed and notified.
func TestLambdaRuleErrorIsNotRetried(t *testing.T) {
	invoke, f, stdout, stderr, sg := newTestLambda(t, ruleErrorRules)
	payload := sqsEvent(t, sg,
		strings.TrimSpace(liveBounce(t, "ses-1", "untagged@example.com")),
		withTags(t, strings.TrimSpace(liveBounce(t, "ses-2", "tagged@example.com")), map[string][]string{"campaign": {"summer"}}),
	)
	out, err := invoke(lambdaContext(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	resp, ok := out.(events.SQSEventResponse)
	if !ok || len(resp.BatchItemFailures) != 0 {
		t.Errorf("response %+v, want an SQS response with no batch item failure", out)
	}
	if got := sesOps(f); len(got) != 1 || got[0] != "PutSuppressedDestination tagged@example.com 200" {
		t.Errorf("SES calls %q, want one, putting tagged@example.com on the list", got)
	}
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts, want 1 (tagged@example.com)", n)
	}
	var errLine map[string]any
	for _, l := range strings.Split(stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["level"] == "ERROR" {
			if errLine != nil {
				t.Errorf("a second error line: %s", l)
			}
			errLine = m
		}
	}
	if errLine == nil || errLine["envelopeId"] != "m1" || errLine["input"] == "" ||
		!strings.Contains(fmt.Sprint(errLine["failure"]), `recipient untagged@example.com: rule "spring-campaign": index out of range`) {
		t.Errorf("error log line %v, want one naming the input (m1), the recipient and the rule\nlog:\n%s", errLine, stderr)
	}
	checkContains(t, "metrics", stdout.String(), `"RuleErrors":1`, `"Rule":"(failed)"`)
}

// TestLambdaOutsideLambda runs sesrouter lambda where there is no Lambda
// runtime API: one line on standard error says so, exit status 2.
func TestLambdaOutsideLambda(t *testing.T) {
	r := runCLI(t, testEnv(nil), "", "lambda")
	const want = "sesrouter lambda: not running in AWS Lambda (AWS_LAMBDA_RUNTIME_API is not set); to try events locally, use sesrouter route -dry-run FILE\n"
	if r.code != exitUsage || r.stdout != "" || r.stderr != want {
		t.Errorf("exit status %d, stdout %q, stderr %q; want 2, nothing and %q", r.code, r.stdout, r.stderr, want)
	}
}

// TestLambdaSQSBatchMemory invokes, in process, an SQS batch of 10,000
// records (small bounces, each notified to one webhook, digested past the
// tenth) and samples the heap in use at every 50th line the invocation
// logs (one per record): with the GC collecting often, the heap in use
// is what the invocation holds, and its peak stays under 16 MiB above
// what was in use before (the batch's own bytes included): well within
// a 128 MB function, and flat whatever the batch's size.
func TestLambdaSQSBatchMemory(t *testing.T) {
	const n = 10_000
	const rules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      pace: 0s
rules:
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`
	f := startLiveFakes(t)
	// The bodies are bare SES JSON, as raw message delivery writes them:
	// accepted from the queue the function is told about.
	f.vars["SESROUTER_QUEUES"] = lambdaQueue
	logs := &heapSampler{every: 50}
	invoke, ok := lambdaInit(writeFile(t, t.TempDir(), "rules.yaml", rules), io.Discard, logs, testEnv(f.vars))
	if !ok {
		t.Fatal("init failed")
	}
	var ev events.SQSEvent
	for i := range n {
		body := strings.TrimSpace(liveBounce(t, fmt.Sprintf("ses-%d", i), fmt.Sprintf("user%d@example.com", i)))
		ev.Records = append(ev.Records, sqsRecord(fmt.Sprintf("m%d", i), body))
	}
	payload := mustJSON(t, ev)
	ev.Records = nil
	// Collect often, so that the heap in use is what the invocation
	// holds, not the garbage a GC paced on this test process's heap (its
	// fakes and the batch's own bytes) would leave for later.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	runtime.GC() // and what sync.Pools kept of building the batch (json.Marshal's buffer)
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	out, err := invoke(lambdaContext(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if resp, ok := out.(events.SQSEventResponse); !ok || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("response %+v, want no failure", out)
	}
	if got := logs.notifications(); got != n {
		t.Errorf("%d notification log lines, want %d", got, n)
	}
	if c := f.slack.Counts(); c.Succeeded != 11 {
		t.Errorf("Slack counts %+v, want 10 posts and the digest", c)
	}
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	above := int64(logs.peak()) - int64(base.HeapInuse)
	t.Logf("%d records (%d bytes): heap in use %.1f MiB before the invocation, at most %+.1f MiB more during it", n, len(payload), mib(int64(base.HeapInuse)), mib(above))
	if above > 16<<20 {
		t.Errorf("heap in use peaked %.1f MiB above the %.1f MiB before the invocation, want under 16 MiB", mib(above), mib(int64(base.HeapInuse)))
	}
}

// heapSampler is a log writer that keeps nothing of the log (so that the
// test's own memory does not grow with it): it counts the notification
// lines, and reads the heap in use at every line of every.
type heapSampler struct {
	every int

	mu        sync.Mutex
	lines     int
	notes     int
	heapInuse uint64
}

func (h *heapSampler) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range bytes.SplitAfter(p, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if bytes.Contains(l, []byte(`"msg":"notification"`)) {
			h.notes++
		}
		if h.lines++; h.lines%h.every == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			h.heapInuse = max(h.heapInuse, ms.HeapInuse)
		}
	}
	return len(p), nil
}

func (h *heapSampler) notifications() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notes
}

func (h *heapSampler) peak() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.heapInuse
}
