package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// sesrouter serve in-process, through run, on a loopback port it chooses
// (-addr 127.0.0.1:0, read back from its "serving" log line), against the
// Slack and SES fakes. Signals reach it through env.notify, and whatever
// it would send to the outside (subscription confirmations) goes to an
// outbound recorder through env.outbound.

// samplesDir holds the real samples and their source notes.
const samplesDir = "../../testdata/samples"

const serveTopic = "arn:aws:sns:us-east-1:123456789012:ses-feedback"

// everythingRules notify every notification to the webhook in
// $SLACK_WEBHOOK_TEST.
const everythingRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      pace: 0s
rules:
  - name: everything
    when: "true"
    actions: [{notify: hook}]
`

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
	url   string
	fakes *liveFakes
	out   *outbound
	logs  *lineLog
	rules string // the rules file
	sigs  chan<- os.Signal
	code  chan int // the exit status, once run has returned
}

// serveSetup is what startServe is given beside the rules.
type serveSetup struct {
	// args are serve's flags after -rules and -addr.
	args []string
	// vars are added to the fakes' variables.
	vars map[string]string
	// onLine, when set, sees every log line.
	onLine func(string)
	// fakes, when set, are the fakes to use; else startServe starts them.
	fakes *liveFakes
}

// startServe runs serve with rules (text) on a loopback port, with the
// Slack and SES fakes; a SIGTERM stops it at cleanup.
func startServe(t *testing.T, rules string, setup serveSetup) *testServe {
	t.Helper()
	f := setup.fakes
	if f == nil {
		f = startLiveFakes(t)
	}
	f.vars["SLACK_WEBHOOK_GONE"] = f.slack.URL() + "/services/T000/B000/NOSUCHHOOK"
	for k, v := range setup.vars {
		f.vars[k] = v
	}
	ts := &testServe{fakes: f, out: &outbound{}, logs: newLineLog(), code: make(chan int, 1)}
	ts.logs.onLine = setup.onLine
	ts.rules = writeFile(t, t.TempDir(), "rules.yaml", rules)
	e := testEnv(f.vars)
	e.outbound = ts.out
	sigs := make(chan chan<- os.Signal, 1)
	e.notify = func(c chan<- os.Signal, _ ...os.Signal) { sigs <- c }
	args := append([]string{"serve", "-rules", ts.rules, "-addr", "127.0.0.1:0"}, setup.args...)
	go func() {
		ts.code <- run(args, strings.NewReader(""), io.Discard, ts.logs, e)
		ts.logs.Close()
	}()
	var serving struct{ Addr string }
	if err := json.Unmarshal([]byte(ts.logs.wait(t, `"msg":"serving"`)), &serving); err != nil || serving.Addr == "" {
		t.Fatalf("no address in the serving line: %v\n%s", err, ts.logs)
	}
	ts.url = "http://" + serving.Addr
	ts.sigs = <-sigs
	t.Cleanup(func() {
		select {
		case <-ts.code:
			ts.code <- exitOK // stopped by the test
		default:
			ts.sigs <- syscall.SIGTERM
		}
		if c := <-ts.code; c != exitOK {
			t.Errorf("serve exited %d:\n%s", c, ts.logs)
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
	setSNSHeaders(req, body)
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

// setSNSHeaders sets the headers SNS sends with body: the topic header
// names the topic of body's first TopicArn member (serveTopic when it has
// none a header can carry, so that the body's own checks are what
// refuses it).
func setSNSHeaders(req *http.Request, body []byte) {
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("User-Agent", "Amazon Simple Notification Service Agent")
	topic := serveTopic
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('{') {
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if tok == "TopicArn" {
				var v string
				if dec.Decode(&v) == nil && !strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
					topic = v
				}
				break
			}
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				break
			}
		}
	}
	req.Header.Set(intake.TopicHeader, topic)
}

// realSample is a real signed sample of testdata/samples.
type realSample struct {
	name string
	body []byte
	msg  *ses.SNSMessage
}

// readRealSamples reads samples 18, 22, 31 and 32, signed by SNS with the
// certificate of testdata/samples/certs.
func readRealSamples(t *testing.T) (certDir string, samples []realSample) {
	t.Helper()
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
		samples = append(samples, realSample{name, body, m})
	}
	return filepath.Join(samplesDir, "certs"), samples
}

// TestServeRealSignedSamples posts real signed SNS messages, some years
// old (so -max-age 0), tampered with first, then as they are: a tampered
// one is refused and does nothing; a genuine Notification is routed, a
// genuine SubscriptionConfirmation confirmed.
func TestServeRealSignedSamples(t *testing.T) {
	certDir, samples := readRealSamples(t)
	args := []string{"-sns-cert-dir", certDir, "-max-age", "0"}
	var topics []string
	for _, s := range samples {
		topics = append(topics, s.msg.TopicArn)
		args = append(args, "-topic", s.msg.TopicArn)
	}
	ts := startServe(t, everythingRules, serveSetup{args: args})

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
				doc[key] = topics[(slices.Index(topics, v)+1)%len(topics)]
				if doc[key] == v {
					continue
				}
			case "Timestamp":
				// A second later, still a timestamp, so that the signature
				// refuses it (not a timestamp is refused before, 400).
				at, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					t.Fatalf("%s: Timestamp %q: %v", s.name, v, err)
				}
				doc[key] = intaketest.Timestamp(at.Add(time.Second))
			case "Type":
				if v != ses.SNSSubscriptionConfirmation {
					continue // a Notification's Type is covered by the intake tests
				}
				doc[key] = ses.SNSUnsubscribeConfirmation
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
		`"msg":"notification"`, `"envelope":"http"`, `"snsMessageId":"23f060fa-f024-52f2-8641-3a2bf70e4595"`, `"type":"Open"`, `"rules":["everything"]`,
		`"msg":"skipped"`, `"snsMessageId":"792cda85-518f-5dd3-9163-81d851212f3a"`, `"snsMessageId":"17dea24b-55c2-540b-8362-f916557af765"`,
		`"msg":"subscription confirmed"`, `"msg":"signature refused"`)
}

// TestServeMaxAge posts a real signed sample, years old, to a serve with
// the default -max-age: refused as a replay, and nothing is done.
func TestServeMaxAge(t *testing.T) {
	certDir, samples := readRealSamples(t)
	open := samples[0]
	ts := startServe(t, everythingRules, serveSetup{args: []string{"-sns-cert-dir", certDir, "-topic", open.msg.TopicArn}})
	if code := ts.post(t, nil, open.body); code != http.StatusForbidden {
		t.Errorf("%s: status %d, want 403", open.name, code)
	}
	if n := len(ts.fakes.slack.Posts()); n != 0 {
		t.Errorf("%d Slack posts, want none", n)
	}
	checkContains(t, "log", ts.logs.String(), `"msg":"notification outside the replay window"`)
}

// TestServeSignatureVersion2 posts the real SHA1-signed (version 1) and
// SHA256-signed (version 2) samples to a serve that wants version 2: the
// first is refused, the second accepted.
func TestServeSignatureVersion2(t *testing.T) {
	certDir, samples := readRealSamples(t)
	v1, v2 := samples[2], samples[3]
	ts := startServe(t, everythingRules, serveSetup{args: []string{"-sns-cert-dir", certDir, "-max-age", "0",
		"-signature-version", "2", "-topic", v1.msg.TopicArn, "-topic", v2.msg.TopicArn}})
	if code := ts.post(t, nil, v1.body); code != http.StatusForbidden {
		t.Errorf("%s: status %d, want 403", v1.name, code)
	}
	if code := ts.post(t, nil, v2.body); code != http.StatusOK {
		t.Errorf("%s: status %d, want 200", v2.name, code)
	}
}

func TestServeForgedConfirmationNoRequest(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, serveSetup{args: []string{"-topic", serveTopic, "-sns-cert-dir", sg.CertDir}})
	const good = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
	forged := sg.Confirmation(t, ses.SNSSubscriptionConfirmation, serveTopic, "forged", good)
	forged.Signature = intaketest.NewSigner(t).Confirmation(t, ses.SNSSubscriptionConfirmation, serveTopic, "forged", good).Signature
	tests := []struct {
		name string
		m    *ses.SNSMessage
	}{
		{"bad signature", forged},
		{"topic not allowed", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, "arn:aws:sns:us-east-1:666666666666:evil", "topic", good)},
		{"SubscribeURL not on an SNS host", sg.Confirmation(t, ses.SNSSubscriptionConfirmation, serveTopic, "host", "https://evil.example/confirm")},
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
	ts := startServe(t, lambdaRules, serveSetup{args: []string{"-sns-cert-dir", sg.CertDir}})
	m := sg.Notification(t, serveTopic, "n1", liveBounce(t, "ses-1", "a@example.com"))
	if code := ts.post(t, nil, intaketest.Body(m)); code != http.StatusForbidden {
		t.Errorf("status %d, want 403", code)
	}
	checkContains(t, "log", ts.logs.String(), `"level":"WARN","msg":"no -topic given: every message will be refused"`)
}

func TestServeStatusCodes(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, serveSetup{args: []string{"-topic", serveTopic, "-sns-cert-dir", sg.CertDir}})
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

// TestServeReload rewrites the rules and sends SIGHUP: the new rules
// route the next notification; a broken file is not loaded, and the
// previous rules stay.
func TestServeReload(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, lambdaRules, serveSetup{args: []string{"-topic", serveTopic, "-sns-cert-dir", sg.CertDir}})
	send := func(id string) {
		t.Helper()
		m := sg.Notification(t, serveTopic, id, liveBounce(t, "ses-"+id, "a@example.com"))
		if code := ts.post(t, nil, intaketest.Body(m)); code != 200 {
			t.Fatalf("%s: status %d\n%s", id, code, ts.logs)
		}
	}
	send("before")
	checkContains(t, "log", ts.logs.String(), `"rules":["bounces"]`)

	writeFile(t, filepath.Dir(ts.rules), "rules.yaml", strings.ReplaceAll(lambdaRules, "name: bounces", "name: bounces-v2"))
	mark := ts.logs.mark()
	ts.sigs <- syscall.SIGHUP
	ts.logs.waitAfter(t, mark, `"msg":"rules reloaded"`)
	send("after")
	checkContains(t, "log", ts.logs.String(), `"rules":["bounces-v2"]`)

	writeFile(t, filepath.Dir(ts.rules), "rules.yaml", "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n")
	mark = ts.logs.mark()
	ts.sigs <- syscall.SIGHUP
	ts.logs.waitAfter(t, mark, `"msg":"rules not reloaded; the previous rules stay"`)
	before := strings.Count(ts.logs.String(), `"rules":["bounces-v2"]`)
	send("broken")
	if after := strings.Count(ts.logs.String(), `"rules":["bounces-v2"]`); after != before+1 {
		t.Errorf("after a broken reload the notification was not routed by the previous rules:\n%s", ts.logs)
	}
	if n := len(ts.fakes.slack.Posts()); n != 3 {
		t.Errorf("%d Slack posts, want 3", n)
	}
}

// TestServeGracefulShutdown sends SIGTERM while Slack holds a post: the
// request in flight is answered 200 once the post is done, then serve
// exits 0 and answers no more.
func TestServeGracefulShutdown(t *testing.T) {
	sg := intaketest.NewSigner(t)
	f := startLiveFakes(t)
	g := newGate(t, f.slack.WebhookURL("hook"))
	ts := startServe(t, lambdaRules, serveSetup{args: []string{"-topic", serveTopic, "-sns-cert-dir", sg.CertDir},
		fakes: f, vars: map[string]string{"SLACK_WEBHOOK_TEST": g.URL}})
	m := sg.Notification(t, serveTopic, "slow", liveBounce(t, "ses-slow", "a@example.com"))
	code := make(chan int, 1)
	go func() { code <- ts.post(t, nil, intaketest.Body(m)) }()
	g.waitArrived(t)
	ts.sigs <- syscall.SIGTERM
	ts.logs.wait(t, `"msg":"shutting down: finishing the requests in flight"`)
	g.open()
	if c := <-code; c != http.StatusOK {
		t.Errorf("request in flight at shutdown: status %d, want 200", c)
	}
	if c := <-ts.code; c != exitOK {
		t.Errorf("serve exited %d, want 0", c)
	}
	ts.code <- exitOK // for the cleanup
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d Slack posts, want 1", n)
	}
	if _, err := http.Get(ts.url + "/healthz"); err == nil {
		t.Error("still answering after shutdown")
	}
	checkContains(t, "log", ts.logs.String(), `"msg":"stopped"`, `"timeout":"2m30s"`)
}

// TestServeLoad posts 1,000 signed bounces at once, as SNS would: a 503
// (no slot free within intake.DefaultQueueWait: how many depends on the
// machine's speed) must carry a Retry-After, and the bounce is posted
// again after it. Every one ends routed and answered 200, acted on once
// (a 503 comes before anything is done), and memory stays bounded. The
// heap is sampled at every tenth log line, that is as the notifications
// are handled.
func TestServeLoad(t *testing.T) {
	const n = 1000
	sg := intaketest.NewSigner(t)
	// Every notification posted: digests are tested in storm_test.go.
	rules := strings.Replace(lambdaRules, "webhook_env: SLACK_WEBHOOK_TEST\n", "webhook_env: SLACK_WEBHOOK_TEST\n      digest_after: 1000000\n", 1)
	var mu sync.Mutex
	var peak uint64
	lines := 0
	sample := func(string) {
		mu.Lock()
		defer mu.Unlock()
		if lines++; lines%10 != 0 {
			return
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	ts := startServe(t, rules, serveSetup{args: []string{"-topic", serveTopic, "-sns-cert-dir", sg.CertDir}, onLine: sample})
	bodies := make([][]byte, n)
	for i := range bodies {
		id := fmt.Sprintf("load-%04d", i)
		bodies[i] = intaketest.Body(sg.Notification(t, serveTopic, id, liveBounce(t, "ses-"+id, "user"+id+"@example.com")))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	// post delivers body as SNS does, again after each 503 (at most
	// maxTries times: each waits up to DefaultQueueWait for a slot, while
	// the server works through the others), and returns the last status.
	const maxTries = 50
	var busy atomic.Int64
	post := func(body []byte) int {
		for try := 1; ; try++ {
			req, err := http.NewRequest(http.MethodPost, ts.url+"/sns", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return 0
			}
			setSNSHeaders(req, body)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return 0
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return resp.StatusCode
			}
			if busy.Add(1); try == maxTries {
				return resp.StatusCode
			}
			after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || after < 1 {
				t.Errorf("503 with Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
				return resp.StatusCode
			}
			time.Sleep(time.Duration(after) * time.Second) // as asked
		}
	}
	codes := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Go(func() {
			<-start
			codes[i] = post(bodies[i])
		})
	}
	close(start)
	wg.Wait()

	bad := map[int]int{}
	for _, c := range codes {
		if c != http.StatusOK {
			bad[c]++
		}
	}
	if len(bad) > 0 {
		t.Errorf("non-200 answers by status (after up to %d tries each): %v", maxTries, bad)
	}
	if refused := strings.Count(ts.logs.String(), `"msg":"too many requests in progress"`); int64(refused) != busy.Load() {
		t.Errorf("%d answers 503, %d refusals logged", busy.Load(), refused)
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
	mu.Lock()
	p := peak
	mu.Unlock()
	t.Logf("%d notifications, %d answers 503 first; heap in use: peak %d MiB, after GC %d MiB", n, busy.Load(), p>>20, ms.HeapInuse>>20)
	if ms.HeapInuse > 100<<20 {
		t.Errorf("heap in use after GC %d MiB, want under 100 MiB", ms.HeapInuse>>20)
	}
	if p > 512<<20 {
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
		{"bad topic", []string{"serve", "-topic", "my-topic"}, exitUsage, `invalid value "my-topic" for flag -topic: `},
		{"cert dir missing", []string{"serve", "-sns-cert-dir", "/nonexistent/certs"}, exitUsage, "-sns-cert-dir /nonexistent/certs is not a folder"},
		{"bad signature version", []string{"serve", "-signature-version", "3"}, exitUsage, "-signature-version is 1 or 2, not 3"},
		{"argument", []string{"serve", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"help", []string{"serve", "-h"}, exitOK, "Usage: sesrouter serve [-rules FILE] [-addr HOST:PORT] [-topic ARN]... [-sns-cert-dir DIR] [-max-age DURATION] [-signature-version 1|2]"},
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
