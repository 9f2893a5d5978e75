package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// lambdaRules notify every bounce to the webhook in $SLACK_WEBHOOK_TEST,
// except those at broken.example, which go to a webhook that does not
// exist ($SLACK_WEBHOOK_GONE), and unsuppress no-suppress addresses.
const lambdaRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
  gone:
    slack:
      webhook_env: SLACK_WEBHOOK_GONE
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

// newTestLambda builds the handler as init does, against the fakes.
func newTestLambda(t *testing.T) (*lambdaHandler, *liveFakes, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	f := startLiveFakes(t)
	f.vars["SLACK_WEBHOOK_GONE"] = f.slack.URL() + "/services/T000/B000/NOSUCHHOOK"
	rules := writeFile(t, t.TempDir(), "rules.yaml", lambdaRules)
	var stdout, stderr bytes.Buffer
	h, code := newLambdaHandler(rules, &stdout, &stderr, testEnv(f.vars))
	if h == nil {
		t.Fatalf("init failed with %d:\n%s", code, stderr.String())
	}
	return h, f, &stdout, &stderr
}

// sqsEvent wraps SES bodies in SNS envelopes in an SQS event, one record
// per body, with message ids m1, m2, …
func sqsEvent(t *testing.T, bodies ...string) json.RawMessage {
	t.Helper()
	var ev events.SQSEvent
	for i, b := range bodies {
		env, err := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "sns-" + string(rune('a'+i)),
			"TopicArn": "arn:aws:sns:us-east-1:123456789012:ses", "Message": b})
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + string(rune('1'+i)), Body: string(env), EventSource: "aws:sqs"})
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestLambdaSQSPartialBatch(t *testing.T) {
	h, f, stdout, stderr := newTestLambda(t)
	payload := sqsEvent(t,
		strings.TrimSpace(liveBounce(t, "ses-1", "a@example.com")),
		strings.TrimSpace(liveBounce(t, "ses-2", "b@broken.example")),
		"{not json",
		strings.TrimSpace(liveBounce(t, "ses-4", "c@example.com")),
	)
	out, err := h.invoke(context.Background(), payload)
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
		`"sesMessageId":"ses-1"`, `"rule":"bounces"`, `"outcome":"posted"`, `"level":"ERROR","msg":"unreadable input"`)
	checkContains(t, "metrics", stdout.String(), `"Namespace":"sesrouter"`, `"Type":"Bounce","_aws"`, `"Notifications":3`)
}

func TestLambdaSNSFailureIsAnError(t *testing.T) {
	h, f, _, _ := newTestLambda(t)
	sns := func(id, body string) json.RawMessage {
		raw, err := json.Marshal(events.SNSEvent{Records: []events.SNSEventRecord{{EventSource: "aws:sns",
			SNS: events.SNSEntity{Type: "Notification", MessageID: id, TopicArn: "arn:aws:sns:us-east-1:123456789012:ses", Message: body}}}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if out, err := h.invoke(context.Background(), sns("sns-1", liveBounce(t, "ok-1", "a@example.com"))); err != nil || out != nil {
		t.Errorf("a posted bounce: response %v, error %v; want none", out, err)
	}
	_, err := h.invoke(context.Background(), sns("sns-2", liveBounce(t, "bad-1", "b@broken.example")))
	if err == nil {
		t.Fatal("a bounce whose post fails: no error, so Lambda would not retry it")
	}
	checkContains(t, "error", err.Error(), "1 of 1 notifications failed", "notify:gone", "404 Not Found: no_service")
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	// SNS delivers the first one again: acted on once, and no error.
	if out, err := h.invoke(context.Background(), sns("sns-1", liveBounce(t, "ok-1", "a@example.com"))); err != nil || out != nil {
		t.Errorf("a redelivered bounce: response %v, error %v; want none", out, err)
	}
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts after the redelivery, want still 1", n)
	}
}

func TestLambdaEventBridge(t *testing.T) {
	h, f, _, _ := newTestLambda(t)
	detail := strings.Replace(strings.TrimSpace(liveBounce(t, "eb-1", "no-suppress-1@example.com")), `"notificationType"`, `"eventType"`, 1)
	f.ses.Suppress("no-suppress-1@example.com", "BOUNCE", time.Date(2024, 4, 1, 9, 30, 0, 0, time.UTC))
	payload := `{"version":"0","id":"eb-id","detail-type":"Email Bounced","source":"aws.ses","account":"123456789012",` +
		`"time":"2024-05-01T10:00:03Z","region":"us-east-1","resources":[],"detail":` + detail + `}`
	if out, err := h.invoke(context.Background(), json.RawMessage(payload)); err != nil || out != nil {
		t.Fatalf("response %v, error %v; want none", out, err)
	}
	if _, listed := f.ses.Suppressed("no-suppress-1@example.com"); listed {
		t.Error("the address is still on the suppression list")
	}
	checkContains(t, "post", postText(t, onePost(t, f)), "no-suppress-1@example.com", "removed from the suppression list")
}

func TestLambdaActionsStopBeforeTheDeadline(t *testing.T) {
	h, f, _, _ := newTestLambda(t)
	f.slack.Script(actionstest.FaultSlow(10 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	begin := time.Now()
	out, err := h.invoke(ctx, sqsEvent(t, strings.TrimSpace(liveBounce(t, "slow-1", "a@example.com"))))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if took := time.Since(begin); took >= 2*time.Second {
		t.Errorf("the invocation took %s, past its 2 s deadline", took)
	}
	// The post that could not finish in time is failed, so the queue
	// retries that record.
	if resp, ok := out.(events.SQSEventResponse); !ok || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m1" {
		t.Errorf("response %+v, want m1 in batchItemFailures", out)
	}
}
