package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// samplesDir holds the real samples, copied into the repository with
// their sources (SOURCES.md).
const samplesDir = "../testdata/samples"

const testTopic = "arn:aws:sns:us-east-1:123456789012:ses-feedback"

// recorder is an http.RoundTripper that records every request and
// answers locally: no request leaves the process. A GET of a .pem file it
// holds gets that file; any other request gets status (200 when 0).
type recorder struct {
	mu       sync.Mutex
	urls     []string
	status   int
	certs    map[string][]byte // by file name
	redirect string            // when set, where other requests are sent (302)
}

func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rec.mu.Lock()
	rec.urls = append(rec.urls, r.URL.String())
	status := rec.status
	cert, isCert := rec.certs[path.Base(r.URL.Path)]
	redirect := rec.redirect
	rec.mu.Unlock()
	body, header := "<ConfirmSubscriptionResponse/>", http.Header{}
	switch {
	case isCert:
		status, body = http.StatusOK, string(cert)
	case redirect != "":
		status = http.StatusFound
		header.Set("Location", redirect)
	case status == 0:
		status = http.StatusOK
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: header,
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.urls...)
}

// countingVerifier counts the messages given to a verifier.
type countingVerifier struct {
	v intake.MessageVerifier
	n atomic.Int32
}

func (c *countingVerifier) Verify(ctx context.Context, m *ses.SNSMessage) error {
	c.n.Add(1)
	return c.v.Verify(ctx, m)
}

// testServer is a Server under test with what it did.
type testServer struct {
	srv      *intake.Server
	out      *recorder // certificate fetches and confirmation GETs
	verifier *countingVerifier
	mu       sync.Mutex
	handled  []*ses.SNSMessage // what Handle was given
	logs     *bytes.Buffer
	// fail, when set, is what Handle returns.
	fail error
}

// newTestServer returns a server whose verifier reads certificates from
// certDir.
func newTestServer(t *testing.T, certDir string, topics []string, o intake.ServerOptions) *testServer {
	t.Helper()
	return startTestServer(t, intake.VerifierOptions{CertDir: certDir}, nil, topics, o)
}

// newFetchingServer returns a server whose verifier fetches certificates:
// the fetches reach ts.out, which serves sg's certificate.
func newFetchingServer(t *testing.T, sg *intaketest.Signer, topics []string, o intake.ServerOptions) *testServer {
	t.Helper()
	return startTestServer(t, intake.VerifierOptions{Roots: sg.Roots()}, map[string][]byte{intaketest.CertName: sg.CertPEM()}, topics, o)
}

func startTestServer(t *testing.T, vo intake.VerifierOptions, certs map[string][]byte, topics []string, o intake.ServerOptions) *testServer {
	t.Helper()
	ts := &testServer{out: &recorder{certs: certs}, logs: &bytes.Buffer{}}
	vo.HTTPClient = &http.Client{Transport: ts.out}
	ts.verifier = &countingVerifier{v: intake.NewVerifier(vo)}
	o.Verifier = ts.verifier
	o.Topics = topics
	o.HTTPClient = &http.Client{Transport: ts.out}
	o.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: ts.logs}, nil))
	o.Handle = func(_ context.Context, m *ses.SNSMessage) error {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.handled = append(ts.handled, m)
		return ts.fail
	}
	ts.srv = intake.NewServer(o)
	return ts
}

// handledMessages are the messages Handle was given.
func (ts *testServer) handledMessages() []*ses.SNSMessage {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*ses.SNSMessage(nil), ts.handled...)
}

// handledIDs are the MessageIds of the messages Handle was given.
func (ts *testServer) handledIDs() []string {
	var ids []string
	for _, m := range ts.handledMessages() {
		ids = append(ids, m.MessageID)
	}
	return ids
}

// post posts body with the message type header typ (none when "") and
// the topic header of topicOf(body), and returns the status code.
func (ts *testServer) post(t *testing.T, typ string, body []byte) int {
	t.Helper()
	r := snsRequest(body)
	if typ != "" {
		r.Header.Set(intake.TypeHeader, typ)
	}
	w := httptest.NewRecorder()
	ts.srv.ServeHTTP(w, r)
	return w.Code
}

