package actions

import (
	"html"
	"strings"

	"github.com/slack-go/slack"
)

// Preview renders a message as plain text, roughly as Slack shows it: the
// header, the context line, each section; entities unescaped. It is for
// people reading a dry run, not for Slack.
func Preview(m Message) string {
	var b strings.Builder
	for _, block := range m.Blocks {
		switch bl := block.(type) {
		case *slack.HeaderBlock:
			if bl.Text != nil {
				b.WriteString(bl.Text.Text)
				b.WriteByte('\n')
			}
		case *slack.ContextBlock:
			var parts []string
			for _, el := range bl.ContextElements.Elements {
				if t, ok := el.(*slack.TextBlockObject); ok {
					parts = append(parts, html.UnescapeString(t.Text))
				}
			}
			b.WriteString(strings.Join(parts, " | "))
			b.WriteByte('\n')
		case *slack.SectionBlock:
			if bl.Text != nil {
				b.WriteString(html.UnescapeString(bl.Text.Text))
				b.WriteByte('\n')
			}
			for _, f := range bl.Fields {
				b.WriteString(html.UnescapeString(f.Text))
				b.WriteByte('\n')
			}
		case *slack.DividerBlock:
			b.WriteString("---\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
