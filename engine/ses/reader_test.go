package ses

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-json-experiment/json/jsontext"
)

// readerWant is one item a Reader must give: its input label and either a
// notification type, or a skip reason or an error (substrings of it).
type readerWant struct {
	input   string
	typ     string
	skipped string
	err     string
}

func checkReaderItems(t *testing.T, got []Item, want []readerWant) {
	t.Helper()
	if len(got) != len(want) {
		for _, it := range got {
			t.Logf("got %s: skipped=%q err=%v", it.Input, it.Skipped, it.Err)
		}
		t.Fatalf("%d items, want %d", len(got), len(want))
	}
	for i, w := range want {
		it := got[i]
		checkExactlyOne(t, it)
		if it.Input != w.input {
			t.Errorf("item %d: Input = %q, want %q", i, it.Input, w.input)
		}
		switch {
		case w.typ != "":
			if it.Notification == nil || it.Notification.Event.Type != w.typ {
				t.Errorf("%s: want a %s notification, got %+v", w.input, w.typ, it)
			} else if it.Notification.Input != w.input {
				t.Errorf("%s: Notification.Input = %q", w.input, it.Notification.Input)
			}
		case w.skipped != "":
			if !strings.Contains(it.Skipped, w.skipped) {
				t.Errorf("%s: Skipped = %q, want it to say %q", w.input, it.Skipped, w.skipped)
			}
		default:
			if it.Err == nil || !strings.Contains(it.Err.Error(), w.err) {
				t.Errorf("%s: Err = %v, want it to say %q", w.input, it.Err, w.err)
			}
		}
	}
}