// snsRequest is a POST of body with the headers SNS sends: its
// x-amz-sns-topic-arn header is topicOf(body).
func snsRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	r.Header.Set(intake.TopicHeader, topicOf(body))
	return r
}

// topicOf is the topic a sender names in the x-amz-sns-topic-arn header
// of body, as SNS names its own: the value of body's first "TopicArn"
// member, or testTopic when body has none a header can carry (the body
// is not a JSON object, the value is not a string or holds a control
// character), so that the body's own checks are what refuses it.
func topicOf(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return testTopic
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return testTopic
		}
		if tok == "TopicArn" {
			var v string
			if dec.Decode(&v) != nil || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return testTopic
			}
			return v
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return testTopic
		}
	}
	return testTopic
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sample is a real signed SNS message of the shared samples.
type sample struct {
	file string
	body []byte
	msg  *ses.SNSMessage
}

// realSampleOptions are the server options of the real samples' tests:
// the samples are from 2022, so no replay window.
func realSampleOptions() intake.ServerOptions {
	return intake.ServerOptions{MaxAge: 0}
}

// realSamples reads the real signed samples and the folder of their
// certificate.
func realSamples(t *testing.T) (certDir string, samples []sample) {
	t.Helper()
	certDir = filepath.Join(samplesDir, "certs")
	for _, name := range []string{
		"18_event_open_sns_http.json",
		"22_sns_subscription_confirmation_REAL_SIGNATURE_verifies.json",
		"31_extracted_sns_notification_sigv1_sha1_REAL_SIGNATURE.json",
		"32_extracted_sns_notification_sigv2_sha256_REAL_SIGNATURE.json",
	} {
		body, err := os.ReadFile(filepath.Join(samplesDir, "events", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ses.ParseSNS(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		samples = append(samples, sample{name, body, m})
	}
	return certDir, samples
}

func topicsOf(samples []sample) []string {
	var ts []string
	for _, s := range samples {
		ts = append(ts, s.msg.TopicArn)
	}
	return ts
}

func TestServerRealSamplesAccepted(t *testing.T) {
	certDir, samples := realSamples(t)
	ts := newTestServer(t, certDir, topicsOf(samples), realSampleOptions())
	var notifications []string
	for _, s := range samples {
		if code := ts.post(t, s.msg.Type, s.body); code != http.StatusOK {
			t.Errorf("%s: status %d, want 200\n%s", s.file, code, ts.logs)
		}
		if s.msg.Type == ses.SNSNotification {
			notifications = append(notifications, s.msg.MessageID)
		}
	}
	if got := ts.handledIDs(); strings.Join(got, ",") != strings.Join(notifications, ",") {
		t.Errorf("handled %v, want the notifications %v", got, notifications)
	}
	want := "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:032756942992:dev-relay-2022-04&Token=2336412f37fb687f5d51e6e2425dacbbab295a4858a33cdb6a8cb0ebfce2003796d8ff517616ab3f7b3399952cfecff575466f243a7004fee6c6ee158d69719622e8a10033953c30ea660bf52dd13c456e97af0a5676a6415184c0d6c0091ee11f983a5072b0a316e97b121fbb6d6d0ff4a9e274e17d276ff754786d34bf6d22"
	if got := ts.out.requests(); len(got) != 1 || got[0] != want {
		t.Errorf("outbound requests %q, want exactly one GET of the SubscribeURL", got)
	}
	if !strings.Contains(ts.logs.String(), `"msg":"subscription confirmed"`) {
		t.Errorf("no confirmation logged:\n%s", ts.logs)
	}
}

// signedFields are the body keys SNS signs, by message type.
var signedFields = map[string][]string{
	ses.SNSNotification:             {"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"},
	ses.SNSSubscriptionConfirmation: {"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"},
}

// tamper returns body with the string value of key changed (one character
// appended), keeping everything else; ok is false when body has no such
// string field.
func tamper(t *testing.T, body []byte, key string) ([]byte, bool) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	v, ok := doc[key].(string)
	if !ok {
		return nil, false
	}
	switch key {
	case "Type":
		// Another valid type, so that the signature is what refuses it.
		if v == ses.SNSNotification {
			doc[key] = ses.SNSSubscriptionConfirmation
			doc["Token"], doc["SubscribeURL"] = "t", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
		} else {
			doc[key] = ses.SNSUnsubscribeConfirmation
		}
	case "TopicArn":
		doc[key] = v + "-2" // allowed too: the test allows it
	case "SubscribeURL":
		doc[key] = v + "0"
	case "Timestamp":
		// Still a time, so that the signature is what refuses it.
		ts, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatal(err)
		}
		doc[key] = ts.Add(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	default:
		doc[key] = v + "x"
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out, true
}

func TestServerRealSamplesTampered(t *testing.T) {
	certDir, samples := realSamples(t)
	topics := topicsOf(samples)
	for _, s := range samples {
		topics = append(topics, s.msg.TopicArn+"-2")
	}
	ts := newTestServer(t, certDir, topics, realSampleOptions())
	n := 0
	for _, s := range samples {
		for _, key := range signedFields[s.msg.Type] {
			body, ok := tamper(t, s.body, key)
			if !ok {
				continue
			}
			n++
			if code := ts.post(t, "", body); code != http.StatusForbidden {
				t.Errorf("%s with %s changed: status %d, want 403", s.file, key, code)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d tampered bodies", n)
	}
	if got := ts.handledIDs(); len(got) != 0 {
		t.Errorf("tampered notifications were handled: %v", got)
	}
	if got := ts.out.requests(); len(got) != 0 {
		t.Errorf("tampered messages caused outbound requests: %q", got)
	}
	if c := strings.Count(ts.logs.String(), `"msg":"signature refused"`); c != n {
		t.Errorf("%d refusals logged, want %d", c, n)
	}
}

func TestServerRealSamplesTopicNotAllowed(t *testing.T) {
	certDir, samples := realSamples(t)
	for _, topics := range [][]string{nil, {"arn:aws:sns:us-east-1:123456789012:other"}} {
		ts := newTestServer(t, certDir, topics, realSampleOptions())
		for _, s := range samples {
			if code := ts.post(t, s.msg.Type, s.body); code != http.StatusForbidden {
				t.Errorf("topics %v: %s: status %d, want 403", topics, s.file, code)
			}
		}
		if len(ts.handledIDs()) != 0 || len(ts.out.requests()) != 0 {
			t.Errorf("topics %v: handled %v, outbound %v; want nothing", topics, ts.handledIDs(), ts.out.requests())
		}
	}
}

func TestServerSignedByTestKey(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{})
	subject := "Amazon SES Email Event Notification"
	n1 := sg.Notification(t, testTopic, "n1", `{"hello":"world"}`)
	n2 := &ses.SNSMessage{Type: ses.SNSNotification, MessageID: "n2", TopicArn: testTopic, Message: "m",
		Timestamp: "2024-05-01T10:00:00.000Z", Subject: &subject, SignatureVersion: "2"}
	sg.Sign(t, n2)
	sub := sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "s1", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t1")
	unsub := sg.Confirmation(t, ses.SNSUnsubscribeConfirmation, testTopic, "u1", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=u1")
	for _, m := range []*ses.SNSMessage{n1, n2, sub, unsub} {
		if code := ts.post(t, m.Type, intaketest.Body(m)); code != http.StatusOK {
			t.Errorf("%s %s: status %d, want 200\n%s", m.Type, m.MessageID, code, ts.logs)
		}
	}
	if got := strings.Join(ts.handledIDs(), ","); got != "n1,n2" {
		t.Errorf("handled %s, want n1,n2", got)
	}
	if got := ts.out.requests(); len(got) != 1 || got[0] != sub.SubscribeURL {
		t.Errorf("outbound %q, want the one SubscribeURL", got)
	}
	if !strings.Contains(ts.logs.String(), `"msg":"unsubscribed"`) {
		t.Errorf("unsubscribe not logged:\n%s", ts.logs)
	}
}

func TestServerForgedConfirmationNoRequest(t *testing.T) {
	sg := intaketest.NewSigner(t)
	other := intaketest.NewSigner(t) // its certificate is not in sg.CertDir
	const good = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
	badSig := sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "bad-sig", good)
	badSig.Signature = other.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "bad-sig", good).Signature
	changed := sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "changed", good)
	changed.SubscribeURL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=other"
	tests := []struct {
		name string
		m    *ses.SNSMessage
		want int
	}{
		{"signed by another key", badSig, http.StatusForbidden},
		{"SubscribeURL changed after signing", changed, http.StatusForbidden},
		{"topic not allowed", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, "arn:aws:sns:us-east-1:666666666666:evil", "topic", good), http.StatusForbidden},
		{"SubscribeURL on another host", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "host", "https://evil.example/?Action=ConfirmSubscription"), http.StatusForbidden},
		{"SubscribeURL on a look-alike host", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "alike", "https://sns.us-east-1.amazonaws.com.evil.example/?x"), http.StatusForbidden},
		{"SubscribeURL over http", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "http", "http://sns.us-east-1.amazonaws.com/?x"), http.StatusForbidden},
		{"SubscribeURL with user info", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "user", "https://sns.us-east-1.amazonaws.com@evil.example/?x"), http.StatusForbidden},
		{"SubscribeURL with a port", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "port", "https://sns.us-east-1.amazonaws.com:8443/?x"), http.StatusForbidden},
		{"SigningCertURL on another host", func() *ses.SNSMessage {
			m := &ses.SNSMessage{Type: ses.SNSSubscriptionConfirmation, MessageID: "cert", TopicArn: testTopic, Token: "t",
				Message: "m", SubscribeURL: good, Timestamp: "2024-05-01T10:00:00.000Z",
				SigningCertURL: "https://evil.example/" + intaketest.CertName}
			sg.Sign(t, m)
			return m
		}(), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{})
			if code := ts.post(t, tt.m.Type, intaketest.Body(tt.m)); code != tt.want {
				t.Errorf("status %d, want %d\n%s", code, tt.want, ts.logs)
			}
			if got := ts.out.requests(); len(got) != 0 {
				t.Errorf("outbound requests %q, want none", got)
			}
		})
	}
}

