package actions

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/slack-go/slack"
)

// referencePayload is v as slack-go's types marshal themselves with
// encoding/json, HTML escaping undone.
func referencePayload(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return UnescapeHTML(b)
}

// payloadMessages are messages of every shape sesrouter posts: each event
// type with hostile text, a message split in parts, a digest, an empty
// message, and blocks of every kind the renderer knows with random text.
func payloadMessages(t testing.TB) []Message {
	var msgs []Message
	msgs = append(msgs, buildWithMention(hostileNotice(), "<!subteam^S012|@oncall>")...)
	for _, typ := range []string{ses.TypeBounce, ses.TypeComplaint, ses.TypeDelivery, ses.TypeDeliveryDelay,
		ses.TypeReject, ses.TypeRenderingFailure, ses.TypeOpen, ses.TypeClick, ses.TypeSubscription, ""} {
		n := hostileNotice()
		n.Notification.Event.Type = typ
		n.Notification.Delivery.ProcessingTimeMillis = 1500
		n.Notification.Click.Link = "https://example.com/?a=1&b=<2>"
		msgs = append(msgs, BuildMessages(n)...)
	}
	many := Notice{Notification: &ses.Notification{Event: ses.Event{Type: ses.TypeBounce}}}
	for i := range 120 {
		r := ses.NewRecipient(strings.Repeat("x", i) + "@example.com")
		r.DiagnosticCode = strings.Repeat("550 <&> ", 40)
		many.Recipients = append(many.Recipients, NoticeRecipient{Recipient: &r, Rule: "r"})
	}
	if parts := BuildMessages(many); len(parts) < 2 {
		t.Fatalf("%d parts, want a split message", len(parts))
	} else {
		msgs = append(msgs, parts...)
	}
	d := &Digest{dest: &rules.Destination{Name: "d", DigestAfter: 10, DigestWindow: time.Minute}, notifications: 1234, recipients: 2345,
		byType: map[string]int{"Bounce · <x>": 3}, byDomain: map[string]int{"example.com": 2}, byRule: map[string]int{"r&r": 1},
		addresses: []string{"a@example.com", "<b>@example.com"}}
	msgs = append(msgs, d.Message(), Message{Text: "t"}, Message{})

	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", " ", "<", ">", "&", `"`, `\`, "/", "\n", "\t", "\x00", "\x1f", "\x7f", "\b", "\f", "\r",
		"é", "日本", "🙂", "\u2028", "\u2029", "\ufeff", "\u202e", "\ufffd", "`", "*", "_", "~", "|"}
	text := func() string {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 200 {
		msgs = append(msgs, Message{Text: text(), Blocks: []slack.Block{
			slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, text(), false, false)),
			slack.NewContextBlock("", mrkdwn(text()), mrkdwn(text())),
			slack.NewSectionBlock(mrkdwn(text()), []*slack.TextBlockObject{mrkdwn(text())}, nil),
			slack.NewDividerBlock(),
			slack.NewSectionBlock(nil, nil, nil),
		}})
	}
	emoji := true
	msgs = append(msgs, Message{Text: "odd blocks", Blocks: []slack.Block{
		&slack.HeaderBlock{Type: slack.MBTHeader, Text: &slack.TextBlockObject{Type: "plain_text", Text: "h<>", Emoji: &emoji}, BlockID: "b1", Level: 2},
		&slack.HeaderBlock{Type: slack.MBTHeader},
		slack.NewContextBlock("b2", slack.NewImageBlockElement("https://x.example/?a=1&b=2", "alt <x>"), mrkdwn("m")),
		&slack.ContextBlock{Type: slack.MBTContext},
		&slack.SectionBlock{Type: slack.MBTSection, Text: mrkdwn("t"), BlockID: "b3", Fields: []*slack.TextBlockObject{nil, mrkdwn("f")},
			Accessory: slack.NewAccessory(slack.NewImageBlockElement("https://x.example/i.png", "alt")), Expand: true},
		&slack.DividerBlock{Type: slack.MBTDivider, BlockID: "b4"},
		slack.NewImageBlock("https://x.example/i.png", "alt & <more>", "b5", nil),
		(*slack.SectionBlock)(nil),
		nil,
	}})
	return msgs
}

// TestPayloadsAsEncodingJSON checks that marshalPayload writes, in one
// pass, the bytes slack-go's types wrote with encoding/json, HTML escaping
// undone: for the webhook and the chat.postMessage bodies of every shape
// of message, escapes included.
func TestPayloadsAsEncodingJSON(t *testing.T) {
	for i, m := range payloadMessages(t) {
		want := referencePayload(t, WebhookPayload(m))
		if got := WebhookJSON(m); !bytes.Equal(got, want) {
			t.Errorf("message %d: webhook payload\n got %s\nwant %s", i, got, want)
		}
		if got := marshalPayload(WebhookPayload(m)); !bytes.Equal(got, want) {
			t.Errorf("message %d: webhook payload by reflection\n got %s\nwant %s", i, got, want)
		}
		blocks := m.Blocks
		if blocks == nil {
			blocks = []slack.Block{}
		}
		want = referencePayload(t, postMessage{Channel: "C0123456789", Text: m.Text, Blocks: blocks})
		if got := PostMessagePayload("C0123456789", m); !bytes.Equal(got, want) {
			t.Errorf("message %d: chat.postMessage payload\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestWebhookBodyAsSlackGo checks the webhook body written member by
// member against slack-go's, with every member of a WebhookMessage set
// and with none.
func TestWebhookBodyAsSlackGo(t *testing.T) {
	on := true
	full := &slack.WebhookMessage{Username: "u<>", IconEmoji: ":x:", IconURL: "https://x.example/?a&b", Channel: "#c",
		ThreadTimestamp: "1.2", Text: "t\u2028", Attachments: []slack.Attachment{{Text: "a<b>"}}, Parse: "full",
		Blocks: &slack.Blocks{BlockSet: payloadMessages(t)[0].Blocks}, ResponseType: "in_channel", ReplaceOriginal: true,
		DeleteOriginal: true, ReplyBroadcast: true, UnfurlLinks: &on, UnfurlMedia: &on}
	for _, m := range []*slack.WebhookMessage{full, {}, {Blocks: &slack.Blocks{}}} {
		if got, want := marshalPayload(webhookBody{m}), referencePayload(t, m); !bytes.Equal(got, want) {
			t.Errorf("webhook body\n got %s\nwant %s", got, want)
		}
	}
}

// TestPayloadsArray checks the payload of a notify that takes several
// messages: a JSON array of the bodies, each as it is.
func TestPayloadsArray(t *testing.T) {
	msgs := payloadMessages(t)[:3]
	n := DryRun(webhookJSON{})
	parts := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		parts[i] = n.Payload(m)
	}
	if got, want := payloads(n, msgs), referencePayload(t, parts); !bytes.Equal(got, want) {
		t.Errorf("payloads\n got %s\nwant %s", got, want)
	}
	if got, want := payloads(n, msgs[:1]), n.Payload(msgs[0]); !bytes.Equal(got, want) {
		t.Errorf("one message's payload\n got %s\nwant %s", got, want)
	}
}

func BenchmarkPayload(b *testing.B) {
	m := BuildMessages(hostileNotice())[0]
	for b.Loop() {
		WebhookJSON(m)
	}
}

// webhookJSON is a Notifier whose payloads are webhook bodies.
type webhookJSON struct{ Notifier }

// Payload implements Notifier.
func (webhookJSON) Payload(m Message) []byte { return WebhookJSON(m) }
