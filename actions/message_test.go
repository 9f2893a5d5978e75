package actions

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/slack-go/slack"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// Limits Slack documents that BuildMessages keeps by making no fields.
const (
	maxFields    = 10
	maxFieldText = 2000
)

// checkLimits fails t for every Slack limit m does not keep.
func checkLimits(t *testing.T, name string, m Message) {
	t.Helper()
	if len(m.Blocks) == 0 || len(m.Blocks) > maxBlocks {
		t.Errorf("%s: %d blocks, want 1 to %d", name, len(m.Blocks), maxBlocks)
	}
	if m.Text == "" || utf8.RuneCountInString(m.Text) > maxFallbackText || strings.Contains(m.Text, "\n") {
		t.Errorf("%s: fallback text is not one line of 1 to %d characters: %q", name, maxFallbackText, m.Text)
	}
	total := 0
	text := func(where string, o *slack.TextBlockObject, limit int) {
		t.Helper()
		if o == nil {
			t.Errorf("%s: %s: no text", name, where)
			return
		}
		if err := o.Validate(); err != nil {
			t.Errorf("%s: %s: %v", name, where, err)
		}
		if strings.TrimSpace(o.Text) == "" {
			t.Errorf("%s: %s: text %q shows nothing, which Slack rejects", name, where, o.Text)
		}
		n := utf8.RuneCountInString(o.Text)
		if n > limit {
			t.Errorf("%s: %s: %d characters, limit %d", name, where, n, limit)
		}
		if !utf8.ValidString(o.Text) {
			t.Errorf("%s: %s: invalid UTF-8", name, where)
		}
		total += n
	}
	for i, b := range m.Blocks {
		where := fmt.Sprintf("block %d", i)
		switch b := b.(type) {
		case *slack.HeaderBlock:
			if i != 0 {
				t.Errorf("%s: %s: a header after the first block", name, where)
			}
			text(where+" header", b.Text, maxHeaderText)
			if b.Text != nil && b.Text.Type != slack.PlainTextType {
				t.Errorf("%s: %s: header text is %s", name, where, b.Text.Type)
			}
		case *slack.SectionBlock:
			if b.Text != nil {
				text(where+" section", b.Text, maxSectionText)
			}
			if len(b.Fields) > maxFields {
				t.Errorf("%s: %s: %d fields", name, where, len(b.Fields))
			}
			for j, f := range b.Fields {
				text(fmt.Sprintf("%s field %d", where, j), f, maxFieldText)
			}
		case *slack.ContextBlock:
			els := b.ContextElements.Elements
			if len(els) == 0 || len(els) > maxContextElems {
				t.Errorf("%s: %s: %d context elements", name, where, len(els))
			}
			for j, e := range els {
				o, ok := e.(*slack.TextBlockObject)
				if !ok {
					t.Errorf("%s: %s element %d: %T", name, where, j, e)
					continue
				}
				text(fmt.Sprintf("%s element %d", where, j), o, maxContextText)
			}
		default:
			t.Errorf("%s: %s: unexpected %T", name, where, b)
		}
	}
	if total > maxMessageText {
		t.Errorf("%s: %d characters of text in the blocks, limit %d", name, total, maxMessageText)
	}
}

// mrkdwnTexts returns every mrkdwn text of m's blocks.
func mrkdwnTexts(m Message) []string {
	var out []string
	for _, b := range m.Blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil {
				out = append(out, b.Text.Text)
			}
			for _, f := range b.Fields {
				out = append(out, f.Text)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if o, ok := e.(*slack.TextBlockObject); ok {
					out = append(out, o.Text)
				}
			}
		}
	}
	return out
}

func headerText(m Message) string {
	if h, ok := m.Blocks[0].(*slack.HeaderBlock); ok && h.Text != nil {
		return h.Text.Text
	}
	return ""
}

// marshal is the JSON of v with <, > and & as they are, as Slack reads them.
func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(unescapeHTML(b))
}

// buildWithMention is BuildMessages for n posted to a destination with the
// mention given.
func buildWithMention(n Notice, mention string) []Message {
	n.Mention = mention
	return BuildMessages(n)
}

