package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/internal/awstest"
	"github.com/sesrouter/sesrouter/pipeline/state"
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

// TestHistoryReadFromTable checks that, with SESROUTER_STATE_TABLE set
// (moto_server's DynamoDB), route -dry-run and a rule test without
// history: count the events in the table, and neither writes it; a test
// that gives history: counts that instead.
func TestHistoryReadFromTable(t *testing.T) {
	srv := awstest.Moto(t)
	srv.Setenv(t)
	name := srv.StateTable(t)
	st := state.NewTable(srv.Config(), name)
	ctx := context.Background()
	key := state.HistoryKey("soft@example.com", "Bounce/Transient")
	for i, at := range []string{"2024-04-28T09:00:00Z", "2024-04-30T09:00:00Z"} {
		ts, _ := time.Parse(time.RFC3339, at)
		if err := st.Record(ctx, key, ts, fmt.Sprint("earlier-", i), ts.Add(30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	rules, err := filepath.Abs("../../rules.history.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := writeFile(t, dir, "h_test.yaml", `rules: `+rules+`
tests:
  - name: two soft bounces in the table
    event: {type: Bounce, timestamp: "2024-05-01T10:00:02.000Z", bounce: {type: Transient}, recipients: [soft@example.com]}
    expect:
      soft@example.com: [suppress, "notify:ops-alerts"]
  - name: the test's own history, not the table's
    history: {}
    event: {type: Bounce, timestamp: "2024-05-01T10:00:02.000Z", bounce: {type: Transient}, recipients: [soft@example.com]}
    expect:
      soft@example.com: [log]
`)
	vars := map[string]string{"SESROUTER_STATE_TABLE": name}
	r := runCLI(t, testEnv(vars), "", "test", tests)
	if r.code != exitOK || !strings.HasSuffix(r.stdout, "2 passed, 0 failed\n") {
		t.Errorf("test: exit status %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	const bounce = `{"eventType":"Bounce","bounce":{"bounceType":"Transient","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"soft@example.com"}],"timestamp":"2024-05-01T10:00:02.000Z","feedbackId":"fb-1"},"mail":{"timestamp":"2024-05-01T10:00:00.000Z","source":"s@example.net","messageId":"m-1","destination":["soft@example.com"]}}`
	r = runCLI(t, testEnv(vars), bounce, "route", "-dry-run", "-explain", "-format", "json", "-rules", rules)
	if r.code != exitOK || !strings.Contains(r.stdout, `"actions":["suppress","notify:ops-alerts"]`) ||
		!strings.Contains(r.stdout, `"history":[{"kind":"Bounce/Transient","window":"7d","count":2}]`) {
		t.Errorf("route -dry-run: exit status %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	evs, err := st.Events(ctx, key, time.Time{}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(evs) != 2 {
		t.Errorf("%d events in the table after the test and the dry run (%v), want the 2 written before: neither writes", len(evs), err)
	}
}
