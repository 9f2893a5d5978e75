package actions

import (
	"reflect"
	"testing"

	"github.com/slack-go/slack"
)

// TestRender checks how a message is laid out for people: every block
// kind Slack shows, with its texts as they are (mrkdwn, entities
// escaped), and nothing of the blocks Slack shows nothing of.
func TestRender(t *testing.T) {
	m := Message{Text: "fallback", Blocks: []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Bounce · <x>", false, false)),
		slack.NewHeaderBlock(nil),
		slack.NewContextBlock("", mrkdwn("*From:* a &amp; b"), slack.NewImageBlockElement("https://x.example/i.png", "alt"), mrkdwn("`id`")),
		slack.NewContextBlock(""),
		slack.NewSectionBlock(mrkdwn("text &lt;1&gt;"), []*slack.TextBlockObject{mrkdwn("field")}, nil),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{mrkdwn("only a field")}, nil),
		slack.NewSectionBlock(nil, nil, nil),
		slack.NewDividerBlock(),
		slack.NewImageBlock("https://x.example/i.png", "alt", "", nil),
	}}
	want := []RenderedBlock{
		{Kind: BlockHeader, Texts: []string{"Bounce · <x>"}},
		{Kind: BlockContext, Texts: []string{"*From:* a &amp; b", "`id`"}},
		{Kind: BlockContext},
		{Kind: BlockSection, Texts: []string{"text &lt;1&gt;", "field"}},
		{Kind: BlockSection, Texts: []string{"only a field"}},
		{Kind: BlockDivider},
	}
	if got := Render(m); !reflect.DeepEqual(got, want) {
		t.Errorf("Render:\n got %#v\nwant %#v", got, want)
	}
	const preview = "Bounce · <x>\n*From:* a & b | `id`\n\ntext <1>\nfield\nonly a field\n---"
	if got := Preview(m); got != preview {
		t.Errorf("Preview:\n got %q\nwant %q", got, preview)
	}
}
