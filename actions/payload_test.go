package actions

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// payloadMessages are messages to compare the hand-written payload JSON
// with encoding/json on: every block BuildMessages makes, and strings with
// every kind of character JSON escapes.
func payloadMessages() []Message {
	tricky := "a\"b\\c\b\f\n\r\t\x01\x1f<>&`é 😀 \u2028\u2029 \xff end"
	yes := true
	no := false
	return []Message{
		{},
		{Text: "plain", Blocks: []slack.Block{slack.NewDividerBlock()}},
		{Text: tricky, Blocks: []slack.Block{
			slack.NewHeaderBlock(&slack.TextBlockObject{Type: "plain_text", Text: tricky, Emoji: &no}),
			slack.NewContextBlock("", &slack.TextBlockObject{Type: "mrkdwn", Text: tricky, Verbatim: true},
				&slack.TextBlockObject{Type: "mrkdwn", Text: "x"}),
			slack.NewSectionBlock(&slack.TextBlockObject{Type: "mrkdwn", Text: tricky, Verbatim: true},
				[]*slack.TextBlockObject{{Type: "mrkdwn", Text: "f1"}, {Type: "plain_text", Text: tricky, Emoji: &yes}}, nil),
			slack.NewSectionBlock(nil, []*slack.TextBlockObject{{Type: "mrkdwn", Text: "only fields"}}, nil),
		}},
	}
}

// TestPayloadJSONMatchesEncodingJSON holds the hand-written payloads to
// the bytes encoding/json gives (with <, > and & unescaped), for the
// messages above and for BuildMessages' own.
func TestPayloadJSONMatchesEncodingJSON(t *testing.T) {
	for i, m := range payloadMessages() {
		want, err := json.Marshal(WebhookPayload(m))
		if err != nil {
			t.Fatal(err)
		}
		if got := webhookJSON(m); !bytes.Equal(got, unescapeHTML(want)) {
			t.Errorf("message %d, webhook:\ngot  %s\nwant %s", i, got, unescapeHTML(want))
		}
		blocks := m.Blocks
		if blocks == nil {
			blocks = []slack.Block{}
		}
		want, err = json.Marshal(postMessage{Channel: "C0123", Text: m.Text, Blocks: blocks})
		if err != nil {
			t.Fatal(err)
		}
		if got := postMessageJSON("C0123", m); !bytes.Equal(got, unescapeHTML(want)) {
			t.Errorf("message %d, chat.postMessage:\ngot  %s\nwant %s", i, got, unescapeHTML(want))
		}
	}
}

// TestPayloadJSONFallsBackForOtherBlocks checks that a block the
// hand-written encoder does not know still marshals, through
// encoding/json.
func TestPayloadJSONFallsBackForOtherBlocks(t *testing.T) {
	m := Message{Text: "t", Blocks: []slack.Block{slack.NewImageBlock("https://example.com/i.png", "alt", "", nil)}}
	got := webhookJSON(m)
	if !json.Valid(got) || !strings.Contains(string(got), `"image_url":"https://example.com/i.png"`) {
		t.Errorf("fallback payload %s", got)
	}
}
