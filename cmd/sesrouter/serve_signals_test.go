package main

import (
	"bytes"
	"encoding/json"
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
      pace: 0s
rules:
  - name: RULENAME
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// servedProcess is sesrouter serve running as a child process.
type servedProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr *lineLog // the log, as the process writes it
	stdout *lineLog // its standard output (metrics), as it writes it
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// TestServeSignals runs the real binary and drives it with real signals:
// SIGHUP reloads the rules (and keeps them when the file is broken),
// SIGTERM lets the request in flight finish, then exits 0. Every step
// waits for the line the process logs, read as it writes it.
func TestServeSignals(t *testing.T) {
	bin := buildSesrouter(t)
	sg := intaketest.NewSigner(t)
	slack := actionstest.NewSlack(t)
	g := newGate(t, slack.WebhookURL("alerts"))
	g.open() // posts go through until step 4
	rules := writeFile(t, t.TempDir(), "rules.yaml", strings.ReplaceAll(signalRules, "RULENAME", "bounces-v1"))
	p := startServeProcess(t, bin, []string{"SLACK_WEBHOOK_URL=" + g.URL},
		"serve", "-addr", "127.0.0.1:0", "-topic", serveTopic, "-sns-cert-dir", sg.CertDir, "-rules", rules)

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

	// (2) SIGHUP reloads the rewritten rules: once the log says so, the
	// next bounce is routed by the new rule.
	writeFile(t, filepath.Dir(rules), "rules.yaml", strings.ReplaceAll(signalRules, "RULENAME", "bounces-v2"))
	mark := p.stderr.mark()
	p.signal(t, syscall.SIGHUP)
	p.stderr.waitAfter(t, mark, `"msg":"rules reloaded"`)
	if code := send("hup"); code != http.StatusOK {
		t.Fatalf("bounce after SIGHUP: status %d, want 200\n%s", code, p.stderr)
	}
	posted++
	checkPosts("after SIGHUP")
	if rule := p.ruleOf(t, "hup"); rule != "bounces-v2" {
		t.Errorf("after SIGHUP, routed by rule %q, want bounces-v2", rule)
	}

	// (3) A broken rules file is not loaded: the log says so and the
	// previous rules stay.
	writeFile(t, filepath.Dir(rules), "rules.yaml", "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n")
	mark = p.stderr.mark()
	p.signal(t, syscall.SIGHUP)
	p.stderr.waitAfter(t, mark, `"msg":"rules not reloaded; the previous rules stay"`)
	if code := send("broken"); code != http.StatusOK {
		t.Fatalf("bounce after a broken reload: status %d, want 200\n%s", code, p.stderr)
	}
	posted++
	checkPosts("after a broken reload")
	if rule := p.ruleOf(t, "broken"); rule != "bounces-v2" {
		t.Errorf("after a broken reload, routed by rule %q, want the previous bounces-v2", rule)
	}

	// (4) SIGTERM while the gate holds a post: the process says it is
	// shutting down; once the post goes through, the request gets 200,
	// then the process exits 0.
	g.hold()
	code := make(chan int, 1)
	m := sg.Notification(t, serveTopic, "slow", liveBounce(t, "ses-slow", "a@example.com"))
	go func() { code <- p.post(t, intaketest.Body(m)) }()
	g.waitArrived(t)
	p.signal(t, syscall.SIGTERM)
	p.stderr.wait(t, `"msg":"shutting down: finishing the requests in flight"`)
	g.open()
	if c := <-code; c != http.StatusOK {
		t.Errorf("request in flight at SIGTERM: status %d, want 200\n%s", c, p.stderr)
	}
	posted++
	checkPosts("after SIGTERM")
	p.waitExit(t)
	if p.err != nil {
		t.Errorf("exit after SIGTERM: %v (exit code %d), want 0\n%s", p.err, p.cmd.ProcessState.ExitCode(), p.stderr)
	}
	if rule := p.ruleOf(t, "slow"); rule != "bounces-v2" {
		t.Errorf("slow bounce routed by rule %q, want bounces-v2", rule)
	}
	checkContains(t, "log", p.stderr.String(), `"msg":"stopped"`)
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
// and waits until it logs the address it serves on.
func startServeProcess(t *testing.T, bin string, vars []string, args ...string) *servedProcess {
	t.Helper()
	p := &servedProcess{stderr: newLineLog(), stdout: newLineLog(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = append([]string{"SESROUTER_LOG_LEVEL=info"}, vars...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait() // returns once stderr is copied to its end
		p.stderr.Close()
		p.stdout.Close()
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
	var serving struct{ Addr string }
	if err := json.Unmarshal([]byte(p.stderr.wait(t, `"msg":"serving"`)), &serving); err != nil || serving.Addr == "" {
		t.Fatalf("no address in the serving line: %v\n%s", err, p.stderr)
	}
	p.url = "http://" + serving.Addr
	return p
}

// post posts an SNS body as SNS does and returns the status code (0 on
// a transport error, reported).
func (p *servedProcess) post(t testing.TB, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, p.url+"/sns", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	setSNSHeaders(req, body)
	resp, err := http.DefaultClient.Do(req)
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

// ruleOf waits for the "notification" log line of the SNS message id and
// returns the deciding rule of its one recipient. The line is written
// before the answer, but reaches the test through a pipe, so it may come
// a moment after the answer.
func (p *servedProcess) ruleOf(t *testing.T, id string) string {
	t.Helper()
	type logLine struct {
		Msg          string `json:"msg"`
		SNSMessageID string `json:"snsMessageId"`
		Recipients   []struct {
			Rules []string `json:"rules"`
		} `json:"recipients"`
	}
	raw, err := p.stderr.waitFunc(0, func(s string) bool {
		var l logLine
		return json.Unmarshal([]byte(s), &l) == nil && l.Msg == "notification" && l.SNSMessageID == id
	})
	if err != nil {
		t.Fatalf("no notification log line of %s: %v\n%s", id, err, p.stderr)
	}
	var l logLine
	_ = json.Unmarshal([]byte(raw), &l)
	if len(l.Recipients) != 1 || len(l.Recipients[0].Rules) != 1 {
		t.Fatalf("log line of %s: want one recipient decided by one rule: %s", id, raw)
	}
	return l.Recipients[0].Rules[0]
}

// waitExit waits until the process has exited (failing t at the
// failsafe).
func (p *servedProcess) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(failsafe):
		t.Fatalf("still running:\n%s", p.stderr)
	}
}