// bigBounce is a permanent bounce to n recipients, each with a long
// diagnostic code, some of them multi-byte.
func bigBounce(n int) Notice {
	nt := &ses.Notification{
		Event:  ses.Event{Type: ses.TypeBounce, Timestamp: "2024-05-02T10:00:05.123Z", Envelope: ses.EnvelopeSNS},
		Mail:   ses.Mail{Source: "Shop <billing@shop.example.org>", MessageID: "0102018f3c000001-0a1b2c3d-000000", Subject: "Your invoice #1042"},
		Bounce: ses.Bounce{Type: "Permanent", SubType: "General"},
	}
	for i := range n {
		r := ses.NewRecipient(fmt.Sprintf("user-%d@example.com", i+1))
		r.Status, r.Action = "5.1.1", "failed"
		switch i % 3 {
		case 0:
			r.DiagnosticCode = "smtp; 550 5.1.1 " + strings.Repeat("x", 2500)
		case 1:
			r.DiagnosticCode = "smtp; 550 5.1.1 " + strings.Repeat("é日本語🙂", 500) // 2,500 multi-byte characters
		default:
			r.DiagnosticCode = "smtp; 550 5.1.1 user unknown & <gone>"
		}
		nt.Recipients = append(nt.Recipients, r)
	}
	notice := Notice{Notification: nt}
	for i := range nt.Recipients {
		nr := NoticeRecipient{Recipient: &nt.Recipients[i], Rule: "hard-bounce"}
		if i%2 == 0 {
			nr.SES = []SESOutcome{{Action: rules.ActionUnsuppress, Outcome: OutcomeFailed, Err: errors.New(strings.Repeat("AccessDenied ", 100))}}
		}
		notice.Recipients = append(notice.Recipients, nr)
	}
	return notice
}

func TestBuildMessagesSplitsWithinSlackLimits(t *testing.T) {
	for _, n := range []int{1, 2, 46, 47, 48, 60, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			notice := bigBounce(n)
			msgs := buildWithMention(notice, "<!subteam^S012345>")
			if n == 60 && len(msgs) < 2 {
				t.Fatalf("60 recipients with long diagnostics: %d message, want several", len(msgs))
			}
			seen := map[string]int{}
			for i, m := range msgs {
				name := fmt.Sprintf("message %d of %d", i+1, len(msgs))
				checkLimits(t, name, m)

				h := headerText(m)
				part := fmt.Sprintf("(part %d of %d)", i+1, len(msgs))
				if len(msgs) > 1 && !strings.HasSuffix(h, part) {
					t.Errorf("%s: header %q does not end with %q", name, h, part)
				}
				if len(msgs) == 1 && strings.Contains(h, "part") {
					t.Errorf("%s: header %q names a part of one", name, h)
				}
				if !strings.HasPrefix(h, "Bounce · Permanent/General") {
					t.Errorf("%s: header %q", name, h)
				}
				if len(msgs) > 1 && !strings.Contains(m.Text, part) {
					t.Errorf("%s: fallback %q does not say %q", name, m.Text, part)
				}
				for _, s := range mrkdwnTexts(m) {
					// Long diagnostic codes are cut, with "…", to capDiag.
					if _, diag, ok := strings.Cut(s, "\n`smtp; 550 5.1.1 "); ok && !strings.HasPrefix(diag, "user unknown") {
						diag, _, _ = strings.Cut(diag, "\n")
						if !strings.HasSuffix(diag, "…`") || utf8.RuneCountInString("`smtp; 550 5.1.1 "+diag) != capDiag {
							t.Errorf("%s: long diagnostic not cut to %d characters: %q", name, capDiag, diag)
						}
					}
					for j := range n {
						seen[fmt.Sprintf("user-%d", j+1)] += strings.Count(s, fmt.Sprintf("`user-%d@example.com`", j+1))
					}
				}

				// The webhook payload round-trips through slack-go.
				body, err := json.Marshal(WebhookPayload(m))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var back slack.WebhookMessage
				if err := json.Unmarshal(body, &back); err != nil {
					t.Fatalf("%s: webhook payload does not unmarshal: %v", name, err)
				}
				if back.Blocks == nil || len(back.Blocks.BlockSet) != len(m.Blocks) || back.Text != m.Text {
					t.Fatalf("%s: webhook payload changed in a round trip", name)
				}
				again, err := json.Marshal(&back)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(body, again) {
					t.Errorf("%s: webhook payload changed in a round trip:\n%s\n%s", name, body, again)
				}
				if !json.Valid(PostMessagePayload("C0123456789", m)) {
					t.Errorf("%s: PostMessagePayload is not valid JSON", name)
				}
			}
			for j := range n {
				if c := seen[fmt.Sprintf("user-%d", j+1)]; c != 1 {
					t.Errorf("user-%d@example.com appears %d times across the messages, want once", j+1, c)
				}
			}
		})
	}
}

