package main

import "testing"

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