func TestServerStatusCodes(t *testing.T) {
	sg := intaketest.NewSigner(t)
	n := sg.Notification(t, testTopic, "n1", "{}")
	body := intaketest.Body(n)
	t.Run("healthz", func(t *testing.T) {
		ts := newTestServer(t, sg.CertDir, nil, intake.ServerOptions{})
		w := httptest.NewRecorder()
		ts.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if w.Code != http.StatusOK || w.Body.String() != "ok\n" {
			t.Errorf("GET /healthz: %d %q, want 200 ok", w.Code, w.Body)
		}
	})
	t.Run("GET elsewhere", func(t *testing.T) {
		ts := newTestServer(t, sg.CertDir, nil, intake.ServerOptions{})
		w := httptest.NewRecorder()
		ts.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Errorf("GET /: %d Allow %q, want 405 POST", w.Code, w.Header().Get("Allow"))
		}
	})
	tests := []struct {
		name   string
		header string
		body   []byte
		opts   intake.ServerOptions
		fail   error
		want   int
	}{
		{"ok", ses.SNSNotification, body, intake.ServerOptions{}, nil, http.StatusOK},
		{"not JSON", "", []byte("hello"), intake.ServerOptions{}, nil, http.StatusBadRequest},
		{"missing fields", "", []byte(`{"Type":"Notification"}`), intake.ServerOptions{}, nil, http.StatusBadRequest},
		{"header contradicts body", ses.SNSSubscriptionConfirmation, body, intake.ServerOptions{}, nil, http.StatusBadRequest},
		{"oversized", "", append(bytes.Repeat([]byte(" "), 300<<10), body...), intake.ServerOptions{}, nil, http.StatusRequestEntityTooLarge},
		{"over a small limit", "", body, intake.ServerOptions{MaxBody: 100}, nil, http.StatusRequestEntityTooLarge},
		{"action failed", "", body, intake.ServerOptions{}, errors.New("slack said no"), http.StatusInternalServerError},
		{"unreadable content", "", body, intake.ServerOptions{}, fmt.Errorf("bad JSON: %w", intake.ErrUnprocessable), http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, sg.CertDir, []string{testTopic}, tt.opts)
			ts.fail = tt.fail
			if code := ts.post(t, tt.header, tt.body); code != tt.want {
				t.Errorf("status %d, want %d\n%s", code, tt.want, ts.logs)
			}
			handled := len(ts.handledIDs()) > 0
			if wantHandled := tt.want == 200 || tt.want >= 422; handled != wantHandled {
				t.Errorf("handled %v, want %v", handled, wantHandled)
			}
		})
	}
}