func TestBuildMessagesPartsAreEven(t *testing.T) {
	// Short recipients: the block limit decides. Every part but the last
	// is full; together they hold every recipient in order.
	nt := &ses.Notification{Event: ses.Event{Type: ses.TypeComplaint}}
	for i := range 120 {
		nt.Recipients = append(nt.Recipients, ses.NewRecipient(fmt.Sprintf("u%d@example.com", i)))
	}
	notice := Notice{Notification: nt}
	for i := range nt.Recipients {
		notice.Recipients = append(notice.Recipients, NoticeRecipient{Recipient: &nt.Recipients[i], Rule: "r"})
	}
	msgs := BuildMessages(notice)
	if len(msgs) != 3 {
		t.Fatalf("120 short recipients: %d messages, want 3", len(msgs))
	}
	var got []int
	for _, m := range msgs {
		got = append(got, len(m.Blocks))
	}
	if fmt.Sprint(got) != "[50 50 26]" {
		t.Errorf("blocks per message = %v, want [50 50 26]", got)
	}
	if want := "recipients 49–96 of 120"; !contains(mrkdwnTexts(msgs[1]), want) {
		t.Errorf("message 2 does not say %q: %q", want, mrkdwnTexts(msgs[1]))
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// hostile holds what an event could carry to mention, link or break the
// formatting.
const hostile = "<!channel> <!here> <@U123> <https://evil.example|click> & `tick` ```block``` *bold*"

func hostileNotice() Notice {
	nt := &ses.Notification{
		Event:  ses.Event{Type: ses.TypeBounce, Timestamp: "2024-05-02T10:00:05Z"},
		Bounce: ses.Bounce{Type: "Permanent", SubType: "General"},
		Mail: ses.Mail{
			Source:    "Evil <!channel> <evil@example.com>",
			MessageID: "<id-1@example.com> `x`",
			Subject:   "Hi " + hostile,
		},
	}
	r := ses.NewRecipient("a<!channel>`b`@example.com")
	r.Status, r.Action = "5.1.1<!here>", "failed`"
	r.DiagnosticCode = "smtp; 550 " + hostile + " https://support.google.com/mail/?p=NotAUserError"
	nt.Recipients = append(nt.Recipients, r, ses.NewRecipient("<@U999>@example.com"))
	return Notice{Notification: nt, Recipients: []NoticeRecipient{
		{Recipient: &nt.Recipients[0], Rule: "rule <!here>", SES: []SESOutcome{
			{Action: rules.ActionUnsuppress, Outcome: OutcomeRemoved, Reason: "BOUNCE<!channel>"},
			{Action: rules.ActionSuppress, Outcome: OutcomeFailed, Err: errors.New("boom " + hostile)},
		}},
		{Recipient: &nt.Recipients[1], Rule: "r"},
	}}
}

func TestBuildMessagesEscapes(t *testing.T) {
	const mention = "<!subteam^S012345>"
	for _, m := range []string{"", mention} {
		msgs := buildWithMention(hostileNotice(), m)
		for i, msg := range msgs {
			checkLimits(t, fmt.Sprintf("message %d", i+1), msg)
			body := marshal(t, WebhookPayload(msg))
			if m != "" {
				body = strings.ReplaceAll(body, m, "")
			}
			if strings.ContainsAny(body, "<>") {
				t.Errorf("mention %q: payload holds an unescaped < or >:\n%s", m, body)
			}
			if strings.Contains(body, "https://support.google.com/mail/?p=NotAUserError") {
				// Present, it must be in a code span: no link is made there.
				for _, s := range mrkdwnTexts(msg) {
					if i := strings.Index(s, "https://support.google.com"); i >= 0 && !inCodeSpan(s, i) {
						t.Errorf("URL outside a code span: %q", s)
					}
				}
			}
			for _, s := range append(mrkdwnTexts(msg), msg.Text) {
				// Every backtick is one this package wrote: they pair up,
				// and none comes from the event.
				if strings.Count(s, "`")%2 != 0 {
					t.Errorf("odd number of backticks in %q", s)
				}
				if strings.Contains(s, "tick`") || strings.Contains(s, "`b`") || strings.Contains(s, "```") {
					t.Errorf("a backtick from the event survived in %q", s)
				}
			}
		}
		sec := mrkdwnTexts(msgs[0])
		all := strings.Join(sec, "\n")
		for _, want := range []string{
			"`a&lt;!channel&gt;ˋbˋ@example.com`",
			"`smtp; 550 &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; ˋtickˋ ˋˋˋblockˋˋˋ *bold* https://support.google.com/mail/?p=NotAUserError`",
			"*Subject:* Hi &lt;!channel&gt;",
			"*From:* Evil &lt;!channel&gt; &lt;evil@example.com&gt;",
			"rule `rule &lt;!here&gt;`",
			"5.1.1&lt;!here&gt; failedˋ",
			"listed for BOUNCE&lt;!channel&gt;",
			"`&lt;@U999&gt;@example.com`",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("mention %q: the blocks do not hold %q:\n%s", m, want, all)
			}
		}
	}
}

// inCodeSpan says whether byte offset i of s is inside a `code span`.
func inCodeSpan(s string, i int) bool {
	return strings.Count(s[:i], "`")%2 == 1
}

func TestBuildMessagesMention(t *testing.T) {
	const mention = "<!subteam^S012345>"
	notice := bigBounce(60)
	withMention := buildWithMention(notice, mention)
	if len(withMention) < 2 {
		t.Fatalf("%d messages, want several", len(withMention))
	}
	for i, m := range withMention {
		body := marshal(t, WebhookPayload(m))
		count := strings.Count(body, mention)
		switch {
		case i == 0 && count != 2:
			t.Errorf("first message: mention %d times, want twice (text and first section)", count)
		case i > 0 && count != 0:
			t.Errorf("message %d: mention %d times, want none", i+1, count)
		}
	}
	first := withMention[0]
	if !strings.HasPrefix(first.Text, mention+" ") {
		t.Errorf("fallback text %q does not start with the mention", first.Text)
	}
	if s, ok := first.Blocks[2].(*slack.SectionBlock); !ok || !strings.HasPrefix(s.Text.Text, mention+" `user-1@example.com`") {
		t.Errorf("first section does not start with the mention: %#v", first.Blocks[2])
	}

	// With details (a rendering failure), the mention leads them.
	nt := &ses.Notification{Event: ses.Event{Type: ses.TypeRenderingFailure}, Failure: ses.Failure{TemplateName: "t", ErrorMessage: "e"}}
	nt.Recipients = []ses.Recipient{ses.NewRecipient("a@example.com")}
	m := buildWithMention(Notice{Notification: nt, Recipients: []NoticeRecipient{{Recipient: &nt.Recipients[0], Rule: "r"}}}, "<!here>")
	if got := mrkdwnTexts(m[0])[0]; !strings.HasPrefix(got, "<!here> *Template:*") {
		t.Errorf("first section = %q, want the mention before the details", got)
	}

	for _, m := range BuildMessages(notice) {
		if body := marshal(t, WebhookPayload(m)); strings.Contains(body, "<") {
			t.Errorf("no mention set, yet the payload holds <:\n%s", body)
		}
	}
}

func TestBuildMessagesSESOutcomes(t *testing.T) {
	listed := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	nt := &ses.Notification{Event: ses.Event{Type: ses.TypeBounce}, Bounce: ses.Bounce{Type: "Permanent", SubType: "General"}}
	outcomes := [][]SESOutcome{
		{{Action: rules.ActionUnsuppress, Outcome: OutcomeRemoved, Reason: "BOUNCE", ListedAt: listed}},
		{{Action: rules.ActionUnsuppress, Outcome: OutcomeRemoved}},
		{{Action: rules.ActionUnsuppress, Outcome: OutcomeNotSuppressed}},
		{{Action: rules.ActionSuppress, Outcome: OutcomeAdded}},
		{{Action: rules.ActionUnsuppress, Outcome: OutcomeFailed, Err: errors.New("AccessDeniedException: not authorized")}},
		{{Action: rules.ActionUnsuppress, Outcome: OutcomeDryRun}, {Action: rules.ActionSuppress, Outcome: OutcomeDryRun}},
		nil,
	}
	for i := range outcomes {
		nt.Recipients = append(nt.Recipients, ses.NewRecipient(fmt.Sprintf("r%d@example.com", i)))
	}
	notice := Notice{Notification: nt}
	for i := range outcomes {
		notice.Recipients = append(notice.Recipients, NoticeRecipient{Recipient: &nt.Recipients[i], Rule: "rule", SES: outcomes[i]})
	}
	msgs := BuildMessages(notice)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	want := []string{
		"`r0@example.com` · rule `rule`\n→ removed from the suppression list (listed for BOUNCE since 2024-05-01 10:00 UTC)",
		"`r1@example.com` · rule `rule`\n→ removed from the suppression list",
		"`r2@example.com` · rule `rule`\n→ not on the suppression list",
		"`r3@example.com` · rule `rule`\n→ added to the suppression list",
		"`r4@example.com` · rule `rule`\n→ *unsuppress failed*: `AccessDeniedException: not authorized`",
		"`r5@example.com` · rule `rule`\n→ would be removed from the suppression list (dry run)\n→ would be added to the suppression list (dry run)",
		"`r6@example.com` · rule `rule`",
	}
	got := mrkdwnTexts(msgs[0])[len(mrkdwnTexts(msgs[0]))-len(want):]
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("recipient %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestEscapeText(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"plain", "a@example.com", 100, "a@example.com"},
		{"entities", "a & <b>", 100, "a &amp; &lt;b&gt;"},
		{"mention", "<!channel>", 100, "&lt;!channel&gt;"},
		{"backtick", "a`b", 100, "aˋb"},
		{"control characters", "a\nb\tc\r", 100, "a b c"},
		{"bidi override", "abc\u202Edef", 100, "abc&lt;U+202E&gt;def"},
		{"zero-width space", "pay\u200Bpal.com", 100, "pay&lt;U+200B&gt;pal.com"},
		{"byte order mark first", "\uFEFFabc", 100, "&lt;U+FEFF&gt;abc"},
		{"tag character", "a\U000E0041b", 100, "a&lt;U+E0041&gt;b"},
		{"only hidden characters", "\u200B", 100, "&lt;U+200B&gt;"},
		{"only control characters", "\x01\x02 \x7f", 100, ""},
		{"control characters around", "\x01a\x02", 100, "a"},
		{"hidden character not cut", "abc\u202Edef", 10, "abc…"},
		{"hidden character within", "ab\u202Ecd", 17, "ab&lt;U+202E&gt;…"},
		{"hidden character at the cut", "ab\u202Ecd", 16, "ab…"},
		{"emoji with VS16", "I \u2764\uFE0F you", 100, "I \u2764\uFE0F you"},
		{"keycap", "1\uFE0F\u20E3", 100, "1\uFE0F\u20E3"},
		{"ZWJ sequence", "\U0001F469\u200D\U0001F4BB \U0001F3F3\uFE0F\u200D\U0001F308", 100, "\U0001F469\u200D\U0001F4BB \U0001F3F3\uFE0F\u200D\U0001F308"},
		{"VS16 after a letter", "paypal\uFE0F.com", 100, "paypal&lt;U+FE0F&gt;.com"},
		{"ZWJ between letters", "a\u200Db", 100, "a&lt;U+200D&gt;b"},
		{"ZWJ after an emoji, before a letter", "\U0001F469\u200Db", 100, "\U0001F469&lt;U+200D&gt;b"},
		{"subdivision flag", "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F!", 100, "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F!"},
		{"tags smuggled after a flag", "\U0001F3F4\U000E0048\U000E0069\U000E007F", 100, "\U0001F3F4&lt;U+E0048&gt;&lt;U+E0069&gt;&lt;U+E007F&gt;"},
		{"tags without an end", "\U0001F3F4\U000E0067\U000E0062", 100, "\U0001F3F4&lt;U+E0067&gt;&lt;U+E0062&gt;"},
		{"exactly the limit", "abcde", 5, "abcde"},
		{"cut", "abcdef", 5, "abcd…"},
		{"cut before an entity", "abc&def", 6, "abc…"},
		{"entity within", "ab&cdef", 8, "ab&amp;…"},
		{"multi-byte", "日本語のテキスト", 5, "日本語の…"},
		{"emoji", "🙂🙂🙂🙂🙂🙂", 3, "🙂🙂…"},
		{"invalid UTF-8", "a\xffb", 10, "a\uFFFDb"},
		{"trailing space before the cut", "abc defgh", 5, "abc…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := escapeText(tt.in, tt.limit)
			if got != tt.want {
				t.Errorf("escapeText(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > tt.limit || !utf8.ValidString(got) {
				t.Errorf("escapeText(%q, %d): %d characters, valid UTF-8 %v", tt.in, tt.limit, n, utf8.ValidString(got))
			}
		})
	}
}

func TestCodeSpan(t *testing.T) {
	for _, in := range []string{"x", "`", "a`b`c", "```", "a ``` b", strings.Repeat("`", 50)} {
		got := codeSpan(in, 20)
		if strings.Count(got, "`") != 2 || !strings.HasPrefix(got, "`") || !strings.HasSuffix(got, "`") {
			t.Errorf("codeSpan(%q) = %q: the span can be broken", in, got)
		}
		if utf8.RuneCountInString(got) > 20 {
			t.Errorf("codeSpan(%q) = %q: longer than 20", in, got)
		}
	}
	if got := codeSpan("abcdefghij", 8); got != "`abcde…`" {
		t.Errorf("codeSpan cut = %q", got)
	}
}

func TestUnescapeHTML(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"a\u003cb\u003e\u0026"`, `"a<b>&"`},
		{`"\\u003c"`, `"\\u003c"`}, // an escaped backslash, then u003c
		{`"\\\u003c"`, `"\\<"`},
		{`"\n\u2028\""`, `"\n\u2028\""`},
		{`"\u00`, `"\u00`},
	}
	for _, tt := range tests {
		if got := string(unescapeHTML([]byte(tt.in))); got != tt.want {
			t.Errorf("unescapeHTML(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	var v any
	for _, s := range []string{"<!here> & \\u003c \\ \"", strings.Repeat("\\", 5) + "<"} {
		b, _ := json.Marshal(s)
		if err := json.Unmarshal(unescapeHTML(b), &v); err != nil || v != s {
			t.Errorf("unescapeHTML(%s) does not decode to %q: %v %q", b, s, err, v)
		}
	}
}

func TestPlainTextAndClamp(t *testing.T) {
	if got := plainText("a\nb <!here>", 150); got != "a b <!here>" {
		t.Errorf("plainText = %q", got)
	}
	if got := plainText("Bounce\u202E · \u00ADGeneral\u2067 ❤️", 150); got != "Bounce<U+202E> · <U+00AD>General<U+2067> ❤️" {
		t.Errorf("plainText = %q", got)
	}
	if got := headerTitle("\x01\x02", 150); got != "SES notification" {
		t.Errorf("headerTitle(control characters) = %q", got)
	}
	if got := partTitle("\x01", 2, 3); got != "SES notification (part 2 of 3)" {
		t.Errorf("partTitle(control characters) = %q", got)
	}
	if got := plainText(strings.Repeat("é", 200), 150); utf8.RuneCountInString(got) != 150 || !strings.HasSuffix(got, "…") {
		t.Errorf("plainText cut = %q (%d characters)", got, utf8.RuneCountInString(got))
	}
	if got := partTitle(strings.Repeat("x", 200), 2, 3); utf8.RuneCountInString(got) != 150 || !strings.HasSuffix(got, "… (part 2 of 3)") {
		t.Errorf("partTitle = %q", got)
	}
	if got := clampMrkdwn("abc &amp; def", 7); got != "abc …" {
		t.Errorf("clampMrkdwn = %q", got)
	}
	if got := clampMrkdwn("abc", 3); got != "abc" {
		t.Errorf("clampMrkdwn = %q", got)
	}
}

func TestPayloads(t *testing.T) {
	m := buildWithMention(hostileNotice(), "<!here>")[0]

	wh := WebhookPayload(m)
	if wh.UnfurlLinks == nil || *wh.UnfurlLinks || wh.UnfurlMedia == nil || *wh.UnfurlMedia {
		t.Errorf("webhook payload unfurls: links %v, media %v", wh.UnfurlLinks, wh.UnfurlMedia)
	}
	if wh.Text != m.Text || len(wh.Blocks.BlockSet) != len(m.Blocks) {
		t.Errorf("webhook payload is not the message")
	}

	body := PostMessagePayload("C0123456789", m)
	var got struct {
		Channel     string            `json:"channel"`
		Text        string            `json:"text"`
		Blocks      []json.RawMessage `json:"blocks"`
		UnfurlLinks *bool             `json:"unfurl_links"`
		UnfurlMedia *bool             `json:"unfurl_media"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("PostMessagePayload: %v\n%s", err, body)
	}
	if got.Channel != "C0123456789" || got.Text != m.Text || len(got.Blocks) != len(m.Blocks) {
		t.Errorf("PostMessagePayload = %s", body)
	}
	if got.UnfurlLinks == nil || *got.UnfurlLinks || got.UnfurlMedia == nil || *got.UnfurlMedia {
		t.Errorf("PostMessagePayload unfurls: %s", body)
	}
	if bytes.Contains(body, []byte(`\u003c`)) || bytes.HasSuffix(body, []byte("\n")) {
		t.Errorf("PostMessagePayload is HTML-escaped or ends in a newline: %s", body)
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(`[`+string(bytes.Join(rawBytes(got.Blocks), []byte(",")))+`]`), &blocks); err != nil || len(blocks.BlockSet) != len(m.Blocks) {
		t.Errorf("PostMessagePayload blocks do not unmarshal: %v", err)
	}

	if opts := m.MsgOptions(); len(opts) != 4 {
		t.Errorf("MsgOptions: %d options, want 4", len(opts))
	}
	// An empty message is still valid JSON with a blocks array.
	if got := string(PostMessagePayload("C1", Message{Text: "t"})); got != `{"channel":"C1","text":"t","blocks":[],"unfurl_links":false,"unfurl_media":false}` {
		t.Errorf("PostMessagePayload(empty) = %s", got)
	}
}

