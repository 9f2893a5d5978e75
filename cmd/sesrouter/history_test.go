package main

import (
	"strings"
	"testing"
)

// TestDryRunHistoryWithoutTable checks that route -dry-run takes rules
// that use history without a state table, says that every count is 0,
// and routes by that; a live route refuses them.
func TestDryRunHistoryWithoutTable(t *testing.T) {
	const rules = "../../rules.history.example.yaml"
	const bounce = `{"eventType":"Bounce","bounce":{"bounceType":"Transient","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"soft@example.com"}],"timestamp":"2024-05-01T10:00:02.000Z","feedbackId":"fb-1"},"mail":{"timestamp":"2024-05-01T10:00:00.000Z","source":"s@example.net","messageId":"m-1","destination":["soft@example.com"]}}`
	r := runCLI(t, testEnv(nil), bounce, "route", "-dry-run", "-explain", "-rules", rules)
	if r.code != exitOK {
		t.Fatalf("route -dry-run: exit status %d, want 0\nstderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "SESROUTER_STATE_TABLE is not set: every history(kind, window) counts 0") {
		t.Errorf("stderr:\n%s\nwant it to say that history counts 0", r.stderr)
	}
	if !strings.Contains(r.stdout, `history("Bounce/Transient", "7d") = 0`) || !strings.Contains(r.stdout, "soft-bounces -> log") {
		t.Errorf("stdout:\n%s\nwant a count of 0 and the soft-bounces rule deciding", r.stdout)
	}
	r = runCLI(t, testEnv(map[string]string{"HOOK": "x"}), bounce, "route", "-rules", rules)
	if r.code != exitUsage || !strings.Contains(r.stderr, "a rule uses history, which needs the fleet state") {
		t.Errorf("live route without a table: exit status %d, want 2 and why\nstderr:\n%s", r.code, r.stderr)
	}
}