func TestServerOversizedChunked(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{})
	hs := httptest.NewServer(ts.srv)
	defer hs.Close()
	// No Content-Length: the limit is met while reading.
	pr, pw := io.Pipe()
	go func() {
		pw.Write(bytes.Repeat([]byte(" "), 512<<10))
		pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, hs.URL, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(intake.TopicHeader, testTopic)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

func TestServerConfirmationGETFails(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{})
	ts.out.status = http.StatusForbidden
	m := sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "s1", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t")
	if code := ts.post(t, m.Type, intaketest.Body(m)); code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", code)
	}
}

func TestServerBusy(t *testing.T) {
	sg := intaketest.NewSigner(t)
	body := intaketest.Body(sg.Notification(t, testTopic, "n1", "{}"))
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		srv := intake.NewServer(intake.ServerOptions{
			Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}),
			Topics:   []string{testTopic}, MaxConcurrent: 1, QueueWait: 2 * time.Second,
			Handle: func(context.Context, *ses.SNSMessage) error {
				<-release
				return nil
			},
		})
		done := make(chan int)
		go func() {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, snsRequest(body))
			done <- w.Code
		}()
		synctest.Wait() // the first request holds the only slot, in Handle
		start := time.Now()
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, snsRequest(body))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || time.Since(start) != 2*time.Second {
			t.Errorf("second request: %d Retry-After %q after %v, want 503 with Retry-After after QueueWait",
				w.Code, w.Header().Get("Retry-After"), time.Since(start))
		}
		close(release)
		if code := <-done; code != http.StatusOK {
			t.Errorf("first request: %d, want 200", code)
		}
	})
}

