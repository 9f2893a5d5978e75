//go:build linux

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// sesrouter as an AWS Lambda function, under the real AWS Lambda Runtime
// Interface Emulator (Linux only, as the emulator): the emulator is a tool
// of go.mod, built by the go command into its build cache (go tool -n,
// once per test process; quick after the first time), the bootstrap is
// built for this machine, aws-lambda-rie runs it (both of its addresses
// on 127.0.0.1), the real aws-lambda-go runtime client inside the
// bootstrap talks to the emulator's runtime API, and the tests invoke the
// function over the emulator's invoke API. Slack and SES are the loopback
// fakes of actionstest, in the test process; the function reaches them
// through the environment it gets from the emulator, so these tests set
// no variable of their own process and run in parallel.

// rieTool is the emulator as go tool names it: the last element of the
// package path on its tool line in go.mod,
// github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie.
const rieTool = "aws-lambda-rie"

// rieBuild is the path of the emulator go.mod names, built once per test
// process.
var rieBuild = sync.OnceValues(func() (string, error) {
	// go tool -n builds the tool into the build cache, if it is not
	// there yet, and prints its path instead of running it. The go
	// command finds go.mod from the package's folder, where go test runs
	// its tests; it installs nothing, and the machine's PATH plays no part.
	cmd := exec.Command("go", "tool", "-n", rieTool)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n %s: %w\n%s", rieTool, err, stderr.Bytes())
	}
	path := strings.TrimSpace(string(out))
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("go tool -n %s printed %q, which is no built emulator (%v)\n%s", rieTool, out, err, stderr.Bytes())
	}
	return path, nil
})

// lookRIE returns the emulator, building it on first use; tb fails if it
// cannot be built.
func lookRIE(tb testing.TB) string {
	tb.Helper()
	path, err := rieBuild()
	if err != nil {
		tb.Fatalf("the AWS Lambda Runtime Interface Emulator, the tool %s of go.mod: %v", rieTool, err)
	}
	tb.Logf("under the AWS Lambda Runtime Interface Emulator %s (the tool %s of go.mod)", path, rieTool)
	return path
}