func rawBytes(rs []json.RawMessage) [][]byte {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}

func TestFallbackText(t *testing.T) {
	nt := &ses.Notification{
		Event:  ses.Event{Type: ses.TypeBounce},
		Bounce: ses.Bounce{Type: "Permanent", SubType: "General"},
		Mail:   ses.Mail{Source: "sender@example.com", Subject: "Hello <you> & " + strings.Repeat("long ", 40)},
	}
	for _, a := range []string{"a@x.com", "b@y.com", "c@z.com", "d@w.com"} {
		nt.Recipients = append(nt.Recipients, ses.NewRecipient(a))
	}
	rs := func(n int) []NoticeRecipient {
		var out []NoticeRecipient
		for i := range n {
			out = append(out, NoticeRecipient{Recipient: &nt.Recipients[i]})
		}
		return out
	}
	subject := `, subject "Hello &lt;you&gt; &amp; long long long long long long long long long long long…"`
	tests := []struct {
		n    int
		want string
	}{
		{0, `Bounce · Permanent/General from sender@example.com` + subject},
		{1, `Bounce · Permanent/General: a@x.com from sender@example.com` + subject},
		{2, `Bounce · Permanent/General: 2 recipients (a@x.com, b@y.com) from sender@example.com` + subject},
		{3, `Bounce · Permanent/General: 3 recipients (a@x.com, b@y.com, +1 more) from sender@example.com` + subject},
		{4, `Bounce · Permanent/General: 4 recipients (a@x.com, b@y.com, +2 more) from sender@example.com` + subject},
	}
	for _, tt := range tests {
		if got := fallbackText(nt, eventTitle(nt), rs(tt.n)); got != tt.want {
			t.Errorf("%d recipients:\n got %s\nwant %s", tt.n, got, tt.want)
		}
	}
}