func TestServerReplayWindow(t *testing.T) {
	sg := intaketest.NewSigner(t)
	now := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	at := func(typ, ts string) *ses.SNSMessage {
		m := &ses.SNSMessage{Type: typ, MessageID: "id", TopicArn: testTopic, Message: "{}", Timestamp: ts}
		if typ != ses.SNSNotification {
			m.Token, m.SubscribeURL = "t", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
		}
		sg.Sign(t, m)
		return m
	}
	n := ses.SNSNotification
	tests := []struct {
		name   string
		maxAge time.Duration
		m      *ses.SNSMessage
		want   int
		log    string // in the log line of a refusal
	}{
		{"fresh", time.Hour, at(n, "2024-05-02T09:59:59.999Z"), http.StatusOK, ""},
		{"just within", time.Hour, at(n, "2024-05-02T09:00:00.000Z"), http.StatusOK, ""},
		{"too old", time.Hour, at(n, "2024-05-02T08:59:59.999Z"), http.StatusForbidden,
			`"msg":"notification outside the replay window","snsType":"Notification","snsMessageId":"id","topicArn":"arn:aws:sns:us-east-1:123456789012:ses-feedback","status":403,"remote":"192.0.2.1:1234","error":"timestamp 2024-05-02T08:59:59.999Z is 1h0m0.001s old, more than MaxAge 1h0m0s"`},
		{"a year old", time.Hour, at(n, "2023-05-02T10:00:00.000Z"), http.StatusForbidden, "more than MaxAge"},
		{"other zone", time.Hour, at(n, "2024-05-02T11:30:00+02:00"), http.StatusOK, ""},
		{"slightly ahead", time.Hour, at(n, "2024-05-02T10:05:00.000Z"), http.StatusOK, ""},
		{"too far ahead", time.Hour, at(n, "2024-05-02T10:05:00.001Z"), http.StatusForbidden,
			`"error":"timestamp 2024-05-02T10:05:00.001Z is 5m0.001s ahead of this clock, more than 5m0s"`},
		{"no limit", 0, at(n, "2022-04-13T17:14:18.903Z"), http.StatusOK, ""},
		{"no limit, ahead", 0, at(n, "2030-01-01T00:00:00.000Z"), http.StatusOK, ""},
		{"old confirmation", time.Hour, at(ses.SNSSubscriptionConfirmation, "2024-05-01T10:00:00.000Z"), http.StatusOK, ""},
		{"not a time", time.Hour, at(n, "yesterday"), http.StatusBadRequest, `"error":"sns message: Timestamp \"yesterday\" is not an RFC 3339 time"`},
		{"not RFC 3339", time.Hour, at(n, "2024-05-02 10:00:00"), http.StatusBadRequest, "is not an RFC 3339 time"},
		{"not a time, no limit", 0, at(n, "yesterday"), http.StatusBadRequest, "is not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newFetchingServer(t, sg, []string{testTopic}, intake.ServerOptions{MaxAge: tt.maxAge, Now: func() time.Time { return now }})
			if code := ts.post(t, "", intaketest.Body(tt.m)); code != tt.want {
				t.Fatalf("status %d, want %d\n%s", code, tt.want, ts.logs)
			}
			if tt.want == http.StatusOK {
				return
			}
			if !strings.Contains(ts.logs.String(), tt.log) || !strings.Contains(ts.logs.String(), `"level":"WARN"`) {
				t.Errorf("log\n%s\nwant a warning with\n%s", ts.logs, tt.log)
			}
			if got := ts.out.requests(); len(got) != 0 {
				t.Errorf("outbound requests %q, want none: the certificate is not fetched", got)
			}
			if n := ts.verifier.n.Load(); n != 0 || len(ts.handledIDs()) != 0 {
				t.Errorf("%d verified, %d handled; want none", n, len(ts.handledIDs()))
			}
		})
	}
}

