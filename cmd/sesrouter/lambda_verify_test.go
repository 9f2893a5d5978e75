package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// What makes the function act, in process: every SNS envelope verified
// with serve's verifier, bodies without a signature only from a queue
// the function is told about, EventBridge events only of its own account.
// The certificates come from the signer's folder (SESROUTER_SNS_CERT_DIR),
// or from testdata/samples/certs for the real samples; a fetch goes to a
// transport in the test process, never to the network.

// logLinesOf returns the JSON log lines of log whose msg is msg.
func logLinesOf(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// batchFailures returns the ids an SQS response names for retry.
func batchFailures(t *testing.T, out any) []string {
	t.Helper()
	resp, ok := out.(events.SQSEventResponse)
	if !ok {
		t.Fatalf("response %T (%v), want events.SQSEventResponse", out, out)
	}
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// TestLambdaSNSRecordVerified invokes SNS events as the Lambda service
// writes them: a record SNS signed is acted on (the address unsuppressed
// and posted); the same record with its Message changed after signing is
// refused: no SES call, no post, no error (Lambda would retry one), a
// WARN line naming why, and the (refused) count in the metrics.
func TestLambdaSNSRecordVerified(t *testing.T) {
	invoke, f, stdout, stderr, sg := newTestLambda(t, lambdaRules)
	f.ses.Suppress("no-suppress-1@example.com", "BOUNCE", listedAt)
	f.ses.Suppress("no-suppress-2@example.com", "BOUNCE", listedAt)

	genuine := sg.Notification(t, lambdaTopic, "sns-1", liveBounce(t, "ses-1", "no-suppress-1@example.com"))
	if out, err := invoke(lambdaContext(), snsRecordEvent(t, genuine)); err != nil || out != nil {
		t.Fatalf("a genuine record: response %v, error %v; want none", out, err)
	}
	forged := sg.Notification(t, lambdaTopic, "sns-2", liveBounce(t, "ses-2", "someone@example.org"))
	forged.Message = liveBounce(t, "ses-2", "no-suppress-2@example.com")
	if out, err := invoke(lambdaContext(), snsRecordEvent(t, forged)); err != nil || out != nil {
		t.Fatalf("a forged record: response %v, error %v; want none: it is refused, not retried", out, err)
	}

	checkSESOnly(t, f, "no-suppress-1@example.com")
	checkContains(t, "the post", postText(t, onePost(t, f)), "no-suppress-1@example.com")
	refused := logLinesOf(t, stderr.String(), "refused input")
	if len(refused) != 1 || refused[0]["level"] != "WARN" || refused[0]["envelopeId"] != "sns-2" ||
		!strings.Contains(refused[0]["reason"].(string), "sns signature: does not verify") {
		t.Errorf("refused lines %v, want one WARN for sns-2, its signature does not verify", refused)
	}
	checkContains(t, "metrics", stdout.String(), `"Notifications":1,"Type":"(refused)"`)
}

// TestLambdaSQSForgedRefused invokes one SQS batch of what anyone allowed
// to send to a queue could write: an envelope SNS signed is acted on;
// an envelope with no signature, one signed by a key SNS does not hold,
// bare SES JSON, an EventBridge event and sample #24 (a real SNS
// envelope) with an SES bounce put in its Message are refused. None of
// them is named for retry: a new delivery would be refused the same way.
// No SES call is made for them, nothing is posted.
func TestLambdaSQSForgedRefused(t *testing.T) {
	invoke, f, stdout, stderr, sg := newTestLambda(t, lambdaRules)
	for _, a := range []string{"no-suppress-1@example.com", "no-suppress-2@example.com", "no-suppress-3@example.com",
		"no-suppress-4@example.com", "no-suppress-5@example.com", "no-suppress-6@example.com"} {
		f.ses.Suppress(a, "BOUNCE", listedAt)
	}
	bounce := func(n string) string {
		return strings.TrimSpace(liveBounce(t, "ses-"+n, "no-suppress-"+n+"@example.com"))
	}
	unsigned := mustJSON(t, map[string]string{"Type": "Notification", "MessageId": "sns-2", "TopicArn": lambdaTopic, "Message": bounce("2")})
	eventBridge := `{"version":"0","id":"eb-5","detail-type":"Email Bounced","source":"aws.ses","account":"` + lambdaAccount + `","detail":` +
		strings.Replace(bounce("5"), `"notificationType"`, `"eventType"`, 1) + `}`
	var sample24 struct {
		Records []struct{ Body string }
	}
	if err := json.Unmarshal(readSample(t, "24_lambda_sqs_event_with_sns_envelope_body.json"), &sample24); err != nil {
		t.Fatal(err)
	}
	var envelope map[string]any
	if err := json.Unmarshal([]byte(sample24.Records[0].Body), &envelope); err != nil {
		t.Fatal(err)
	}
	envelope["Message"] = bounce("6")

	out, err := invoke(lambdaContext(), sqsRecords(t,
		sqsRecord("m1", string(intaketest.Body(sg.Notification(t, lambdaTopic, "sns-1", bounce("1"))))),
		sqsRecord("m2", string(unsigned)),
		sqsRecord("m3", string(intaketest.Body(intaketest.NewSigner(t).Notification(t, lambdaTopic, "sns-3", bounce("3"))))),
		sqsRecord("m4", bounce("4")),
		sqsRecord("m5", eventBridge),
		sqsRecord("m6", string(mustJSON(t, envelope))),
	))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if ids := batchFailures(t, out); len(ids) != 0 {
		t.Errorf("batchItemFailures %v, want none: the forged records are refused, not retried", ids)
	}
	checkSESOnly(t, f, "no-suppress-1@example.com")
	checkContains(t, "the post", postText(t, onePost(t, f)), "no-suppress-1@example.com")
	want := map[string]string{
		"m2": "sns signature: unsupported SignatureVersion",
		"m3": "sns signature: does not verify",
		"m4": "accepted only from a queue named in SESROUTER_QUEUES",
		"m5": "accepted only from a queue named in SESROUTER_QUEUES",
		"m6": "sns signature: certificate SimpleNotificationService-010a507c1833636cd94bdb98bd93083a.pem",
	}
	got := map[string]string{}
	for _, l := range logLinesOf(t, stderr.String(), "refused input") {
		got[l["envelopeId"].(string)] = l["reason"].(string)
	}
	for id, reason := range want {
		if !strings.Contains(got[id], reason) {
			t.Errorf("%s: refused with %q, want a reason saying %q", id, got[id], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("refused %v, want m2 to m6", got)
	}
	checkContains(t, "metrics", stdout.String(), `"Notifications":5,"Type":"(refused)"`)
}

// checkSESOnly checks that SES was called for address alone, and that
// it was taken off the suppression list.
func checkSESOnly(t *testing.T, f *liveFakes, address string) {
	t.Helper()
	got := sesOps(f)
	if !slices.Contains(got, "DeleteSuppressedDestination "+address+" 200") ||
		slices.ContainsFunc(got, func(op string) bool { return !strings.Contains(op, " "+address+" ") }) {
		t.Errorf("SES calls %q, want only those unsuppressing %s", got, address)
	}
}

// readSample reads a sample of testdata/samples/events.
func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/samples/events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLambdaRealSignature puts sample #18, an SES Open event as SNS sent
// it with its real signature, byte for byte in an SQS body: with SNS's
// certificate in SESROUTER_SNS_CERT_DIR it is acted on. The same body
// with one character of its Message changed is refused.
func TestLambdaRealSignature(t *testing.T) {
	f := startLambdaFakes(t)
	f.vars["SESROUTER_SNS_CERT_DIR"] = "../../testdata/samples/certs"
	invoke, stdout, stderr := initTestLambda(t, lambdaRules, testEnv(f.vars))
	body := string(readSample(t, "18_event_open_sns_http.json"))
	tampered := strings.Replace(body, `With tracking`, `With trackinG`, 1)
	if tampered == body {
		t.Fatal("sample #18 no longer holds the subject the test changes")
	}
	out, err := invoke(lambdaContext(), sqsRecords(t, sqsRecord("m1", body), sqsRecord("m2", tampered)))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if ids := batchFailures(t, out); len(ids) != 0 {
		t.Errorf("batchItemFailures %v, want none", ids)
	}
	notes := logLinesOf(t, stderr.String(), "notification")
	if len(notes) != 1 || notes[0]["envelopeId"] != "m1" || notes[0]["type"] != "Open" {
		t.Errorf("notification lines %v, want m1's Open", notes)
	}
	if refused := logLinesOf(t, stderr.String(), "refused input"); len(refused) != 1 || refused[0]["envelopeId"] != "m2" {
		t.Errorf("refused lines %v, want m2", refused)
	}
	checkContains(t, "metrics", stdout.String(), `"Notifications":1,"Type":"Open"`, `"Notifications":1,"Type":"(refused)"`)
}

// unreachable is a transport that fails every request, recording it:
// a network that cannot reach SNS.
type unreachable struct {
	mu   sync.Mutex
	urls []string
}

func (u *unreachable) RoundTrip(r *http.Request) (*http.Response, error) {
	u.mu.Lock()
	u.urls = append(u.urls, r.URL.String())
	u.mu.Unlock()
	return nil, errors.New("connect: network is unreachable")
}

func (u *unreachable) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.urls)
}

// TestLambdaCertificateUnavailable invokes, where the signing certificate
// cannot be fetched, an SQS batch of two genuine envelopes and an SNS
// record: nothing is acted on; both records are named for retry, and the
// SNS invocation fails, so that Lambda delivers it again; the certificate
// is asked for once per invocation, not once per record.
func TestLambdaCertificateUnavailable(t *testing.T) {
	f := startLambdaFakes(t)
	sg := intaketest.NewSigner(t)
	net := &unreachable{}
	e := testEnv(f.vars)
	e.outbound = net
	invoke, _, stderr := initTestLambda(t, lambdaRules, e)

	out, err := invoke(lambdaContext(), sqsEvent(t, sg,
		strings.TrimSpace(liveBounce(t, "ses-1", "a@example.com")),
		strings.TrimSpace(liveBounce(t, "ses-2", "b@example.com"))))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if ids := batchFailures(t, out); !slices.Equal(ids, []string{"m1", "m2"}) {
		t.Errorf("batchItemFailures %v, want m1 and m2", ids)
	}
	if got := net.requests(); !slices.Equal(got, []string{intaketest.CertURL(lambdaTopic)}) {
		t.Errorf("requests %q, want one, for the certificate %s", got, intaketest.CertURL(lambdaTopic))
	}
	_, err = invoke(lambdaContext(), snsRecordEvent(t, sg.Notification(t, lambdaTopic, "sns-3", liveBounce(t, "ses-3", "c@example.com"))))
	if err == nil || !strings.Contains(err.Error(), "signing certificate unavailable") {
		t.Errorf("the SNS invocation's error is %v, want one saying the certificate is unavailable", err)
	}
	if n := len(f.slack.Posts()); n != 0 {
		t.Errorf("%d posts, want none", n)
	}
	lines := logLinesOf(t, stderr.String(), "input not verified")
	if len(lines) != 3 || lines[0]["level"] != "ERROR" {
		t.Errorf("log lines %v, want three errors", lines)
	}
}

// TestLambdaUnsignedFromNamedQueue sets SESROUTER_QUEUES: bare SES JSON
// (raw message delivery) and an EventBridge event of the function's own
// account in bodies of that queue are acted on; an EventBridge event of
// another account, and any record of another queue, are refused.
func TestLambdaUnsignedFromNamedQueue(t *testing.T) {
	f := startLambdaFakes(t)
	f.vars["SESROUTER_QUEUES"] = lambdaQueue
	invoke, _, stderr := initTestLambda(t, lambdaRules, testEnv(f.vars))
	eventBridge := func(account, id, addr string) string {
		return `{"version":"0","id":"eb-` + id + `","detail-type":"Email Bounced","source":"aws.ses","account":"` + account + `","detail":` +
			strings.Replace(strings.TrimSpace(liveBounce(t, "ses-"+id, addr)), `"notificationType"`, `"eventType"`, 1) + `}`
	}
	other := sqsRecord("m4", strings.TrimSpace(liveBounce(t, "ses-4", "d@example.com")))
	other.EventSourceARN = "arn:aws:sqs:us-east-1:123456789012:someone-elses"
	out, err := invoke(lambdaContext(), sqsRecords(t,
		sqsRecord("m1", strings.TrimSpace(liveBounce(t, "ses-1", "a@example.com"))),
		sqsRecord("m2", eventBridge(lambdaAccount, "2", "b@example.com")),
		sqsRecord("m3", eventBridge("999999999999", "3", "c@example.com")),
		other,
	))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if ids := batchFailures(t, out); len(ids) != 0 {
		t.Errorf("batchItemFailures %v, want none", ids)
	}
	var texts []string
	for _, p := range f.slack.Posts() {
		texts = append(texts, postText(t, p))
	}
	all := strings.Join(texts, "\n")
	if len(texts) != 2 || !strings.Contains(all, "a@example.com") || !strings.Contains(all, "b@example.com") {
		t.Errorf("posts %q, want a@example.com's and b@example.com's", texts)
	}
	got := map[string]string{}
	for _, l := range logLinesOf(t, stderr.String(), "refused input") {
		got[l["envelopeId"].(string)] = l["reason"].(string)
	}
	if !strings.Contains(got["m3"], "account 999999999999") || !strings.Contains(got["m4"], "someone-elses, which is not one of SESROUTER_QUEUES") || len(got) != 2 {
		t.Errorf("refused %v, want m3 (another account) and m4 (another queue)", got)
	}
}

// TestLambdaVerifyOff sets SESROUTER_VERIFY_SNS=off: an unsigned envelope
// is acted on, and init says, at WARN, that nothing is checked.
func TestLambdaVerifyOff(t *testing.T) {
	f := startLambdaFakes(t)
	f.vars["SESROUTER_VERIFY_SNS"] = "off"
	invoke, _, stderr := initTestLambda(t, lambdaRules, testEnv(f.vars))
	body := mustJSON(t, map[string]string{"Type": "Notification", "MessageId": "sns-1", "TopicArn": lambdaTopic,
		"Message": strings.TrimSpace(liveBounce(t, "ses-1", "a@example.com"))})
	out, err := invoke(context.Background(), sqsRecords(t, sqsRecord("m1", string(body))))
	if err != nil || len(batchFailures(t, out)) != 0 {
		t.Fatalf("invoke: %v, %v", out, err)
	}
	checkContains(t, "the post", postText(t, onePost(t, f)), "a@example.com")
	if l := logLinesOf(t, stderr.String(), "SESROUTER_VERIFY_SNS is off: SNS envelopes are acted on without their signature checked"); len(l) != 1 || l[0]["level"] != "WARN" {
		t.Errorf("init lines %v, want one WARN saying signatures are not checked", l)
	}
}

// TestLambdaVerifySettings checks that a wrong value of the variables
// that decide what the function acts on fails init with one line naming
// it, before any invocation.
func TestLambdaVerifySettings(t *testing.T) {
	notDir := writeFile(t, t.TempDir(), "file", "")
	for _, tt := range []struct{ name, value, want string }{
		{"SESROUTER_VERIFY_SNS", "yes", `sesrouter lambda: SESROUTER_VERIFY_SNS is on or off, not "yes"`},
		{"SESROUTER_SNS_CERT_DIR", notDir, "sesrouter lambda: SESROUTER_SNS_CERT_DIR " + notDir + " is not a folder"},
		{"SESROUTER_TOPICS", lambdaTopic + ",arn:aws:sqs:us-east-1:123456789012:q", `sesrouter lambda: SESROUTER_TOPICS: TopicArn "arn:aws:sqs:us-east-1:123456789012:q" is not arn:PARTITION:sns:REGION:ACCOUNT:NAME`},
		{"SESROUTER_QUEUES", lambdaTopic, `sesrouter lambda: SESROUTER_QUEUES: "` + lambdaTopic + `" is not an SQS queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := startLambdaFakes(t)
			f.vars[tt.name] = tt.value
			var stderr syncBuffer
			if _, ok := lambdaInit(writeFile(t, t.TempDir(), "rules.yaml", lambdaRules), &syncBuffer{}, &stderr, testEnv(f.vars)); ok {
				t.Fatal("init succeeded")
			}
			if got := stderr.String(); got != tt.want+"\n" {
				t.Errorf("init says %q, want %q", got, tt.want+"\n")
			}
		})
	}
}

// TestLambdaSampleEnvelopes invokes samples #24 (SNS to SQS, a real
// signature by a certificate not in the repository), #26 (an SNS record
// with the placeholder signature "EXAMPLE") and #27 (an SQS record whose
// body is plain text) as they are: none carries SES content, so each is
// skipped before any check, and nothing fails. #26 with an SES bounce as
// its Message is refused: its signature, certificate URL and topic are
// placeholders, and no certificate is fetched for it.
func TestLambdaSampleEnvelopes(t *testing.T) {
	f := startLambdaFakes(t)
	net := &unreachable{}
	e := testEnv(f.vars)
	e.outbound = net
	invoke, stdout, stderr := initTestLambda(t, lambdaRules, e)
	for _, name := range []string{"24_lambda_sqs_event_with_sns_envelope_body.json", "26_lambda_sns_event_aws_lambda_go_messageattributes.json",
		"27_lambda_sqs_event_aws_lambda_go_messageattributes.json"} {
		out, err := invoke(lambdaContext(), readSample(t, name))
		if resp, ok := out.(events.SQSEventResponse); err != nil || ok && len(resp.BatchItemFailures) != 0 {
			t.Errorf("%s: response %v, error %v; want no failure", name, out, err)
		}
	}
	if n := len(logLinesOf(t, stderr.String(), "skipped")); n != 3 {
		t.Errorf("%d skipped lines, want 3\n%s", n, stderr)
	}
	var sample26 map[string]any
	if err := json.Unmarshal(readSample(t, "26_lambda_sns_event_aws_lambda_go_messageattributes.json"), &sample26); err != nil {
		t.Fatal(err)
	}
	sample26["Records"].([]any)[0].(map[string]any)["Sns"].(map[string]any)["Message"] = strings.TrimSpace(liveBounce(t, "ses-26", "a@example.com"))
	if out, err := invoke(lambdaContext(), mustJSON(t, sample26)); err != nil || out != nil {
		t.Errorf("#26 with a bounce: response %v, error %v; want none", out, err)
	}
	refused := logLinesOf(t, stderr.String(), "refused input")
	if len(refused) != 1 || !strings.Contains(refused[0]["reason"].(string), `SigningCertURL "EXAMPLE"`) {
		t.Errorf("refused lines %v, want one naming the placeholder certificate URL", refused)
	}
	if len(f.slack.Posts()) != 0 || len(net.requests()) != 0 {
		t.Errorf("%d posts, requests %q; want none", len(f.slack.Posts()), net.requests())
	}
	checkContains(t, "metrics", stdout.String(), `"Notifications":1,"Type":"(refused)"`)
}
