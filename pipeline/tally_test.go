package pipeline

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// TestSummaryCountsOutcomes checks the closing summary: counts by outcome.
func TestSummaryCountsOutcomes(t *testing.T) {
	cfg := loadConfig(t, rulesHook)
	h := &Handler{Router: cfg.Router, Dispatcher: cfg.DryRun()}
	tally := NewTally()
	for _, l := range []string{bounce("1", "a@keep.example", "b@example.com"), bounce("2", "c@fail.example"), "{"} {
		j := h.Prepare(ses.Decode("in", []byte(l))[0])
		h.Act(context.Background(), j, nil)
		tally.Add(j)
	}
	if got, want := tally.Summary(), "2 notifications (3 recipients), 0 skipped, 2 failed; dry-run 2"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestMetrics pins the Embedded Metric Format lines of an invocation.
func TestMetrics(t *testing.T) {
	tally := NewTally()
	tally.Types["Bounce"] = 2
	tally.RuleErrors = 1
	tally.Digested["hook"] = 5
	var b bytes.Buffer
	if err := WriteMetrics(&b, time.UnixMilli(1700000000000), tally, Metric{Name: "SweepEntries", Count: 7}); err != nil {
		t.Fatal(err)
	}
	want := `{"Notifications":2,"Type":"Bounce","_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"sesrouter","Dimensions":[["Type"]],"Metrics":[{"Name":"Notifications","Unit":"Count"}]}]}}
{"RuleErrors":1,"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"sesrouter","Dimensions":[[]],"Metrics":[{"Name":"RuleErrors","Unit":"Count"}]}]}}
{"Destination":"hook","Digested":5,"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"sesrouter","Dimensions":[["Destination"]],"Metrics":[{"Name":"Digested","Unit":"Count"}]}]}}
{"SweepEntries":7,"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"sesrouter","Dimensions":[[]],"Metrics":[{"Name":"SweepEntries","Unit":"Count"}]}]}}
`
	if b.String() != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestLoadReportsEverything checks that Load reports the rules' problems
// and the destinations' together, in file order, and never repeats a
// credential.
func TestLoadReportsEverything(t *testing.T) {
	_, err := LoadBytes("r.yaml", []byte(`version: 1
destinations:
  hook:
    slack: {webhook_env: "https://hooks.slack.com/services/T0/B0/XYZSECRET", pace: fast}
rules:
  - name: a
    when: recipent.address == "x"
    actions: [{notify: hook}]
`))
	got := regexp.MustCompile(`\(names: [^)]*\)`).ReplaceAllString(err.Error(), "(names: …)")
	want := `r.yaml:4:26: destination "hook": webhook_env must name an environment variable; this value looks like a webhook URL: put the URL in an environment variable and name it here
r.yaml:4:84: destination "hook": pace is a duration, like 1.1s or 500ms (0s: no wait), not "fast"
r.yaml:7:11: rule "a": unknown name recipent; did you mean recipient? (names: …)`
	if got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(err.Error(), "XYZSECRET") {
		t.Error("the error repeats the webhook URL")
	}
}