// TestReaderFiles checks framing over files: NDJSON with a broken line in
// the middle, pretty-printed documents one after another, a document that
// never closes.
func TestReaderFiles(t *testing.T) {
	tests := []struct {
		file string
		want []readerWant
	}{
		{"mixed.ndjson", []readerWant{
			{input: "mixed.ndjson:1", typ: TypeBounce},
			{input: "mixed.ndjson:2", typ: TypeComplaint},
			{input: "mixed.ndjson:3", err: "invalid JSON at line 3, column 58: invalid character '\\n' in string (expecting non-control character)"},
			{input: "mixed.ndjson:4#1", typ: TypeBounce},
			{input: "mixed.ndjson:4#2", typ: TypeBounce},
			{input: "mixed.ndjson:6", typ: TypeDelivery},
			{input: "mixed.ndjson:7", err: "invalid JSON at line 7, column 2: invalid character 'h' in literal true (expecting 'r')"},
			{input: "mixed.ndjson:8#1", typ: TypeBounce},
			{input: "mixed.ndjson:9", skipped: subscriptionConfirmationSkip},
		}},
		{"pretty-multi.json", []readerWant{
			{input: "pretty-multi.json:1", typ: TypeSend},
			{input: "pretty-multi.json:14", typ: TypeReject},
			{input: "pretty-multi.json:28", typ: TypeSend},
		}},
		{"unclosed.json", []readerWant{
			{input: "unclosed.json:1", typ: TypeSend},
			{input: "unclosed.json:2", err: "invalid JSON: the document starting here never closes (2 unclosed brackets at the end of the input)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			checkReaderItems(t, readItems(t, tt.file), tt.want)
		})
	}
}

// TestReaderMixedNDJSONFields checks that the documents after the broken
// line of mixed.ndjson decode in full, with their envelopes.
func TestReaderMixedNDJSONFields(t *testing.T) {
	items := readItems(t, "mixed.ndjson")
	if len(items) != 9 {
		t.Fatalf("%d items, want 9", len(items))
	}
	checkItem(t, items[1], wantItem{
		input: "mixed.ndjson:2", envelope: EnvelopeHTTP, envelopeID: "cccccccc-2222-4333-8444-000000000001", snsID: "cccccccc-2222-4333-8444-000000000001", topicArn: feedbackTopic,
		n: complaintNullSubtype("mixed.ndjson:2", "cccccccc-2222-4333-8444-000000000001"),
	})
	checkItem(t, items[3], wantItem{
		input: "mixed.ndjson:4#1", envelope: EnvelopeSNS, envelopeID: "cccccccc-2222-4333-8444-000000000002", snsID: "cccccccc-2222-4333-8444-000000000002", topicArn: feedbackTopic,
		n: lambdaBounce1("mixed.ndjson:4#1", "cccccccc-2222-4333-8444-000000000002"),
	})
	checkItem(t, items[4], wantItem{
		input: "mixed.ndjson:4#2", envelope: EnvelopeSNS, envelopeID: "cccccccc-2222-4333-8444-000000000003", snsID: "cccccccc-2222-4333-8444-000000000003", topicArn: feedbackTopic,
		n: lambdaBounce2("mixed.ndjson:4#2", "cccccccc-2222-4333-8444-000000000003"),
	})
	checkItem(t, items[5], wantItem{
		input: "mixed.ndjson:6", envelope: EnvelopeEventBridge, envelopeID: "cccccccc-0000-4000-8000-000000000004",
		n: &Notification{
			Input: "mixed.ndjson:6", EnvelopeID: "cccccccc-0000-4000-8000-000000000004", Format: "event",
			Event: Event{Type: TypeDelivery, Timestamp: "2024-05-04T01:00:01.000Z", Envelope: EnvelopeEventBridge},
			Mail: Mail{Timestamp: "2024-05-04T01:00:00.000Z", MessageID: "nd-msg-2", Source: "news@shop.example.org",
				SourceAddress: "news@shop.example.org", SourceDomain: "shop.example.org", Destination: []string{"yan@example.com"}},
			Delivery:   Delivery{Timestamp: "2024-05-04T01:00:01.000Z", ProcessingTimeMillis: 1000, SMTPResponse: "250 ok"},
			Recipients: []Recipient{rcpt("yan@example.com", "yan", "example.com", "", "", "")},
		},
	})
	checkItem(t, items[7], wantItem{
		input: "mixed.ndjson:8#1", envelope: EnvelopeSQS, envelopeID: "eeeeeeee-0000-4000-8000-000000000001",
		n: rawDeliveryBounce("mixed.ndjson:8#1", "eeeeeeee-0000-4000-8000-000000000001"),
	})
}

// TestReaderInline checks framing cases small enough to write inline.
func TestReaderInline(t *testing.T) {
	const send = `{"eventType":"Send","mail":{"messageId":"m","destination":["a@b.example"]},"send":{}}`
	tests := []struct {
		name  string
		input string
		want  []readerWant
	}{
		{"empty", "", nil},
		{"blank lines only", "\n  \n\t\n", nil},
		{"no final newline", send, []readerWant{{input: "t:1", typ: TypeSend}}},
		{"CRLF", send + "\r\n\r\n" + send + "\r\n", []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:3", typ: TypeSend}}},
		{"leading blank lines", "\n\n" + send + "\n", []readerWant{{input: "t:3", typ: TypeSend}}},
		{"two documents on one line", send + " " + send + "\n" + send, []readerWant{
			{input: "t:1", typ: TypeSend},
			{input: "t:1", typ: TypeSend},
			{input: "t:2", typ: TypeSend},
		}},
		{"stray closing bracket", "}\n" + send, []readerWant{
			{input: "t:1", err: "invalid JSON"},
			{input: "t:2", typ: TypeSend},
		}},
		{"brackets inside strings", "{\"eventType\":\"Send\",\"mail\":{\"source\":\"a{[b\",\"destination\":[\"x@y.example\"]},\n\"send\":{}}\n" + send,
			[]readerWant{{input: "t:1", typ: TypeSend}, {input: "t:3", typ: TypeSend}}},
		{"pretty event whose records start at column 0", "{\"Records\":[\n" + `{"eventSource":"aws:sqs","messageId":"q1","body":"{\"eventType\":\"Send\",\"mail\":{\"destination\":[\"a@b.example\"]}}"}` + ",\n" +
			`{"eventSource":"aws:sqs","messageId":"q2","body":"{\"eventType\":\"Send\",\"mail\":{\"destination\":[\"a@b.example\"]}}"}` + "\n]}\n" + send,
			[]readerWant{{input: "t:1#1", typ: TypeSend}, {input: "t:1#2", typ: TypeSend}, {input: "t:5", typ: TypeSend}}},
		{"NDJSON line cut after a comma", `{"eventType":"Send","mail":{"destination":["a@b.example"],` + "\n" + send + "\n" + send + "\n",
			[]readerWant{{input: "t:1", err: "invalid JSON at line 2, column 1: object member name must be a string, found '{'"}, {input: "t:2", typ: TypeSend}, {input: "t:3", typ: TypeSend}}},
		{"broken pretty document is one error", "{\n  \"eventType\": \"Send\"\n  \"mail\": {}\n}\n" + send,
			[]readerWant{{input: "t:1", err: "invalid JSON"}, {input: "t:5", typ: TypeSend}}},
		{"escaped quote in string", "{\"eventType\":\"Send\",\"mail\":{\"source\":\"a\\\"{\",\n\"destination\":[\"x@y.example\"]},\"send\":{}}\n" + send,
			[]readerWant{{input: "t:1", typ: TypeSend}, {input: "t:3", typ: TypeSend}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkReaderItems(t, drain(t, NewReader(strings.NewReader(tt.input), "t")), tt.want)
		})
	}
}

// maxNesting is how deep jsontext lets arrays and objects nest.
const maxNesting = 10000

// newReaderSize returns a Reader over r that takes documents of up to max
// bytes, with a buffer of bufSize bytes to begin with: small limits and
// buffers keep the tests of the limit small, and make documents span
// many reads.
func newReaderSize(r io.Reader, name string, max, bufSize int) *Reader {
	rd := NewReader(r, name)
	rd.max = max
	rd.in.buf = make([]byte, 0, bufSize)
	return rd
}

// sendDoc is a Send event on one line: the smallest notification.
const sendDoc = `{"eventType":"Send","mail":{"messageId":"m","destination":["a@b.example"]},"send":{}}`

// prettySend is sendDoc over 8 lines, the last without its line end.
const prettySend = "{\n  \"eventType\": \"Send\",\n  \"mail\": {\n    \"messageId\": \"m\",\n    \"destination\": [\"a@b.example\"]\n  },\n  \"send\": {}\n}"

// readerCase is a framing case: an input, the largest document (0 for
// maxDocument) and the items the Reader must give.
type readerCase struct {
	name  string
	input string
	max   int
	want  []readerWant
}

// runReaderCases checks every case read whole, one byte at a time from a
// one-byte buffer, and in halves from a 7-byte buffer: where reads end
// must change nothing.
func runReaderCases(t *testing.T, cases []readerCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			max := cmp.Or(tt.max, maxDocument)
			for _, rc := range []struct {
				name string
				rd   *Reader
			}{
				{"whole", newReaderSize(strings.NewReader(tt.input), "t", max, readSize)},
				{"bytes", newReaderSize(iotest.OneByteReader(strings.NewReader(tt.input)), "t", max, 1)},
				{"halves", newReaderSize(iotest.HalfReader(strings.NewReader(tt.input)), "t", max, 7)},
			} {
				t.Run(rc.name, func(t *testing.T) {
					checkReaderItems(t, drain(t, rc.rd), tt.want)
				})
			}
		})
	}
}

