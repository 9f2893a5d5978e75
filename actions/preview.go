package actions

import (
	"html"
	"strings"

	"github.com/slack-go/slack"
)

// BlockKind is the kind of a block as Slack lays it out: its look.
type BlockKind string

// The kinds of block a message shows.
const (
	BlockHeader  BlockKind = "header"  // large bold plain text
	BlockContext BlockKind = "context" // a small grey line of elements
	BlockSection BlockKind = "section" // the body text
	BlockDivider BlockKind = "divider" // a rule
	BlockButton  BlockKind = "button"  // a button: its label
)

// RenderedBlock is one block of a message as Slack lays it out.
type RenderedBlock struct {
	Kind BlockKind
	// Texts are a header's plain text, a context's text elements, or a
	// section's text and then its fields, each as Slack's mrkdwn (entities
	// escaped), or a button's label (plain text); none for a divider.
	Texts []string
}

// Render lays out the blocks of m as Slack shows them, for people reading
// a dry run: the text preview (Preview) and the HTML page both show this.
// Blocks Slack shows nothing of (a header or a section without text) and
// blocks of kinds sesrouter does not post are left out.
func Render(m Message) []RenderedBlock {
	out := make([]RenderedBlock, 0, len(m.Blocks))
	for _, block := range m.Blocks {
		switch bl := block.(type) {
		case *slack.HeaderBlock:
			if bl.Text != nil {
				out = append(out, RenderedBlock{Kind: BlockHeader, Texts: []string{bl.Text.Text}})
			}
		case *slack.ContextBlock:
			var texts []string
			for _, el := range bl.ContextElements.Elements {
				if t, ok := el.(*slack.TextBlockObject); ok {
					texts = append(texts, t.Text)
				}
			}
			out = append(out, RenderedBlock{Kind: BlockContext, Texts: texts})
		case *slack.SectionBlock:
			var texts []string
			if bl.Text != nil {
				texts = append(texts, bl.Text.Text)
			}
			for _, f := range bl.Fields {
				texts = append(texts, f.Text)
			}
			if len(texts) > 0 {
				out = append(out, RenderedBlock{Kind: BlockSection, Texts: texts})
			}
			if a := bl.Accessory; a != nil && a.ButtonElement != nil && a.ButtonElement.Text != nil {
				out = append(out, RenderedBlock{Kind: BlockButton, Texts: []string{a.ButtonElement.Text.Text}})
			}
		case *slack.DividerBlock:
			out = append(out, RenderedBlock{Kind: BlockDivider})
		}
	}
	return out
}

// Preview renders a message as plain text, roughly as Slack shows it: the
// header, the context line, each section; entities unescaped. It is for
// people reading a dry run, not for Slack.
func Preview(m Message) string {
	var b strings.Builder
	for _, bl := range Render(m) {
		switch bl.Kind {
		case BlockHeader:
			b.WriteString(bl.Texts[0])
			b.WriteByte('\n')
		case BlockContext:
			for i, t := range bl.Texts {
				if i > 0 {
					b.WriteString(" | ")
				}
				b.WriteString(html.UnescapeString(t))
			}
			b.WriteByte('\n')
		case BlockSection:
			for _, t := range bl.Texts {
				b.WriteString(html.UnescapeString(t))
				b.WriteByte('\n')
			}
		case BlockDivider:
			b.WriteString("---\n")
		case BlockButton:
			b.WriteString("[" + bl.Texts[0] + "]\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