// TestLambdaRIE runs each case against its own emulator and fakes, with
// one bootstrap built for all of them.
func TestLambdaRIE(t *testing.T) {
	rie := lookRIE(t)
	bootstrap := buildBootstrap(t, false)
	handler := readHandlerRules(t)

	// An SNS event whose Message is an SES bounce, with the handler's
	// rules: the no-suppress address is taken off the suppression list,
	// and one message with both recipients is posted to the webhook. The
	// invocation succeeds (no response body). Both emulator addresses are
	// on 127.0.0.1, and the function got the runtime API's.
	t.Run("sns bounce is posted", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		f.ses.Suppress("no-suppress-1@example.com", "BOUNCE", listedAt)
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: handler, vars: f.vars("ses-alerts")})
		checkLoopbackOnly(t, fn)

		status, body := fn.invoke(t, f.snsEvent(t, "sns-1", liveBounce(t, "m-sns-1", "no-suppress-1@example.com", "someone@example.org")))
		if status != http.StatusOK || string(body) != "null" {
			t.Errorf("invocation: %d %s, want 200 null", status, body)
		}
		p := onePostOf(t, f.slack)
		if p.Kind != actionstest.KindWebhook || p.Channel != "ses-alerts" {
			t.Errorf("posted %s to %q, want the ses-alerts webhook", p.Kind, p.Channel)
		}
		checkContains(t, "the message", postText(t, p),
			"`no-suppress-1@example.com` · 5.1.1 failed · rule `keep-deliverable`",
			"→ removed from the suppression list",
			"`someone@example.org` · 5.1.1 failed · rule `notify-bounces-and-complaints`")
		if _, ok := f.ses.Suppressed("no-suppress-1@example.com"); ok {
			t.Error("no-suppress-1@example.com is still on the suppression list")
		}
		line := fn.logLine(t, "sesMessageId", "m-sns-1")
		if line["envelope"] != "sns" || line["envelopeId"] != "sns-1" || line["level"] != "INFO" {
			t.Errorf("log line %v, want envelope sns, envelopeId sns-1, level INFO", line)
		}
		checkContains(t, "the function's output", fn.output(t),
			`"Actions":1,"Outcome":"posted"`, `"Actions":1,"Outcome":"removed"`, `"msg":"init done"`)
		fn.checkNoSecrets(t, f.secrets()...)
		checkRuntimeAPIEnv(t, fn)
	})

	// An SQS batch of three SNS-wrapped bounces, one of them for a
	// recipient whose destination's webhook is revoked (404 no_service,
	// not retried): exactly that record is named in batchItemFailures,
	// the other two are posted.
	t.Run("sqs batch names the failed record", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		vars := f.vars("alerts")
		vars["SLACK_WEBHOOK_REVOKED"] = f.slack.URL() + "/services/T000/B000/REVOKEDWEBHOOKSECRET"
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: rieBatchRules, vars: vars})

		status, body := fn.invoke(t, rieSQSEvent(t,
			f.sqsSNSRecord(t, "q-1", liveBounce(t, "m-q-1", "a@ok.example")),
			f.sqsSNSRecord(t, "q-2", liveBounce(t, "m-q-2", "r@revoked.example")),
			f.sqsSNSRecord(t, "q-3", liveBounce(t, "m-q-3", "b@ok.example")),
		))
		if status != http.StatusOK {
			t.Fatalf("invocation: %d %s, want 200", status, body)
		}
		if got := batchItemFailures(t, body); !slices.Equal(got, []string{"q-2"}) {
			t.Errorf("batchItemFailures %q (%s), want [q-2]", got, body)
		}
		var texts []string
		for _, p := range f.slack.Posts() {
			if p.Channel != "alerts" {
				t.Errorf("a post to %q, want alerts only", p.Channel)
			}
			texts = append(texts, postText(t, p))
		}
		slices.Sort(texts) // records run concurrently
		if len(texts) != 2 || !strings.Contains(texts[0], "`a@ok.example`") || !strings.Contains(texts[1], "`b@ok.example`") {
			t.Errorf("posts:\n%s\nwant one for a@ok.example and one for b@ok.example", strings.Join(texts, "\n---\n"))
		}
		if c := f.slack.Counts(); c.Requests != 3 || c.ClientErrors != 1 {
			t.Errorf("Slack counts %+v, want 3 requests, 1 answered 404", c)
		}
		line := fn.logLine(t, "envelopeId", "q-2")
		if line["level"] != "ERROR" || !strings.Contains(fmt.Sprint(line["failure"]), "notify:revoked: slack server error: 404 Not Found: no_service") {
			t.Errorf("log line of q-2 %v, want level ERROR and the failed notify", line)
		}
		checkContains(t, "the function's output", fn.output(t), `"Actions":2,"Outcome":"posted"`, `"Actions":1,"Outcome":"failed"`)
		fn.checkNoSecrets(t, append(f.secrets(), webhookSecrets(vars["SLACK_WEBHOOK_REVOKED"])...)...)
	})

	// An SQS batch with a body that is broken JSON: that record is named,
	// the good one (bare SES JSON, as raw delivery writes it, from the
	// queue named in SESROUTER_QUEUES) is posted. A plain-text body (what
	// SNS raw delivery makes of SES's "Successfully validated SNS topic"
	// setup message) is skipped, not failed: retrying it would never
	// succeed.
	t.Run("sqs unreadable body is named", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		vars := f.vars("ses-alerts")
		vars["SESROUTER_QUEUES"] = rieQueue
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: handler, vars: vars})

		status, body := fn.invoke(t, rieSQSEvent(t,
			rieSQSRecord("q-good", strings.TrimSpace(liveBounce(t, "m-good", "someone@example.org"))),
			rieSQSRecord("q-broken", `{"Type":"Notification","MessageId":"x","Message":`),
			rieSQSRecord("q-text", "Successfully validated SNS topic for Amazon SES event publishing."),
		))
		if status != http.StatusOK {
			t.Fatalf("invocation: %d %s, want 200", status, body)
		}
		if got := batchItemFailures(t, body); !slices.Equal(got, []string{"q-broken"}) {
			t.Errorf("batchItemFailures %q (%s), want [q-broken]", got, body)
		}
		checkContains(t, "the message", postText(t, onePostOf(t, f.slack)), "`someone@example.org`")
		if line := fn.logLine(t, "envelopeId", "q-broken"); line["msg"] != "unreadable input" || line["level"] != "ERROR" {
			t.Errorf("log line of q-broken %v, want an unreadable input error", line)
		}
		if line := fn.logLine(t, "envelopeId", "q-text"); line["msg"] != "skipped" {
			t.Errorf("log line of q-text %v, want skipped", line)
		}
	})

	// An EventBridge "Email Bounced" event (event publishing, detail an
	// object) of the function's own account (the emulator's, 012345678912)
	// is routed by the handler's rules and posted.
	t.Run("eventbridge bounce is routed", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: handler, vars: f.vars("ses-alerts")})
		status, body := fn.invoke(t, rieEventBridge(t, rieAccount))
		if status != http.StatusOK || string(body) != "null" {
			t.Errorf("invocation: %d %s, want 200 null", status, body)
		}
		checkContains(t, "the message", postText(t, onePostOf(t, f.slack)),
			"`grace@example.com` · 5.1.1 failed · rule `notify-bounces-and-complaints`")
		line := fn.logLine(t, "sesMessageId", "0102018f3c000007-eb-000000")
		if line["envelope"] != "eventbridge" || line["envelopeId"] != "cccccccc-0000-4000-8000-000000000001" || line["type"] != "Bounce" {
			t.Errorf("log line %v, want envelope eventbridge with the event's id, type Bounce", line)
		}
	})

	// A scheduled sweep, as EventBridge Scheduler invokes it: the two
	// bounces the handler's rules keep deliverable are taken off the
	// suppression list, the others stay, one summary is posted, and the
	// sweep's metrics are written.
	t.Run("scheduled sweep", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		f.ses.Suppress("a+no-suppress@example.com", "BOUNCE", listedAt)
		f.ses.Suppress("b@no.suppress.domain.jp", "BOUNCE", listedAt)
		f.ses.Suppress("c@example.com", "BOUNCE", listedAt)
		f.ses.Suppress("d+no-suppress@example.com", "COMPLAINT", listedAt)
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: handler, vars: f.vars("ses-alerts")})

		status, body := fn.invoke(t, []byte(`{"sesrouter":"sweep","rate":1000}`))
		if status != http.StatusOK || string(body) != "null" {
			t.Errorf("invocation: %d %s, want 200 null", status, body)
		}
		for address, kept := range map[string]bool{"a+no-suppress@example.com": false, "b@no.suppress.domain.jp": false,
			"c@example.com": true, "d+no-suppress@example.com": true} {
			if _, ok := f.ses.Suppressed(address); ok != kept {
				t.Errorf("%s on the list: %v, want %v", address, ok, kept)
			}
		}
		checkContains(t, "the summary", postText(t, onePostOf(t, f.slack)), "Sweep · 2 addresses taken off the suppression list")
		checkContains(t, "the function's output", fn.output(t), `"SweepEntries":4`, `"SweepRemoved":2`, `"msg":"sweep"`)
	})

	// SNS (and EventBridge) have no partial response: a failed action
	// fails the invocation, so that Lambda retries it.
	t.Run("sns failure fails the invocation", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		vars := f.vars("ses-alerts")
		vars["SLACK_WEBHOOK_URL"] = f.slack.URL() + "/services/T000/B000/REVOKEDWEBHOOKSECRET"
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: handler, vars: vars})

		status, body := fn.invoke(t, f.snsEvent(t, "sns-2", liveBounce(t, "m-sns-2", "someone@example.org")))
		var fnErr struct{ ErrorMessage, ErrorType string }
		if err := json.Unmarshal(body, &fnErr); err != nil || status != http.StatusOK ||
			fnErr.ErrorMessage != "1 of 1 inputs failed: invocation#1: notify:ses-alerts: slack server error: 404 Not Found: no_service ("+hintWebhook("SLACK_WEBHOOK_URL")+")" {
			t.Errorf("invocation: %d %s, want 200 with the function error naming the failed notify", status, body)
		}
		if len(f.slack.Posts()) != 0 {
			t.Errorf("%d posts, want none", len(f.slack.Posts()))
		}
		fn.checkNoSecrets(t, webhookSecrets(vars["SLACK_WEBHOOK_URL"])...)
	})

	// A rule that fails at run time, before a catch-all that
	// suppresses: the failing record's recipient gets no action, the
	// failure is logged at error level and counted (RuleErrors), and the
	// record is not delivered again (batchItemFailures is empty); the
	// other record is suppressed and posted.
	t.Run("sqs rule error is not retried", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		rules := strings.ReplaceAll(ruleErrorRules, "SLACK_WEBHOOK_TEST", "SLACK_WEBHOOK_URL")
		vars := f.vars("hook")
		vars["SESROUTER_QUEUES"] = rieQueue // the bodies are bare SES JSON
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: rules, vars: vars})

		status, body := fn.invoke(t, rieSQSEvent(t,
			rieSQSRecord("q-fails", strings.TrimSpace(liveBounce(t, "m-fails", "untagged@example.com"))),
			rieSQSRecord("q-tagged", withTags(t, strings.TrimSpace(liveBounce(t, "m-tagged", "tagged@example.com")), map[string][]string{"campaign": {"summer"}})),
		))
		if status != http.StatusOK {
			t.Fatalf("invocation: %d %s, want 200", status, body)
		}
		if got := batchItemFailures(t, body); len(got) != 0 {
			t.Errorf("batchItemFailures %q (%s), want none", got, body)
		}
		var ops []string
		for _, c := range f.ses.Calls() {
			ops = append(ops, c.Op+" "+c.Address)
		}
		if !slices.Equal(ops, []string{"PutSuppressedDestination tagged@example.com"}) {
			t.Errorf("SES calls %q, want one, putting tagged@example.com on the list", ops)
		}
		checkContains(t, "the message", postText(t, onePostOf(t, f.slack)), "`tagged@example.com`")
		line := fn.logLine(t, "envelopeId", "q-fails")
		if line["level"] != "ERROR" || !strings.Contains(fmt.Sprint(line["failure"]), `recipient untagged@example.com: rule "spring-campaign": index out of range`) {
			t.Errorf("log line of q-fails %v, want level ERROR naming the rule", line)
		}
		checkContains(t, "the function's output", fn.output(t), `"RuleErrors":1`)
	})

	// Rules that do not load fail init with check's message: the
	// invocation gets 502 from the emulator (Lambda's Runtime.ExitError),
	// the emulator logs the exit status, and the output holds every line
	// check prints for the same file. The function runs in another
	// folder, so the rules are found through $LAMBDA_TASK_ROOT.
	t.Run("broken rules fail init", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: rieBrokenRules, vars: f.vars("ses-alerts"), cwdElsewhere: true})

		status, body := fn.invoke(t, f.snsEvent(t, "sns-3", liveBounce(t, "m-sns-3", "someone@example.org")))
		if status != http.StatusBadGateway {
			t.Errorf("invocation: %d %s, want 502 for the failed init", status, body)
		}
		rulesFile := filepath.Join(fn.taskRoot, "rules.yaml")
		check := runCLI(t, testEnv(nil), "", "check", "-rules", rulesFile)
		if check.code != exitUsage {
			t.Fatalf("check exit status %d, want 2:\n%s", check.code, check.stderr)
		}
		want := rulesFile + `:4:11: rule "typo": unknown name recipent`
		if !strings.Contains(check.stderr, want) {
			t.Errorf("check says:\n%s\nwant a line starting %q", check.stderr, want)
		}
		out := fn.output(t)
		for _, l := range strings.Split(strings.TrimSpace(check.stderr), "\n") {
			if !strings.Contains(out, l+"\n") {
				t.Errorf("the function's output lacks check's line %q:\n%s", l, out)
			}
		}
		if strings.Contains(out, `"msg":"init done"`) || len(f.slack.Posts()) != 0 {
			t.Errorf("init went on after the rules failed:\n%s", out)
		}
		// The emulator saw the bootstrap exit with 2, the status of bad rules.
		fn.log.wait(t, "exit status 2")
	})

	// What anyone allowed to send to the queue or to invoke the function
	// could write is refused, under the real runtime: in one SQS batch,
	// the envelope SNS signed is acted on (unsuppressed and posted); the
	// same envelope with its Message changed, an unsigned envelope, bare
	// SES JSON and an EventBridge event (no queue is named in
	// SESROUTER_QUEUES) are refused: no SES call, no post, not named
	// for retry, one WARN line each, counted. A forged SNS record and an
	// EventBridge event of another account given directly are refused
	// too, and the invocations succeed (Lambda would retry a failed one).
	t.Run("forged content is refused", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		for i := 1; i <= 7; i++ {
			f.ses.Suppress(fmt.Sprintf("no-suppress-%d@example.com", i), "BOUNCE", listedAt)
		}
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: handler, vars: f.vars("ses-alerts")})
		bounce := func(n int) string {
			return strings.TrimSpace(liveBounce(t, fmt.Sprint("m-forged-", n), fmt.Sprintf("no-suppress-%d@example.com", n)))
		}
		tampered := f.sns.Notification(t, rieTopic, "sns-q-2", bounce(8))
		tampered.Message = bounce(2)
		unsigned := mustJSON(t, map[string]string{"Type": "Notification", "MessageId": "sns-q-3", "TopicArn": rieTopic, "Message": bounce(3)})
		eventBridge := strings.Replace(string(rieEventBridge(t, rieAccount)), "grace@example.com", "no-suppress-5@example.com", -1)

		status, body := fn.invoke(t, rieSQSEvent(t,
			f.sqsSNSRecord(t, "q-1", bounce(1)),
			rieSQSRecord("q-2", string(intaketest.Body(tampered))),
			rieSQSRecord("q-3", string(unsigned)),
			rieSQSRecord("q-4", bounce(4)),
			rieSQSRecord("q-5", eventBridge),
		))
		if status != http.StatusOK {
			t.Fatalf("invocation: %d %s, want 200", status, body)
		}
		if got := batchItemFailures(t, body); len(got) != 0 {
			t.Errorf("batchItemFailures %q (%s), want none: forged records are not retried", got, body)
		}

		forged := f.sns.Notification(t, rieTopic, "sns-6", bounce(9))
		forged.Message = bounce(6)
		if status, body := fn.invoke(t, snsRecordEvent(t, forged)); status != http.StatusOK || string(body) != "null" {
			t.Errorf("a forged SNS record: %d %s, want 200 null", status, body)
		}
		other := strings.Replace(string(rieEventBridge(t, "999999999999")), "grace@example.com", "no-suppress-7@example.com", -1)
		if status, body := fn.invoke(t, []byte(other)); status != http.StatusOK || string(body) != "null" {
			t.Errorf("an EventBridge event of another account: %d %s, want 200 null", status, body)
		}

		for _, c := range f.ses.Calls() {
			if c.Address != "no-suppress-1@example.com" {
				t.Errorf("SES %s for %s, whose notification was forged", c.Op, c.Address)
			}
		}
		if _, ok := f.ses.Suppressed("no-suppress-1@example.com"); ok {
			t.Error("no-suppress-1@example.com, of the genuine envelope, is still on the suppression list")
		}
		checkContains(t, "the message", postText(t, onePostOf(t, f.slack)), "`no-suppress-1@example.com`")
		for id, reason := range map[string]string{
			"q-2":    "sns signature: does not verify",
			"q-3":    "sns signature: unsupported SignatureVersion",
			"q-4":    "accepted only from a queue named in SESROUTER_QUEUES",
			"q-5":    "accepted only from a queue named in SESROUTER_QUEUES",
			"sns-6":  "sns signature: does not verify",
			"eb-acc": "EventBridge event of account 999999999999, not of this function's account " + rieAccount,
		} {
			key, value := "envelopeId", id
			if id == "eb-acc" {
				key, value = "account", "999999999999"
			}
			line := fn.logLine(t, key, value)
			if line["msg"] != "refused input" || line["level"] != "WARN" || !strings.Contains(fmt.Sprint(line["reason"]), reason) {
				t.Errorf("log line of %s %v, want a WARN refused input saying %q", id, line, reason)
			}
		}
		checkContains(t, "the function's output", fn.output(t), `"Notifications":4,"Type":"(refused)"`)
	})

	// Where SNS's certificate host cannot be reached (an HTTPS proxy on
	// loopback that refuses every tunnel: nothing leaves the machine), a
	// genuine envelope is not acted on, and its record is named for
	// retry, with one ERROR line; the certificate was asked for.
	t.Run("certificate fetch failure is retried", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		var mu sync.Mutex
		var tunnels []string
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			tunnels = append(tunnels, r.Method+" "+r.Host)
			mu.Unlock()
			http.Error(w, "no way out", http.StatusBadGateway)
		}))
		t.Cleanup(proxy.Close)
		vars := f.vars("ses-alerts")
		delete(vars, "SESROUTER_SNS_CERT_DIR") // fetched, then
		vars["HTTPS_PROXY"] = proxy.URL
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: handler, vars: vars})

		status, body := fn.invoke(t, rieSQSEvent(t, f.sqsSNSRecord(t, "q-1", liveBounce(t, "m-unverified", "someone@example.org"))))
		if status != http.StatusOK {
			t.Fatalf("invocation: %d %s, want 200", status, body)
		}
		if got := batchItemFailures(t, body); !slices.Equal(got, []string{"q-1"}) {
			t.Errorf("batchItemFailures %q (%s), want [q-1]", got, body)
		}
		if n := len(f.slack.Posts()); n != 0 {
			t.Errorf("%d posts, want none", n)
		}
		line := fn.logLine(t, "envelopeId", "q-1")
		if line["msg"] != "input not verified" || line["level"] != "ERROR" || !strings.Contains(fmt.Sprint(line["error"]), "signing certificate unavailable") {
			t.Errorf("log line %v, want an ERROR saying the certificate is unavailable", line)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(tunnels, []string{"CONNECT sns.us-east-1.amazonaws.com:443"}) {
			t.Errorf("the proxy was asked %q, want one tunnel to sns.us-east-1.amazonaws.com:443", tunnels)
		}
	})

	// A Slack button press, as the function URL hands it on (a
	// LambdaFunctionURLRequest, headers in lower case, the form body in
	// base64), signed by the test with SLACK_SIGNING_SECRET: checkPresses
	// sends a forged press (401), one of a user not allowed (refused), the
	// allowed press (200, the address taken off the SES fake's list, the
	// message edited through response_url on the Slack fake) and the same
	// press again (nothing more). The function's answers are function-URL
	// responses; one DeleteSuppressedDestination in all, one audit line,
	// one ButtonsPressed metric, and the bot token is never printed.
	t.Run("button press through the function URL", func(t *testing.T) {
		t.Parallel()
		f := newLambdaFakes(t)
		f.slack.AddChannel(liveChannel)
		vars := f.vars("ses-alerts")
		vars["SLACK_SIGNING_SECRET"] = buttonSecret
		vars["SLACK_BOT_TOKEN"] = f.slack.Token()
		vars["SLACK_API_URL"] = f.slack.APIURL()
		fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: buttonRules, vars: vars})

		checkPresses(t, &liveFakes{slack: f.slack, ses: f.ses}, func(headers map[string]string, body string) (int, string) {
			return fn.invokeURL(t, headers, body)
		})
		var deletes []string
		for _, c := range f.ses.Calls() {
			if c.Op == actionstest.OpDeleteSuppressedDestination {
				deletes = append(deletes, c.Address)
			}
		}
		if !slices.Equal(deletes, []string{"kept@example.com"}) {
			t.Errorf("SES deletes %q, want one, of kept@example.com", deletes)
		}
		out := fn.output(t)
		if n := strings.Count(out, `"ButtonsPressed":1`); n != 1 {
			t.Errorf("%d ButtonsPressed metrics, want 1:\n%s", n, out)
		}
		if line := fn.logLine(t, "msg", "button pressed"); line["user"] != "U0ALLOWED" || line["action"] != "unsuppress" {
			t.Errorf("audit line %v, want unsuppress by U0ALLOWED", line)
		}
		fn.checkNoSecrets(t, f.slack.Token(), buttonSecret)
	})

	t.Run("webhook from the secret", func(t *testing.T) {
		t.Parallel()
		rieSecrets(t, rie, bootstrap, handler)
	})
}

