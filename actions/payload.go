package actions

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// The dry run renders a Slack payload for every notify, so the payloads
// are written here directly instead of through encoding/json's reflection
// (three times faster, which keeps route -dry-run -format json fast). The
// bytes are exactly what json.Marshal gives, with <, > and & left as they
// are (see unescapeHTML); TestPayloadJSONMatchesEncodingJSON holds them to
// it. A block type BuildMessages does not make falls back to json.Marshal.

// webhookJSON is the JSON of WebhookPayload(m).
func webhookJSON(m Message) []byte {
	b := make([]byte, 0, 1024)
	b = append(b, '{')
	if m.Text != "" {
		b = append(b, `"text":`...)
		b = AppendJSONString(b, m.Text)
		b = append(b, ',')
	}
	b = append(b, `"blocks":`...)
	ok := true
	if m.Blocks == nil {
		b = append(b, "null"...) // as slack.Blocks marshals none
	} else {
		b, ok = appendBlocks(b, m.Blocks)
	}
	if !ok {
		return marshalFallback(WebhookPayload(m))
	}
	b = append(b, `,"replace_original":false,"delete_original":false,"unfurl_links":false,"unfurl_media":false}`...)
	return b
}

// postMessageJSON is the JSON of PostMessagePayload(channel, m).
func postMessageJSON(channel string, m Message) []byte {
	b := make([]byte, 0, 1024)
	b = append(b, `{"channel":`...)
	b = AppendJSONString(b, channel)
	b = append(b, `,"text":`...)
	b = AppendJSONString(b, m.Text)
	b = append(b, `,"blocks":`...)
	b, ok := appendBlocks(b, m.Blocks)
	if !ok {
		blocks := m.Blocks
		if blocks == nil {
			blocks = []slack.Block{}
		}
		return marshalFallback(postMessage{Channel: channel, Text: m.Text, Blocks: blocks})
	}
	b = append(b, `,"unfurl_links":false,"unfurl_media":false}`...)
	return b
}

func marshalFallback(v any) []byte {
	body, err := json.Marshal(v)
	if err != nil {
		panic("actions: marshalling a Slack message: " + err.Error())
	}
	return unescapeHTML(body)
}

// appendBlocks appends blocks as slack-go marshals them, or reports false
// for a block type it does not know.
func appendBlocks(b []byte, blocks []slack.Block) ([]byte, bool) {
	b = append(b, '[')
	for i, bl := range blocks {
		if i > 0 {
			b = append(b, ',')
		}
		switch bl := bl.(type) {
		case *slack.HeaderBlock:
			if bl.BlockID != "" || bl.Level != 0 {
				return b, false
			}
			b = append(b, `{"type":`...)
			b = AppendJSONString(b, string(bl.Type))
			if bl.Text != nil {
				b = append(b, `,"text":`...)
				b = appendTextObject(b, bl.Text)
			}
			b = append(b, '}')
		case *slack.SectionBlock:
			if bl.BlockID != "" || bl.Accessory != nil || bl.Expand {
				return b, false
			}
			b = append(b, `{"type":`...)
			b = AppendJSONString(b, string(bl.Type))
			if bl.Text != nil {
				b = append(b, `,"text":`...)
				b = appendTextObject(b, bl.Text)
			}
			if len(bl.Fields) > 0 {
				b = append(b, `,"fields":[`...)
				for j, f := range bl.Fields {
					if j > 0 {
						b = append(b, ',')
					}
					if f == nil {
						return b, false
					}
					b = appendTextObject(b, f)
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		case *slack.ContextBlock:
			if bl.BlockID != "" {
				return b, false
			}
			b = append(b, `{"type":`...)
			b = AppendJSONString(b, string(bl.Type))
			b = append(b, `,"elements":[`...)
			for j, el := range bl.ContextElements.Elements {
				t, ok := el.(*slack.TextBlockObject)
				if !ok || t == nil {
					return b, false
				}
				if j > 0 {
					b = append(b, ',')
				}
				b = appendTextObject(b, t)
			}
			b = append(b, "]}"...)
		case *slack.DividerBlock:
			if bl.BlockID != "" {
				return b, false
			}
			b = append(b, `{"type":`...)
			b = AppendJSONString(b, string(bl.Type))
			b = append(b, '}')
		default:
			return b, false
		}
	}
	return append(b, ']'), true
}

func appendTextObject(b []byte, t *slack.TextBlockObject) []byte {
	b = append(b, `{"type":`...)
	b = AppendJSONString(b, t.Type)
	b = append(b, `,"text":`...)
	b = AppendJSONString(b, t.Text)
	if t.Emoji != nil {
		b = append(b, `,"emoji":`...)
		b = strconv.AppendBool(b, *t.Emoji)
	}
	if t.Verbatim {
		b = append(b, `,"verbatim":true`...)
	}
	return append(b, '}')
}

// AppendJSONString appends s as encoding/json writes a string, except
// that <, > and & are not escaped (as with Encoder.SetEscapeHTML(false)).
// route's JSON output uses it too, so that payloads and lines read alike.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
