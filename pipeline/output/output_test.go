package output

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/storm"
	"github.com/slack-go/slack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// rulesHook is a rules file with one webhook destination, paced at once,
// that notifies every bounce; a recipient at fail.example makes its rule
// fail at run time, one at keep.example is unsuppressed.
const rulesHook = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s, digest_after: 3}
rules:
  - name: fragile
    when: 'recipient.domain == "fail.example" && mail.destination[99] == "x"'
    actions: [drop]
  - name: keep
    when: recipient.domain == "keep.example"
    actions: [unsuppress, {notify: hook}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// bounce is an SES event-publishing bounce with id to addrs, one line.
func bounce(id string, addrs ...string) string {
	var rs, ds []string
	for _, a := range addrs {
		q, _ := json.Marshal(a)
		rs = append(rs, `{"emailAddress":`+string(q)+`,"status":"5.1.1","action":"failed"}`)
		ds = append(ds, string(q))
	}
	return `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[` +
		strings.Join(rs, ",") + `],"timestamp":"2024-05-01T10:00:02.000Z","feedbackId":"fb-` + id + `"},` +
		`"mail":{"timestamp":"2024-05-01T10:00:00.000Z","source":"shop@example.net","messageId":"m-` + id + `","destination":[` +
		strings.Join(ds, ",") + `]}}`
}

// items decodes lines of input into items.
func items(lines ...string) func() (ses.Item, bool) {
	var all []ses.Item
	for i, l := range lines {
		all = append(all, ses.Decode(fmt.Sprintf("in:%d", i+1), []byte(l))...)
	}
	return func() (ses.Item, bool) {
		if len(all) == 0 {
			return ses.Item{}, false
		}
		it := all[0]
		all = all[1:]
		return it, true
	}
}

// dryRun routes lines through a dry run, written by the writer of format.
func dryRun(t *testing.T, rules, format string, explain bool, lines ...string) string {
	t.Helper()
	cfg, err := pipeline.LoadBytes("rules.yaml", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	h := &pipeline.Handler{Router: cfg.Router, Dispatcher: cfg.DryRun(), Storm: storm.New()}
	var out bytes.Buffer
	o, err := New(&out, format, explain, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if res := pipeline.Route(ctx, ctx, h, o, true, pipeline.NewProgress(nil, false, nil), items(lines...), nil, time.Second, nil); res.WriteErr != nil {
		t.Fatal(res.WriteErr)
	}
	return out.String()
}

// TestJSONLine pins route's JSON output for a notification, a skipped
// input and an unreadable one, as docs/commands.md shows it.
func TestJSONLine(t *testing.T) {
	out := dryRun(t, rulesHook, "json", false,
		bounce("1", `"Ann" <Ann@Keep.Example>`, "b@fail.example"),
		`{"Type":"SubscriptionConfirmation","MessageId":"s1","TopicArn":"arn:aws:sns:us-east-1:1:t"}`,
		`{"eventType":5}`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	var first pipeline.View
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	payload := first.Results[1].Payload
	first.Results[1].Payload = nil
	want := pipeline.View{Input: "in:1", Envelope: "file", Type: "Bounce", MessageID: "m-1",
		Recipients: []pipeline.ViewRecipient{
			{Address: "Ann@keep.example", Raw: `"Ann" <Ann@Keep.Example>`, Rules: []string{"keep"}, Actions: []string{"unsuppress", "notify:hook"}},
			{Address: "b@fail.example", Rules: []string{}, Actions: []string{},
				Error: `rule "fragile": index out of range: 99 (array length is 2) (at "[99] == \"x\"", offset 54 of the expression)`},
		},
		Results: []pipeline.ViewResult{{Action: "unsuppress", Recipient: "Ann@keep.example", Outcome: "dry-run"}, {Action: "notify:hook", Outcome: "dry-run"}}}
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
    slack: {channel: C0123456789, mention: "<!subteam^S012|@oncall>", digest_after: 2, buttons: [unsuppress], allow_users: [U0123ABCD]}
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
		if got := mrkdwn(tt.in); got != template.HTML(tt.want) {
			t.Errorf("mrkdwn(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestJSONAsEncodingJSON checks that the JSON writer writes each line as
// encoding/json wrote the view (without HTML escaping), byte for byte:
// notifications with and without -explain, odd and hostile text,
// payloads, skipped and unreadable inputs.
func TestJSONAsEncodingJSON(t *testing.T) {
	cfg, err := pipeline.LoadBytes("rules.yaml", []byte(rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	h := &pipeline.Handler{Router: cfg.Router, Dispatcher: cfg.DryRun()}
	lines := []string{
		bounce("1", `"Ann" <Ann@Keep.Example>`, "b@fail.example", "c@example.com"),
		bounce("2<&>\u2028", "x\u2029y@keep.example", `"q\\"@example.com`, "not an address"),
		strings.Replace(bounce("3", "d@example.com"), `"source":"shop@example.net"`, `"source":"<b>Evil</b> \u0007\u001b <e@x.example>"`, 1),
		`{"Type":"SubscriptionConfirmation","MessageId":"s1","TopicArn":"arn:aws:sns:us-east-1:1:t"}`,
		`{"eventType":5}`,
		`{`,
	}
	next := items(lines...)
	n := 0
	for it, ok := next(); ok; it, ok = next() {
		j := h.Prepare(it)
		h.Act(t.Context(), j, nil)
		for _, explain := range []bool{false, true} {
			var got, want bytes.Buffer
			bw := bufio.NewWriter(&got)
			w := newJSON(bw, explain)
			if err := w.Job(j); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(j.View(explain)); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("%s (explain %v):\n got %s\nwant %s", it.Input, explain, got.String(), want.String())
			}
			n++
		}
	}
	if n < 2*len(lines) {
		t.Errorf("%d lines compared, want at least %d", n, 2*len(lines))
	}
}

// TestJSONLineEveryMember checks appendLine against encoding/json for a
// view with every member set, with odd text, and for the empty view.
func TestJSONLineEveryMember(t *testing.T) {
	odd := "a\"\\/<>&\u2028\u2029\x00\x01\b\f\n\r\t\x1f\x7fé日🙂\ufffd\ufeff\u202e"
	full := pipeline.View{Input: "in" + odd, Envelope: "sns", Type: "Bounce" + odd, MessageID: "m" + odd,
		Recipients: []pipeline.ViewRecipient{
			{Address: "a" + odd, Raw: "r" + odd, Rules: []string{"x" + odd, "y"}, Actions: []string{"notify:h"}, Unmatched: true,
				Error: "e" + odd, Tried: []pipeline.ViewTrial{{Rule: "x", Matched: true, Decided: true, Error: "t" + odd}, {Rule: "y"}},
				History: []pipeline.ViewHistory{{Kind: "k" + odd, Window: "7d", Count: 2}, {Kind: "Bounce", Window: "1h"}}},
			{Address: "b", Rules: []string{}, Actions: []string{}, Tried: []pipeline.ViewTrial{}},
		},
		Results: []pipeline.ViewResult{
			{Action: "notify:h", Recipient: "r" + odd, Outcome: actions.OutcomeFailed, Error: "boom" + odd,
				Payload: []byte(`[{"text":"<&>\u2028","blocks":null},{"a":1}]`)},
			{Action: "drop", Outcome: actions.OutcomeDropped},
		},
		Duplicate: true, Skipped: "s" + odd, Error: "err" + odd}
	for _, v := range []pipeline.View{full, {}, {Input: "x", Recipients: []pipeline.ViewRecipient{}, Results: []pipeline.ViewResult{}}} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if got := appendLine(nil, &v); string(got) != want.String() {
			t.Errorf("appendLine\n got %s\nwant %s", got, want.String())
		}
	}
}

// TestHTMLThread: a message in a storm's thread is indented under the
// messages before it, and says so; one outside is not.
func TestHTMLThread(t *testing.T) {
	var b strings.Builder
	w := bufio.NewWriter(&b)
	p := &htmlWriter{w: w, rules: "rules.yaml"}
	msg := func(text, ts string) actions.Message {
		return actions.Message{Text: text, ThreadTS: ts, Blocks: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}}
	}
	if err := p.Digest(storm.DigestResult{Destination: "alerts", Outcome: actions.OutcomePosted, Message: msg("root", "")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Digest(storm.DigestResult{Destination: "alerts", Outcome: actions.OutcomePosted, Message: msg("in the thread", "1700000000.000100")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Count(out, `<div class="msg thread">`) != 1 || strings.Count(out, "in the storm's thread") != 1 ||
		strings.Index(out, `<div class="msg thread">`) < strings.Index(out, ">root<") {
		t.Errorf("thread layout:\n%s", out)
	}
}