// rieBatchRules post recipients at revoked.example to a destination whose
// webhook is revoked, everyone else to alerts.
const rieBatchRules = `version: 1

destinations:
  alerts:
    slack:
      webhook_env: SLACK_WEBHOOK_URL
  revoked:
    slack:
      webhook_env: SLACK_WEBHOOK_REVOKED

rules:
  - name: revoked
    when: recipient.domain == "revoked.example"
    actions: [{notify: revoked}]
  - name: alerts
    when: "true"
    actions: [{notify: alerts}]
`

// rieBrokenRules misspell a name at line 4, column 11.
const rieBrokenRules = `version: 1
rules:
  - name: typo
    when: recipent.domain == "example.com"
    actions: [drop]
`

// buildBootstrap builds the function's bootstrap for this machine into a
// folder that lasts as long as tb: go build -tags lambda.norpc, with the
// build settings of the test run, so that it reuses what the test binary
// compiled. shipped builds it as make lambda does, but for this machine:
// CGO_ENABLED=0, -trimpath, stripped.
func buildBootstrap(tb testing.TB, shipped bool) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "bootstrap")
	args := []string{"build", "-tags", "lambda.norpc", "-o", out}
	env := os.Environ()
	if shipped {
		args = append(args, "-trimpath", "-ldflags=-s -w")
		env = append(env, "CGO_ENABLED=0")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// lambdaFakes are the Slack and SES fakes of one function, and the
// signer of its SNS messages.
type lambdaFakes struct {
	slack *actionstest.Slack
	ses   *actionstest.SES
	sns   *intaketest.Signer
	hooks []string // webhook URLs handed out by vars
}

func newLambdaFakes(tb testing.TB) *lambdaFakes {
	return &lambdaFakes{slack: actionstest.NewSlack(tb), ses: actionstest.NewSES(tb), sns: intaketest.NewSigner(tb)}
}

// vars returns the function's variables: SLACK_WEBHOOK_URL, a new
// webhook of the fake whose posts are recorded as channel, and
// SESROUTER_SNS_CERT_DIR, the folder of the signer's certificate.
func (f *lambdaFakes) vars(channel string) map[string]string {
	hook := f.slack.WebhookURL(channel)
	f.hooks = append(f.hooks, hook)
	return map[string]string{"SLACK_WEBHOOK_URL": hook, "SESROUTER_SNS_CERT_DIR": f.sns.CertDir}
}

// secrets are the webhook URLs vars handed out, and their secret paths.
func (f *lambdaFakes) secrets() []string {
	var s []string
	for _, h := range f.hooks {
		s = append(s, webhookSecrets(h)...)
	}
	return s
}

// lambdaSetup is what a function under the emulator gets.
type lambdaSetup struct {
	// rules is the rules.yaml put in $LAMBDA_TASK_ROOT.
	rules string
	// vars are added to the function's environment (the emulator passes
	// its own on).
	vars map[string]string
	// cwdElsewhere runs the function in an empty folder instead of
	// $LAMBDA_TASK_ROOT (Lambda's working directory).
	cwdElsewhere bool
}

// lambdaFunc is a function running under aws-lambda-rie.
type lambdaFunc struct {
	cmd         *exec.Cmd
	invokeAddr  string // the emulator's invoke API, 127.0.0.1:PORT
	runtimeAddr string // the runtime API the bootstrap talks to, 127.0.0.1:PORT
	taskRoot    string
	// out is the emulator's standard output, a file: the function's
	// stdout and stderr (the emulator hands the bootstrap this very
	// file), with the emulator's START, END and REPORT lines. A line the
	// function wrote is in it before its invocation's response is sent.
	out string
	// log is the emulator's own log (its standard error, at debug level),
	// as the emulator writes it.
	log    *lineLog
	exited chan struct{} // closed when the emulator has exited
}

// startLambda starts aws-lambda-rie running bootstrap with setup, on two
// free ports of 127.0.0.1, and waits until both accept connections. The
// function's environment is the emulator's, built here from nothing: the
// AWS SDK pointed at the SES fake of f, with static credentials and no
// shared configuration or IMDS, and setup.vars. The emulator and the
// bootstrap are killed by t.Cleanup; when t failed, the cleanup logs what
// they printed.
func startLambda(tb testing.TB, rie, bootstrap string, f *lambdaFakes, setup lambdaSetup) *lambdaFunc {
	tb.Helper()
	tb.Logf("aws-lambda-rie: %s", rie)
	dir := tb.TempDir()
	taskRoot := filepath.Join(dir, "task")
	writeFileTB(tb, filepath.Join(taskRoot, "rules.yaml"), setup.rules)
	empty := filepath.Join(dir, "empty")
	writeFileTB(tb, empty, "")
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		tb.Fatal(err)
	}
	cwd := taskRoot
	if setup.cwdElsewhere {
		cwd = home
	}
	vars := map[string]string{
		"PATH":                            "/usr/bin:/bin",
		"HOME":                            home,
		"LAMBDA_TASK_ROOT":                taskRoot,
		"AWS_LAMBDA_FUNCTION_NAME":        "sesrouter",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "30",
		"SESROUTER_LOG_LEVEL":             "debug",
		"AWS_ENDPOINT_URL_SESV2":          f.ses.URL(),
		"AWS_REGION":                      actionstest.SESRegion,
		"AWS_ACCESS_KEY_ID":               actionstest.SESAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":           actionstest.SESSecretAccessKey,
		"AWS_EC2_METADATA_DISABLED":       "true",
		"AWS_CONFIG_FILE":                 empty,
		"AWS_SHARED_CREDENTIALS_FILE":     empty,
	}
	for k, v := range setup.vars {
		vars[k] = v
	}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}

	var lastErr error
	for attempt := range 3 { // a port chosen free may be taken before the emulator binds it
		fn := &lambdaFunc{
			invokeAddr:  freeLoopbackAddr(tb),
			runtimeAddr: freeLoopbackAddr(tb),
			taskRoot:    taskRoot,
			out:         filepath.Join(dir, fmt.Sprintf("rie-%d.out", attempt)),
			log:         newLineLog(),
			exited:      make(chan struct{}),
		}
		if lastErr = fn.start(tb, rie, bootstrap, cwd, env); lastErr == nil {
			return fn
		}
	}
	tb.Fatalf("aws-lambda-rie did not start: %v", lastErr)
	return nil
}

