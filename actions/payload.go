package actions

import (
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
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
	ThreadTS    string        `json:"thread_ts,omitempty"`
	Text        string        `json:"text"`
	Blocks      []slack.Block `json:"blocks"`
	UnfurlLinks bool          `json:"unfurl_links"`
	UnfurlMedia bool          `json:"unfurl_media"`
}

// MarshalJSONTo writes the body member by member, as its tags say.
func (p postMessage) MarshalJSONTo(enc *jsontext.Encoder) error {
	w := tokens{enc: enc}
	w.tok(jsontext.BeginObject)
	w.str("channel", p.Channel)
	w.optStr("thread_ts", p.ThreadTS)
	w.str("text", p.Text)
	w.tok(jsontext.String("blocks"))
	w.blocks(p.Blocks)
	w.bool("unfurl_links", p.UnfurlLinks)
	w.bool("unfurl_media", p.UnfurlMedia)
	w.tok(jsontext.EndObject)
	return w.err
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
	return marshalPayload(postMessage{Channel: channel, ThreadTS: m.ThreadTS, Text: m.Text, Blocks: blocks})
}

// webhookBody is the body of an incoming-webhook post, as slack-go
// marshals a WebhookMessage.
type webhookBody struct{ *slack.WebhookMessage }

// webhookPayload is the JSON body of the incoming-webhook post of m:
// what a dry run shows as the payload of a webhook destination, written
// as PostMessagePayload writes its body.
// WebhookJSON is the exact body an incoming webhook is sent for m.
func WebhookJSON(m Message) []byte { return marshalPayload(webhookBody{WebhookPayload(m)}) }

// MarshalJSONTo writes the message member by member, in the order and
// with the omissions of slack-go's tags.
func (b webhookBody) MarshalJSONTo(enc *jsontext.Encoder) error {
	m := b.WebhookMessage
	w := tokens{enc: enc}
	w.tok(jsontext.BeginObject)
	w.optStr("username", m.Username)
	w.optStr("icon_emoji", m.IconEmoji)
	w.optStr("icon_url", m.IconURL)
	w.optStr("channel", m.Channel)
	w.optStr("thread_ts", m.ThreadTimestamp)
	w.optStr("text", m.Text)
	if len(m.Attachments) > 0 {
		w.tok(jsontext.String("attachments"))
		w.any(m.Attachments)
	}
	w.optStr("parse", m.Parse)
	if m.Blocks != nil {
		w.tok(jsontext.String("blocks"))
		w.blocks(m.Blocks.BlockSet)
	}
	w.optStr("response_type", m.ResponseType)
	w.bool("replace_original", m.ReplaceOriginal)
	w.bool("delete_original", m.DeleteOriginal)
	if m.ReplyBroadcast {
		w.bool("reply_broadcast", true)
	}
	if m.UnfurlLinks != nil {
		w.bool("unfurl_links", *m.UnfurlLinks)
	}
	if m.UnfurlMedia != nil {
		w.bool("unfurl_media", *m.UnfurlMedia)
	}
	w.tok(jsontext.EndObject)
	return w.err
}

// payloadOptions marshal slack-go's Block Kit types as slack-go does with
// encoding/json, less its HTML escaping (so that a payload reads as Slack
// reads it), in one pass. The bodies and the blocks sesrouter builds are
// written token by token (postMessage, webhookBody, tokens.blocks), as
// slack-go's tags say; anything else by reflection, as tagged for
// encoding/json (omitempty on a bool omits false, a nil slice is null,
// U+2028 and U+2029 are escaped), the two types that marshal themselves
// with encoding/json (Blocks, ContextElements) marshalled here instead,
// rather than each marshalled by encoding/json and then checked and
// copied again.
var payloadOptions = json.JoinOptions(
	jsonv1.OmitEmptyWithLegacySemantics(true),
	json.FormatNilSliceAsNull(true),
	json.FormatNilMapAsNull(true),
	jsontext.EscapeForJS(true),
	jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true), // the names are slack-go's, each once
	json.WithMarshalers(json.JoinMarshalers(
		json.MarshalToFunc(func(enc *jsontext.Encoder, b slack.Blocks) error {
			w := tokens{enc: enc}
			w.blocks(b.BlockSet)
			return w.err
		}),
		json.MarshalToFunc(func(enc *jsontext.Encoder, e slack.ContextElements) error {
			w := tokens{enc: enc}
			w.elements(e.Elements)
			return w.err
		}),
	)),
)

// tokens writes JSON tokens, keeping the first error.
type tokens struct {
	enc *jsontext.Encoder
	err error
}

func (w *tokens) tok(t jsontext.Token) {
	if w.err == nil {
		w.err = w.enc.WriteToken(t)
	}
}

// str writes the member name: value.
func (w *tokens) str(name, value string) {
	w.tok(jsontext.String(name))
	w.tok(jsontext.String(value))
}

