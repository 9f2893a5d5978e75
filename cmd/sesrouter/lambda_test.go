package main

import (
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
type lambdaInvoke = func(context.Context, json.RawMessage) (any, error)

// newTestLambda builds the handler as init does, against the fakes, with
// rules.
func newTestLambda(t *testing.T, rules string) (lambdaInvoke, *liveFakes, *syncBuffer, *syncBuffer) {
	t.Helper()
	f := startLiveFakes(t)
	f.vars["SLACK_WEBHOOK_GONE"] = f.slack.URL() + "/services/T000/B000/NOSUCHHOOK"
	path := writeFile(t, t.TempDir(), "rules.yaml", rules)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	invoke, ok := lambdaInit(path, stdout, stderr, testEnv(f.vars))
	if !ok {
		t.Fatalf("init failed:\n%s", stderr.String())
	}
	return invoke, f, stdout, stderr
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
	invoke, f, stdout, stderr := newTestLambda(t, lambdaRules)
	payload := sqsEvent(t,
		strings.TrimSpace(liveBounce(t, "ses-1", "a@example.com")),
		strings.TrimSpace(liveBounce(t, "ses-2", "b@broken.example")),
		"{not json",
		strings.TrimSpace(liveBounce(t, "ses-4", "c@example.com")),
	)
	out, err := invoke(context.Background(), payload)
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
	invoke, f, _, _ := newTestLambda(t, lambdaRules)
	sns := func(id, body string) json.RawMessage {
		raw, err := json.Marshal(events.SNSEvent{Records: []events.SNSEventRecord{{EventSource: "aws:sns",
			SNS: events.SNSEntity{Type: "Notification", MessageID: id, TopicArn: "arn:aws:sns:us-east-1:123456789012:ses", Message: body}}}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if out, err := invoke(context.Background(), sns("sns-1", liveBounce(t, "ok-1", "a@example.com"))); err != nil || out != nil {
		t.Errorf("a posted bounce: response %v, error %v; want none", out, err)
	}
	_, err := invoke(context.Background(), sns("sns-2", liveBounce(t, "bad-1", "b@broken.example")))
	if err == nil {
		t.Fatal("a bounce whose post fails: no error, so Lambda would not retry it")
	}
	checkContains(t, "error", err.Error(), "1 of 1 inputs failed: invocation#1: notify:gone: slack server error: 404 Not Found: no_service ("+hintWebhook("$SLACK_WEBHOOK_GONE")+")")
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	// SNS delivers the first one again: acted on once, and no error.
	if out, err := invoke(context.Background(), sns("sns-1", liveBounce(t, "ok-1", "a@example.com"))); err != nil || out != nil {
		t.Errorf("a redelivered bounce: response %v, error %v; want none", out, err)
	}
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts after the redelivery, want still 1", n)
	}
}

func TestLambdaEventBridge(t *testing.T) {
	invoke, f, _, _ := newTestLambda(t, lambdaRules)
	detail := strings.Replace(strings.TrimSpace(liveBounce(t, "eb-1", "no-suppress-1@example.com")), `"notificationType"`, `"eventType"`, 1)
	f.ses.Suppress("no-suppress-1@example.com", "BOUNCE", time.Date(2024, 4, 1, 9, 30, 0, 0, time.UTC))
	payload := `{"version":"0","id":"eb-id","detail-type":"Email Bounced","source":"aws.ses","account":"123456789012",` +
		`"time":"2024-05-01T10:00:03Z","region":"us-east-1","resources":[],"detail":` + detail + `}`
	if out, err := invoke(context.Background(), json.RawMessage(payload)); err != nil || out != nil {
		t.Fatalf("response %v, error %v; want none", out, err)
	}
	if _, listed := f.ses.Suppressed("no-suppress-1@example.com"); listed {
		t.Error("the address is still on the suppression list")
	}
	checkContains(t, "post", postText(t, onePost(t, f)), "no-suppress-1@example.com", "removed from the suppression list")
}

// TestLambdaActionsStopBeforeTheDeadline invokes with a deadline of 2 s
// a batch whose post Slack holds for 10 s: the invocation answers before
// its context ends (the actions are cut a tenth of the time left before
// it, so that the response goes out in time), naming the record whose
// post was cut, for the queue to deliver again.
func TestLambdaActionsStopBeforeTheDeadline(t *testing.T) {
	invoke, f, _, _ := newTestLambda(t, lambdaRules)
	f.slack.Script(actionstest.FaultSlow(10 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := invoke(ctx, sqsEvent(t, strings.TrimSpace(liveBounce(t, "slow-1", "a@example.com"))))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if ctx.Err() != nil {
		t.Errorf("the invocation returned after its deadline: %v", ctx.Err())
	}
	if resp, ok := out.(events.SQSEventResponse); !ok || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m1" {
		t.Errorf("response %+v, want m1 in batchItemFailures", out)
	}
	if n := len(f.slack.Posts()); n != 0 {
		t.Errorf("%d posts, want none", n)
	}
}