// start starts the emulator and waits until it serves: it logs the
// runtime API's address once that listens, and the invoke API listens
// next.
func (fn *lambdaFunc) start(tb testing.TB, rie, bootstrap, cwd string, env []string) error {
	tb.Helper()
	out, err := os.Create(fn.out)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	fn.cmd = exec.Command(rie,
		"--log-level", "debug",
		"--runtime-interface-emulator-address", fn.invokeAddr,
		"--runtime-api-address", fn.runtimeAddr,
		bootstrap)
	fn.cmd.Dir, fn.cmd.Env = cwd, env
	fn.cmd.Stdin, fn.cmd.Stdout, fn.cmd.Stderr = nil, out, fn.log
	// Its own process group, so that a kill reaches all of it; the
	// emulator puts the bootstrap in a group of its own, killed apart.
	fn.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := fn.cmd.Start(); err != nil {
		tb.Fatalf("starting aws-lambda-rie: %v", err)
	}
	go func() {
		_ = fn.cmd.Wait() // returns once the log is copied to its end
		fn.log.Close()
		close(fn.exited)
	}()
	tb.Cleanup(func() {
		fn.stop(tb)
		if tb.Failed() {
			tb.Logf("aws-lambda-rie output (%s):\n%s", fn.out, readFileOrErr(fn.out))
			tb.Logf("aws-lambda-rie log:\n%s", fn.log)
		}
	})
	if _, err := fn.log.waitFunc(0, func(l string) bool {
		return strings.Contains(l, "Runtime API Server listening on "+fn.runtimeAddr)
	}); err != nil {
		fn.stop(tb)
		return fmt.Errorf("no runtime API on %s: %w\n%s", fn.runtimeAddr, err, fn.log)
	}
	if err := fn.waitInvokeAPI(); err != nil {
		fn.stop(tb)
		return fmt.Errorf("no invoke API on %s: %w\n%s", fn.invokeAddr, err, fn.log)
	}
	return nil
}