func TestEventTitle(t *testing.T) {
	tests := []struct {
		n    ses.Notification
		want string
	}{
		{ses.Notification{Event: ses.Event{Type: "Bounce"}, Bounce: ses.Bounce{Type: "Permanent", SubType: "General"}}, "Bounce · Permanent/General"},
		{ses.Notification{Event: ses.Event{Type: "Bounce"}, Bounce: ses.Bounce{Type: "Transient"}}, "Bounce · Transient"},
		{ses.Notification{Event: ses.Event{Type: "Complaint"}, Complaint: ses.Complaint{FeedbackType: "abuse"}}, "Complaint · abuse"},
		{ses.Notification{Event: ses.Event{Type: "Complaint"}}, "Complaint"},
		{ses.Notification{Event: ses.Event{Type: "Complaint"}, Complaint: ses.Complaint{SubType: "OnAccountSuppressionList"}}, "Complaint · OnAccountSuppressionList"},
		{ses.Notification{Event: ses.Event{Type: "Complaint"}, Complaint: ses.Complaint{FeedbackType: "abuse", SubType: "OnAccountSuppressionList"}}, "Complaint · abuse · OnAccountSuppressionList"},
		{ses.Notification{Event: ses.Event{Type: "DeliveryDelay"}, Delay: ses.Delay{Type: "MailboxFull"}}, "Delivery delayed · MailboxFull"},
		{ses.Notification{Event: ses.Event{Type: "Reject"}, Reject: ses.Reject{Reason: "Bad content"}}, "Reject · Bad content"},
		{ses.Notification{Event: ses.Event{Type: "RenderingFailure"}}, "Rendering failure"},
		{ses.Notification{Event: ses.Event{Type: "Delivery"}}, "Delivery"},
		{ses.Notification{Event: ses.Event{Type: "Send"}}, "Send"},
		{ses.Notification{Event: ses.Event{Type: "Open"}}, "Open"},
		{ses.Notification{Event: ses.Event{Type: "Click"}}, "Click"},
		{ses.Notification{Event: ses.Event{Type: "Subscription"}}, "Subscription"},
		{ses.Notification{Event: ses.Event{Type: "SomethingNew"}}, "SomethingNew"},
	}
	for _, tt := range tests {
		if got := eventTitle(&tt.n); got != tt.want {
			t.Errorf("eventTitle(%s) = %q, want %q", tt.n.Event.Type, got, tt.want)
		}
	}
}

