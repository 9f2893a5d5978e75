package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/intake/intaketest"
	"github.com/sesrouter/sesrouter/internal/awstest"
)

// s3ServeRules notify every bounce by one rule, named RULENAME, to the
// destination DEST: alerts (webhook $SLACK_WEBHOOK_URL) or other
// ($OTHER_WEBHOOK_URL).
const s3ServeRules = `version: 1
destinations:
  DEST:
    slack:
      webhook_env: VAR
      pace: 0s
rules:
  - name: RULENAME
    when: event.type == "Bounce"
    actions: [{notify: DEST}]
`

func s3ServeRulesOf(rule, dest, variable string) string {
	return strings.NewReplacer("RULENAME", rule, "DEST", dest, "VAR", variable).Replace(s3ServeRules)
}

// TestServeS3Rules runs the real binary with its rules in moto and
// SESROUTER_RULES_REFRESH=0s: the object's ETag is looked at before every
// request, so each step needs no clock (the refresh interval itself is
// tested on a fake clock in package pipeline). A notification in flight
// when new rules come into force finishes by the rules it started with;
// the next is routed by the new ones; a broken upload is refused once
// (one ERROR line, one RulesRefused metric on standard output) and the
// last good rules stay.
func TestServeS3Rules(t *testing.T) {
	bin := buildSesrouter(t)
	srv := awstest.Moto(t)
	f := &s3Fixture{srv: srv, bucket: srv.Bucket(t, true)}
	f.put(t, s3ServeRulesOf("bounces-v1", "alerts", "SLACK_WEBHOOK_URL"))
	sg := intaketest.NewSigner(t)
	slack := actionstest.NewSlack(t)
	g := newGate(t, slack.WebhookURL("alerts"))
	g.open()
	empty := writeFile(t, t.TempDir(), "empty", "")
	vars := []string{"SLACK_WEBHOOK_URL=" + g.URL, "OTHER_WEBHOOK_URL=" + slack.WebhookURL("other"),
		"SESROUTER_RULES=" + f.uri(), "SESROUTER_RULES_REFRESH=0s"}
	for k, v := range srv.Env(empty) {
		vars = append(vars, k+"="+v)
	}
	p := startServeProcess(t, bin, vars, "serve", "-addr", "127.0.0.1:0", "-topic", serveTopic, "-sns-cert-dir", sg.CertDir)
	send := func(id string) int {
		t.Helper()
		m := sg.Notification(t, serveTopic, id, liveBounce(t, "ses-"+id, "a@example.com"))
		return p.post(t, intaketest.Body(m))
	}
	channels := func() []string {
		var cs []string
		for _, post := range slack.Posts() {
			cs = append(cs, post.Channel)
		}
		return cs
	}

	if code := send("first"); code != http.StatusOK || p.ruleOf(t, "first") != "bounces-v1" {
		t.Fatalf("first bounce: status %d, want 200 by bounces-v1\n%s", code, p.stderr)
	}

	// A bounce in flight (its post held) when new rules are published:
	// the next bounce brings them into force and is routed by them; the
	// one in flight ends as it began.
	g.hold()
	slow := make(chan int, 1)
	go func() { slow <- send("slow") }()
	g.waitArrived(t)
	f.put(t, s3ServeRulesOf("bounces-v2", "other", "OTHER_WEBHOOK_URL"))
	if code := send("next"); code != http.StatusOK {
		t.Fatalf("next bounce: status %d\n%s", code, p.stderr)
	}
	if rule := p.ruleOf(t, "next"); rule != "bounces-v2" {
		t.Errorf("the bounce after the upload was routed by %q, want bounces-v2", rule)
	}
	g.open()
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the bounce in flight: status %d, want 200", code)
	}
	if rule := p.ruleOf(t, "slow"); rule != "bounces-v1" {
		t.Errorf("the bounce in flight was routed by %q, want bounces-v1, the rules it started with", rule)
	}
	if got := strings.Join(channels(), " "); got != "alerts other alerts" {
		t.Errorf("posts to %s, want alerts (first), other (next), alerts (slow)", got)
	}

	// A broken upload is refused, once.
	f.put(t, "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n")
	for _, id := range []string{"b1", "b2"} {
		if code := send(id); code != http.StatusOK || p.ruleOf(t, id) != "bounces-v2" {
			t.Errorf("%s after a broken upload: status %d, want 200 by bounces-v2", id, code)
		}
	}
	var refused []string
	for l := range strings.Lines(p.stderr.String()) {
		if strings.Contains(l, `"level":"ERROR"`) {
			refused = append(refused, l)
		}
	}
	if len(refused) != 1 || !strings.Contains(refused[0], `"msg":"rules not reloaded; the previous rules stay"`) ||
		!strings.Contains(refused[0], f.uri()+`:4:17: rule \"x\": event has no field tpye`) {
		t.Errorf("ERROR lines %q, want one naming the problem", refused)
	}
	p.stdout.wait(t, `"RulesRefused":1`)
	if n := strings.Count(p.stdout.String(), `"RulesRefused":1`); n != 1 {
		t.Errorf("standard output %q: want one RulesRefused metric", p.stdout.String())
	}
}
