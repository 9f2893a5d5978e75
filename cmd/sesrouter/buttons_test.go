package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sesrouter/sesrouter/actions"
)

// The unsuppress button's presses, signed here by the test with Slack's
// v0 scheme, through serve and through the Lambda function URL.

const buttonSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// buttonRules give the channel destination the unsuppress button, which
// U0ALLOWED may press.
const buttonRules = `version: 1
destinations:
  ops:
    slack: {channel: ` + liveChannel + `, pace: 0s, buttons: [unsuppress], allow_users: [U0ALLOWED]}
rules:
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: ops}]
`

// signPress is Slack's v0 signature of body at ts with secret.
func signPress(secret string, ts int64, body string) map[string]string {
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, "v0:"+strconv.FormatInt(ts, 10)+":"+body)
	return map[string]string{
		"X-Slack-Request-Timestamp": strconv.FormatInt(ts, 10),
		"X-Slack-Signature":         "v0=" + hex.EncodeToString(mac.Sum(nil)),
		"Content-Type":              "application/x-www-form-urlencoded",
	}
}

// press is the form body of user's press of the unsuppress button of
// destination ops for address.
func press(t *testing.T, user, address, responseURL string) string {
	t.Helper()
	value, _ := json.Marshal(actions.ButtonValue{Destination: "ops", Address: address, MessageID: "m-1"})
	payload, err := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user}, "response_url": responseURL,
		"message": map[string]any{"ts": "1700000000.000100", "text": "Bounce", "blocks": []any{}},
		"actions": []any{map[string]any{"type": "button", "block_id": "b1", "action_ts": "1700000001.000200",
			"action_id": actions.UnsuppressActionID, "value": string(value)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"payload": {string(payload)}}.Encode()
}

// checkPresses sends, through do, a forged press, a press of a user not
// allowed, an allowed press and its second copy, and checks what changed.
func checkPresses(t *testing.T, f *liveFakes, do func(headers map[string]string, body string) (int, string)) {
	t.Helper()
	const addr = "kept@example.com"
	f.ses.Suppress(addr, "BOUNCE", time.Now().Add(-time.Hour))
	listed := func() bool { _, ok := f.ses.Suppressed(addr); return ok }
	now := time.Now().Unix()

	allowed := press(t, "U0ALLOWED", addr, f.slack.ResponseURL("1700000000.000100"))
	if s, _ := do(signPress("not the secret", now, allowed), allowed); s != http.StatusUnauthorized {
		t.Errorf("bad signature: %d, want 401", s)
	}
	other := press(t, "U0OTHER", addr, f.slack.ResponseURL("1700000000.000100"))
	if s, a := do(signPress(buttonSecret, now, other), other); s != http.StatusOK || !strings.Contains(a, `"ephemeral"`) || !strings.Contains(a, "not allowed") {
		t.Errorf("user not allowed: %d %s, want an ephemeral refusal", s, a)
	}
	if !listed() || len(f.slack.Updates()) != 0 {
		t.Fatalf("a refused press changed something: listed %v, edits %+v", listed(), f.slack.Updates())
	}

	headers := signPress(buttonSecret, now, allowed)
	if s, a := do(headers, allowed); s != http.StatusOK || a != "" {
		t.Errorf("allowed press: %d %q, want 200 and no body", s, a)
	}
	ups := f.slack.Updates()
	if listed() || len(ups) != 1 || !ups[0].ResponseURL || !strings.Contains(string(ups[0].Blocks), "taken off the suppression list by <@U0ALLOWED>") {
		t.Fatalf("allowed press: listed %v, edits %+v", listed(), ups)
	}
	// Listed again, then the same press again: nothing changes.
	f.ses.Suppress(addr, "BOUNCE", time.Now())
	if s, a := do(headers, allowed); s != http.StatusOK || !strings.Contains(a, "Already done") {
		t.Errorf("second press: %d %q", s, a)
	}
	if !listed() || len(f.slack.Updates()) != 1 {
		t.Errorf("the second press changed something: listed %v, %d edits", listed(), len(f.slack.Updates()))
	}
}

func TestServeButtonPress(t *testing.T) {
	ts := startServe(t, buttonRules, serveSetup{vars: map[string]string{"SLACK_SIGNING_SECRET": buttonSecret}})
	checkPresses(t, ts.fakes, func(headers map[string]string, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, ts.url+"/slack/interactions", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	})
	if n := strings.Count(ts.logs.String(), `"msg":"button pressed"`); n != 1 {
		t.Errorf("%d audit lines, want 1:\n%s", n, ts.logs)
	}
}

func TestLambdaButtonPress(t *testing.T) {
	f := startLambdaFakes(t)
	f.vars["SLACK_SIGNING_SECRET"] = buttonSecret
	invoke, stdout, stderr := initTestLambda(t, buttonRules, testEnv(f.vars))
	checkPresses(t, f, func(headers map[string]string, body string) (int, string) {
		lower := map[string]string{}
		for k, v := range headers {
			lower[strings.ToLower(k)] = v // as the function URL gives them
		}
		event := events.LambdaFunctionURLRequest{
			Version: "2.0", RawPath: "/", Headers: lower, IsBase64Encoded: true,
			Body:           base64.StdEncoding.EncodeToString([]byte(body)),
			RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: http.MethodPost, Path: "/"}},
		}
		out, err := invoke(lambdaContext(), mustJSON(t, event))
		if err != nil {
			t.Fatalf("press: %v", err)
		}
		resp, ok := out.(events.LambdaFunctionURLResponse)
		if !ok {
			t.Fatalf("answer %T, want a LambdaFunctionURLResponse", out)
		}
		return resp.StatusCode, resp.Body
	})
	if n := strings.Count(stdout.String(), `"ButtonsPressed":1`); n != 1 {
		t.Errorf("%d ButtonsPressed metrics, want 1:\n%s", n, stdout)
	}
	if n := strings.Count(stderr.String(), `"msg":"button pressed"`); n != 1 {
		t.Errorf("%d audit lines, want 1:\n%s", n, stderr)
	}
}

// TestButtonsNeedSigningSecret: rules with a button and no signing
// secret do not start, with one line.
func TestButtonsNeedSigningSecret(t *testing.T) {
	f := startLambdaFakes(t)
	path := writeFile(t, t.TempDir(), "rules.yaml", buttonRules)
	var stderr bytes.Buffer
	if _, ok := lambdaInit(path, io.Discard, &stderr, testEnv(f.vars)); ok {
		t.Fatal("lambda init without SLACK_SIGNING_SECRET succeeded")
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "SLACK_SIGNING_SECRET") || !strings.Contains(got, "destination ops has buttons") {
		t.Errorf("lambda: %q, want one line naming SLACK_SIGNING_SECRET", got)
	}
	stderr.Reset()
	if code := run([]string{"serve", "-rules", path, "-addr", "127.0.0.1:0"}, strings.NewReader(""), io.Discard, &stderr, testEnv(f.vars)); code != exitUsage {
		t.Errorf("serve: exit %d, want %d", code, exitUsage)
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "sesrouter serve: ") || !strings.Contains(got, "SLACK_SIGNING_SECRET") {
		t.Errorf("serve: %q, want one line naming SLACK_SIGNING_SECRET", got)
	}
}
