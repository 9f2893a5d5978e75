package ruletest

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// historyRules suppress an address at its third Transient bounce within
// seven days and log every other bounce.
const historyRules = `version: 1
rules:
  - name: third-soft-bounce
    when: bounce.type == "Transient" && history("Bounce/Transient", "7d") >= 2
    actions: [suppress]
  - name: bounces
    when: event.type == "Bounce"
    actions: [log]
`

// historyTests give the history each test routes with; the last gives
// none.
const historyTests = `tests:
  - name: third soft bounce
    history: {"Bounce/Transient": 2}
    event: {type: Bounce, bounce: {type: Transient}, recipients: [a@x.com]}
    expect:
      a@x.com: [suppress]
  - name: second soft bounce
    history: {"Bounce/Transient": 1, "Complaint": 5}
    event: {type: Bounce, bounce: {type: Transient}, recipients: [a@x.com]}
    expect:
      a@x.com: [log]
  - name: other kinds do not count
    history: {"Bounce/Permanent": 9}
    event: {type: Bounce, bounce: {type: Transient}, recipients: [a@x.com]}
    expect:
      a@x.com: [log]
  - name: no history given
    event: {type: Bounce, bounce: {type: Transient}, recipients: [a@x.com]}
    expect:
      a@x.com: [suppress]
`

// TestRunHistory checks that a test's history: is what history(kind,
// window) counts, that a test without one asks the HistoryFunc, and
// counts 0 without one.
func TestRunHistory(t *testing.T) {
	tf, err := Load(filepath.Join(t.TempDir(), "h_test.yaml"), []byte(historyTests))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Load("rules.yaml", []byte(historyRules))
	if err != nil {
		t.Fatal(err)
	}
	router := route.NewRouter(rs)
	passed := func(results []Result) []bool {
		var ok []bool
		for _, r := range results {
			ok = append(ok, r.Passed())
		}
		return ok
	}
	// Without a HistoryFunc the last test counts 0: it logs, and fails.
	if got, want := passed(Run(router, tf, nil)), []bool{true, true, true, false}; !slices.Equal(got, want) {
		t.Errorf("without a history function: passed %v, want %v", got, want)
	}
	asked := 0
	three := func(r *route.Router, n *ses.Notification) (rules.History, error) {
		asked++
		return fixedHistory{"Bounce/Transient": 3}, nil
	}
	results, err := RunWith(router, tf, nil, three)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := passed(results), []bool{true, true, true, true}; !slices.Equal(got, want) {
		t.Errorf("with a history function: passed %v, want %v", got, want)
	}
	if asked != 1 {
		t.Errorf("the history function was asked %d times, want once: only for the test that gives no history", asked)
	}
	down := errors.New("table unreachable")
	_, err = RunWith(router, tf, nil, func(*route.Router, *ses.Notification) (rules.History, error) { return nil, down })
	if !errors.Is(err, down) || !strings.Contains(err.Error(), "no history given") {
		t.Errorf("RunWith with a failing history function: %v, want the error, naming the test", err)
	}
}

// TestLoadHistoryProblems checks what a test's history: may hold.
func TestLoadHistoryProblems(t *testing.T) {
	src := `tests:
  - name: a
    history: [Bounce]
    event: {type: Bounce, recipients: [a@x.com]}
    expect: {a@x.com: []}
  - name: b
    history: {"Bounce/Soft": 1, Complaint: -1, Bounce: two, Send: 1.5, Open: 0, Click: 3}
    event: {type: Bounce, recipients: [a@x.com]}
    expect: {a@x.com: []}
`
	_, err := Load("h_test.yaml", []byte(src))
	got := ""
	if err != nil {
		got = err.Error()
	}
	for _, want := range []string{
		`h_test.yaml:3:14: test "a": history must be a mapping of kind to count`,
		`h_test.yaml:7:15: test "b": history: history counts Bounce, Bounce/Permanent`,
		`not "Bounce/Soft"`,
		`h_test.yaml:7:44: test "b": history: Complaint: the count is a whole number, 0 or more`,
		`test "b": history: Bounce: the count is a whole number`,
		`test "b": history: Send: the count is a whole number`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nwant one with %q", got, want)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 5 {
		t.Errorf("%d problems, want 5 (Open: 0 and Click: 3 are fine):\n%s", n, got)
	}
}