// TestReaderLimit checks documents against the limit: one larger than it
// is one error at its first line, saying where it lies, and reading
// resumes right after its end; nothing of it is decoded, however it is
// laid out.
func TestReaderLimit(t *testing.T) {
	n := len(sendDoc)
	array := "[\n" + strings.Repeat(sendDoc+",\n", 9) + sendDoc + "\n]"
	runReaderCases(t, []readerCase{
		{name: "exactly the limit", input: sendDoc + "\n", max: n,
			want: []readerWant{{input: "t:1", typ: TypeSend}}},
		{name: "one byte over", input: sendDoc + "\n{}\n", max: n - 1,
			want: []readerWant{{input: "t:1", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on line 1)", n-1, n)}, {input: "t:2", skipped: "not an SES notification"}}},
		{name: "an array exactly the limit is read element by element", input: "[" + sendDoc + "," + sendDoc + "]", max: 2*n + 3,
			want: []readerWant{{input: "t:1[0]", typ: TypeSend}, {input: "t:1[1]", typ: TypeSend}}},
		{name: "oversized pretty document then a valid line", input: prettySend + "\n" + sendDoc + "\n", max: n,
			want: []readerWant{
				{input: "t:1", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on lines 1 to 8)", n, len(prettySend))},
				{input: "t:9", typ: TypeSend},
			}},
		{name: "oversized array of notifications", input: array + "\n", max: 5 * n,
			want: []readerWant{{input: "t:1", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on lines 1 to 12)", 5*n, len(array))}}},
		{name: "oversized array then a valid line", input: array + "\n" + sendDoc + "\n", max: 5 * n,
			want: []readerWant{
				{input: "t:1", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on lines 1 to 12)", 5*n, len(array))},
				{input: "t:13", typ: TypeSend},
			}},
		{name: "oversized line between valid ones", input: sendDoc + "\n" + `{"x":"` + strings.Repeat("y", 2*n) + `"}` + "\n" + sendDoc + "\n", max: n,
			want: []readerWant{
				{input: "t:1", typ: TypeSend},
				{input: "t:2", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on line 2)", n, 2*n+8)},
				{input: "t:3", typ: TypeSend},
			}},
		{name: "reading resumes right after the end", input: "[" + sendDoc + "," + sendDoc + "]" + sendDoc + "\n", max: n,
			want: []readerWant{
				{input: "t:1", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on line 1)", n, 2*n+3)},
				{input: "t:1", typ: TypeSend},
			}},
		{name: "oversized and broken", input: "[\n" + strings.Repeat(sendDoc+",\n", 3) + "}\n" + sendDoc + "\n", max: n,
			want: []readerWant{
				{input: "t:1", err: fmt.Sprintf("document larger than %d bytes from line 1, and invalid JSON at line 4, column %d: invalid character ',' at start of value", n, n+1)},
				{input: "t:6", typ: TypeSend},
			}},
		{name: "oversized and broken where a line cut short took the next one in", input: "[\n" + strings.Repeat(sendDoc+",\n", 3) + sendDoc + "\n" + sendDoc + "\n", max: n,
			want: []readerWant{
				{input: "t:1", err: fmt.Sprintf("document larger than %d bytes from line 1, and invalid JSON at line 6, column 1: invalid character '{' after array element (expecting ',' or ']')", n)},
				{input: "t:6", typ: TypeSend},
			}},
		{name: "a value longer than twice the limit", input: sendDoc + "\n" + `{"x":"` + strings.Repeat("y", 2*n+readSize) + `"}` + "\n" + sendDoc + "\n", max: n,
			want: []readerWant{
				{input: "t:1", typ: TypeSend},
				{input: "t:2", err: fmt.Sprintf("document larger than %d bytes from line 2, and invalid JSON at line 2, column 5: a value longer than %d bytes", n, 2*n+readSize)},
				{input: "t:3", typ: TypeSend},
			}},
		{name: "white space longer than twice the limit inside a document", input: "{\n" + strings.Repeat(" ", 2*n+readSize) + "\n}\n" + sendDoc + "\n", max: n,
			want: []readerWant{
				{input: "t:1", err: fmt.Sprintf("document larger than %d bytes from line 1, and invalid JSON at line 1, column 2: a value longer than %d bytes", n, 2*n+readSize)},
				{input: "t:4", typ: TypeSend},
			}},
		{name: "white space longer than twice the limit between documents", input: sendDoc + strings.Repeat(" ", 2*n+readSize) + "\n" + sendDoc + "\n", max: n,
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:2", typ: TypeSend}}},
		{name: "oversized and never closes", input: "[\n" + strings.Repeat(sendDoc+",\n", 3), max: n,
			want: []readerWant{{input: "t:1", err: fmt.Sprintf("document larger than %d bytes from line 1, and invalid JSON: the document starting here never closes (1 unclosed bracket at the end of the input)", n)}}},
	})
}

// TestReaderFraming checks how documents are told apart: concatenated,
// with a byte-order mark, over CRLF and blank lines, and where a line is
// cut short or broken, that one error stands for it and that every valid
// line after it is read.
func TestReaderFraming(t *testing.T) {
	then2 := "\n" + sendDoc + "\n" + sendDoc + "\n"
	two := []readerWant{{input: "t:2", typ: TypeSend}, {input: "t:3", typ: TypeSend}}
	cut := func(err string) []readerWant { return append([]readerWant{{input: "t:1", err: err}}, two...) }
	lastAgain := []readerWant{
		{input: "t:1", err: "invalid JSON: the document starting here never closes (1 unclosed bracket at the end of the input) (line 2 is read again as a document of its own)"},
		{input: "t:2", typ: TypeSend},
	}
	runReaderCases(t, []readerCase{
		// Concatenated documents.
		{name: "objects back to back", input: sendDoc + sendDoc + sendDoc,
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:1", typ: TypeSend}, {input: "t:1", typ: TypeSend}}},
		{name: "objects with blanks between", input: sendDoc + " " + sendDoc + "\t\r" + sendDoc + "\n",
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:1", typ: TypeSend}, {input: "t:1", typ: TypeSend}}},
		{name: "pretty documents back to back", input: prettySend + prettySend + "\n" + sendDoc,
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:8", typ: TypeSend}, {input: "t:16", typ: TypeSend}}},
		{name: "arrays back to back", input: "[" + sendDoc + "][" + sendDoc + "]\n",
			want: []readerWant{{input: "t:1[0]", typ: TypeSend}, {input: "t:1[0]", typ: TypeSend}}},
		{name: "scalars", input: `1 2.5e3"x"true` + "\n-0\n",
			want: []readerWant{
				{input: "t:1", skipped: "a JSON number"}, {input: "t:1", skipped: "a JSON number"},
				{input: "t:1", skipped: "a JSON string"}, {input: "t:1", skipped: "a JSON boolean"},
				{input: "t:2", skipped: "a JSON number"},
			}},
		{name: "a number at the end of the input", input: "12",
			want: []readerWant{{input: "t:1", skipped: "a JSON number"}}},
		{name: "garbage right after a document", input: sendDoc + ",\n" + sendDoc + "\n",
			want: []readerWant{
				{input: "t:1", typ: TypeSend},
				{input: "t:1", err: fmt.Sprintf("invalid JSON at line 1, column %d: invalid character ',' at start of value", len(sendDoc)+1)},
				{input: "t:2", typ: TypeSend},
			}},
		// Byte-order mark.
		{name: "byte-order mark", input: "\xEF\xBB\xBF" + sendDoc + "\n" + sendDoc,
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:2", typ: TypeSend}}},
		{name: "byte-order mark only", input: "\xEF\xBB\xBF", want: nil},
		{name: "byte-order mark before a broken line", input: "\xEF\xBB\xBF{x\n" + sendDoc,
			want: []readerWant{{input: "t:1", err: "invalid JSON at line 1, column 2: invalid character 'x' at start of value"}, {input: "t:2", typ: TypeSend}}},
		{name: "byte-order mark not at the start", input: sendDoc + "\n\xEF\xBB\xBF" + sendDoc + "\n" + sendDoc,
			want: []readerWant{
				{input: "t:1", typ: TypeSend},
				{input: "t:2", err: "invalid JSON at line 2, column 1: invalid character '\\ufeff' at start of value"},
				{input: "t:3", typ: TypeSend},
			}},
		// Line ends and blank lines.
		{name: "CRLF", input: sendDoc + "\r\n\r\n" + strings.ReplaceAll(prettySend, "\n", "\r\n") + "\r\n" + sendDoc + "\r\n",
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:3", typ: TypeSend}, {input: "t:11", typ: TypeSend}}},
		{name: "CRLF after a line cut inside a string", input: sendDoc + "\r\n" + `{"a":"x` + "\r\n" + sendDoc + "\r\n",
			want: []readerWant{
				{input: "t:1", typ: TypeSend},
				{input: "t:2", err: "invalid JSON at line 2, column 8: invalid character '\\r' in string (expecting non-control character)"},
				{input: "t:3", typ: TypeSend},
			}},
		{name: "blank lines", input: "\n \n\t\r\n" + sendDoc + "\n\n  \n" + sendDoc + "\n\n",
			want: []readerWant{{input: "t:4", typ: TypeSend}, {input: "t:7", typ: TypeSend}}},
		// Lines cut short, followed by valid ones.
		{name: "cut after a comma", input: `{"eventType":"Send",` + then2,
			want: cut("invalid JSON at line 2, column 1: object member name must be a string, found '{'")},
		{name: "cut inside a string", input: `{"eventType":"Se` + then2,
			want: cut("invalid JSON at line 1, column 17: invalid character '\\n' in string (expecting non-control character)")},
		{name: "cut inside a key", input: `{"event` + then2,
			want: cut("invalid JSON at line 1, column 8: invalid character '\\n' in string (expecting non-control character)")},
		{name: "cut after a key", input: `{"eventType"` + then2,
			want: cut("invalid JSON at line 2, column 1: invalid character '{' after object name (expecting ':')")},
		{name: "cut after a colon", input: `{"eventType":` + then2,
			want: cut("invalid JSON at line 3, column 1: invalid character '{' after object value (expecting ',' or '}') (line 2 is read again as a document of its own)")},
		{name: "cut after a comma in an array", input: `{"Records":[{"x":1},` + then2,
			want: cut("invalid JSON at line 3, column 1: invalid character '{' after array element (expecting ',' or ']') (line 2 is read again as a document of its own)")},
		{name: "cut after a bracket", input: `{"Records":[` + then2,
			want: cut("invalid JSON at line 3, column 1: invalid character '{' after array element (expecting ',' or ']') (line 2 is read again as a document of its own)")},
		{name: "cut after a brace", input: `{` + then2,
			want: cut("invalid JSON at line 2, column 1: object member name must be a string, found '{'")},
		{name: "cut after a value", input: `{"a":1` + then2,
			want: cut("invalid JSON at line 2, column 1: invalid character '{' after object value (expecting ',' or '}')")},
		{name: "cut after an object inside a line", input: `{"a":{"b":1}` + then2,
			want: cut("invalid JSON at line 2, column 1: invalid character '{' after object value (expecting ',' or '}')")},
		{name: "cut inside a literal", input: `{"a":tr` + then2,
			want: cut("invalid JSON at line 1, column 8: invalid character '\\n' in literal true (expecting 'u')")},
		{name: "cut inside a number", input: `{"a":1.` + then2,
			want: cut("invalid JSON at line 1, column 8: invalid character '\\n' in number (expecting digit)")},
		{name: "cut inside an exponent", input: `{"a":1e` + then2,
			want: cut("invalid JSON at line 1, column 8: invalid character '\\n' in number (expecting digit)")},
		{name: "cut inside an escape", input: `{"a":"\` + then2,
			want: cut(`invalid JSON at line 1, column 7: invalid escape sequence "\\\n" in string`)},
		{name: "cut inside a \\u escape", input: `{"a":"\u12` + then2,
			want: cut(`invalid JSON at line 1, column 7: invalid escape sequence "\\u12\n{" in string`)},
		{name: "cut on the last line", input: sendDoc + "\n" + `{"a":"x`,
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:2", err: "invalid JSON: the document starting here never closes (the input ends inside a string, 1 unclosed bracket)"}}},
		{name: "cut inside a number at the end", input: sendDoc + "\n-",
			want: []readerWant{{input: "t:1", typ: TypeSend}, {input: "t:2", err: "invalid JSON: the document starting here never closes (the input ends inside a number)"}}},
		// A line cut short where a value was wanted, then the last line of
		// the file: the last line is routed all the same.
		{name: "cut after a colon, then the last line", input: `{"a":` + "\n" + sendDoc + "\n",
			want: lastAgain},
		{name: "cut after a bracket, then the last line", input: `[` + "\n" + sendDoc + "\n",
			want: lastAgain},
		{name: "cut after a comma in an array, then the last line", input: `[{"x":1},` + "\n" + sendDoc + "\n",
			want: lastAgain},
		{name: "cut after a colon, then the last line without its line end", input: `{"a":` + "\n" + sendDoc,
			want: lastAgain},
		{name: "cut after a colon, then a pretty last document", input: `{"a":` + "\n" + prettySend + "\n\n",
			want: []readerWant{{input: "t:1", err: "invalid JSON: the document starting here never closes (1 unclosed bracket at the end of the input) (line 2 is read again as a document of its own)"},
				{input: "t:2", typ: TypeSend}}},
		{name: "cut after a colon, then a last line that does not begin it", input: `{"a":` + "\n" + `"b", "c": ` + sendDoc + "\n",
			want: []readerWant{{input: "t:1", err: "invalid JSON: the document starting here never closes (1 unclosed bracket at the end of the input)"}}},
		{name: "cut after a colon, then a last line followed by a comma", input: `{"a":` + "\n" + sendDoc + ",\n",
			want: []readerWant{{input: "t:1", err: "invalid JSON: the document starting here never closes (1 unclosed bracket at the end of the input)"}}},
		// Broken lines and documents.
		{name: "closing lines go with the broken document", input: `{"a":1,` + "\n}\n ]\n,\n:\n" + sendDoc + "\n",
			want: []readerWant{{input: "t:1", err: "invalid JSON at line 1, column 7: invalid character ',' at start of value"}, {input: "t:6", typ: TypeSend}}},
		{name: "a line that is not JSON", input: "not JSON\n" + sendDoc,
			want: []readerWant{{input: "t:1", err: "invalid JSON at line 1, column 2: invalid character 'o' in literal null (expecting 'u')"}, {input: "t:2", typ: TypeSend}}},
		{name: "a string where a key belongs", input: "{\n  \"a\": 1\n  \"b\": 2\n}\n\"x\"\n" + sendDoc,
			want: []readerWant{
				{input: "t:1", err: "invalid JSON at line 3, column 3: invalid character '\"' after object value (expecting ',' or '}')"},
				{input: "t:5", skipped: "a JSON string"},
				{input: "t:6", typ: TypeSend},
			}},
		{name: "a control character in a string", input: "{\"a\":\"\t\"}\n" + sendDoc,
			want: []readerWant{{input: "t:1", err: "invalid JSON at line 1, column 7: invalid character '\\t' in string (expecting non-control character)"}, {input: "t:2", typ: TypeSend}}},
		{name: "nested too deeply", input: strings.Repeat("[", maxNesting+1) + "\n" + sendDoc,
			want: []readerWant{{input: "t:1", err: fmt.Sprintf("invalid JSON at line 1, column %d: exceeded max depth", maxNesting+1)}, {input: "t:2", typ: TypeSend}}},
		{name: "nested as deep as allowed", input: strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + "\n" + sendDoc,
			want: []readerWant{{input: "t:1[0]", skipped: "a JSON array, not a notification"}, {input: "t:2", typ: TypeSend}}},
	})
}

// TestReaderName checks the input name "-" (and no name) reads as stdin.
func TestReaderName(t *testing.T) {
	for _, name := range []string{"-", ""} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			items := drain(t, NewReader(strings.NewReader("{}\n"), name))
			if len(items) != 1 || items[0].Input != "stdin:1" {
				t.Fatalf("got %+v, want one item from stdin:1", items)
			}
		})
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestReaderReadError checks that a read error of the underlying reader
// comes out of Next after the items before it, and stays; a document the
// error cuts short gives no item.
func TestReaderReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, tt := range []struct {
		name, data string
		inputs     []string
	}{
		{"after whole lines", "{}\n{}\n", []string{"f:1", "f:2"}},
		{"right after a document", "{}\n{}", []string{"f:1", "f:2"}},
		{"inside a document", "{}\n{\"a\":\n", []string{"f:1"}},
		{"inside a number", "{}\n12", []string{"f:1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(&failingReader{data: []byte(tt.data), err: boom}, "f")
			for _, want := range tt.inputs {
				it, err := r.Next()
				if err != nil || it.Input != want {
					t.Fatalf("got %+v, %v; want an item from %s", it, err, want)
				}
			}
			for range 2 {
				if _, err := r.Next(); !errors.Is(err, boom) {
					t.Fatalf("Next = %v, want %v", err, boom)
				}
			}
		})
	}
}

// partsReader streams its parts, each repeated n times, without holding
// more than one of them.
type partsReader struct {
	parts []part
	cur   string
}

type part struct {
	s string
	n int
}

func (r *partsReader) Read(p []byte) (int, error) {
	for r.cur == "" {
		if len(r.parts) == 0 {
			return 0, io.EOF
		}
		r.cur = r.parts[0].s
		if r.parts[0].n--; r.parts[0].n <= 0 {
			r.parts = r.parts[1:]
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// TestReaderMaxDocument checks the real limit on generated input: a line
// over it, a pretty-printed array of notifications over it (elements at
// column 0, which the Reader once read as documents of their own) and a
// document exactly at it. None of these inputs is ever held whole, and
// the Reader's buffer never grows past the limit and one read.
func TestReaderMaxDocument(t *testing.T) {
	elem := sendDoc + ",\n"
	elems := maxDocument/len(elem) + 1
	arraySize := 2 + elems*len(elem) + len(sendDoc) + 2
	pad := `{"x":"` + strings.Repeat("y", 1000)
	padN := (maxDocument - len(`{"x":"`) - len(`"}`)) / 1000
	exact := strings.Repeat("y", maxDocument-len(`{"x":"`)-len(`"}`)-padN*1000)
	for _, tt := range []struct {
		name  string
		parts []part
		want  []readerWant
	}{
		{"a line over the limit", []part{
			{sendDoc + "\n", 1}, {`{"x":"`, 1}, {strings.Repeat("y", 1<<16), maxDocument>>16 + 1}, {"\"}\n", 1}, {sendDoc + "\n", 1},
		}, []readerWant{
			{input: "big:1", typ: TypeSend},
			{input: "big:2", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on line 2)", maxDocument, maxDocument+1<<16+8)},
			{input: "big:3", typ: TypeSend},
		}},
		{"a pretty array of notifications over the limit", []part{
			{"[\n", 1}, {elem, elems}, {sendDoc + "\n]\n", 1}, {sendDoc + "\n", 1},
		}, []readerWant{
			{input: "big:1", err: fmt.Sprintf("document larger than %d bytes (%d bytes, on lines 1 to %d)", maxDocument, arraySize, elems+3)},
			{input: "big:" + strconv.Itoa(elems+4), typ: TypeSend},
		}},
		{"a document exactly at the limit", []part{
			{pad, 1}, {strings.Repeat("y", 1000), padN - 1}, {exact + `"}`, 1}, {"\n" + sendDoc, 1},
		}, []readerWant{
			{input: "big:1", skipped: "not an SES notification"},
			{input: "big:2", typ: TypeSend},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rd := NewReader(&partsReader{parts: tt.parts}, "big")
			checkReaderItems(t, drain(t, rd), tt.want)
			if limit := 3*maxDocument + 2*readSize; cap(rd.in.buf) > limit {
				t.Errorf("the buffer grew to %d bytes, more than %d: a document and one value of twice its limit, and two reads", cap(rd.in.buf), limit)
			}
		})
	}
}

// genReader generates n NDJSON lines on the fly, cycling through a bare
// SES bounce, an SNS HTTP body and a Lambda SNS event; it never holds more
// than one line.
type genReader struct {
	n, i int
	line []byte
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.line) == 0 {
		if g.i == g.n {
			return 0, io.EOF
		}
		g.i++
		ses := fmt.Sprintf(`{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",`+
			`"bouncedRecipients":[{"emailAddress":"user%d@example.com","status":"5.1.1","action":"failed",`+
			`"diagnosticCode":"smtp; 550 5.1.1 user unknown %s"}],"timestamp":"2024-01-01T00:00:00.000Z","feedbackId":"fb-%d"},`+
			`"mail":{"timestamp":"2024-01-01T00:00:00.000Z","source":"a@shop.example.org","messageId":"m-%d",`+
			`"destination":["user%d@example.com"]}}`, g.i, strings.Repeat("z", 200), g.i, g.i, g.i)
		var doc []byte
		switch g.i % 3 {
		case 0:
			doc = []byte(ses)
		case 1:
			msg, _ := jsontext.AppendQuote(nil, ses)
			doc = fmt.Appendf(nil, `{"Type":"Notification","MessageId":"sns-%d","TopicArn":"arn:t","Message":%s}`, g.i, msg)
		case 2:
			msg, _ := jsontext.AppendQuote(nil, ses)
			doc = fmt.Appendf(nil, `{"Records":[{"EventSource":"aws:sns","Sns":{"Type":"Notification","MessageId":"sns-%d","TopicArn":"arn:t","Message":%s}}]}`, g.i, msg)
		}
		g.line = append(doc, '\n')
	}
	n := copy(p, g.line)
	g.line = g.line[n:]
	return n, nil
}

// TestReaderMemoryFlat streams 50,000 generated lines and checks that the
// live heap does not grow with the input, and that every item comes out
// in order.
func TestReaderMemoryFlat(t *testing.T) {
	const lines = 50000
	const limit = 16 << 20
	heapInuse := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heapInuse()
	r := NewReader(&genReader{n: lines}, "gen")
	var peak uint64
	count := 0
	for {
		it, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		count++
		want := "gen:" + strconv.Itoa(count)
		if count%3 == 2 {
			want += "#1"
		}
		if it.Notification == nil || it.Input != want || it.Notification.Recipients[0].Address != "user"+strconv.Itoa(count)+"@example.com" {
			t.Fatalf("item %d: %+v, want a notification from %s", count, it, want)
		}
		if count%10000 == 0 {
			peak = max(peak, heapInuse())
		}
	}
	after := heapInuse()
	runtime.KeepAlive(r)
	if count != lines {
		t.Errorf("%d items, want %d", count, lines)
	}
	for _, m := range []struct {
		name string
		v    uint64
	}{{"peak", peak}, {"after", after}} {
		if m.v > before && m.v-before > limit {
			t.Errorf("HeapInuse %s = %d, %d MB above the %d before (limit %d MB)", m.name, m.v, (m.v-before)>>20, before, limit>>20)
		}
	}
	t.Logf("HeapInuse before %d KB, peak %d KB, after %d KB", before>>10, peak>>10, after>>10)
}