// waitInvokeAPI waits until the invoke API accepts a connection. The
// emulator starts it right after the runtime API, whose address it logs,
// but logs nothing once it listens: the one wait of these tests that is
// not on a line the emulator writes. A refused connection is tried again
// a millisecond later, which it seldom is; anything else, the emulator's
// exit or the failsafe ends the wait.
func (fn *lambdaFunc) waitInvokeAPI() error {
	deadline := time.After(failsafe)
	for {
		c, err := net.Dial("tcp", fn.invokeAddr)
		if err == nil {
			c.Close()
			return nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		select {
		case <-fn.exited:
			return errors.New("aws-lambda-rie exited")
		case <-deadline:
			return err
		case <-time.After(time.Millisecond):
		}
	}
}

// stop ends the emulator and the bootstrap it runs: SIGTERM to the
// emulator, which kills the bootstrap's process group, reaps it and exits;
// if it has not exited within 5 s, SIGKILL to the bootstrap's process
// group and to the emulator's. Either way, a bootstrap process still
// there afterwards (the emulator gone without reaping it) gets SIGKILL.
// stop may be called more than once.
func (fn *lambdaFunc) stop(tb testing.TB) {
	select {
	case <-fn.exited:
		return
	default:
	}
	rie := fn.cmd.Process.Pid
	kids := childPIDs(rie)
	_ = syscall.Kill(rie, syscall.SIGTERM)
	select {
	case <-fn.exited:
	case <-time.After(5 * time.Second):
		tb.Logf("aws-lambda-rie (pid %d) did not exit within 5s of SIGTERM; killing it", rie)
		for _, pid := range kids {
			_ = syscall.Kill(-pid, syscall.SIGKILL) // the emulator made each a group leader
		}
		_ = syscall.Kill(-rie, syscall.SIGKILL)
		select {
		case <-fn.exited:
		case <-time.After(5 * time.Second):
			tb.Errorf("aws-lambda-rie (pid %d) did not exit after SIGKILL", rie)
		}
	}
	for _, pid := range kids {
		if isBootstrap(pid) {
			tb.Logf("bootstrap (pid %d) outlived aws-lambda-rie; killing its process group", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}

// isBootstrap reports whether pid is a live process named bootstrap.
func isBootstrap(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	name, rest, ok := strings.Cut(string(stat), ") ")
	return ok && strings.HasSuffix(name, "(bootstrap") && !strings.HasPrefix(rest, "Z")
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// invoke invokes the function through the emulator's invoke API and
// returns the HTTP status and body.
func (fn *lambdaFunc) invoke(tb testing.TB, payload []byte) (int, []byte) {
	tb.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Post("http://"+fn.invokeAddr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		tb.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("invoke: reading the response: %v", err)
	}
	return resp.StatusCode, body
}

// invokeURL invokes the function with a function-URL event of a POST to
// / with headers (in lower case, as the function URL gives them) and body
// (in base64), and returns the status and body of the function-URL
// response the function answers, failing tb on anything else.
func (fn *lambdaFunc) invokeURL(tb testing.TB, headers map[string]string, body string) (int, string) {
	tb.Helper()
	lower := map[string]string{}
	for k, v := range headers {
		lower[strings.ToLower(k)] = v
	}
	event := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/", Headers: lower, IsBase64Encoded: true,
		Body: base64.StdEncoding.EncodeToString([]byte(body)),
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID: rieAccount, RequestID: "url-req", DomainName: "abc.lambda-url.us-east-1.on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: http.MethodPost, Path: "/", Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
		},
	}
	status, out := fn.invoke(tb, mustJSON(tb, event))
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(out, &resp); status != http.StatusOK || err != nil || resp.StatusCode == 0 {
		tb.Fatalf("function URL invocation: %d %s, want 200 with a function-URL response", status, out)
	}
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			tb.Fatalf("function-URL response body: %v", err)
		}
		resp.Body = string(b)
	}
	return resp.StatusCode, resp.Body
}

// output returns what the emulator printed on its standard output so far.
func (fn *lambdaFunc) output(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(fn.out)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// logLine returns the one slog JSON line of the function's output whose
// key is value, failing tb unless there is exactly one.
func (fn *lambdaFunc) logLine(tb testing.TB, key, value string) map[string]any {
	tb.Helper()
	var found []map[string]any
	for _, l := range strings.Split(fn.output(tb), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] != nil && m[key] == value {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("%d log lines with %s %q, want 1:\n%s", len(found), key, value, fn.output(tb))
	}
	return found[0]
}

// checkNoSecrets fails tb if the emulator's output or log holds a secret.
func (fn *lambdaFunc) checkNoSecrets(tb testing.TB, secrets ...string) {
	tb.Helper()
	for name, b := range map[string]string{filepath.Base(fn.out): readFileOrErr(fn.out), "the emulator's log": fn.log.String()} {
		for _, s := range secrets {
			if s != "" && strings.Contains(b, s) {
				tb.Errorf("%s shows the secret %q", name, s)
			}
		}
	}
}

// checkLoopbackOnly checks in /proc/net that whatever listens on the
// emulator's two ports listens on 127.0.0.1 only.
func checkLoopbackOnly(tb testing.TB, fn *lambdaFunc) {
	tb.Helper()
	for _, addr := range []string{fn.invokeAddr, fn.runtimeAddr} {
		_, port, _ := net.SplitHostPort(addr)
		got := listeners(tb, port)
		if len(got) == 0 || slices.ContainsFunc(got, func(ip string) bool { return ip != "127.0.0.1" }) {
			tb.Errorf("port %s: listening on %q, want 127.0.0.1 only", port, got)
		}
	}
}

// listeners returns the addresses TCP sockets listen on at port, from
// /proc/net/tcp and /proc/net/tcp6.
func listeners(tb testing.TB, port string) []string {
	tb.Helper()
	p, err := strconv.Atoi(port)
	if err != nil {
		tb.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", p)
	var ips []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue // no IPv6
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 4 || f[3] != "0A" || !strings.HasSuffix(f[1], want) { // 0A: LISTEN
				continue
			}
			ips = append(ips, procNetIP(strings.TrimSuffix(f[1], want)))
		}
	}
	return ips
}

// procNetIP reads an address of /proc/net/tcp{,6}: 32-bit words in hex,
// each in the machine's byte order.
func procNetIP(h string) string {
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw)%4 != 0 {
		return h
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	return ip.String()
}

// checkRuntimeAPIEnv checks that the bootstrap was given the runtime API
// the test chose, on 127.0.0.1.
func checkRuntimeAPIEnv(tb testing.TB, fn *lambdaFunc) {
	tb.Helper()
	pids := childPIDs(fn.cmd.Process.Pid)
	if len(pids) != 1 {
		tb.Fatalf("aws-lambda-rie has %d child processes, want the bootstrap", len(pids))
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
	if err != nil {
		tb.Fatal(err)
	}
	want := "AWS_LAMBDA_RUNTIME_API=" + fn.runtimeAddr
	if !slices.Contains(strings.Split(string(b), "\x00"), want) {
		tb.Errorf("the bootstrap's environment lacks %s", want)
	}
}

// childPIDs lists the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		f := strings.Fields(string(rest))
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, child)
		}
	}
	return kids
}

