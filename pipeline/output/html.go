package output

import (
	"bufio"
	"html"
	"html/template"
	"strings"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// htmlWriter is route's HTML output: one self-contained page (no script, no
// external asset) that shows every message a dry run renders as Slack
// lays it out, with the rules that decided beside each. Everything that
// comes from an event is escaped.
type htmlWriter struct {
	w      *bufio.Writer
	rules  string
	header bool
}

// pageCard is one input on the page.
type pageCard struct {
	Input, Title, Note string
	Recipients         []pageRecipient
	Messages           []pageMessage
}

type pageRecipient struct {
	Address, Rules, Actions string
}

// pageMessage is one Slack message, its blocks rendered.
type pageMessage struct {
	Destination, Outcome string
	// Thread says that the message goes in its destination's storm
	// thread: it is shown indented, under the storm's root.
	Thread bool
	Blocks []pageBlock
}

type pageBlock struct {
	Kind actions.BlockKind
	HTML template.HTML
}

// Job shows one handled input: its recipients, what the rules decided,
// and every message rendered for it.
func (p *htmlWriter) Job(j *pipeline.Job) error {
	v := j.View(false)
	c := pageCard{Input: v.Input}
	switch {
	case v.Unreadable:
		c.Title, c.Note = "Unreadable", v.Error
	case v.Event == nil:
		c.Title, c.Note = "Skipped", v.Skipped
	default:
		c.Title = strings.Join(v.Event.Title(), " ")
		for i := range v.Recipients {
			r := &v.Recipients[i]
			pr := pageRecipient{Address: r.Address, Rules: "no rule matched", Actions: "no action"}
			switch {
			case r.Error != "":
				pr.Rules = r.Error
			case len(r.Rules) > 0:
				pr.Rules = strings.Join(r.Rules, " + ")
			}
			if len(r.Actions) > 0 {
				pr.Actions = strings.Join(r.Actions, ", ")
			}
			c.Recipients = append(c.Recipients, pr)
		}
		for i := range v.Results {
			res := &v.Results[i]
			if res.Outcome == actions.OutcomeDigested {
				c.Messages = append(c.Messages, pageMessage{Destination: res.Destination, Outcome: string(res.Outcome),
					Blocks: []pageBlock{{actions.BlockContext, "folded into the digest at the end of the run"}}})
			}
			for _, m := range res.Messages {
				c.Messages = append(c.Messages, renderMessage(res.Destination, string(res.Outcome), m))
			}
		}
	}
	return p.write(c)
}

// Digest shows a digest message at the end of the page.
func (p *htmlWriter) Digest(r storm.DigestResult) error {
	return p.write(pageCard{Input: "end of the run", Title: "Digest for " + r.Destination,
		Messages: []pageMessage{renderMessage(r.Destination, string(r.Outcome), r.Message)}})
}

func (p *htmlWriter) write(c pageCard) error {
	if !p.header {
		p.header = true
		if err := pageHead.Execute(p.w, p.rules); err != nil {
			return err
		}
	}
	return pageCardT.Execute(p.w, c)
}

// Close ends the page and writes what is buffered.
func (p *htmlWriter) Close() error {
	if !p.header {
		if err := pageHead.Execute(p.w, p.rules); err != nil {
			return err
		}
	}
	if _, err := p.w.WriteString("</main></body></html>\n"); err != nil {
		return err
	}
	return p.w.Flush()
}

// renderMessage renders m as Slack shows it (actions.Render), its
// mrkdwn as HTML.
func renderMessage(dest, outcome string, m actions.Message) pageMessage {
	pm := pageMessage{Destination: dest, Outcome: outcome, Thread: m.ThreadTS != ""}
	for _, b := range actions.Render(m) {
		var h string
		switch b.Kind {
		case actions.BlockHeader, actions.BlockButton:
			h = html.EscapeString(b.Texts[0])
		case actions.BlockContext, actions.BlockSection:
			sep := "<br>"
			if b.Kind == actions.BlockContext {
				sep = ` <span class="sep">·</span> `
			}
			parts := make([]string, len(b.Texts))
			for i, t := range b.Texts {
				parts[i] = string(mrkdwn(t))
			}
			h = strings.Join(parts, sep)
		}
		pm.Blocks = append(pm.Blocks, pageBlock{b.Kind, template.HTML(h)})
	}
	return pm
}

// mrkdwn renders Slack mrkdwn text as HTML, roughly as Slack does: *bold*,
// _italic_, ~strike~, `code`, line breaks, <!here> and the other
// mentions, <url|label> links. Every character of the text is escaped:
// what the text holds can never be markup.
func mrkdwn(s string) template.HTML {
	var b strings.Builder
	text := func(t string) { b.WriteString(inline(html.UnescapeString(t))) }
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			text(s)
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			text(s)
			break
		}
		text(s[:i])
		b.WriteString(token(s[i+1 : i+j]))
		s = s[i+j+1:]
	}
	return template.HTML(strings.ReplaceAll(b.String(), "\n", "<br>"))
}

