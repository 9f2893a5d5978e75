package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
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
			{input: "mixed.ndjson:3", err: "invalid JSON at line 3, column 58: the line ends inside a string (a JSON string never spans lines)"},
			{input: "mixed.ndjson:4#1", typ: TypeBounce},
			{input: "mixed.ndjson:4#2", typ: TypeBounce},
			{input: "mixed.ndjson:6", typ: TypeDelivery},
			{input: "mixed.ndjson:7", err: "invalid JSON at line 7, column 2: invalid literal: want 'r' of true, found 'h'"},
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
			[]readerWant{{input: "t:1", err: "invalid JSON at line 2, column 1: want a string key after ',', found '{'"}, {input: "t:2", typ: TypeSend}, {input: "t:3", typ: TypeSend}}},
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
// comes out of Next after the items before it, and stays.
func TestReaderReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := NewReader(&failingReader{data: []byte("{}\n{}\n"), err: boom}, "f")
	for i := 1; i <= 2; i++ {
		it, err := r.Next()
		if err != nil || it.Input != "f:"+strconv.Itoa(i) {
			t.Fatalf("item %d: %+v, %v", i, it, err)
		}
	}
	for range 2 {
		if _, err := r.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next = %v, want %v", err, boom)
		}
	}
}

// TestReaderDocumentTooLarge checks that a line over MaxDocument is an
// Item with Err and that reading goes on with the right line numbers.
func TestReaderDocumentTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 9 MB line")
	}
	const send = `{"eventType":"Send","mail":{"messageId":"m","destination":["a@b.example"]},"send":{}}`
	var b bytes.Buffer
	b.WriteString(send + "\n")
	b.WriteString(`{"x":"`)
	b.Write(bytes.Repeat([]byte("y"), MaxDocument+1<<20))
	b.WriteString("\"}\n")
	b.WriteString(send + "\n")
	checkReaderItems(t, drain(t, NewReader(&b, "big")), []readerWant{
		{input: "big:1", typ: TypeSend},
		{input: "big:2", err: fmt.Sprintf("document larger than %d bytes", MaxDocument)},
		{input: "big:3", typ: TypeSend},
	})
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
			msg, _ := json.Marshal(ses)
			doc = fmt.Appendf(nil, `{"Type":"Notification","MessageId":"sns-%d","TopicArn":"arn:t","Message":%s}`, g.i, msg)
		case 2:
			msg, _ := json.Marshal(ses)
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

// repeatReader reads chunk n times over, without holding more than it.
type repeatReader struct {
	chunk []byte
	n, i  int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.off == len(r.chunk) {
		if r.i == r.n {
			return 0, io.EOF
		}
		r.i++
		r.off = 0
	}
	n := copy(p, r.chunk[r.off:])
	r.off += n
	return n, nil
}

// BenchmarkReader reads 100,000 NDJSON lines of SNS HTTP bodies (about
// 2 KB each, as real ones) through a Reader: framing and decoding, no
// routing. It reports lines/s.
func BenchmarkReader(b *testing.B) {
	const lines, distinct = 100000, 1000
	chunk := decodeRouteLines(distinct)
	b.SetBytes(int64(len(chunk)) * lines / distinct)
	b.ReportAllocs()
	for b.Loop() {
		rd := NewReader(&repeatReader{chunk: chunk, n: lines / distinct, off: len(chunk)}, "bench")
		count := 0
		for {
			it, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil || it.Notification == nil {
				b.Fatalf("%s: %v %v %s", it.Input, err, it.Err, it.Skipped)
			}
			count++
		}
		if count != lines {
			b.Fatalf("%d notifications, want %d", count, lines)
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}
