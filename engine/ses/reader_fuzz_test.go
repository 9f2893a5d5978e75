package ses

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// addEventSeeds adds every file of testdata/events, and each line of the
// NDJSON ones, to a fuzz corpus.
func addEventSeeds(f *testing.F) {
	f.Helper()
	entries, err := os.ReadDir(eventsDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(eventsDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if strings.HasSuffix(e.Name(), ".ndjson") {
			for line := range bytes.SplitSeq(b, []byte("\n")) {
				f.Add(line)
			}
		}
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"Records":[]}`, `{"Records":[null,1,{}]}`,
		`{"Type":"Notification","Message":{}}`, `{"Type":"Notification","Message":"{\"eventType\":\"Send\",\"mail\":{}}"}`,
		`{"source":"aws.ses","detail-type":"Email Sent","detail":{"eventType":"Send","mail":{"destination":["a@b"]}}}`,
		`{"eventType":"Rendering Failure","mail":{"destination":["a@b","","@",">"]}}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzReader checks that a Reader over any bytes never panics and ends;
// that its items keep the invariants of decoded items, with line numbers
// that never go back; that every notification comes from a document that
// is valid JSON as it stands in the input, at the line its Input names,
// and no larger than the limit; that where reads end changes nothing; and
// that where encoding/json reads the input as a stream of documents
// (valid NDJSON among others), the Reader frames the same documents.
func FuzzReader(f *testing.F) {
	addEventSeeds(f)
	for _, s := range []string{
		"{\n", "{\n}\n{", "{\"a\":\n{\"eventType\":\"Send\",\"mail\":{}}\n", "[\n{}\n]\n", "\"\\\n\"", "}\n]\n{[\n",
		"{\"Records\":[\n{\"body\":\"x\"},\n{}]}\r\n",
		sendDoc + sendDoc + " " + sendDoc, "\xEF\xBB\xBF" + sendDoc, prettySend + "\n" + sendDoc,
		`{"eventType":` + "\n" + sendDoc + "\n" + sendDoc, `{"Records":[{"x":1},` + "\n" + sendDoc + "\n{}",
		`{"a":"\u12` + "\n" + sendDoc, "1 2.5e3\"x\"true\n-0\n00\n", "[" + sendDoc + "," + sendDoc + "]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(it Item) { checkExactlyOne(t, it) }
		got, docs := readFuzz(t, NewReader(bytes.NewReader(data), "fuzz"), data, check)
		if bytewise, _ := readFuzz(t, newReaderSize(iotest.OneByteReader(bytes.NewReader(data)), "fuzz", maxDocument, 1), data, check); !slices.Equal(got, bytewise) {
			t.Fatalf("read whole:\n%s\nread a byte at a time:\n%s", strings.Join(got, "\n"), strings.Join(bytewise, "\n"))
		}
		const small = 64
		smallWhole, _ := readFuzz(t, newReaderSize(bytes.NewReader(data), "fuzz", small, readSize), data, check)
		if smallHalves, _ := readFuzz(t, newReaderSize(iotest.HalfReader(bytes.NewReader(data)), "fuzz", small, 5), data, check); !slices.Equal(smallWhole, smallHalves) {
			t.Fatalf("limit %d, read whole:\n%s\nread in halves:\n%s", small, strings.Join(smallWhole, "\n"), strings.Join(smallHalves, "\n"))
		}

		// Valid NDJSON: one document a line.
		lines, ndjson := 0, true
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			if line = bytes.Trim(line, " \t\r"); len(line) > 0 {
				lines++
				ndjson = ndjson && json.Valid(line)
			}
		}
		if ndjson && len(docs) != lines {
			t.Fatalf("%d valid NDJSON lines, %d documents read:\n%s", lines, len(docs), strings.Join(got, "\n"))
		}
		// Any stream of documents encoding/json reads.
		var want [][]byte
		dec := json.NewDecoder(bytes.NewReader(data))
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err == io.EOF {
				break
			} else if err != nil {
				return
			}
			want = append(want, raw)
		}
		if !slices.EqualFunc(docs, want, bytes.Equal) {
			t.Fatalf("documents read: %q\nencoding/json reads: %q", docs, want)
		}
	})
}

// readFuzz reads rd over data to its end, checking each item with check
// and the invariants of FuzzReader; it returns a line describing each
// item, and the documents decoded.
func readFuzz(t *testing.T, rd *Reader, data []byte, check func(Item)) (items []string, docs [][]byte) {
	t.Helper()
	last, decoded := 0, 0
	// Every item needs a line or a record of at least two bytes.
	for count := 0; ; count++ {
		if count > len(data)+1 {
			t.Fatalf("more than %d items from %d bytes: the Reader does not end", count, len(data))
		}
		it, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		check(it)
		if rd.docs != decoded {
			decoded = rd.docs
			docs = append(docs, bytes.Clone(rd.lastDoc))
		}
		label, ok := strings.CutPrefix(it.Input, "fuzz:")
		if !ok {
			t.Fatalf("Input %q", it.Input)
		}
		if i := strings.IndexAny(label, "[#"); i >= 0 {
			label = label[:i]
		}
		n, err := strconv.Atoi(label)
		if err != nil || n < 1 || n < last {
			t.Fatalf("Input %q after line %d", it.Input, last)
		}
		last = n
		desc := it.Input + " " + it.Skipped
		if it.Err != nil {
			desc += " error: " + it.Err.Error()
		}
		if it.Notification == nil {
			items = append(items, desc)
			continue
		}
		items = append(items, desc+" "+it.Notification.Event.Type+" "+string(it.Notification.Raw))
		doc := rd.lastDoc
		off := int(rd.lastOff)
		switch {
		case rd.docs == 0 || off+len(doc) > len(data) || !bytes.Equal(data[off:off+len(doc)], doc):
			t.Fatalf("%s: a notification from %q, which is not in the input at %d", it.Input, doc, off)
		case !json.Valid(doc):
			t.Fatalf("%s: a notification from %q, which is not valid JSON", it.Input, doc)
		case len(doc) > rd.max:
			t.Fatalf("%s: a notification from a document of %d bytes, over the limit of %d", it.Input, len(doc), rd.max)
		case bytes.Count(data[:off], []byte("\n"))+1 != n:
			t.Fatalf("%s: a notification from a document at line %d", it.Input, bytes.Count(data[:off], []byte("\n"))+1)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("Next after the end = %v, want io.EOF", err)
	}
	return items, docs
}
