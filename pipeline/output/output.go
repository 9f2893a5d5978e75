// Package output writes what route and sweep did, item by item: each
// handled item's one view (pipeline.View, built once from the finished
// job) printed by one of three writers, which derive nothing of their
// own: JSON (one line per input, as docs/commands.md shows it), text
// (for people) and HTML (one page of every message a dry run renders,
// laid out as the text preview is, by actions.Render).
package output

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// New returns the writer of format to w: "json", "text" or "html". explain
// shows every rule tried; dryRun shows the messages a dry run renders.
// cfg's rules file names the HTML page, and its destinations describe
// where notifies post.
func New(w io.Writer, format string, explain, dryRun bool, cfg *pipeline.Config) (pipeline.Output, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "json":
		return newJSON(bw, explain), nil
	case "text":
		return &textWriter{w: bw, explain: explain, dryRun: dryRun, dests: slack.ByName(cfg.Destinations)}, nil
	case "html":
		return &htmlWriter{w: bw, rules: cfg.Rules.File}, nil
	}
	return nil, fmt.Errorf("unknown output format %q", format)
}

// jsonWriter writes one line per input: the item's view as JSON, member by
// member in the order of pipeline.View's tags and with their omissions,
// each string escaped by jsontext, and the Slack payloads as they were
// marshalled, neither marshalled nor checked again.
type jsonWriter struct {
	w       *bufio.Writer
	explain bool
	buf     []byte
}

// newJSON returns a JSON writer to w; explain adds every rule tried.
func newJSON(w *bufio.Writer, explain bool) *jsonWriter {
	return &jsonWriter{w: w, explain: explain}
}

// Job writes one handled input's line.
func (o *jsonWriter) Job(j *pipeline.Job) error {
	v := j.View(o.explain)
	o.buf = appendLine(o.buf[:0], &v)
	_, err := o.w.Write(o.buf)
	return err
}

// Digest writes nothing: JSON output has one line per input, and leaves
// digests to the summary on standard error.
func (o *jsonWriter) Digest(storm.DigestResult) error { return nil }

// Close writes what is buffered.
func (o *jsonWriter) Close() error { return o.w.Flush() }

// appendLine appends v's line, ended by a newline, as encoding/json wrote
// the view (TestJSONAsEncodingJSON holds the two together).
func appendLine(b []byte, v *pipeline.View) []byte {
	b = append(b, `{"input":`...)
	b = appendString(b, v.Input)
	b = appendOpt(b, `,"envelope":`, v.Envelope)
	b = appendOpt(b, `,"type":`, v.Type)
	b = appendOpt(b, `,"messageId":`, v.MessageID)
	if v.Recipients != nil {
		b = append(b, `,"recipients":[`...)
		for i := range v.Recipients {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRecipient(b, &v.Recipients[i])
		}
		b = append(b, ']')
	}
	if v.Results != nil {
		b = append(b, `,"results":[`...)
		for i := range v.Results {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendResult(b, &v.Results[i])
		}
		b = append(b, ']')
	}
	if v.Duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	b = appendOpt(b, `,"skipped":`, v.Skipped)
	b = appendOpt(b, `,"error":`, v.Error)
	return append(b, "}\n"...)
}

func appendRecipient(b []byte, r *pipeline.ViewRecipient) []byte {
	b = append(b, `{"address":`...)
	b = appendString(b, r.Address)
	b = appendOpt(b, `,"raw":`, r.Raw)
	b = append(b, `,"rules":`...)
	b = appendStrings(b, r.Rules)
	b = append(b, `,"actions":`...)
	b = appendStrings(b, r.Actions)
	if r.Unmatched {
		b = append(b, `,"unmatched":true`...)
	}
	b = appendOpt(b, `,"error":`, r.Error)
	if r.Tried != nil {
		b = append(b, `,"tried":[`...)
		for i, t := range r.Tried {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"rule":`...)
			b = appendString(b, t.Rule)
			b = append(b, `,"matched":`...)
			b = strconv.AppendBool(b, t.Matched)
			if t.Decided {
				b = append(b, `,"decided":true`...)
			}
			b = appendOpt(b, `,"error":`, t.Error)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.History != nil {
		b = append(b, `,"history":[`...)
		for i, h := range r.History {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"kind":`...)
			b = appendString(b, h.Kind)
			b = append(b, `,"window":`...)
			b = appendString(b, h.Window)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, int64(h.Count), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendResult(b []byte, r *pipeline.ViewResult) []byte {
	b = append(b, `{"action":`...)
	b = appendString(b, r.Action)
	b = appendOpt(b, `,"recipient":`, r.Recipient)
	b = append(b, `,"outcome":`...)
	b = appendString(b, string(r.Outcome))
	b = appendOpt(b, `,"error":`, r.Error)
	if r.Payload != nil {
		b = append(b, `,"payload":`...)
		b = append(b, r.Payload...) // compact JSON, as the notifier marshalled it
	}
	return append(b, '}')
}

// appendOpt appends the member name (with its comma and colon) and s,
// unless s is empty.
func appendOpt(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, name...), s)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it without HTML escaping: jsontext's minimal escaping, and
// U+2028 and U+2029 escaped too, as JavaScript needs them. Invalid UTF-8
// is written as U+FFFD (jsontext's error says only that).
func appendString(b []byte, s string) []byte {
	start := len(b)
	b, _ = jsontext.AppendQuote(b, s)
	if strings.IndexByte(s, 0xe2) < 0 { // the first byte of U+2028 and U+2029
		return b
	}
	q := string(b[start:])
	q = strings.ReplaceAll(q, "\u2028", `\u2028`)
	q = strings.ReplaceAll(q, "\u2029", `\u2029`)
	return append(b[:start], q...)
}
