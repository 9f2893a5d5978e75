package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// signalRules notify every bounce to the webhook in $SLACK_WEBHOOK_URL;
// the rule's name is replaced to tell the rules loaded apart.
const signalRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_URL
rules:
  - name: RULENAME
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// servedProcess is sesrouter serve running as a child process.
type servedProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// TestServeSignals runs the real binary and drives it with signals:
// SIGHUP reloads the rules (and keeps them when the file is broken),
// SIGTERM lets the request in flight finish, then exits 0.
func TestServeSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildSesrouter(t)
	sg := intaketest.NewSigner(t)
	slack := actionstest.NewSlack(t)
	hook := slack.WebhookURL("alerts")
	rules := writeFile(t, t.TempDir(), "rules.yaml", strings.ReplaceAll(signalRules, "RULENAME", "bounces-v1"))
	p := startServeProcess(t, bin, []string{"SLACK_WEBHOOK_URL=" + hook},
		"serve", "-addr", freeLoopbackAddr(t), "-topic", serveTopic, "-sns-cert-dir", sg.CertDir, "-rules", rules)

	posted := 0
	send := func(id string) int {
		t.Helper()
		m := sg.Notification(t, serveTopic, id, liveBounce(t, "ses-"+id, "a@example.com"))
		return p.post(t, intaketest.Body(m))
	}
	checkPosts := func(step string) {
		t.Helper()
		posts := slack.Posts()
		if len(posts) != posted {
			t.Fatalf("%s: %d Slack posts, want %d", step, len(posts), posted)
		}
		if last := posts[len(posts)-1]; last.Kind != actionstest.KindWebhook || last.Channel != "alerts" {
			t.Errorf("%s: posted %s to %q, want the alerts webhook", step, last.Kind, last.Channel)
		}
	}

	// (1) A signed bounce is posted.
	if code := send("first"); code != http.StatusOK {
		t.Fatalf("first bounce: status %d, want 200\n%s", code, p.stderr)
	}
	posted++
	checkPosts("first bounce")
	if rule := p.ruleOf(t, "first"); rule != "bounces-v1" {
		t.Errorf("first bounce routed by rule %q, want bounces-v1", rule)
	}

	// (2) SIGHUP reloads the rewritten rules: bounces are posted until
	// one is routed by the new rule.
	writeFile(t, filepath.Dir(rules), "rules.yaml", strings.ReplaceAll(signalRules, "RULENAME", "bounces-v2"))
	p.signal(t, syscall.SIGHUP)
	reloaded := false
	for i, deadline := 0, time.Now().Add(10*time.Second); !reloaded; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no bounce was routed by the reloaded rules within 10s of SIGHUP:\n%s", p.stderr)
		}
		id := fmt.Sprintf("hup-%d", i)
		if code := send(id); code != http.StatusOK {
			t.Fatalf("%s: status %d, want 200\n%s", id, code, p.stderr)
		}
		posted++
		switch rule := p.ruleOf(t, id); rule {
		case "bounces-v2":
			reloaded = true
		case "bounces-v1":
			time.Sleep(20 * time.Millisecond) // polling interval
		default:
			t.Fatalf("%s routed by rule %q, want bounces-v1 or bounces-v2", id, rule)
		}
	}
	checkPosts("after SIGHUP")
	checkContains(t, "log", p.stderr.String(), `"msg":"rules reloaded"`, `"count":1`)

	// (3) A broken rules file is not loaded: the log says so and the
	// previous rules stay.
	writeFile(t, filepath.Dir(rules), "rules.yaml", "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n")
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, `"msg":"rules not reloaded; the previous rules stay"`)
	if code := send("broken"); code != http.StatusOK {
		t.Fatalf("bounce after a broken reload: status %d, want 200\n%s", code, p.stderr)
	}
	posted++
	checkPosts("after a broken reload")
	if rule := p.ruleOf(t, "broken"); rule != "bounces-v2" {
		t.Errorf("after a broken reload, routed by rule %q, want the previous bounces-v2", rule)
	}

	// (4) SIGTERM while Slack holds a request: the request still gets
	// 200, then the process exits 0.
	slack.Script(actionstest.FaultSlow(time.Second))
	before := slack.Counts().Requests
	code := make(chan int, 1)
	m := sg.Notification(t, serveTopic, "slow", liveBounce(t, "ses-slow", "a@example.com"))
	go func() { code <- p.post(t, intaketest.Body(m)) }()
	for deadline := time.Now().Add(5 * time.Second); slack.Counts().Requests == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow request never reached Slack:\n%s", p.stderr)
		}
	}
	p.signal(t, syscall.SIGTERM)
	sent := time.Now()
	select {
	case c := <-code:
		if c != http.StatusOK {
			t.Errorf("request in flight at SIGTERM: status %d, want 200\n%s", c, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("request in flight at SIGTERM: no answer within 10s\n%s", p.stderr)
	}
	posted++
	checkPosts("after SIGTERM")
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after SIGTERM:\n%s", p.stderr)
	}
	if p.err != nil {
		t.Errorf("exit after SIGTERM: %v (exit code %d), want 0\n%s", p.err, p.cmd.ProcessState.ExitCode(), p.stderr)
	}
	if d := time.Since(sent); d > 5*time.Second {
		t.Errorf("exited %v after SIGTERM, want within 5s", d)
	}
	if rule := p.ruleOf(t, "slow"); rule != "bounces-v2" {
		t.Errorf("slow bounce routed by rule %q, want bounces-v2", rule)
	}
	checkContains(t, "log", p.stderr.String(), `"msg":"shutting down: finishing the requests in flight"`, `"msg":"stopped"`)
	if _, err := http.Get(p.url + "/healthz"); err == nil {
		t.Error("still answering after exit")
	}
}

