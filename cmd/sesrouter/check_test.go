package main

import (
	"fmt"
	"strings"
	"testing"
)

// warnRules load, but one rule can never decide and one destination is
// never notified.
const warnRules = `version: 1
destinations:
  alerts: {slack: {channel: C0ALERTS01}}
  spare: {slack: {webhook_env: SLACK_WEBHOOK_SPARE}}
rules:
  - name: catch-all
    when: true
    actions: [{notify: alerts}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [log]
`

// TestCheckWarnings checks that check prints every warning on stderr,
// counts them on its ok line and still exits 0.
func TestCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "warn.yaml", warnRules)
	t.Chdir(dir)
	r := runCLI(t, testEnv(nil), "", "check", "-rules", "warn.yaml")
	if r.code != exitOK {
		t.Errorf("exit status %d, want 0\nstderr:\n%s", r.code, r.stderr)
	}
	const wantStdout = "warn.yaml: ok: 2 rules, 2 destinations, 0 lists, 2 warnings\n"
	if r.stdout != wantStdout {
		t.Errorf("stdout = %q, want %q", r.stdout, wantStdout)
	}
	const wantStderr = `warn.yaml:4:3: destination "spare": warning: unused: no rule notifies it
warn.yaml:9:5: rule "bounces": warning: never decides: rule "catch-all" (line 6) always matches first and does not continue
`
	if r.stderr != wantStderr {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, wantStderr)
	}
}

// TestCheckProbesAndVocabulary checks what check finds beyond loading:
// a rule that fails at run time on one of its synthetic events (an
// error: in production it would fail closed), a comparison of event.type
// with a value SES never sends (an error, with a did-you-mean), and of
// another closed field (a warning, an error with -strict), and a rule
// whose compiled expression costs too much (a warning, an error with
// -strict).
func TestCheckProbesAndVocabulary(t *testing.T) {
	dir := t.TempDir()
	rule := func(name, when string) string {
		return writeFile(t, dir, name+".yaml", "version: 1\nrules:\n  - name: "+name+"\n    when: "+when+"\n    actions: [log]\n")
	}
	fails := rule("first-tag", `mail.tags["team"][0] == "ops"`)
	lower := rule("bounces", `event.type == "bounce"`)
	permanent := rule("hard", `event.type == "Bounce" && bounce.type == "permanent"`)
	domains := make([]string, 200)
	for i := range domains {
		domains[i] = fmt.Sprintf("d%d.example", i)
	}
	slow := writeFile(t, dir, "slow.yaml", "version: 1\nlists:\n  domains: ["+strings.Join(domains, ", ")+"]\nrules:\n"+
		"  - name: nested\n    when: any(lists.domains, {all(lists.domains, {glob(#, recipient.address)})})\n    actions: [log]\n")
	const slowWarning = `:5:5: rule "nested": warning: slow: up to 10041402 steps for one recipient (over 1000000, most of them at "any(lists.domains, {all(…", offset 0 of the expression); every recipient of every notification runs it` + "\n"
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"a rule failing on a synthetic event", []string{"-rules", fails}, exitUsage, "",
			fails + `:3:5: rule "first-tag": fails on a full Bounce, recipient "someone@example.com": index out of range: 0 (array length is 0) (at "[0] == \"ops\"", offset 17 of the expression); a rule that fails gives the recipient no action and fails the notification: guard it (?? , len(...) > 0, in)` + "\n" +
				fails + ": 1 problem, 0 warnings\n"},
		{"event.type in the wrong case", []string{"-rules", lower}, exitUsage, "",
			lower + `:4:25: rule "bounces": event.type is never "bounce"; did you mean "Bounce"?` + "\n" + lower + ": 1 problem\n"},
		{"bounce.type in the wrong case", []string{"-rules", permanent}, exitOK,
			permanent + ": ok: 1 rule, 0 destinations, 0 lists, 1 warning\n",
			permanent + `:4:52: rule "hard": warning: bounce.type is never "permanent"; did you mean "Permanent"?` + "\n"},
		{"bounce.type in the wrong case, -strict", []string{"-strict", "-rules", permanent}, exitUsage, "",
			permanent + `:4:52: rule "hard": warning: bounce.type is never "permanent"; did you mean "Permanent"?` + "\n" +
				permanent + ": 0 problems, 1 warning\n"},
		{"a slow rule", []string{"-rules", slow}, exitOK,
			slow + ": ok: 1 rule, 0 destinations, 1 list, 1 warning\n", slow + slowWarning},
		{"a slow rule, -strict", []string{"-strict", "-rules", slow}, exitUsage, "",
			slow + slowWarning + slow + ": 0 problems, 1 warning\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(nil), "", append([]string{"check"}, tt.args...)...)
			if r.code != tt.code || r.stdout != tt.stdout || r.stderr != tt.stderr {
				t.Errorf("exit status %d, stdout %q, stderr:\n%s\nwant %d, %q and:\n%s", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}
