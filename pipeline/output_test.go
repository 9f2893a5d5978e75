package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/ses"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// dryRun routes lines through a dry run, written by an Output in format.
func dryRun(t *testing.T, rules, format string, explain bool, lines ...string) string {
	t.Helper()
	cfg := loadConfig(t, rules)
	h := &Handler{Router: cfg.Router, Dispatcher: cfg.DryRun(), Storm: actions.NewStorm()}
	var out bytes.Buffer
	o, err := NewOutput(&out, format, explain, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if res := Route(ctx, ctx, h, o, NewProgress(nil, false, nil), items(t, lines...), nil, time.Second, nil); res.WriteErr != nil {
		t.Fatal(res.WriteErr)
	}
	return out.String()
}

// TestJSONLine pins route's JSON output for a notification, a skipped
// input and an unreadable one, as docs/commands.md documents it.
func TestJSONLine(t *testing.T) {
	out := dryRun(t, rulesHook, "json", false,
		bounce("1", `"Ann" <Ann@Keep.Example>`, "b@fail.example"),
		`{"Type":"SubscriptionConfirmation","MessageId":"s1","TopicArn":"arn:aws:sns:us-east-1:1:t"}`,
		`{"eventType":5}`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	var first Line
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	payload := first.Results[1].Payload
	first.Results[1].Payload = nil
	want := Line{Input: "in:1", Envelope: "file", Type: "Bounce", MessageID: "m-1",
		Recipients: []LineRecipient{
			{Address: "Ann@keep.example", Raw: `"Ann" <Ann@Keep.Example>`, Rules: []string{"keep"}, Actions: []string{"unsuppress", "notify:hook"}},
			{Address: "b@fail.example", Rules: []string{}, Actions: []string{},
				Error: `rule "fragile": index out of range: 99 (array length is 2) (at "[99] == \"x\"", offset 54 of the expression)`},
		},
		Results: []LineResult{{Action: "unsuppress", Recipient: "Ann@keep.example", Outcome: "dry-run"}, {Action: "notify:hook", Outcome: "dry-run"}}}
	if got, _ := json.Marshal(first); string(got) != string(mustMarshal(t, want)) {
		t.Errorf("line 1:\n%s\nwant\n%s", got, mustMarshal(t, want))
	}
	if !json.Valid(payload) || !bytes.Contains(payload, []byte(`"blocks":[`)) {
		t.Errorf("payload %s: want the webhook body", payload)
	}
	for i, want := range []string{
		`{"input":"in:2","envelope":"http","skipped":"SNS SubscriptionConfirmation for arn:aws:sns:us-east-1:1:t"}`,
		`{"input":"in:3","envelope":"file","error":"SES JSON: \"eventType\" is a JSON number, want a string"}`,
	} {
		if lines[i+1] != want {
			t.Errorf("line %d:\n%s\nwant\n%s", i+2, lines[i+1], want)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTextQuotesControlCharacters checks that the text output never
// writes a control or bidi character from an event as it is: an address
// cannot move the cursor, clear the screen or reorder a line.
func TestTextQuotesControlCharacters(t *testing.T) {
	for _, evil := range []string{"a\x1b[2J@example.com", "\u202eevil@example.com", "x@example.com\r", "bell\a@example.com"} {
		out := dryRun(t, rulesHook, "text", true, bounce("1", evil))
		if strings.ContainsAny(out, "\x1b\u202e\r\a") {
			t.Errorf("text output for %q holds a raw control character:\n%q", evil, out)
		}
		if !strings.Contains(out, `\x1b`) && !strings.Contains(out, `\u202e`) && !strings.Contains(out, `\r`) && !strings.Contains(out, `\a`) {
			t.Errorf("text output for %q does not show it quoted:\n%s", evil, out)
		}
	}
}

// TestHTMLPage checks the page of route -dry-run -format html against
// its golden file, and that what comes from an event is escaped.
func TestHTMLPage(t *testing.T) {
	const rules = `version: 1
destinations:
  alerts:
    slack: {channel: C0123456789, mention: "<!subteam^S012|@oncall>", digest_after: 2}
rules:
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: alerts}]
`
	out := dryRun(t, rules, "html", false,
		bounce("1", "a@example.com"),
		strings.Replace(bounce("2", "<script>alert(1)</script>@x.example"), `"source":"shop@example.net"`, `"source":"\"<b>Evil</b>\" <e@x.example>"`, 1),
		bounce("3", "c@example.com"), bounce("4", "d@example.com"))
	golden := filepath.Join("testdata", "page.golden.html")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("page differs from %s (go test -run HTMLPage -update rewrites it):\n%s", golden, out)
	}
	for _, bad := range []string{"<script>", "<b>Evil", "src=", "http://", "https://", "<link", "@import"} {
		if strings.Contains(out, bad) {
			t.Errorf("the page holds %q: an event's text was not escaped, or an asset is external", bad)
		}
	}
	for _, want := range []string{`class="header"`, `class="context"`, `class="section"`, `<span class="mention">@oncall</span>`,
		"<b>From:</b>", "<code>", "Digest · 2 notifications folded", "to alerts · digested", "&lt;script&gt;"} {
		if !strings.Contains(out, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// TestMrkdwn pins how Slack's mrkdwn becomes HTML.
func TestMrkdwn(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"*From:* a &amp; b", "<b>From:</b> a &amp; b"},
		{"`a*b*c` and _it_ and ~no~", "<code>a*b*c</code> and <i>it</i> and <s>no</s>"},
		{"<!here> <@U123> <!subteam^S1|@ops> <!subteam^S2>", `<span class="mention">@here</span> <span class="mention">@U123</span> <span class="mention">@ops</span> <span class="mention">@S2</span>`},
		{"<https://example.com/a?b=1&amp;c|the link>", `<a href="https://example.com/a?b=1&amp;c">the link</a>`},
		{"<javascript:alert(1)|x>", "&lt;javascript:alert(1)|x&gt;"},
		{"&lt;script&gt;\nline", "&lt;script&gt;<br>line"},
		{"snake_case_word and x*y", "snake_case_word and x*y"},
	} {
		if got := Mrkdwn(tt.in); got != template.HTML(tt.want) {
			t.Errorf("Mrkdwn(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

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