// optStr writes the member name: value unless value is empty.
func (w *tokens) optStr(name, value string) {
	if value != "" {
		w.str(name, value)
	}
}

// bool writes the member name: value.
func (w *tokens) bool(name string, value bool) {
	w.tok(jsontext.String(name))
	w.tok(jsontext.Bool(value))
}

// blocks writes blocks as slack-go's types marshal themselves: the
// kinds of block sesrouter builds (header, context, section, divider)
// member by member, in the order and with the omissions of their struct
// tags, any other kind by reflection.
func (w *tokens) blocks(blocks []slack.Block) {
	if blocks == nil {
		w.tok(jsontext.Null)
		return
	}
	w.tok(jsontext.BeginArray)
	for _, b := range blocks {
		w.block(b)
	}
	w.tok(jsontext.EndArray)
}

// any writes v by reflection.
func (w *tokens) any(v any) {
	if w.err == nil {
		w.err = json.MarshalEncode(w.enc, v)
	}
}

func (w *tokens) block(b slack.Block) {
	switch b := b.(type) {
	case *slack.HeaderBlock:
		if b == nil {
			break
		}
		w.tok(jsontext.BeginObject)
		w.str("type", string(b.Type))
		if b.Text != nil {
			w.tok(jsontext.String("text"))
			w.text(b.Text)
		}
		w.optStr("block_id", b.BlockID)
		if b.Level != 0 {
			w.tok(jsontext.String("level"))
			w.tok(jsontext.Int(int64(b.Level)))
		}
		w.tok(jsontext.EndObject)
		return
	case *slack.ContextBlock:
		if b == nil {
			break
		}
		w.tok(jsontext.BeginObject)
		w.str("type", string(b.Type))
		w.optStr("block_id", b.BlockID)
		w.tok(jsontext.String("elements"))
		w.elements(b.ContextElements.Elements)
		w.tok(jsontext.EndObject)
		return
	case *slack.SectionBlock:
		if b == nil {
			break
		}
		w.tok(jsontext.BeginObject)
		w.str("type", string(b.Type))
		if b.Text != nil {
			w.tok(jsontext.String("text"))
			w.text(b.Text)
		}
		w.optStr("block_id", b.BlockID)
		if len(b.Fields) > 0 {
			w.tok(jsontext.String("fields"))
			w.tok(jsontext.BeginArray)
			for _, f := range b.Fields {
				w.text(f)
			}
			w.tok(jsontext.EndArray)
		}
		if b.Accessory != nil {
			w.tok(jsontext.String("accessory"))
			w.any(b.Accessory)
		}
		if b.Expand {
			w.tok(jsontext.String("expand"))
			w.tok(jsontext.True)
		}
		w.tok(jsontext.EndObject)
		return
	case *slack.DividerBlock:
		if b == nil {
			break
		}
		w.tok(jsontext.BeginObject)
		w.str("type", string(b.Type))
		w.optStr("block_id", b.BlockID)
		w.tok(jsontext.EndObject)
		return
	}
	w.any(b)
}

// elements writes a context block's elements.
func (w *tokens) elements(els []slack.MixedElement) {
	if els == nil {
		w.tok(jsontext.Null)
		return
	}
	w.tok(jsontext.BeginArray)
	for _, el := range els {
		if t, ok := el.(*slack.TextBlockObject); ok && t != nil {
			w.text(t)
		} else {
			w.any(el)
		}
	}
	w.tok(jsontext.EndArray)
}

// text writes a text object (null for none).
func (w *tokens) text(t *slack.TextBlockObject) {
	if t == nil {
		w.tok(jsontext.Null)
		return
	}
	w.tok(jsontext.BeginObject)
	w.str("type", t.Type)
	w.str("text", t.Text)
	if t.Emoji != nil {
		w.tok(jsontext.String("emoji"))
		w.tok(jsontext.Bool(*t.Emoji))
	}
	if t.Verbatim {
		w.tok(jsontext.String("verbatim"))
		w.tok(jsontext.True)
	}
	w.tok(jsontext.EndObject)
}

// marshalPayload is v, a Slack request body, as JSON that reads as Slack
// reads it: compact, <, > and & as they are.
func marshalPayload(v any) []byte {
	body, err := json.Marshal(v, payloadOptions)
	if err != nil {
		// Only slack-go's block types, which always marshal.
		panic("actions: marshalling a Slack message: " + err.Error())
	}
	return body
}

// MsgOptions returns the options that post m with slack-go's
// Client.PostMessage: its text (already escaped, so not escaped again),
// its blocks, link and media unfurling off, and its thread when it has
// one.
func (m Message) MsgOptions() []slack.MsgOption {
	opts := []slack.MsgOption{
		slack.MsgOptionText(m.Text, false),
		slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
	if m.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
	}
	return opts
}
