package actions

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/slack-go/slack"
)

// hidden are the characters of the reproduction, each of which shows as
// nothing or reorders the text around it: a right-to-left override, a
// zero-width space, a word joiner, a soft hyphen, the Mongolian vowel
// separator and a tag character (TAG LATIN CAPITAL LETTER A), with the
// form each must be shown in.
var hidden = []struct {
	r     rune
	shown string
}{
	{'\u202E', "<U+202E>"},
	{'\u200B', "<U+200B>"},
	{'\u2060', "<U+2060>"},
	{'\u00AD', "<U+00AD>"},
	{'\u180E', "<U+180E>"},
	{'\U000E0041', "<U+E0041>"},
}

// hide puts every hidden character into s: "ab" becomes
// "a\u202E\u200B…b".
func hide(s string) string {
	var b strings.Builder
	for _, h := range hidden {
		b.WriteRune(h.r)
	}
	return s[:1] + b.String() + s[1:]
}

// invisibleRune says whether r, were it in a Slack text, would show as
// nothing or change how the text around it reads: a format character
// (bidi controls, zero-width characters, soft hyphen, tag characters), a
// default-ignorable one, a variation selector, or a control character
// other than a line break.
func invisibleRune(r rune) bool {
	return r != '\n' && unicode.In(r, unicode.Cf, unicode.Cc, unicode.Bidi_Control,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// invisibleIn returns every string in the JSON document doc that holds an
// invisible character, quoted.
func invisibleIn(t *testing.T, doc []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, doc)
	}
	var found []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if strings.IndexFunc(v, invisibleRune) >= 0 {
				found = append(found, fmt.Sprintf("%+q", v))
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				walk(k)
				walk(e)
			}
		}
	}
	walk(v)
	return found
}

