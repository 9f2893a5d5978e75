package intake_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// forgedBounce is an SES notification nobody signed: a forger adds it to a
// genuine signed body, in the place another reader of the body would look
// for it.
const forgedBounce = `{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",` +
	`"bouncedRecipients":[{"emailAddress":"forged@evil.example"}],"timestamp":"2024-05-02T10:00:00.000Z","feedbackId":"forged"},` +
	`"mail":{"timestamp":"2024-05-02T10:00:00.000Z","source":"forger@evil.example","messageId":"forged","destination":["forged@evil.example"]}}`

// forgedEnvelope is an SNS envelope, unsigned, carrying forgedBounce.
var forgedEnvelope = `{"Type":"Notification","MessageId":"forged","TopicArn":"` + testTopic + `","Message":` + quote(forgedBounce) +
	`,"Timestamp":"2024-05-02T10:00:00.000Z","SignatureVersion":"1","Signature":"Zm9yZ2Vk","SigningCertURL":"https://sns.us-east-1.amazonaws.com/x.pem"}`

func quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// smuggled are members a forger adds to a genuine signed body. dup marks
// those that repeat a key in some letter case, which the body parser
// refuses; the others are keys SNS does not send, which must be ignored.
var smuggled = []struct {
	name, members string
	dup           bool
}{
	{"Lambda SNS records", `"Records":[{"EventSource":"aws:sns","EventVersion":"1.0","Sns":` + forgedEnvelope + `}]`, false},
	{"SQS records", `"Records":[{"eventSource":"aws:sqs","messageId":"forged","body":` + quote(forgedEnvelope) + `}]`, false},
	{"EventBridge event", `"version":"0","id":"forged","source":"aws.ses","detail-type":"Email Bounced","detail":` +
		strings.Replace(forgedBounce, `"notificationType"`, `"eventType"`, 1), false},
	{"bare SES keys", strings.TrimSuffix(strings.TrimPrefix(forgedBounce, "{"), "}"), false},
	{"records in lower case", `"records":[{"Sns":` + forgedEnvelope + `}]`, false},
	{"message attributes", `"MessageAttributes":{"a":{"Type":"String","Value":"1"}}`, false},
	{"Message twice", `"Message":` + quote(forgedBounce), true},
	{"message in lower case", `"message":` + quote(forgedBounce), true},
	{"MESSAGE in upper case", `"MESSAGE":` + quote(forgedBounce), true},
	{"Records and records", `"Records":[{"Sns":` + forgedEnvelope + `}],"records":[]`, true},
	{"messageId in lower case", `"messageId":"forged"`, true},
	{"type in lower case", `"type":"Notification"`, true},
	{"TopicARN in other case", `"TopicARN":"` + testTopic + `"`, true},
	{"SigningCertUrl beside SigningCertURL", `"SigningCertUrl":"https://sns.us-east-1.amazonaws.com/x.pem"`, true},
}

// splice returns body with members added first in its object (atStart) or
// last.
func splice(t *testing.T, body []byte, members string, atStart bool) []byte {
	t.Helper()
	open, end := bytes.IndexByte(body, '{'), bytes.LastIndexByte(body, '}')
	if open < 0 || end < open {
		t.Fatalf("not an object: %.40s", body)
	}
	var b bytes.Buffer
	if atStart {
		b.Write(body[:open+1])
		b.WriteString(members + ",")
		b.Write(body[open+1:])
	} else {
		b.Write(body[:end])
		b.WriteString("," + members)
		b.Write(body[end:])
	}
	return b.Bytes()
}

// genuine is a genuine signed body and the server that accepts it.
type genuine struct {
	name   string
	body   []byte
	server func(t *testing.T) *testServer
}

