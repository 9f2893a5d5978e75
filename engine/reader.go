package engine

import (
	"bufio"
	"bytes"

	"fmt"
	"io"
	"strconv"
)

// MaxDocument is the largest JSON document a Reader accepts (Lambda's
// invocation payload limit is 6 MB); a larger one is an Item with Err.
const MaxDocument = 8 << 20

// Reader streams the notifications of one input: a single JSON document,
// possibly pretty-printed over many lines, or many documents, one per line
// (NDJSON), or any mix. It holds one document at a time, so its memory
// does not grow with the input.
//
// A document that is not valid JSON is an Item with Err, and reading goes
// on with the next one.
type Reader struct {
	name    string
	r       *bufio.Reader
	line    int // lines consumed so far
	pending []Item
	buf     []byte
	next    []byte // a line read ahead that starts a new document
	nextAt  int
	err     error
}

// NewReader returns a Reader over r; name is the input's name in
// Item.Input ("-" reads as "stdin").
func NewReader(r io.Reader, name string) *Reader {
	if name == "-" || name == "" {
		name = "stdin"
	}
	return &Reader{name: name, r: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next item, or io.EOF after the last one. Any other
// error is a read error of the underlying reader; the items before it were
// all returned.
func (r *Reader) Next() (Item, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return Item{}, r.err
		}
		doc, line, err := r.document()
		if err != nil && len(doc) == 0 && line == 0 {
			r.err = err
			continue
		}
		input := r.name + ":" + strconv.Itoa(line)
		if err != nil {
			r.pending = append(r.pending[:0], Item{Input: input, Envelope: EnvelopeFile, Err: err})
			continue
		}
		r.pending = AppendDecode(r.pending[:0], input, doc)
	}
	it := r.pending[0]
	r.pending[0] = Item{}
	r.pending = r.pending[1:]
	return it, nil
}

// readLine returns the next line without its end, or io.EOF. Lines longer
// than MaxDocument are cut, and the returned error says so.
func (r *Reader) readLine() ([]byte, error) {
	var long []byte
	for {
		chunk, err := r.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(long) < MaxDocument {
				long = append(long, chunk...)
			}
			continue
		}
		if len(chunk) == 0 && err != nil && long == nil {
			return nil, err
		}
		r.line++
		var line []byte
		if long != nil {
			line = append(long, chunk...)
		} else {
			line = chunk
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > MaxDocument {
			return line[:0], errTooLong
		}
		if err != nil && err != io.EOF {
			return line, err
		}
		return line, nil
	}
}

var errTooLong = fmt.Errorf("document larger than %d bytes", MaxDocument)

// document returns the next JSON document and the line it starts on. A
// document that cannot be framed or is not valid JSON comes back with an
// error and its line, and reading goes on after it.
func (r *Reader) document() ([]byte, int, error) {
	var first []byte
	var start int
	if r.next != nil {
		first, start, r.next = r.next, r.nextAt, nil
	} else {
		for {
			line, err := r.readLine()
			if err == errTooLong {
				return nil, r.line, err
			}
			if err != nil {
				return nil, 0, err
			}
			if len(bytes.TrimSpace(line)) > 0 {
				first, start = line, r.line
				break
			}
		}
	}
	// The common cases: one document per line, or a single-line file. A
	// line that opens and closes like an object is taken whole without
	// scanning it twice: decoding validates it.
	t := bytes.TrimSpace(first)
	if t[0] == '{' && t[len(t)-1] == '}' {
		return t, start, nil
	}
	var sc scanner
	sc.feed(first)
	if sc.depth == 0 {
		return t, start, nil
	}
	// A document over several lines: gather lines until it closes.
	r.buf = append(r.buf[:0], first...)
	for sc.depth > 0 {
		line, err := r.readLine()
		if err == io.EOF {
			return nil, start, fmt.Errorf("invalid JSON: the document starting here never closes (%d unclosed brackets at the end of the input)", sc.depth)
		}
		if err != nil {
			return nil, start, err
		}
		// A line that starts at column 0 with '{' and is a whole document
		// begins the next one, unless what is gathered so far can go on
		// with an object (it ends in '[', ',' or ':'): the gathered lines
		// were a broken document.
		if len(line) > 0 && line[0] == '{' && !expectsValue(r.buf) && validJSON(line) {
			r.next, r.nextAt = append([]byte(nil), line...), r.line
			return nil, start, fmt.Errorf("invalid JSON: the document starting here is not closed before line %d", r.line)
		}
		if len(r.buf)+len(line)+1 > MaxDocument {
			return nil, start, errTooLong
		}
		r.buf = append(r.buf, '\n')
		r.buf = append(r.buf, line...)
		sc.feed(line)
	}
	return bytes.TrimSpace(r.buf), start, nil
}

// expectsValue reports whether JSON text that ends like b can go on with
// a value.
func expectsValue(b []byte) bool {
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) == 0 {
		return false
	}
	switch b[len(b)-1] {
	case '[', ',', ':':
		return true
	}
	return false
}

// validJSON reports whether b is one valid JSON value.
func validJSON(b []byte) bool {
	l := lexer{b: b}
	l.skip()
	l.end()
	return l.err == nil
}

// scanner tracks bracket depth across lines, outside strings.
type scanner struct {
	depth            int
	inString, escape bool
}

func (s *scanner) feed(b []byte) {
	for _, c := range b {
		switch {
		case s.escape:
			s.escape = false
		case s.inString:
			switch c {
			case '\\':
				s.escape = true
			case '"':
				s.inString = false
			}
		case c == '"':
			s.inString = true
		case c == '{' || c == '[':
			s.depth++
		case c == '}' || c == ']':
			if s.depth > 0 {
				s.depth--
			}
		}
	}
	// A JSON string never spans lines: an open one at the end of a line is
	// broken, and the line end closes it so that framing recovers.
	s.inString, s.escape = false, false
}
