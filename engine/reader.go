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
// on with the next one: when a document never closes, or closes as
// invalid JSON, the lines it gathered that start at column 0 with '{' are
// read again as documents of their own, so a line of NDJSON cut short
// does not take the lines after it down with it.
type Reader struct {
	name    string
	r       *bufio.Reader
	line    int      // lines read from r so far
	queue   []queued // lines given back, read again before r
	pending []Item
	buf     []byte
	lines   []queued // the lines gathered into buf after the first (offsets, not text)
	err     error
}

// queued is a line to read again, or, in Reader.lines, where a gathered
// line starts in Reader.buf (off) and its number.
type queued struct {
	text []byte
	off  int
	num  int
	err  error
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

// nextLine returns the next line (given back or read) and its number. The
// text is only valid until the next call.
func (r *Reader) nextLine() ([]byte, int, error) {
	if len(r.queue) > 0 {
		q := r.queue[0]
		r.queue[0] = queued{}
		r.queue = r.queue[1:]
		return q.text, q.num, q.err
	}
	line, err := r.readLine()
	return line, r.line, err
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
	for {
		line, num, err := r.nextLine()
		if err == errTooLong {
			return nil, num, err
		}
		if err != nil {
			return nil, 0, err
		}
		if len(bytes.TrimSpace(line)) > 0 {
			first, start = line, num
			break
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
	r.lines = r.lines[:0]
	for sc.depth > 0 {
		line, num, err := r.nextLine()
		switch {
		case err == io.EOF:
			return r.giveBack(start, fmt.Errorf("invalid JSON: the document starting here never closes (%d unclosed brackets at the end of the input)", sc.depth))
		case err == errTooLong:
			r.queue = append(r.queue, queued{num: num, err: err})
			return r.giveBack(start, fmt.Errorf("invalid JSON: the document starting here is not closed before line %d, which is too long", num))
		case err != nil:
			return nil, start, err
		case len(r.buf)+len(line)+1 > MaxDocument:
			r.queue = append(r.queue, queued{text: bytes.Clone(line), num: num})
			return r.giveBack(start, fmt.Errorf("invalid JSON: the document starting here is not closed within %d bytes", MaxDocument))
		}
		r.buf = append(r.buf, '\n')
		r.lines = append(r.lines, queued{off: len(r.buf), num: num})
		r.buf = append(r.buf, line...)
		sc.feed(line)
	}
	doc := bytes.TrimSpace(r.buf)
	if err := checkJSON(doc); err != nil {
		return r.giveBack(start, err)
	}
	return doc, start, nil
}

// giveBack ends a document that did not frame: from the first gathered
// line that starts at column 0 with '{', the gathered lines are read
// again, and the lines before it are the broken document; when there is
// no such line, the whole document is broken, as err says.
func (r *Reader) giveBack(start int, err error) ([]byte, int, error) {
	from := -1
	for i, l := range r.lines {
		if l.off < len(r.buf) && r.buf[l.off] == '{' {
			from = i
			break
		}
	}
	if from >= 0 {
		back := make([]queued, 0, len(r.lines)-from+len(r.queue))
		for i := from; i < len(r.lines); i++ {
			end := len(r.buf)
			if i+1 < len(r.lines) {
				end = r.lines[i+1].off - 1
			}
			back = append(back, queued{text: bytes.Clone(r.buf[r.lines[i].off:end]), num: r.lines[i].num})
		}
		r.queue = append(back, r.queue...)
		err = fmt.Errorf("invalid JSON: the document starting here is not closed before line %d", r.lines[from].num)
	}
	return nil, start, err
}

// checkJSON returns why b is not one valid JSON value, or nil.
func checkJSON(b []byte) error {
	l := lexer{b: b}
	l.skip()
	l.end()
	return l.err
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