func TestServerCertificateChecks(t *testing.T) {
	sg := intaketest.NewSigner(t)
	withCertURL := func(u string) *ses.SNSMessage {
		m := &ses.SNSMessage{Type: ses.SNSNotification, MessageID: "n", TopicArn: testTopic, Message: "{}",
			Timestamp: intaketest.Timestamp(time.Now()), SigningCertURL: u}
		sg.Sign(t, m)
		return m
	}
	certs := map[string][]byte{intaketest.CertName: sg.CertPEM()}
	tests := []struct {
		name    string
		ts      *testServer
		m       *ses.SNSMessage
		want    int
		log     string
		fetched bool
	}{
		{"chains to the given roots", newFetchingServer(t, sg, []string{testTopic}, intake.ServerOptions{}),
			sg.Notification(t, testTopic, "n", "{}"), http.StatusOK, "", true},
		{"does not chain to the system's roots", startTestServer(t, intake.VerifierOptions{}, certs, []string{testTopic}, intake.ServerOptions{}),
			sg.Notification(t, testTopic, "n", "{}"), http.StatusForbidden, "does not chain to a trusted root", true},
		{"on an S3 bucket's host", newFetchingServer(t, sg, []string{testTopic}, intake.ServerOptions{}),
			withCertURL("https://sns.s3-accelerate.amazonaws.com/" + intaketest.CertName), http.StatusForbidden,
			`host is not sns.us-east-1.amazonaws.com, the SNS host of the topic's region`, false},
		{"on another region's host", newFetchingServer(t, sg, []string{testTopic}, intake.ServerOptions{}),
			withCertURL("https://sns.eu-west-1.amazonaws.com/" + intaketest.CertName), http.StatusForbidden,
			`host is not sns.us-east-1.amazonaws.com, the SNS host of the topic's region`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := tt.ts.post(t, "", intaketest.Body(tt.m)); code != tt.want {
				t.Fatalf("status %d, want %d\n%s", code, tt.want, tt.ts.logs)
			}
			if !strings.Contains(tt.ts.logs.String(), tt.log) {
				t.Errorf("log\n%s\nwant %s", tt.ts.logs, tt.log)
			}
			if got := tt.ts.out.requests(); (len(got) > 0) != tt.fetched {
				t.Errorf("outbound requests %q, want a fetch: %v", got, tt.fetched)
			}
		})
	}
}

