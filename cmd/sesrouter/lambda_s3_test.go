package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/internal/awstest"
)

// TestLambdaRIES3Rules runs the function under the Lambda emulator with
// its rules in moto (SESROUTER_RULES=s3://…) and
// SESROUTER_RULES_REFRESH=0s, a look at the object's ETag as every
// invocation starts: a new version is in force for the next invocation;
// a broken one is refused once (one ERROR line, one RulesRefused metric)
// and the last good rules stay. The refresh interval itself is tested on
// a fake clock in package pipeline.
func TestLambdaRIES3Rules(t *testing.T) {
	rie := lookRIE(t)
	bootstrap := buildBootstrap(t, false)
	srv := awstest.Moto(t)
	s3f := &s3Fixture{srv: srv, bucket: srv.Bucket(t, true)}
	s3f.put(t, s3ServeRulesOf("bounces-v1", "alerts", "SLACK_WEBHOOK_URL"))
	f := newLambdaFakes(t)
	vars := f.vars("alerts")
	vars["OTHER_WEBHOOK_URL"] = f.slack.WebhookURL("other")
	vars["SESROUTER_RULES"] = s3f.uri()
	vars["SESROUTER_RULES_REFRESH"] = "0s"
	vars["AWS_ENDPOINT_URL_S3"] = srv.URL // the credentials are the SES fake's: moto takes any
	// The zip's own rules.yaml is there, and not read.
	fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: rieBrokenRules, vars: vars})

	invoke := func(id string) string {
		t.Helper()
		status, body := fn.invoke(t, f.snsEvent(t, "sns-"+id, liveBounce(t, "m-"+id, "a@example.com")))
		if status != http.StatusOK {
			t.Fatalf("invocation %s: %d %s, want 200\n%s", id, status, body, fn.output(t))
		}
		line := fn.logLine(t, "sesMessageId", "m-"+id)
		rcpts, _ := line["recipients"].([]any)
		if len(rcpts) != 1 {
			t.Fatalf("log line of %s: %v, want one recipient", id, line)
		}
		rules, _ := rcpts[0].(map[string]any)["rules"].([]any)
		return fmt.Sprint(rules...)
	}

	if rule := invoke("1"); rule != "bounces-v1" {
		t.Errorf("first invocation routed by %q, want bounces-v1", rule)
	}
	s3f.put(t, s3ServeRulesOf("bounces-v2", "other", "OTHER_WEBHOOK_URL"))
	if rule := invoke("2"); rule != "bounces-v2" {
		t.Errorf("the invocation after the upload routed by %q, want bounces-v2", rule)
	}
	s3f.put(t, "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n")
	for _, id := range []string{"3", "4"} {
		if rule := invoke(id); rule != "bounces-v2" {
			t.Errorf("invocation %s after a broken upload routed by %q, want bounces-v2", id, rule)
		}
	}
	var posts []string
	for _, p := range f.slack.Posts() {
		posts = append(posts, p.Channel)
	}
	if got := strings.Join(posts, " "); got != "alerts other other other" {
		t.Errorf("posts to %s, want alerts, then other three times", got)
	}
	out := fn.output(t)
	line := fn.logLine(t, "msg", "rules not reloaded; the previous rules stay")
	if line["level"] != "ERROR" || !strings.Contains(fmt.Sprint(line["error"]), s3f.uri()+`:4:17: rule "x": event has no field tpye`) {
		t.Errorf("refusal line %v, want an ERROR naming the problem", line)
	}
	if n := strings.Count(out, `"RulesRefused":1`); n != 1 {
		t.Errorf("%d RulesRefused metrics, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, `"msg":"rules reloaded"`); n != 1 {
		t.Errorf("%d rules reloaded lines, want 1", n)
	}
	fn.checkNoSecrets(t, f.secrets()...)
}
