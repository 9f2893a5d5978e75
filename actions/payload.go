package actions

import (
	"bytes"
	"encoding/json"

	"github.com/slack-go/slack"
)

// WebhookPayload returns m as the body of an incoming-webhook post, with
// link and media unfurling off.
func WebhookPayload(m Message) *slack.WebhookMessage {
	off := false
	return &slack.WebhookMessage{
		Text:        m.Text,
		Blocks:      &slack.Blocks{BlockSet: m.Blocks},
		UnfurlLinks: &off,
		UnfurlMedia: &off,
	}
}

// postMessage is the JSON body of a chat.postMessage call.
type postMessage struct {
	Channel     string        `json:"channel"`
	Text        string        `json:"text"`
	Blocks      []slack.Block `json:"blocks"`
	UnfurlLinks bool          `json:"unfurl_links"`
	UnfurlMedia bool          `json:"unfurl_media"`
}

// PostMessagePayload returns the JSON body of the chat.postMessage call
// that posts m to channel, with link and media unfurling off: what a dry
// run shows as the payload of a bot-token destination. <, > and & are
// written as they are, not as \u003c, \u003e and \u0026, so that the
// payload reads as Slack reads it.
func PostMessagePayload(channel string, m Message) []byte {
	blocks := m.Blocks
	if blocks == nil {
		blocks = []slack.Block{}
	}
	return marshalPayload(postMessage{Channel: channel, Text: m.Text, Blocks: blocks})
}

// marshalPayload is v, a Slack request body, as JSON that reads as Slack
// reads it (see unescapeHTML).
func marshalPayload(v any) []byte {
	body, err := json.Marshal(v)
	if err != nil {
		// Only slack-go's block types, which always marshal.
		panic("actions: marshalling a Slack message: " + err.Error())
	}
	return unescapeHTML(body)
}

// unescapeHTML undoes encoding/json's HTML escaping in the JSON document
// b: \u003c, \u003e and \u0026 become <, > and &. (An Encoder with
// SetEscapeHTML(false) does not reach the blocks slack-go marshals
// itself.) Every backslash in JSON text starts an escape of two or six
// characters, so reading escape by escape never mistakes an escaped
// backslash followed by "u003c" for an escape of <.
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

// MsgOptions returns the options that post m with slack-go's
// Client.PostMessage: its text (already escaped, so not escaped again),
// its blocks, and link and media unfurling off.
func (m Message) MsgOptions() []slack.MsgOption {
	return []slack.MsgOption{
		slack.MsgOptionText(m.Text, false),
		slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
}
