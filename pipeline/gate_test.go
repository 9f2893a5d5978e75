package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

const (
	gateTopic   = "arn:aws:sns:us-east-1:123456789012:ses"
	gateQueue   = "arn:aws:sqs:us-east-1:123456789012:ses-feedback"
	gateAccount = "123456789012"
)

// gateRecord is an SQS record of queue with body, its messageId id.
type gateRecord struct {
	MessageID      string `json:"messageId"`
	Body           string `json:"body"`
	EventSource    string `json:"eventSource"`
	EventSourceARN string `json:"eventSourceARN"`
}

// gateSQS is a Lambda SQS event of records.
func gateSQS(t testing.TB, records ...gateRecord) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"Records": records})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lambdaSNSRecord is a Lambda SNS event of m as the Lambda service writes
// it: SigningCertUrl and UnsubscribeUrl, a null Subject, the
// MessageAttributes SNS adds, and SignatureVersion version.
func lambdaSNSRecord(t testing.TB, m *ses.SNSMessage, version string) []byte {
	t.Helper()
	sns := map[string]any{
		"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn, "Subject": nil, "Message": m.Message,
		"Timestamp": m.Timestamp, "SignatureVersion": version, "Signature": m.Signature,
		"SigningCertUrl": m.SigningCertURL, "UnsubscribeUrl": m.UnsubscribeURL, "MessageAttributes": map[string]any{},
	}
	b, err := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": m.TopicArn + ":sub", "Sns": sns}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invocationContext is the context of an invocation of a function of
// account.
func invocationContext(account string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		AwsRequestID: "req-1", InvokedFunctionArn: "arn:aws:lambda:us-east-1:" + account + ":function:sesrouter"})
}

// gateHandler is a Handler of rulesHook whose parts have gate.
func gateHandler(t *testing.T, f *fakes, gate *Gate) *Handler {
	t.Helper()
	f.parts.Gate = gate
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// certGate is a Gate that verifies with certificates from sg's folder,
// as SESROUTER_SNS_CERT_DIR does.
func certGate(sg *intaketest.Signer) *Gate {
	return &Gate{Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}),
		Retryable: func(err error) bool { return errors.Is(err, intake.ErrCertUnavailable) }}
}