// TestGoldenPayloads compares the webhook payload of the first message
// for each event type with testdata/slack/NAME.golden.json; -update
// rewrites them.
func TestGoldenPayloads(t *testing.T) {
	listed := time.Date(2024, 4, 28, 9, 15, 0, 0, time.UTC)
	tests := []struct {
		name    string
		mention string
		rule    []string       // per recipient
		ses     [][]SESOutcome // per recipient
	}{
		{name: "bounce", mention: "<!here>", rule: []string{"keep-deliverable", "everything-else"}, ses: [][]SESOutcome{
			{{Action: rules.ActionUnsuppress, Outcome: OutcomeRemoved, Reason: "BOUNCE", ListedAt: listed}},
		}},
		{name: "complaint", rule: []string{"complaints"}, ses: [][]SESOutcome{
			{{Action: rules.ActionSuppress, Outcome: OutcomeAdded}},
		}},
		{name: "delivery", rule: []string{"deliveries"}},
		{name: "send", rule: []string{"sends"}},
		{name: "reject", rule: []string{"rejects"}},
		{name: "rendering-failure", rule: []string{"rendering-failures"}},
		{name: "open", rule: []string{"engagement"}},
		{name: "click", rule: []string{"engagement"}},
		{name: "delivery-delay", rule: []string{"delays", "delays"}, ses: [][]SESOutcome{
			nil, {{Action: rules.ActionUnsuppress, Outcome: OutcomeNotSuppressed}},
		}},
		{name: "subscription", rule: []string{"unsubscribes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("testdata", "slack", "events", tt.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			items := ses.Decode(tt.name+".json", doc)
			if len(items) != 1 || items[0].Notification == nil {
				t.Fatalf("decoding: %+v", items)
			}
			nt := items[0].Notification
			if len(nt.Recipients) != len(tt.rule) {
				t.Fatalf("%d recipients, test names rules for %d", len(nt.Recipients), len(tt.rule))
			}
			notice := Notice{Notification: nt}
			for i := range nt.Recipients {
				nr := NoticeRecipient{Recipient: &nt.Recipients[i], Rule: tt.rule[i]}
				if i < len(tt.ses) {
					nr.SES = tt.ses[i]
				}
				notice.Recipients = append(notice.Recipients, nr)
			}
			msgs := buildWithMention(notice, tt.mention)
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			checkLimits(t, tt.name, msgs[0])

			body := WebhookJSON(msgs[0])
			var buf bytes.Buffer
			if err := json.Indent(&buf, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteByte('\n')
			golden := filepath.Join("testdata", "slack", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./actions -update to write it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the payload; run go test ./actions -update if the change is meant.\ngot:\n%s", golden, buf.Bytes())
			}
		})
	}
}

// TestBuildMessagesDeterministic builds the same Notice twice.
func TestBuildMessagesDeterministic(t *testing.T) {
	a := marshal(t, BuildMessages(bigBounce(60)))
	b := marshal(t, BuildMessages(bigBounce(60)))
	if a != b {
		t.Error("BuildMessages gave two different results for one Notice")
	}
}

// TestBuildMessagesEmpty covers a Notice without recipients or
// notification: still one valid message.
func TestBuildMessagesEmpty(t *testing.T) {
	for _, n := range []Notice{{}, {Notification: &ses.Notification{Event: ses.Event{Type: ses.TypeSend}}}} {
		msgs := buildWithMention(n, "<!here>")
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want 1", len(msgs))
		}
		checkLimits(t, "empty", msgs[0])
		if !strings.HasPrefix(msgs[0].Text, "<!here> ") {
			t.Errorf("fallback %q", msgs[0].Text)
		}
	}
	// No mention set, none in the message.
	msgs := BuildMessages(Notice{})
	if len(msgs) != 1 || strings.Contains(marshal(t, msgs), "<") {
		t.Errorf("BuildMessages(Notice{}) = %s", marshal(t, msgs))
	}
	checkLimits(t, "no destination", msgs[0])
}

// unescapeHTML undoes encoding/json's HTML escaping in the JSON document
// b: \u003c, \u003e and \u0026 become <, > and &. Every backslash in JSON
// text starts an escape of two or six characters, so reading escape by
// escape never mistakes an escaped backslash followed by "u003c" for an
// escape of <. With encoding/json, it made the payloads that
// marshalPayload now writes in one pass: the reference they are checked
// against.
func unescapeHTML(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u00`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "003c":
				out = append(out, '<')
				i += 5
				continue
			case "003e":
				out = append(out, '>')
				i += 5
				continue
			case "0026":
				out = append(out, '&')
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}
