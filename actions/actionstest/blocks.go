package actionstest

import (
	"fmt"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Slack's Block Kit limits for messages, as [CheckBlocks] enforces them.
// Lengths count characters (Unicode code points) after Slack's own escaping
// (&amp; &lt; &gt;), that is, of the text as sent.
const (
	// MaxBlocks is the most blocks one message may carry.
	MaxBlocks = 50
	// MaxSectionText is the longest section text.
	MaxSectionText = 3000
	// MaxSectionFields is the most fields one section may carry.
	MaxSectionFields = 10
	// MaxFieldText is the longest section field text.
	MaxFieldText = 2000
	// MaxHeaderText is the longest header text.
	MaxHeaderText = 150
	// MaxContextElements is the most elements one context block may carry.
	MaxContextElements = 10
	// MaxActionsElements is the most elements one actions block may carry.
	MaxActionsElements = 25
	// MaxBlockID is the longest block_id.
	MaxBlockID = 255
	// MaxMarkdownText is the longest text of all markdown blocks of a
	// message together.
	MaxMarkdownText = 12000
)

// blockFields is the part of a block CheckBlocks looks at.
type blockFields struct {
	Type      *string          `json:"type"`
	BlockID   string           `json:"block_id"`
	Text      jsontext.Value   `json:"text"`
	Fields    []jsontext.Value `json:"fields"`
	Elements  []jsontext.Value `json:"elements"`
	ImageURL  string           `json:"image_url"`
	SlackFile jsontext.Value   `json:"slack_file"`
	AltText   *string          `json:"alt_text"`
}

// textObject is a Block Kit composition text object.
type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// CheckBlocks checks a message's blocks array (as JSON) against Slack's
// Block Kit limits for messages (MaxBlocks and the rest) and the shape
// Slack insists on: every block has a type, text objects are plain_text or
// mrkdwn and not empty, a header's text is plain_text. It returns one
// problem per line in Slack's style, "must be less than 3001 characters
// [json-pointer:/blocks/2/text/text]", or nil when Slack would accept the
// blocks. The fakes reject a message with problems as invalid_blocks.
// Block types it does not know in detail (rich_text, input, video, …) are
// accepted as long as they have a type.
func CheckBlocks(blocks []byte) []string {
	var list []jsontext.Value
	if err := json.Unmarshal(blocks, &list); err != nil {
		return []string{"must be an array of blocks [json-pointer:/blocks]"}
	}
	var c blockChecker
	if len(list) > MaxBlocks {
		c.add("/blocks", "must be less than %d items", MaxBlocks+1)
	}
	markdown := 0
	for i, raw := range list {
		ptr := fmt.Sprintf("/blocks/%d", i)
		var b blockFields
		if err := json.Unmarshal(raw, &b); err != nil {
			c.add(ptr, "must be an object")
			continue
		}
		if b.Type == nil || *b.Type == "" {
			c.add(ptr, "missing required field: type")
			continue
		}
		if n := utf8.RuneCountInString(b.BlockID); n > MaxBlockID {
			c.add(ptr+"/block_id", "must be less than %d characters", MaxBlockID+1)
		}
		switch *b.Type {
		case "section":
			if b.Text == nil && b.Fields == nil {
				c.add(ptr, "must provide either text or fields")
			}
			if b.Text != nil {
				c.text(ptr+"/text", b.Text, MaxSectionText, false)
			}
			if len(b.Fields) > MaxSectionFields {
				c.add(ptr+"/fields", "must be less than %d items", MaxSectionFields+1)
			}
			for j, f := range b.Fields {
				c.text(fmt.Sprintf("%s/fields/%d", ptr, j), f, MaxFieldText, false)
			}
		case "header":
			if b.Text == nil {
				c.add(ptr+"/text", "missing required field: text")
				break
			}
			c.text(ptr+"/text", b.Text, MaxHeaderText, true)
		case "context":
			if len(b.Elements) == 0 {
				c.add(ptr+"/elements", "must provide at least 1 item")
			}
			if len(b.Elements) > MaxContextElements {
				c.add(ptr+"/elements", "must be less than %d items", MaxContextElements+1)
			}
			for j, e := range b.Elements {
				var o struct{ Type string }
				if json.Unmarshal(e, &o) == nil && (o.Type == "plain_text" || o.Type == "mrkdwn") {
					c.text(fmt.Sprintf("%s/elements/%d", ptr, j), e, MaxSectionText, false)
				}
			}
		case "actions":
			if len(b.Elements) == 0 {
				c.add(ptr+"/elements", "must provide at least 1 item")
			}
			if len(b.Elements) > MaxActionsElements {
				c.add(ptr+"/elements", "must be less than %d items", MaxActionsElements+1)
			}
		case "image":
			if b.ImageURL == "" && b.SlackFile == nil {
				c.add(ptr, "must provide either image_url or slack_file")
			}
			if b.AltText == nil || *b.AltText == "" {
				c.add(ptr+"/alt_text", "missing required field: alt_text")
			} else if utf8.RuneCountInString(*b.AltText) > 2000 {
				c.add(ptr+"/alt_text", "must be less than 2001 characters")
			}
		case "markdown":
			var s string
			if err := json.Unmarshal(b.Text, &s); err != nil || s == "" {
				c.add(ptr+"/text", "must be a non-empty string")
				break
			}
			markdown += utf8.RuneCountInString(s)
			if markdown > MaxMarkdownText {
				c.add(ptr+"/text", "markdown blocks must be less than %d characters in total", MaxMarkdownText+1)
			}
		case "divider", "rich_text", "input", "file", "video", "table", "context_actions":
		default:
			c.add(ptr+"/type", "unsupported block type %q", *b.Type)
		}
	}
	return c.problems
}

// blockChecker collects CheckBlocks' problems.
type blockChecker struct{ problems []string }

// add records a problem at the JSON pointer ptr.
func (c *blockChecker) add(ptr, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...)+" [json-pointer:"+ptr+"]")
}

// text checks a text object at ptr: its type, and 1 to limit characters.
func (c *blockChecker) text(ptr string, raw jsontext.Value, limit int, plainOnly bool) {
	var t textObject
	if err := json.Unmarshal(raw, &t); err != nil {
		c.add(ptr, "must be a text object")
		return
	}
	switch {
	case t.Type == "plain_text":
	case t.Type == "mrkdwn" && !plainOnly:
	case plainOnly:
		c.add(ptr+"/type", "must be plain_text")
	default:
		c.add(ptr+"/type", "must be plain_text or mrkdwn")
	}
	switch n := utf8.RuneCountInString(t.Text); {
	case n == 0:
		c.add(ptr+"/text", "must be more than 0 characters")
	case n > limit:
		c.add(ptr+"/text", "must be less than %d characters", limit+1)
	}
}