// token renders a <…> token of mrkdwn: a mention or a link.
func token(t string) string {
	target, label, hasLabel := strings.Cut(t, "|")
	switch {
	case strings.HasPrefix(target, "!subteam^"):
		if !hasLabel {
			label = "@" + strings.TrimPrefix(target, "!subteam^")
		}
		return `<span class="mention">` + html.EscapeString(label) + `</span>`
	case strings.HasPrefix(target, "!"):
		return `<span class="mention">@` + html.EscapeString(strings.TrimPrefix(target, "!")) + `</span>`
	case strings.HasPrefix(target, "@"):
		return `<span class="mention">` + html.EscapeString(target) + `</span>`
	}
	if !hasLabel {
		label = target
	}
	if strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "mailto:") {
		return `<a href="` + html.EscapeString(html.UnescapeString(target)) + `">` + html.EscapeString(html.UnescapeString(label)) + `</a>`
	}
	return html.EscapeString("<" + t + ">")
}

// inline renders the inline styles of a run of text with no <…> token:
// `code` first (nothing inside it is styled), then *bold*, _italic_ and
// ~strike~ on whole words.
func inline(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '`')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(s[i+1:], '`')
		}
		if i < 0 || j < 0 {
			b.WriteString(styled(s))
			break
		}
		b.WriteString(styled(s[:i]))
		b.WriteString("<code>" + html.EscapeString(s[i+1:i+1+j]) + "</code>")
		s = s[i+j+2:]
	}
	return b.String()
}

// styled renders *bold*, _italic_ and ~strike~ spans; the rest escaped.
func styled(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		k := strings.IndexAny(s, "*_~")
		if k < 0 {
			b.WriteString(html.EscapeString(s))
			break
		}
		mark := s[k]
		end := strings.IndexByte(s[k+1:], mark)
		if end <= 0 || (k > 0 && isWordByte(s[k-1])) {
			b.WriteString(html.EscapeString(s[:k+1]))
			s = s[k+1:]
			continue
		}
		tag := map[byte]string{'*': "b", '_': "i", '~': "s"}[mark]
		b.WriteString(html.EscapeString(s[:k]))
		b.WriteString("<" + tag + ">" + html.EscapeString(s[k+1:k+1+end]) + "</" + tag + ">")
		s = s[k+end+2:]
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

var (
	pageHead = template.Must(template.New("head").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sesrouter dry run: {{.}}</title>
<style>
body{font-family:-apple-system,"Segoe UI",Lato,Helvetica,Arial,sans-serif;background:#f4f4f4;color:#1d1c1d;margin:0;padding:24px}
h1{font-size:18px;margin:0 0 16px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;margin:0 0 20px;padding:14px 18px;display:flex;gap:24px;flex-wrap:wrap}
.side{flex:0 0 280px;font-size:13px;color:#555}
.side .input{font-family:Menlo,Consolas,monospace;font-size:12px;color:#888;word-break:break-all}
.side .title{font-weight:700;color:#1d1c1d;margin:4px 0 8px}
.side ul{padding-left:16px;margin:4px 0}
.msgs{flex:1 1 420px;min-width:0}
.msg{border-left:4px solid #e01e5a;padding:6px 12px;margin:0 0 14px}
.msg .to{font-size:12px;color:#888;margin-bottom:4px}
.header{font-size:18px;font-weight:900;margin:4px 0}
.context{font-size:12px;color:#616061;margin:4px 0}
.section{font-size:15px;line-height:1.45;margin:6px 0;overflow-wrap:anywhere}
.divider{border-top:1px solid #ddd;margin:8px 0}
code{font-family:Monaco,Menlo,Consolas,monospace;font-size:12px;color:#e01e5a;background:#f7f7f9;border:1px solid #e8e8e8;border-radius:3px;padding:1px 3px}
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 2px}
.sep{color:#aaa}
.button{display:inline-block;font-size:13px;font-weight:700;border:1px solid #bbb;border-radius:4px;padding:3px 10px;margin:4px 0}
.thread{margin-left:28px;border-left-color:#bbb}
</style></head><body><main>
<h1>What sesrouter would post, by the rules in {{.}}</h1>
`))
	pageCardT = template.Must(template.New("card").Parse(`<section class="card">
<div class="side"><div class="input">{{.Input}}</div><div class="title">{{.Title}}</div>
{{- if .Note}}<p>{{.Note}}</p>{{end}}
{{- if .Recipients}}<ul>{{range .Recipients}}<li><code>{{.Address}}</code><br>{{.Rules}}: {{.Actions}}</li>{{end}}</ul>{{end}}
</div>
<div class="msgs">{{range .Messages}}<div class="msg{{if .Thread}} thread{{end}}"><div class="to">to {{.Destination}} · {{.Outcome}}{{if .Thread}} · in the storm's thread{{end}}</div>
{{- range .Blocks}}<div class="{{.Kind}}">{{.HTML}}</div>{{end}}</div>
{{else}}<p class="context">No message.</p>{{end}}</div>
</section>
`))
)
