package actionstest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/slack-go/slack"
)

func TestCheckBlocks(t *testing.T) {
	text := func(typ string, n int) *slack.TextBlockObject {
		return slack.NewTextBlockObject(typ, strings.Repeat("é", n), false, false)
	}
	fields := func(n, size int) []*slack.TextBlockObject {
		fs := make([]*slack.TextBlockObject, n)
		for i := range fs {
			fs[i] = text(slack.MarkdownType, size)
		}
		return fs
	}
	tests := []struct {
		name   string
		blocks []slack.Block
		want   []string
	}{
		{"50 blocks", dividers(50), nil},
		{"51 blocks", dividers(51), []string{"must be less than 51 items [json-pointer:/blocks]"}},
		{"header at limit", []slack.Block{slack.NewHeaderBlock(text(slack.PlainTextType, 150))}, nil},
		{"header too long", []slack.Block{slack.NewHeaderBlock(text(slack.PlainTextType, 151))},
			[]string{"must be less than 151 characters [json-pointer:/blocks/0/text/text]"}},
		{"header mrkdwn", []slack.Block{slack.NewHeaderBlock(text(slack.MarkdownType, 5))},
			[]string{"must be plain_text [json-pointer:/blocks/0/text/type]"}},
		{"section at limit", []slack.Block{slack.NewSectionBlock(text(slack.MarkdownType, 3000), fields(10, 2000), nil)}, nil},
		{"section text too long", []slack.Block{slack.NewDividerBlock(), slack.NewSectionBlock(text(slack.MarkdownType, 3001), nil, nil)},
			[]string{"must be less than 3001 characters [json-pointer:/blocks/1/text/text]"}},
		{"section empty text", []slack.Block{slack.NewSectionBlock(text(slack.MarkdownType, 0), nil, nil)},
			[]string{"must be more than 0 characters [json-pointer:/blocks/0/text/text]"}},
		{"11 fields", []slack.Block{slack.NewSectionBlock(nil, fields(11, 1), nil)},
			[]string{"must be less than 11 items [json-pointer:/blocks/0/fields]"}},
		{"field too long", []slack.Block{slack.NewSectionBlock(nil, fields(2, 2001)[1:], nil)},
			[]string{"must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"}},
		{"context", []slack.Block{slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "ok", false, false))}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.blocks)
			if err != nil {
				t.Fatal(err)
			}
			got := actionstest.CheckBlocks(raw)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("CheckBlocks =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCheckBlocksRaw(t *testing.T) {
	tests := []struct{ name, blocks, want string }{
		{"not an array", `{}`, "must be an array of blocks [json-pointer:/blocks]"},
		{"no type", `[{"text":"x"}]`, "missing required field: type [json-pointer:/blocks/0]"},
		{"unknown type", `[{"type":"banner"}]`, `unsupported block type "banner" [json-pointer:/blocks/0/type]`},
		{"bad text type", `[{"type":"section","text":{"type":"html","text":"x"}}]`, "must be plain_text or mrkdwn [json-pointer:/blocks/0/text/type]"},
		{"no text nor fields", `[{"type":"section"}]`, "must provide either text or fields [json-pointer:/blocks/0]"},
		{"long block_id", `[{"type":"divider","block_id":"` + strings.Repeat("b", 256) + `"}]`, "must be less than 256 characters [json-pointer:/blocks/0/block_id]"},
		{"markdown", `[{"type":"markdown","text":"**hi**"}]`, ""},
		{"rich_text", `[{"type":"rich_text","elements":[]}]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(actionstest.CheckBlocks(json.RawMessage(tt.blocks)), "\n"); got != tt.want {
				t.Errorf("CheckBlocks(%s) = %q, want %q", tt.blocks, got, tt.want)
			}
		})
	}
}