// batchItemFailures reads an SQS partial batch response.
func batchItemFailures(tb testing.TB, body []byte) []string {
	tb.Helper()
	var resp events.SQSEventResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		tb.Fatalf("the response is no SQS batch response: %v\n%s", err, body)
	}
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// onePostOf returns the only post fake accepted.
func onePostOf(tb testing.TB, fake *actionstest.Slack) actionstest.Post {
	tb.Helper()
	posts := fake.Posts()
	if len(posts) != 1 {
		tb.Fatalf("Slack got %d messages, want 1", len(posts))
	}
	return posts[0]
}

// rieTopic is the SNS topic of the events, rieQueue the queue of the
// SQS records, rieAccount the account of the function the emulator runs
// (it names every invoked function arn:aws:lambda:us-east-1:012345678912:…).
const (
	rieTopic   = "arn:aws:sns:us-east-1:111122223333:ses-feedback"
	rieQueue   = "arn:aws:sqs:us-east-1:111122223333:ses-feedback"
	rieAccount = "012345678912"
)

// snsEvent is a Lambda SNS event of one notification carrying sesJSON,
// signed by f's signer, as the Lambda service writes it (SigningCertUrl,
// UnsubscribeUrl, a null Subject, MessageAttributes).
func (f *lambdaFakes) snsEvent(tb testing.TB, id, sesJSON string) []byte {
	tb.Helper()
	return snsRecordEvent(tb, f.sns.Notification(tb, rieTopic, id, strings.TrimSpace(sesJSON)))
}

