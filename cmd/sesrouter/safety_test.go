package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Nothing acted on by mistake: the address SES actions are given, rules
// that fail closed, and text that cannot drive a terminal.

// TestRouteLiveDisplayNameIsNotTheAddress routes, live with the handler's
// rules, a bounce whose recipients carry "no-suppress" only in a display
// name or a comment: the rules see the bare mailbox, which does not say
// no-suppress, so SES is never called for it; both are notified. A real
// no-suppress address beside them is unsuppressed, so SES is reached.
func TestRouteLiveDisplayNameIsNotTheAddress(t *testing.T) {
	f := startLiveFakes(t)
	f.vars = map[string]string{"SLACK_WEBHOOK_URL": f.slack.WebhookURL("ses-alerts")}
	r := routeLive(t, f, readHandlerRules(t),
		liveBounce(t, "m-1", `"no-suppress" <ceo@bank.example>`, "ceo2@bank.example (no-suppress)", "no-suppress-1@example.com"), "-format", "json")
	if r.code != exitOK {
		t.Fatalf("exit status %d, want 0\nstderr:\n%s", r.code, r.stderr)
	}
	for _, c := range f.ses.Calls() {
		if strings.Contains(c.Address, "bank.example") {
			t.Errorf("SES was called for %s: %s", c.Address, c.Op)
		}
	}
	if got := sesOps(f); len(got) != 1 || got[0] != "GetSuppressedDestination no-suppress-1@example.com 404" {
		t.Errorf("SES calls %q, want one, for no-suppress-1@example.com", got)
	}
	lines := parseLines(t, r.stdout)
	if len(lines) != 1 {
		t.Fatalf("%d output lines, want 1", len(lines))
	}
	want := []liveRecipient{
		{Address: "ceo@bank.example", Raw: `"no-suppress" <ceo@bank.example>`, Rules: []string{"notify-bounces-and-complaints"}, Actions: []string{"notify:ses-alerts"}},
		{Address: "ceo2@bank.example", Raw: "ceo2@bank.example (no-suppress)", Rules: []string{"notify-bounces-and-complaints"}, Actions: []string{"notify:ses-alerts"}},
		{Address: "no-suppress-1@example.com", Rules: []string{"keep-deliverable"}, Actions: []string{"unsuppress", "notify:ses-alerts"}},
	}
	if got, _ := json.Marshal(lines[0].Recipients); string(got) != string(mustJSON(t, want)) {
		t.Errorf("recipients:\n%s\nwant:\n%s", got, mustJSON(t, want))
	}
	checkContains(t, "the message", postText(t, onePost(t, f)), "`ceo@bank.example`", "`ceo2@bank.example`", "`no-suppress-1@example.com`")
}

// ruleErrorRules have a rule that fails at run time for a mail without a
// campaign tag (an index out of range) before a catch-all that suppresses
// and notifies.
const ruleErrorRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      pace: 0s
rules:
  - name: spring-campaign
    when: mail.tags["campaign"][0] == "spring"
    actions: [drop]
  - name: suppress-the-rest
    when: "true"
    actions: [suppress, {notify: hook}]
`

// TestRouteLiveRuleErrorFailsClosed routes live a bounce for which the
// first rule fails: the recipient gets no action at all (the catch-all is
// not tried, so SES is not called, and nothing is posted), its JSON
// recipient carries the error naming the rule, and the run exits 1.
func TestRouteLiveRuleErrorFailsClosed(t *testing.T) {
	f := startLiveFakes(t)
	r := routeLive(t, f, ruleErrorRules, liveBounce(t, "m-1", "a@example.com"), "-format", "json")
	if r.code != exitFailed {
		t.Errorf("exit status %d, want 1\nstderr:\n%s", r.code, r.stderr)
	}
	if n := len(f.ses.Calls()); n != 0 {
		t.Errorf("SES calls %q, want none", sesOps(f))
	}
	if n := len(f.slack.Posts()); n != 0 {
		t.Errorf("%d Slack posts, want none", n)
	}
	lines := parseLines(t, r.stdout)
	if len(lines) != 1 || len(lines[0].Recipients) != 1 || len(lines[0].Results) != 0 {
		t.Fatalf("output:\n%s\nwant one line, one recipient, no result", r.stdout)
	}
	rc := lines[0].Recipients[0]
	if !strings.HasPrefix(rc.Error, `rule "spring-campaign": index out of range`) || len(rc.Actions) != 0 || len(rc.Rules) != 0 {
		t.Errorf("recipient %+v, want no rule, no action and the error of spring-campaign", rc)
	}
	checkContains(t, "the summary", r.stderr, "1 notification (1 recipient), 0 skipped, 1 failed")
}

// TestRouteTextQuotesControls routes, dry, a bounce whose addresses,
// source, subject and diagnostic code hold an escape sequence (clear the
// screen) and a right-to-left override: in the text output, with and
// without -explain, they are quoted, and not one of those bytes reaches
// standard output.
func TestRouteTextQuotesControls(t *testing.T) {
	// The JSON escapes of ESC [2J and of U+202E, in the input's strings.
	const esc, rlo = `\u001b[2J`, `\u202e`
	bounce := strings.NewReplacer("a@example.com", "a"+esc+"@example.com", "b@example.com", rlo+"moc.elpmaxe@b",
		"shop@example.net", "shop"+esc+"@example.net", "Your order", "Your "+rlo+"order", "user unknown", "user "+esc+"unknown", "m-1", "m-"+esc).
		Replace(liveBounce(t, "m-1", "a@example.com", "b@example.com"))
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", dedupRules)
	input := writeFile(t, dir, "events.ndjson", bounce)
	for _, args := range [][]string{{"-dry-run"}, {"-dry-run", "-explain"}} {
		r := runCLI(t, testEnv(nil), "", append(append([]string{"route", "-rules", rules}, args...), input)...)
		if r.code != exitOK {
			t.Errorf("%v: exit status %d, want 0\nstderr:\n%s", args, r.code, r.stderr)
		}
		for _, bad := range []string{"\x1b", "\u202e"} {
			if strings.Contains(r.stdout, bad) || strings.Contains(r.stderr, bad) {
				t.Errorf("%v: the output holds %q:\n%q", args, bad, r.stdout)
			}
		}
		checkContains(t, "stdout", r.stdout, `"a\x1b[2J@example.com"`, `"\u202emoc.elpmaxe@b"`)
	}
}