// posted returns the texts of the posts joined.
func posted(f *fakes) string {
	var texts []string
	for _, p := range f.slack.Posts() {
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n")
}

// logLines returns the JSON log lines whose msg is msg.
func logLines(t *testing.T, f *fakes, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(f.log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestGateSQSEnvelopes invokes an SQS batch of SNS envelopes: a genuine
// one is acted on; one whose Message was changed after signing, one
// signed by a key that is not SNS's and one with no signature at all are
// refused: not acted on, not named for retry (a retry would be refused
// the same way), logged at WARN and counted. The forged copy of a
// notification, read first, does not make the genuine copy that follows
// a duplicate.
func TestGateSQSEnvelopes(t *testing.T) {
	f := newFakes(t)
	sg := intaketest.NewSigner(t)
	h := gateHandler(t, f, certGate(sg))

	genuine := sg.Notification(t, gateTopic, "s-genuine", bounce("1", "a@example.com"))
	tampered := sg.Notification(t, gateTopic, "s-tampered", bounce("2", "b@example.com"))
	tampered.Message = bounce("2", "mallory@example.com")
	otherKey := intaketest.NewSigner(t).Notification(t, gateTopic, "s-other-key", bounce("3", "c@example.com"))
	later := sg.Notification(t, gateTopic, "s-later", bounce("3", "c@example.com")) // the same SES notification as otherKey's
	payload := gateSQS(t,
		gateRecord{"q1", string(intaketest.Body(genuine)), "aws:sqs", gateQueue},
		gateRecord{"q2", string(intaketest.Body(tampered)), "aws:sqs", gateQueue},
		gateRecord{"q3", string(intaketest.Body(otherKey)), "aws:sqs", gateQueue},
		gateRecord{"q4", snsBody("s-unsigned", bounce("4", "d@example.com")), "aws:sqs", gateQueue},
		gateRecord{"q5", string(intaketest.Body(later)), "aws:sqs", gateQueue},
	)
	inv := h.Invoke(invocationContext(gateAccount), payload, 1, 8)
	if inv.Err != nil || len(inv.FailedIDs) != 0 {
		t.Errorf("invocation error %v, failed ids %v; want neither: refused records are not retried", inv.Err, inv.FailedIDs)
	}
	text := posted(f)
	for _, want := range []string{"a@example.com", "c@example.com"} {
		if !strings.Contains(text, want) {
			t.Errorf("posts %q: want %s notified", text, want)
		}
	}
	for _, never := range []string{"b@example.com", "mallory@example.com", "d@example.com"} {
		if strings.Contains(text, never) {
			t.Errorf("posts %q: %s notified, from a forged envelope", text, never)
		}
	}
	if inv.Tally.Refused != 3 || inv.Tally.Types["(refused)"] != 3 || inv.Tally.Notifications != 2 || inv.Tally.Duplicates != 0 {
		t.Errorf("tally: %d refused (types %v), %d notifications, %d duplicates; want 3, 2 and 0",
			inv.Tally.Refused, inv.Tally.Types, inv.Tally.Notifications, inv.Tally.Duplicates)
	}
	refused := logLines(t, f, "refused input")
	var ids []string
	for _, l := range refused {
		ids = append(ids, l["envelopeId"].(string))
		if l["level"] != "WARN" || !strings.Contains(l["reason"].(string), "sns signature") || l["topicArn"] != gateTopic || l["queueArn"] != gateQueue {
			t.Errorf("log line %v: want WARN, the signature refused, the topic and the queue", l)
		}
	}
	if !slices.Equal(ids, []string{"q2", "q3", "q4"}) {
		t.Errorf("refused input lines for %v, want q2, q3, q4", ids)
	}
}

// TestGateSNSRecord invokes Lambda SNS events as the Lambda service
// writes them (SigningCertUrl, a null Subject, MessageAttributes): a
// genuine record is acted on, one signed with SHA256 whose record says
// SignatureVersion 1 too (SNS writes 1 in every Lambda record); a forged
// one is refused without failing the invocation, which Lambda would
// retry.
func TestGateSNSRecord(t *testing.T) {
	f := newFakes(t)
	sg := intaketest.NewSigner(t)
	h := gateHandler(t, f, certGate(sg))
	ctx := invocationContext(gateAccount)

	genuine := sg.Notification(t, gateTopic, "s-1", bounce("1", "a@example.com"))
	if inv := h.Invoke(ctx, lambdaSNSRecord(t, genuine, "1"), 1, 8); inv.Err != nil || inv.Tally.Notifications != 1 {
		t.Errorf("a genuine record: error %v, %d notifications; want none and 1", inv.Err, inv.Tally.Notifications)
	}
	sha256 := &ses.SNSMessage{Type: ses.SNSNotification, MessageID: "s-2", TopicArn: gateTopic, Message: bounce("2", "b@example.com"),
		Timestamp: genuine.Timestamp, SignatureVersion: "2"}
	sg.Sign(t, sha256)
	if inv := h.Invoke(ctx, lambdaSNSRecord(t, sha256, "1"), 1, 8); inv.Err != nil || inv.Tally.Notifications != 1 {
		t.Errorf("a SHA256-signed record saying SignatureVersion 1: error %v, %d notifications; want none and 1", inv.Err, inv.Tally.Notifications)
	}
	forged := sg.Notification(t, gateTopic, "s-3", bounce("3", "c@example.com"))
	forged.Message = bounce("3", "mallory@example.com")
	inv := h.Invoke(ctx, lambdaSNSRecord(t, forged, "1"), 1, 8)
	if inv.Err != nil || inv.Tally.Refused != 1 {
		t.Errorf("a forged record: error %v, %d refused; want none and 1", inv.Err, inv.Tally.Refused)
	}
	text := posted(f)
	if !strings.Contains(text, "a@example.com") || !strings.Contains(text, "b@example.com") || strings.Contains(text, "mallory@example.com") {
		t.Errorf("posts %q: want a@ and b@ notified, never mallory@", text)
	}
}

// failingTransport answers every request with an error, counting them.
type failingTransport struct{ n atomic.Int32 }

func (ft *failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	ft.n.Add(1)
	return nil, errors.New("network unreachable")
}

// TestGateCertificateUnavailable invokes an SQS batch of two genuine
// envelopes whose certificate cannot be fetched: neither is acted on,
// both are named for retry, logged at ERROR; the certificate is fetched
// once in the invocation, not once per record.
func TestGateCertificateUnavailable(t *testing.T) {
	f := newFakes(t)
	sg := intaketest.NewSigner(t)
	net := &failingTransport{}
	h := gateHandler(t, f, &Gate{
		Verifier:  intake.NewVerifier(intake.VerifierOptions{HTTPClient: &http.Client{Transport: net}, Roots: sg.Roots()}),
		Retryable: func(err error) bool { return errors.Is(err, intake.ErrCertUnavailable) },
	})
	payload := gateSQS(t,
		gateRecord{"q1", string(intaketest.Body(sg.Notification(t, gateTopic, "s-1", bounce("1", "a@example.com")))), "aws:sqs", gateQueue},
		gateRecord{"q2", string(intaketest.Body(sg.Notification(t, gateTopic, "s-2", bounce("2", "b@example.com")))), "aws:sqs", gateQueue},
	)
	inv := h.Invoke(invocationContext(gateAccount), payload, 1, 8)
	if !slices.Equal(inv.FailedIDs, []string{"q1", "q2"}) || inv.Tally.Types["(unverified)"] != 2 || inv.Tally.Refused != 0 {
		t.Errorf("failed ids %v, types %v, %d refused; want q1 and q2 retried as unverified, none refused", inv.FailedIDs, inv.Tally.Types, inv.Tally.Refused)
	}
	if n := len(f.slack.Posts()); n != 0 {
		t.Errorf("%d posts, want none", n)
	}
	if n := net.n.Load(); n != 1 {
		t.Errorf("%d certificate fetches, want 1", n)
	}
	lines := logLines(t, f, "input not verified")
	if len(lines) != 2 || lines[0]["level"] != "ERROR" || !strings.Contains(lines[0]["error"].(string), "signing certificate unavailable") {
		t.Errorf("log lines %v, want two errors saying the certificate is unavailable", lines)
	}
}

// TestGateUnsigned checks what carries no signature: bare SES JSON and
// EventBridge events in SQS bodies are refused unless the queue is one
// of Queues, and then acted on; a record of another queue is refused
// whatever its body; an EventBridge event, directly or through the queue,
// only when it is of the function's own account; bare SES JSON given to
// the function directly never.
func TestGateUnsigned(t *testing.T) {
	eventBridge := func(account, id string, addr string) string {
		return `{"version":"0","id":"eb-` + id + `","detail-type":"Email Bounced","source":"aws.ses","account":"` + account +
			`","detail":` + bounce(id, addr) + `}`
	}
	t.Run("no queue named", func(t *testing.T) {
		f := newFakes(t)
		h := gateHandler(t, f, certGate(intaketest.NewSigner(t)))
		inv := h.Invoke(invocationContext(gateAccount), gateSQS(t,
			gateRecord{"q1", bounce("1", "a@example.com"), "aws:sqs", gateQueue},
			gateRecord{"q2", eventBridge(gateAccount, "2", "b@example.com"), "aws:sqs", gateQueue},
		), 1, 8)
		if inv.Tally.Refused != 2 || len(inv.FailedIDs) != 0 || len(f.slack.Posts()) != 0 {
			t.Errorf("%d refused, failed ids %v, %d posts; want 2 refused, none retried, none posted", inv.Tally.Refused, inv.FailedIDs, len(f.slack.Posts()))
		}
		for _, l := range logLines(t, f, "refused input") {
			if !strings.Contains(l["reason"].(string), "SESROUTER_QUEUES") {
				t.Errorf("log line %v: want the reason to name SESROUTER_QUEUES", l)
			}
		}
	})
	t.Run("queue named", func(t *testing.T) {
		f := newFakes(t)
		gate := certGate(intaketest.NewSigner(t))
		gate.Queues = []string{gateQueue}
		h := gateHandler(t, f, gate)
		inv := h.Invoke(invocationContext(gateAccount), gateSQS(t,
			gateRecord{"q1", bounce("1", "a@example.com"), "aws:sqs", gateQueue},
			gateRecord{"q2", eventBridge(gateAccount, "2", "b@example.com"), "aws:sqs", gateQueue},
			gateRecord{"q3", eventBridge("999999999999", "3", "c@example.com"), "aws:sqs", gateQueue},
			gateRecord{"q4", bounce("4", "d@example.com"), "aws:sqs", "arn:aws:sqs:us-east-1:123456789012:another"},
		), 1, 8)
		text := posted(f)
		if inv.Tally.Notifications != 2 || inv.Tally.Refused != 2 || !strings.Contains(text, "a@example.com") || !strings.Contains(text, "b@example.com") ||
			strings.Contains(text, "c@example.com") || strings.Contains(text, "d@example.com") {
			t.Errorf("%d notifications, %d refused, posts %q; want a@ and b@ acted on, c@ (another account) and d@ (another queue) refused",
				inv.Tally.Notifications, inv.Tally.Refused, text)
		}
	})
	t.Run("eventbridge", func(t *testing.T) {
		f := newFakes(t)
		h := gateHandler(t, f, certGate(intaketest.NewSigner(t)))
		if inv := h.Invoke(invocationContext(gateAccount), []byte(eventBridge(gateAccount, "1", "a@example.com")), 1, 8); inv.Tally.Notifications != 1 {
			t.Errorf("an event of the function's account: %d notifications, want 1", inv.Tally.Notifications)
		}
		for name, ctx := range map[string]context.Context{"another account": invocationContext("999999999999"), "no invocation context": context.Background()} {
			if inv := h.Invoke(ctx, []byte(eventBridge(gateAccount, "2", "b@example.com")), 1, 8); inv.Tally.Refused != 1 || inv.Err != nil {
				t.Errorf("%s: %d refused, error %v; want 1 refused, no error", name, inv.Tally.Refused, inv.Err)
			}
		}
		if inv := h.Invoke(invocationContext(gateAccount), []byte(bounce("3", "c@example.com")), 1, 8); inv.Tally.Refused != 1 {
			t.Errorf("bare SES JSON given directly: %d refused, want 1", inv.Tally.Refused)
		}
		if text := posted(f); strings.Contains(text, "b@example.com") || strings.Contains(text, "c@example.com") {
			t.Errorf("posts %q: want only a@example.com", text)
		}
	})
}

// TestGateTopics checks that with Topics, a genuine envelope of another
// topic is refused before any certificate is looked at, and that with no
// Verifier (SESROUTER_VERIFY_SNS=off) an unsigned envelope of an allowed
// topic is acted on.
func TestGateTopics(t *testing.T) {
	f := newFakes(t)
	sg := intaketest.NewSigner(t)
	const other = "arn:aws:sns:us-east-1:999999999999:theirs"
	h := gateHandler(t, f, &Gate{Topics: []string{gateTopic}})
	inv := h.Invoke(invocationContext(gateAccount), gateSQS(t,
		gateRecord{"q1", string(intaketest.Body(sg.Notification(t, other, "s-1", bounce("1", "a@example.com")))), "aws:sqs", gateQueue},
		gateRecord{"q2", snsBody("s-2", bounce("2", "b@example.com")), "aws:sqs", gateQueue},
	), 1, 8)
	text := posted(f)
	if inv.Tally.Refused != 1 || strings.Contains(text, "a@example.com") || !strings.Contains(text, "b@example.com") {
		t.Errorf("%d refused, posts %q; want the other topic's refused, the allowed topic's acted on unverified", inv.Tally.Refused, text)
	}
	if l := logLines(t, f, "refused input"); len(l) != 1 || !strings.Contains(l[0]["reason"].(string), "SESROUTER_TOPICS") {
		t.Errorf("refused lines %v, want one naming SESROUTER_TOPICS", l)
	}
}