// rieSQSRecord is an SQS record of rieQueue with body.
func rieSQSRecord(id, body string) events.SQSMessage {
	return events.SQSMessage{
		MessageId: id, ReceiptHandle: "rh-" + id, Body: body,
		EventSource: "aws:sqs", EventSourceARN: rieQueue, AWSRegion: "us-east-1",
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}
}

// sqsSNSRecord is an SQS record whose body is the SNS envelope (raw
// delivery off), signed by f's signer, of a notification carrying
// sesJSON.
func (f *lambdaFakes) sqsSNSRecord(tb testing.TB, id, sesJSON string) events.SQSMessage {
	tb.Helper()
	return rieSQSRecord(id, string(intaketest.Body(f.sns.Notification(tb, rieTopic, "sns-"+id, strings.TrimSpace(sesJSON)))))
}

// rieEventBridge is testdata/events/bounce-eventbridge.json as the event
// of account.
func rieEventBridge(tb testing.TB, account string) []byte {
	tb.Helper()
	event, err := os.ReadFile("../../testdata/events/bounce-eventbridge.json")
	if err != nil {
		tb.Fatal(err)
	}
	const was = `"account": "111122223333"`
	if !bytes.Contains(event, []byte(was)) {
		tb.Fatalf("bounce-eventbridge.json no longer holds %s", was)
	}
	return bytes.Replace(event, []byte(was), []byte(`"account": "`+account+`"`), 1)
}