func TestServerSignatureVersion2Only(t *testing.T) {
	certDir, samples := realSamples(t)
	v := intake.NewVerifier(intake.VerifierOptions{CertDir: certDir, MinSignatureVersion: 2})
	var got []string
	srv := intake.NewServer(intake.ServerOptions{
		Verifier: v, Topics: topicsOf(samples), MaxAge: 0, // the samples are from 2022
		Handle: func(_ context.Context, m *ses.SNSMessage) error {
			got = append(got, m.MessageID)
			return nil
		},
		HTTPClient: &http.Client{Transport: &recorder{}},
	})
	for _, s := range samples {
		want := http.StatusForbidden
		if s.msg.SignatureVersion == "2" {
			want = http.StatusOK
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, snsRequest(s.body))
		if w.Code != want {
			t.Errorf("%s (SignatureVersion %s): status %d, want %d", s.file, s.msg.SignatureVersion, w.Code, want)
		}
	}
	if want := "17dea24b-55c2-540b-8362-f916557af765"; strings.Join(got, ",") != want {
		t.Errorf("handled %v, want only the SignatureVersion 2 sample %s", got, want)
	}
}

func TestServerConfirmationNoRedirect(t *testing.T) {
	// The SubscribeURL is signed; where it redirects is not.
	sg := intaketest.NewSigner(t)
	ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{})
	ts.out.redirect = "https://evil.example/collect"
	m := sg.Confirmation(t, ses.SNSSubscriptionConfirmation, testTopic, "s1", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t")
	if code := ts.post(t, m.Type, intaketest.Body(m)); code != http.StatusBadGateway {
		t.Errorf("status %d, want 502\n%s", code, ts.logs)
	}
	if got := ts.out.requests(); len(got) != 1 || got[0] != m.SubscribeURL {
		t.Errorf("outbound requests %q, want the SubscribeURL alone", got)
	}
	if !strings.Contains(ts.logs.String(), "redirect not followed") {
		t.Errorf("log does not say why:\n%s", ts.logs)
	}
}

func TestNewServerKeepsTheClient(t *testing.T) {
	// The redirect rule is set on a copy: the caller's client is theirs.
	sg := intaketest.NewSigner(t)
	client := &http.Client{Transport: &recorder{}}
	intake.NewServer(intake.ServerOptions{
		Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}), HTTPClient: client,
		Handle: func(context.Context, *ses.SNSMessage) error { return nil },
	})
	if client.CheckRedirect != nil {
		t.Error("NewServer changed the HTTPClient it was given")
	}
}

func TestServerUnreadableBodyNoFetch(t *testing.T) {
	// A body ses.ParseSNS refuses is answered 400 before its signature
	// is looked at: no verification, no certificate fetch, no Handle.
	sg := intaketest.NewSigner(t)
	genuine := string(intaketest.Body(sg.Notification(t, testTopic, "n1", `{"notificationType":"Bounce"}`)))
	inner := strings.TrimSuffix(strings.TrimPrefix(genuine, "{"), "}")
	for _, tc := range []struct{ name, body, log string }{
		{"control character in MessageId", strings.Replace(genuine, `"MessageId":"n1"`, `"MessageId":"n1\nType\nNotification"`, 1), "MessageId holds a control character"},
		{"control character in TopicArn", strings.Replace(genuine, `ses-feedback"`, `ses-feedback\u0000"`, 1), "TopicArn holds a control character"},
		{"not an object", "[" + genuine + "]", "an SNS message is a JSON object"},
		{"a string", `"` + genuine + `"`, "an SNS message is a JSON object"},
		{"trailing object", genuine + "{}", ""},
		{"trailing garbage", genuine + " x", ""},
		{"truncated", genuine[:len(genuine)-1], ""},
		{"Message twice", "{" + inner + `,"Message":"{}"}`, `key \"Message\" appears twice`},
		{"message in lower case", `{"message":"{}",` + inner + "}", `key \"Message\" appears twice`},
		{"Message not a string", strings.Replace(genuine, `"Message":"{\"notificationType\":\"Bounce\"}"`, `"Message":{"notificationType":"Bounce"}`, 1), "SNS always sends the message as a string"},
		{"field missing", strings.Replace(genuine, `"SignatureVersion":"1",`, "", 1), "missing SignatureVersion"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newFetchingServer(t, sg, []string{testTopic}, intake.ServerOptions{})
			checkRefusedUnread(t, ts, ts.post(t, "", []byte(tc.body)))
			if !strings.Contains(ts.logs.String(), `"msg":"not an SNS message"`) || !strings.Contains(ts.logs.String(), tc.log) {
				t.Errorf("log\n%s\nwant a refusal saying %s", ts.logs, tc.log)
			}
		})
	}
}