// hiddenBounce is the reproduction: a bounce whose recipient address,
// diagnostic code, status, bounce type and subtype, sender, subject,
// message id and tags hold every hidden character, decoded from SES JSON
// as any intake decodes it. eventType is the event type it carries.
func hiddenBounce(t *testing.T, eventType string) Notice {
	t.Helper()
	doc, err := json.Marshal(map[string]any{
		"eventType": eventType,
		"bounce": map[string]any{
			"bounceType":    hide("Permanent"),
			"bounceSubType": hide("General"),
			"bouncedRecipients": []any{
				map[string]any{"emailAddress": hide("paypal@example.com"), "action": hide("failed"), "status": hide("5.1.1"),
					"diagnosticCode": hide("smtp; 550 5.1.1 user unknown")},
				map[string]any{"emailAddress": "plain@example.com", "action": "failed", "status": "5.1.1"},
			},
			"timestamp": "2024-05-02T10:00:05.123Z",
		},
		"mail": map[string]any{
			"timestamp":   "2024-05-02T10:00:00.000Z",
			"source":      hide("billing@shop.example.org"),
			"messageId":   hide("0102018f3c000001"),
			"destination": []any{hide("paypal@example.com"), "plain@example.com"},
			"tags":        map[string]any{hide("campaign"): []any{hide("spring")}},
			"commonHeaders": map[string]any{
				"subject": hide("Your invoice"),
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	items := ses.Decode("hidden.json", doc)
	if len(items) != 1 || items[0].Notification == nil {
		t.Fatalf("decoding: %+v", items)
	}
	nt := items[0].Notification
	if !strings.ContainsRune(nt.Mail.Subject, '\u202E') || !strings.ContainsRune(nt.Recipients[0].Address, '\U000E0041') {
		t.Fatalf("the decoder dropped the hidden characters: %+q, %+q", nt.Mail.Subject, nt.Recipients[0].Address)
	}
	return Notice{Notification: nt, Recipients: []NoticeRecipient{
		{Recipient: &nt.Recipients[0], Rule: hide("hard-bounce"), SES: []SESOutcome{
			{Action: rules.ActionUnsuppress, Outcome: OutcomeRemoved, Reason: hide("BOUNCE"), ListedAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
			{Action: rules.ActionSuppress, Outcome: OutcomeFailed, Err: fmt.Errorf("%s", hide("AccessDenied"))},
		}},
		{Recipient: &nt.Recipients[1], Rule: "r"},
	}}
}

// TestSlackPayloadsShowHiddenCharacters is the reproduction of
// invisible and bidi formatting characters reaching Slack: none survives
// in any string of the payload, whichever way it is posted, and each is
// shown as <U+XXXX>, in the header too.
func TestSlackPayloadsShowHiddenCharacters(t *testing.T) {
	for _, eventType := range []string{ses.TypeBounce, hide("Bounce"), hide("Send")} {
		t.Run(fmt.Sprintf("%+q", eventType), func(t *testing.T) {
			notice := hiddenBounce(t, eventType)
			msgs := buildWithMention(notice, "<!here>")
			for i, m := range msgs {
				name := fmt.Sprintf("message %d", i+1)
				checkLimits(t, name, m)
				for _, payload := range [][]byte{WebhookJSON(m), PostMessagePayload("C0123456789", m)} {
					if found := invisibleIn(t, payload); len(found) > 0 {
						t.Errorf("%s: invisible characters in the payload:\n%s", name, strings.Join(found, "\n"))
					}
				}
				for _, b := range Render(m) {
					for _, s := range b.Texts {
						if strings.IndexFunc(s, invisibleRune) >= 0 {
							t.Errorf("%s: invisible characters in the rendered %s: %+q", name, b.Kind, s)
						}
					}
				}
				if p := Preview(m); strings.IndexFunc(p, func(r rune) bool { return r != '\n' && invisibleRune(r) }) >= 0 {
					t.Errorf("%s: invisible characters in the preview: %+q", name, p)
				}
			}

			body := string(WebhookJSON(msgs[0]))
			for _, h := range hidden {
				mrkdwnForm := strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(h.shown)
				if !strings.Contains(body, mrkdwnForm) {
					t.Errorf("the payload does not show U+%04X as %s:\n%s", h.r, mrkdwnForm, body)
				}
			}
			if header := headerText(msgs[0]); !strings.Contains(header, "<U+202E><U+200B><U+2060><U+00AD><U+180E><U+E0041>") {
				t.Errorf("header %q does not show the hidden characters", header)
			}
			wantAddress := "`p&lt;U+202E&gt;&lt;U+200B&gt;&lt;U+2060&gt;&lt;U+00AD&gt;&lt;U+180E&gt;&lt;U+E0041&gt;aypal@example.com`"
			if !strings.Contains(body, wantAddress) {
				t.Errorf("the payload does not hold the address as %s:\n%s", wantAddress, body)
			}
		})
	}
}

// TestDigestShowsHiddenCharacters: a digest folds addresses, types and
// rules taken from the event; they are shown as BuildMessages shows them.
func TestDigestShowsHiddenCharacters(t *testing.T) {
	g := NewSweepDigest(&rules.Destination{Name: "alerts", DigestAfter: 1, DigestWindow: time.Minute})
	for _, eventType := range []string{ses.TypeBounce, hide("Send")} {
		notice := hiddenBounce(t, eventType)
		g.Add(&notice)
	}
	if n := g.Notifications(); n != 2 {
		t.Fatalf("the digest counts %d notifications, want 2", n)
	}
	m := g.Message()
	checkLimits(t, "digest", m)
	body := WebhookJSON(m)
	if found := invisibleIn(t, body); len(found) > 0 {
		t.Errorf("invisible characters in the digest:\n%s", strings.Join(found, "\n"))
	}
	if !strings.Contains(string(body), "&lt;U+202E&gt;") {
		t.Errorf("the digest does not show U+202E:\n%s", body)
	}
}

// TestHeaderNeverEmpty is the reproduction of an event type made only of
// control characters: its header was empty, which Slack rejects (so the
// notification was retried into the dead-letter queue). Every block and
// element keeps a visible text, whatever the event holds.
func TestHeaderNeverEmpty(t *testing.T) {
	for _, eventType := range []string{"\x01\x02\x03", "\t \r\n", "\x00", "\u0085\u2028", " "} {
		t.Run(fmt.Sprintf("%+q", eventType), func(t *testing.T) {
			nt := &ses.Notification{
				Event: ses.Event{Type: eventType, Timestamp: "\x01"},
				Mail:  ses.Mail{Source: "\x02", Subject: "\x03", MessageID: "\x04"},
			}
			nt.Recipients = []ses.Recipient{ses.NewRecipient("\x05")}
			nt.Recipients[0].DiagnosticCode = "\x06"
			notice := Notice{Notification: nt, Recipients: []NoticeRecipient{{Recipient: &nt.Recipients[0], Rule: "\x07"}}}
			for _, mention := range []string{"", "<!here>"} {
				msgs := buildWithMention(notice, mention)
				for i, m := range msgs {
					checkLimits(t, fmt.Sprintf("message %d", i+1), m)
					h, ok := m.Blocks[0].(*slack.HeaderBlock)
					if !ok || h.Text == nil || strings.TrimSpace(h.Text.Text) == "" {
						t.Fatalf("message %d: no header, or an empty one: %s", i+1, WebhookJSON(m))
					}
					if h.Text.Text != "SES notification" {
						t.Errorf("header %q, want %q", h.Text.Text, "SES notification")
					}
					if want := "SES notification: (no address)"; !strings.HasSuffix(m.Text, want) {
						t.Errorf("fallback text %q, want it to end %q", m.Text, want)
					}
				}
			}
		})
	}
}

// TestBlocksNeverEmpty: the builders of blocks give none that Slack
// rejects for an empty text, whatever text they are given.
func TestBlocksNeverEmpty(t *testing.T) {
	for _, text := range []string{"", " ", "\n\t", "\u3000"} {
		if got := headerBlock(text).Text.Text; got != "SES notification" {
			t.Errorf("headerBlock(%q): text %q", text, got)
		}
		if got := section(text).Text.Text; got != "_(empty)_" {
			t.Errorf("section(%q): text %q", text, got)
		}
		if got := mrkdwn(text).Text; got != "_(empty)_" {
			t.Errorf("mrkdwn(%q): text %q", text, got)
		}
		if c := contextBlock([]string{text, text}); c != nil {
			t.Errorf("contextBlock(%q, %q) = %s, want none", text, text, marshal(t, c))
		}
	}
	c := contextBlock([]string{"", "a", " ", "b"})
	if c == nil || marshal(t, c.ContextElements.Elements) != `[{"type":"mrkdwn","text":"a","verbatim":true},{"type":"mrkdwn","text":"b","verbatim":true}]` {
		t.Errorf("contextBlock kept empty elements: %s", marshal(t, c))
	}
	many := make([]string, 2*maxContextElems)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	if c := contextBlock(many); len(c.ContextElements.Elements) != maxContextElems {
		t.Errorf("contextBlock of %d texts: %d elements, want %d", len(many), len(c.ContextElements.Elements), maxContextElems)
	}
}

// FuzzShownText checks what every text written for Slack keeps to,
// whatever it is given: valid UTF-8 within its limit, on one line, no
// bidi control, and no hidden character but those of an emoji.
func FuzzShownText(f *testing.F) {
	for _, s := range []string{"", "a", hide("paypal@example.com"), "\x01\x02", "a\u200D\U0001F4BB", "\U0001F469\u200D\U0001F4BB",
		"1\uFE0F\u20E3", "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", "\xff<&>`", "\u2028x\u0085"} {
		f.Add(s, 20)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if limit < 2 || limit > 3000 {
			return
		}
		for _, form := range []textForm{formMrkdwn, formPlain} {
			got := shownText(s, limit, form)
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > limit {
				t.Fatalf("shownText(%+q, %d): %+q is not valid UTF-8 within the limit", s, limit, got)
			}
			for _, r := range got {
				emojiRune := r == '\u200D' || r == '\uFE0E' || r == '\uFE0F' || (r >= 0xE0030 && r <= 0xE007F)
				if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || (invisibleRune(r) && !emojiRune) {
					t.Fatalf("shownText(%+q, %d) = %+q holds U+%04X", s, limit, got, r)
				}
			}
			if form == formMrkdwn && strings.ContainsAny(got, "<>`") {
				t.Fatalf("escapeText(%+q, %d) = %+q holds < > or `", s, limit, got)
			}
		}
	})
}