// buildSesrouter builds the sesrouter binary (plain go build, with the
// build settings of the test run) into a folder that lasts as long as tb.
func buildSesrouter(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "sesrouter")
	if b, err := exec.Command("go", "build", "-o", out, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build -o %s .: %v\n%s", out, err, b)
	}
	return out
}

// startServeProcess runs bin with args and exactly the environment vars
// (plus an info log level), in its own process group killed at cleanup,
// and waits until GET /healthz answers 200 on the -addr of args.
func startServeProcess(t *testing.T, bin string, vars []string, args ...string) *servedProcess {
	t.Helper()
	addr := ""
	for i, a := range args {
		if a == "-addr" && i+1 < len(args) {
			addr = args[i+1]
		}
	}
	p := &servedProcess{url: "http://" + addr, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = append([]string{"SESROUTER_LOG_LEVEL=info"}, vars...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			t.Logf("sesrouter serve stderr:\n%s", p.stderr)
		}
	})

	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := client.Get(p.url + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(b) == "ok\n" {
				return p
			}
			err = fmt.Errorf("status %d %q", resp.StatusCode, b)
		}
		select {
		case <-p.exited:
			t.Fatalf("sesrouter serve exited (%v) before answering /healthz:\n%s", p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz never answered 200 within 10s: %v\n%s", err, p.stderr)
		}
	}
}

// post posts an SNS body as SNS does and returns the status code (0 on
// a transport error, reported).
func (p *servedProcess) post(t testing.TB, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, p.url+"/sns", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("User-Agent", "Amazon Simple Notification Service Agent")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// signal sends sig to the process.
func (p *servedProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v: %v", sig, err)
	}
}

// waitLog waits until the log holds want.
func (p *servedProcess) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.stderr.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never showed %q:\n%s", want, p.stderr)
		}
	}
}

// ruleOf waits for the "notification" log line of the SNS message id and
// returns the deciding rule of its one recipient. The line is written
// before the answer, but the child's stderr reaches the buffer through a
// pipe, so it may arrive a moment after the answer: poll with a deadline.
func (p *servedProcess) ruleOf(t *testing.T, id string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		for _, raw := range strings.Split(p.stderr.String(), "\n") {
			var line struct {
				Msg          string `json:"msg"`
				SNSMessageID string `json:"snsMessageId"`
				Recipients   []struct {
					Rule string `json:"rule"`
				} `json:"recipients"`
			}
			if json.Unmarshal([]byte(raw), &line) != nil || line.Msg != "notification" || line.SNSMessageID != id {
				continue
			}
			if len(line.Recipients) != 1 || line.Recipients[0].Rule == "" {
				t.Fatalf("log line of %s: want one recipient with a rule: %s", id, raw)
			}
			return line.Recipients[0].Rule
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification log line of %s within 5s:\n%s", id, p.stderr)
		}
	}
}