// rieSQSEvent is a Lambda SQS event of records.
func rieSQSEvent(tb testing.TB, records ...events.SQSMessage) []byte {
	tb.Helper()
	return mustJSON(tb, events.SQSEvent{Records: records})
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// writeFileTB writes a file, making its folder.
func writeFileTB(tb testing.TB, name, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func readFileOrErr(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// BenchmarkLambdaRIE is the Lambda figures of the README's Performance
// section, under the emulator with the handler's rules: each op is a warm
// invocation of an SNS bounce posted to the Slack webhook fake, timed
// from the HTTP request to the emulator's invoke API to its response. It
// also reports
//
//   - init-ms: the emulator's INIT REPORT, from starting the bootstrap to
//     its first request for an invocation from the runtime API;
//   - main-init-ms: the bootstrap's own "init done" (from main to just
//     before lambda.Start: rules, logger, clients);
//   - median-ms, report-median-ms: the median warm invocation, as timed
//     here and as the emulator's REPORT lines say;
//   - peak-rss-MiB: the bootstrap's VmHWM after the invocations.
//
// Run it with -benchtime=20x for the median of 20 invocations, and
// -count for more cold starts:
//
//	go test -run '^$' -bench LambdaRIE -benchtime=20x -count=5 ./cmd/sesrouter
func BenchmarkLambdaRIE(b *testing.B) {
	rie := lookRIE(b)
	bootstrap := buildBootstrap(b, true)
	f := newLambdaFakes(b)
	fn := startLambda(b, rie, bootstrap, f, lambdaSetup{rules: readHandlerRules(b), vars: f.vars("ses-alerts")})
	// Each invocation its own notification: the same one again would be
	// a duplicate, and not posted.
	event := func(i int) []byte {
		return f.snsEvent(b, fmt.Sprint("sns-bench-", i), liveBounce(b, fmt.Sprint("m-bench-", i), "someone@example.org"))
	}
	if status, body := fn.invoke(b, event(0)); status != http.StatusOK || string(body) != "null" {
		b.Fatalf("first invocation: %d %s", status, body)
	}
	var walls []time.Duration
	for b.Loop() {
		event := event(len(walls) + 1)
		start := time.Now()
		status, body := fn.invoke(b, event)
		walls = append(walls, time.Since(start))
		if status != http.StatusOK || string(body) != "null" {
			b.Fatalf("invocation: %d %s", status, body)
		}
	}
	if n := len(f.slack.Posts()); n != len(walls)+1 {
		b.Fatalf("%d posts for %d invocations", n, len(walls)+1)
	}

	fn.log.wait(b, "INIT REPORT")
	log, out := fn.log.String(), fn.output(b)
	if m := rieInitRE.FindStringSubmatch(log); m != nil {
		ms, _ := strconv.ParseFloat(m[1], 64)
		b.ReportMetric(ms, "init-ms")
	}
	if d, err := time.ParseDuration(fn.logLineOr(out, "msg", "init done")["init"]); err == nil {
		b.ReportMetric(float64(d)/1e6, "main-init-ms")
	}
	slices.Sort(walls)
	b.ReportMetric(float64(walls[len(walls)/2])/1e6, "median-ms")
	var reports []float64
	for i, m := range rieReportRE.FindAllStringSubmatch(out, -1) {
		if ms, err := strconv.ParseFloat(m[1], 64); err == nil && i > 0 { // the first is the cold one
			reports = append(reports, ms)
		}
	}
	if len(reports) > 0 {
		slices.Sort(reports)
		b.ReportMetric(reports[len(reports)/2], "report-median-ms")
	}
	if pids := childPIDs(fn.cmd.Process.Pid); len(pids) == 1 {
		if kb, ok := procStatusKB(fmt.Sprintf("/proc/%d/status", pids[0]), "VmHWM"); ok {
			b.ReportMetric(float64(kb)/1024, "peak-rss-MiB")
		}
	}
}

// rieInitRE reads the init duration in the emulator's log.
var rieInitRE = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// rieReportRE reads the Duration of the emulator's REPORT lines.
var rieReportRE = regexp.MustCompile(`(?m)^REPORT RequestId: \S+\t(?:Init Duration: [0-9.]+ ms\t)?Duration: ([0-9.]+) ms`)

// logLineOr returns the first JSON line of out whose key is value, its
// values as text; none: an empty map.
func (fn *lambdaFunc) logLineOr(out, key, value string) map[string]string {
	for _, l := range strings.Split(out, "\n") {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(l), &m) != nil || string(m[key]) != strconv.Quote(value) {
			continue
		}
		s := map[string]string{}
		for k, v := range m {
			s[k] = strings.Trim(string(v), `"`)
		}
		return s
	}
	return map[string]string{}
}

// procStatusKB reads a "Name:  N kB" line of /proc/PID/status.
func procStatusKB(file, name string) (int64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
