package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// sharedSamples is the shared samples folder: the repository sits beside
// shared/, here and in CI.
const sharedSamples = "../../../shared/samples"

const serveTopic = "arn:aws:sns:us-east-1:123456789012:ses-feedback"

// everythingRules notify every notification to the webhook in
// $SLACK_WEBHOOK_TEST.
const everythingRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
rules:
  - name: everything
    when: event.type != ""
    actions: [{notify: hook}]
`

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// outbound is an http.RoundTripper that records every request and answers
// 200 locally: with it, nothing leaves the process.
type outbound struct {
	mu   sync.Mutex
	urls []string
}

func (o *outbound) RoundTrip(r *http.Request) (*http.Response, error) {
	o.mu.Lock()
	o.urls = append(o.urls, r.URL.String())
	o.mu.Unlock()
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{},
		Body: io.NopCloser(strings.NewReader("<ConfirmSubscriptionResponse/>")), Request: r}, nil
}

func (o *outbound) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.urls...)
}

// testServe is a serve running in-process on 127.0.0.1.
type testServe struct {
	url    string
	fakes  *liveFakes
	out    *outbound
	logs   *syncBuffer
	rules  string // the rules file
	reload chan struct{}
	stop   context.CancelFunc
	done   chan error
}

// startServe runs serve with rules (text), topics and certDir on a
// loopback port, with the Slack and SES fakes; it stops at cleanup.
func startServe(t *testing.T, rules string, topics []string, certDir string) *testServe {
	t.Helper()
	f := startLiveFakes(t)
	f.vars["SLACK_WEBHOOK_GONE"] = f.slack.URL() + "/services/T000/B000/NOSUCHHOOK"
	ts := &testServe{fakes: f, out: &outbound{}, logs: &syncBuffer{}, reload: make(chan struct{}), done: make(chan error, 1)}
	ts.rules = writeFile(t, t.TempDir(), "rules.yaml", rules)
	r, err := engine.LoadFile(ts.rules)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(ts.logs, nil))
	client := &http.Client{Transport: ts.out}
	s, err := newServer(context.Background(), serveConfig{rulesPath: ts.rules, topics: topics, certDir: certDir,
		env: testEnv(f.vars), logger: logger, confirmClient: client, certClient: client, shutdownTimeout: 10 * time.Second}, r)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	ts.stop = cancel
	go func() { ts.done <- s.serve(ctx, ln, ts.reload) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ts.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

// post posts an SNS body as SNS does and returns the status code.
func (ts *testServe) post(t testing.TB, c *http.Client, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+"/sns", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("User-Agent", "Amazon Simple Notification Service Agent")
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitLog waits until the log holds want.
func (ts *testServe) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(ts.logs.String(), want) {
			return
		}
	}
	t.Fatalf("the log never showed %q:\n%s", want, ts.logs)
}

// realSample is a real signed sample of the shared folder.
type realSample struct {
	name string
	body []byte
	msg  *intake.Message
}

// readRealSamples reads samples 18, 22, 31 and 32, or skips the test when
// the shared folder is absent.
func readRealSamples(t *testing.T) (certDir string, samples []realSample) {
	t.Helper()
	certDir = filepath.Join(sharedSamples, "certs")
	if _, err := os.Stat(certDir); err != nil {
		t.Skipf("the shared samples are not beside the repository (%s): %v", sharedSamples, err)
	}
	for _, name := range []string{
		"18_event_open_sns_http.json",
		"22_sns_subscription_confirmation_REAL_SIGNATURE_verifies.json",
		"31_extracted_sns_notification_sigv1_sha1_REAL_SIGNATURE.json",
		"32_extracted_sns_notification_sigv2_sha256_REAL_SIGNATURE.json",
	} {
		body, err := os.ReadFile(filepath.Join(sharedSamples, "events", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := intake.ParseMessage(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		samples = append(samples, realSample{name, body, m})
	}
	return certDir, samples
}

func TestServeRealSignedSamples(t *testing.T) {
	certDir, samples := readRealSamples(t)
	var topics []string
	for _, s := range samples {
		topics = append(topics, s.msg.TopicArn)
	}
	ts := startServe(t, everythingRules, topics, certDir)

	// Tampered first: nothing may happen.
	for _, s := range samples {
		for _, key := range []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Token", "SubscribeURL", "Type"} {
			var doc map[string]any
			if err := json.Unmarshal(s.body, &doc); err != nil {
				t.Fatal(err)
			}
			v, ok := doc[key].(string)
			if !ok {
				continue
			}
			switch key {
			case "TopicArn":
				// Another allowed topic, so that the signature refuses it.
				doc[key] = topics[(indexOf(topics, v)+1)%len(topics)]
				if doc[key] == v {
					continue
				}
			case "Type":
				if v != intake.TypeSubscriptionConfirmation {
					continue // a Notification's Type is covered by the intake tests
				}
				doc[key] = intake.TypeUnsubscribeConfirmation
			default:
				doc[key] = v + "x"
			}
			body, _ := json.Marshal(doc)
			if code := ts.post(t, nil, body); code != http.StatusForbidden {
				t.Errorf("%s with %s changed: status %d, want 403", s.name, key, code)
			}
		}
	}
	if n := len(ts.fakes.slack.Posts()); n != 0 {
		t.Errorf("tampered messages made %d Slack posts, want none", n)
	}
	if got := ts.out.requests(); len(got) != 0 {
		t.Errorf("tampered messages made outbound requests %q, want none", got)
	}

	for _, s := range samples {
		if code := ts.post(t, nil, s.body); code != http.StatusOK {
			t.Errorf("%s: status %d, want 200\n%s", s.name, code, ts.logs)
		}
	}
	posts := ts.fakes.slack.Posts()
	if len(posts) != 1 || !strings.Contains(string(posts[0].Body), "rias@spatie.be") {
		t.Errorf("%d Slack posts, want 1 for the Open event of #18 (to rias@spatie.be): %v", len(posts), posts)
	}
	if got := ts.out.requests(); len(got) != 1 || got[0] != samples[1].msg.SubscribeURL {
		t.Errorf("outbound requests %q, want exactly one to #22's SubscribeURL", got)
	}
	checkContains(t, "log", ts.logs.String(),
		`"msg":"notification"`, `"envelope":"http"`, `"snsMessageId":"23f060fa-f024-52f2-8641-3a2bf70e4595"`, `"type":"Open"`, `"rule":"everything"`,
		`"msg":"skipped"`, `"snsMessageId":"792cda85-518f-5dd3-9163-81d851212f3a"`, `"snsMessageId":"17dea24b-55c2-540b-8362-f916557af765"`,
		`"msg":"subscription confirmed"`, `"msg":"signature refused"`)
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func TestServeForgedConfirmationNoRequest(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, []string{serveTopic}, sg.CertDir)
	const good = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
	forged := sg.Confirmation(t, intake.TypeSubscriptionConfirmation, serveTopic, "forged", good)
	forged.Signature = intaketest.NewSigner(t).Confirmation(t, intake.TypeSubscriptionConfirmation, serveTopic, "forged", good).Signature
	tests := []struct {
		name string
		m    *intake.Message
	}{
		{"bad signature", forged},
		{"topic not allowed", sg.Confirmation(t, intake.TypeSubscriptionConfirmation, "arn:aws:sns:us-east-1:666666666666:evil", "topic", good)},
		{"SubscribeURL not on an SNS host", sg.Confirmation(t, intake.TypeSubscriptionConfirmation, serveTopic, "host", "https://evil.example/confirm")},
	}
	for _, tt := range tests {
		if code := ts.post(t, nil, intaketest.Body(tt.m)); code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tt.name, code)
		}
	}
	if got := ts.out.requests(); len(got) != 0 {
		t.Errorf("outbound requests %q, want none", got)
	}
}

func TestServeNoTopicRefusesAll(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, nil, sg.CertDir)
	m := sg.Notification(t, serveTopic, "n1", liveBounce(t, "ses-1", "a@example.com"))
	if code := ts.post(t, nil, intaketest.Body(m)); code != http.StatusForbidden {
		t.Errorf("status %d, want 403", code)
	}
	checkContains(t, "log", ts.logs.String(), `"level":"WARN","msg":"no -topic given: every message will be refused"`)
}

func TestServeStatusCodes(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, []string{serveTopic}, sg.CertDir)
	resp, err := http.Get(ts.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Errorf("GET /healthz: %d %q, want 200 ok", resp.StatusCode, b)
	}
	big := intaketest.Body(sg.Notification(t, serveTopic, "big", liveBounce(t, "ses-big", "a@example.com")+strings.Repeat(" ", 300<<10)))
	tests := []struct {
		name string
		body []byte
		want int
	}{
		{"bounce", intaketest.Body(sg.Notification(t, serveTopic, "n1", liveBounce(t, "ses-1", "a@example.com"))), 200},
		{"action failed", intaketest.Body(sg.Notification(t, serveTopic, "n2", liveBounce(t, "ses-2", "b@broken.example"))), 500},
		{"unreadable SES JSON", intaketest.Body(sg.Notification(t, serveTopic, "n3", `{"notificationType":`)), 422},
		{"oversized", big, 413},
		{"not SNS", []byte(`{"hello":"world"}`), 400},
	}
	for _, tt := range tests {
		if code := ts.post(t, nil, tt.body); code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.want)
		}
	}
	if n := len(ts.fakes.slack.Posts()); n != 1 {
		t.Errorf("%d Slack posts, want 1", n)
	}
}

func TestServeReload(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, []string{serveTopic}, sg.CertDir)
	send := func(id string) {
		t.Helper()
		m := sg.Notification(t, serveTopic, id, liveBounce(t, "ses-"+id, "a@example.com"))
		if code := ts.post(t, nil, intaketest.Body(m)); code != 200 {
			t.Fatalf("%s: status %d\n%s", id, code, ts.logs)
		}
	}
	send("before")
	checkContains(t, "log", ts.logs.String(), `"rule":"bounces"`)

	writeFile(t, filepath.Dir(ts.rules), "rules.yaml", strings.ReplaceAll(lambdaRules, "name: bounces", "name: bounces-v2"))
	ts.reload <- struct{}{}
	ts.waitLog(t, `"msg":"rules reloaded"`)
	send("after")
	checkContains(t, "log", ts.logs.String(), `"rule":"bounces-v2"`)

	writeFile(t, filepath.Dir(ts.rules), "rules.yaml", "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n")
	ts.reload <- struct{}{}
	ts.waitLog(t, `"msg":"rules not reloaded; the previous rules stay"`)
	before := strings.Count(ts.logs.String(), `"rule":"bounces-v2"`)
	send("broken")
	if after := strings.Count(ts.logs.String(), `"rule":"bounces-v2"`); after != before+1 {
		t.Errorf("after a broken reload the notification was not routed by the previous rules:\n%s", ts.logs)
	}
	if n := len(ts.fakes.slack.Posts()); n != 3 {
		t.Errorf("%d Slack posts, want 3", n)
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, []string{serveTopic}, sg.CertDir)
	ts.fakes.slack.Script(actionstest.FaultSlow(700 * time.Millisecond))
	m := sg.Notification(t, serveTopic, "slow", liveBounce(t, "ses-slow", "a@example.com"))
	code := make(chan int, 1)
	go func() { code <- ts.post(t, nil, intaketest.Body(m)) }()
	for deadline := time.Now().Add(5 * time.Second); ts.fakes.slack.Counts().Requests == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached Slack")
		}
	}
	ts.stop()
	if c := <-code; c != http.StatusOK {
		t.Errorf("request in flight at shutdown: status %d, want 200", c)
	}
	if err := <-ts.done; err != nil {
		t.Errorf("serve: %v", err)
	}
	ts.done <- nil // for the cleanup
	if n := len(ts.fakes.slack.Posts()); n != 1 {
		t.Errorf("%d Slack posts, want 1", n)
	}
	if _, err := http.Get(ts.url + "/healthz"); err == nil {
		t.Error("still answering after shutdown")
	}
	checkContains(t, "log", ts.logs.String(), `"msg":"shutting down: finishing the requests in flight"`, `"msg":"stopped"`)
}

// TestServeLoad posts 1,000 signed bounces at once: every one is routed
// and answered 200, and memory stays bounded.
func TestServeLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const n = 1000
	sg := intaketest.NewSigner(t)
	// Every notification posted: digests are tested in storm_test.go.
	rules := strings.Replace(lambdaRules, "webhook_env: SLACK_WEBHOOK_TEST\n", "webhook_env: SLACK_WEBHOOK_TEST\n      digest_after: 1000000\n", 1)
	ts := startServe(t, rules, []string{serveTopic}, sg.CertDir)
	bodies := make([][]byte, n)
	for i := range bodies {
		id := fmt.Sprintf("load-%04d", i)
		bodies[i] = intaketest.Body(sg.Notification(t, serveTopic, id, liveBounce(t, "ses-"+id, "user"+id+"@example.com")))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}

	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	codes := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = ts.post(t, client, bodies[i])
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	close(stopSampling)
	<-sampled

	bad := map[int]int{}
	for _, c := range codes {
		if c != http.StatusOK {
			bad[c]++
		}
	}
	if len(bad) > 0 {
		t.Errorf("non-200 answers by status: %v", bad)
	}
	if got := len(ts.fakes.slack.Posts()); got != n {
		t.Errorf("%d Slack posts, want %d", got, n)
	}
	if got := strings.Count(ts.logs.String(), `"msg":"notification"`); got != n {
		t.Errorf("%d notification log lines, want %d", got, n)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d notifications in %v; heap in use: peak %d MiB, after GC %d MiB", n, elapsed.Round(time.Millisecond), peak.Load()>>20, ms.HeapInuse>>20)
	if ms.HeapInuse > 100<<20 {
		t.Errorf("heap in use after GC %d MiB, want under 100 MiB", ms.HeapInuse>>20)
	}
	if p := peak.Load(); p > 512<<20 {
		t.Errorf("peak heap in use %d MiB, want under 512 MiB", p>>20)
	}
}

func TestServeUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad topic", []string{"serve", "-topic", "my-topic"}, exitUsage, `invalid value "my-topic" for flag -topic: "my-topic" is not an SNS topic ARN`},
		{"cert dir missing", []string{"serve", "-sns-cert-dir", "/nonexistent/certs"}, exitUsage, "-sns-cert-dir /nonexistent/certs is not a folder"},
		{"argument", []string{"serve", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"help", []string{"serve", "-h"}, exitOK, "Usage: sesrouter serve [-rules FILE] [-addr HOST:PORT] [-topic ARN]... [-sns-cert-dir DIR]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(nil), "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
}