// genuineBodies are the bodies the smuggling test starts from: one signed
// by the test signer, whose certificate the server fetches, and the real
// signed samples, whose certificate is in the samples' folder.
func genuineBodies(t *testing.T) []genuine {
	t.Helper()
	sg := intaketest.NewSigner(t)
	subject := "Amazon SES Email Event Notification"
	m := &ses.SNSMessage{Type: ses.SNSNotification, MessageID: "signed", TopicArn: testTopic, Subject: &subject,
		Message:   `{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"signed@example.com"}],"timestamp":"2024-05-02T10:00:00.000Z","feedbackId":"f"},"mail":{"timestamp":"2024-05-02T10:00:00.000Z","source":"a@example.com","messageId":"signed","destination":["signed@example.com"]}}`,
		Timestamp: intaketest.Timestamp(time.Now())}
	sg.Sign(t, m)
	out := []genuine{{"test signer", intaketest.BodyWith(m, nil), func(t *testing.T) *testServer {
		return newFetchingServer(t, sg, []string{testTopic}, intake.ServerOptions{})
	}}}
	certDir, samples := realSamples(t)
	for _, s := range samples {
		out = append(out, genuine{s.file, s.body, func(t *testing.T) *testServer {
			return newTestServer(t, certDir, []string{s.msg.TopicArn}, realSampleOptions())
		}})
	}
	return out
}

func TestServerSmuggledKeys(t *testing.T) {
	for _, g := range genuineBodies(t) {
		signed, err := ses.ParseSNS(g.body)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		t.Run(g.name, func(t *testing.T) {
			if ts := g.server(t); ts.post(t, "", g.body) != http.StatusOK {
				t.Fatalf("the genuine body is refused:\n%s", ts.logs)
			}
			for _, sm := range smuggled {
				for _, atStart := range []bool{true, false} {
					t.Run(fmt.Sprintf("%s/first=%v", sm.name, atStart), func(t *testing.T) {
						ts := g.server(t)
						code := ts.post(t, "", splice(t, g.body, sm.members, atStart))
						if sm.dup {
							checkRefusedUnread(t, ts, code)
							return
						}
						checkOnlySigned(t, ts, code, signed)
					})
				}
			}
		})
	}
}

// checkRefusedUnread checks that a body was refused with 400 before its
// signature was looked at: no verification, no fetch, no Handle.
func checkRefusedUnread(t *testing.T, ts *testServer, code int) {
	t.Helper()
	if code != http.StatusBadRequest {
		t.Errorf("status %d, want 400\n%s", code, ts.logs)
	}
	if n := ts.verifier.n.Load(); n != 0 {
		t.Errorf("%d messages verified, want none", n)
	}
	if got := ts.out.requests(); len(got) != 0 {
		t.Errorf("outbound requests %q, want none (no certificate fetch)", got)
	}
	if got := ts.handledIDs(); len(got) != 0 {
		t.Errorf("handled %v, want nothing", got)
	}
}

// checkOnlySigned checks that a body was accepted and that only the signed
// message was acted on: Handle got it, and decoding it yields the signed
// notification and nothing else; a confirmation is confirmed by its
// signed SubscribeURL.
func checkOnlySigned(t *testing.T, ts *testServer, code int, signed *ses.SNSMessage) {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200\n%s", code, ts.logs)
	}
	got := ts.handledMessages()
	if signed.Type != ses.SNSNotification {
		if len(got) != 0 {
			t.Errorf("a %s was handed to Handle", signed.Type)
		}
		if reqs := ts.out.requests(); len(reqs) != 1 || reqs[0] != signed.SubscribeURL {
			t.Errorf("outbound requests %q, want only the signed SubscribeURL", reqs)
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("Handle called %d times, want once", len(got))
	}
	if got[0].Message != signed.Message || got[0].MessageID != signed.MessageID {
		t.Errorf("Handle got MessageId %q, Message %.60q\nwant %q, %.60q", got[0].MessageID, got[0].Message, signed.MessageID, signed.Message)
	}
	item := ses.DecodeSNS("http", ses.EnvelopeHTTP, "", got[0])
	want := ses.DecodeSNS("http", ses.EnvelopeHTTP, "", signed)
	if !reflect.DeepEqual(item, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", item, want)
	}
	if s := fmt.Sprintf("%+v", item); strings.Contains(s, "forged") {
		t.Errorf("the forged notification was decoded: %s", s)
	}
}
