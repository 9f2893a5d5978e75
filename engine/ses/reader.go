package ses

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxDocument is the largest JSON document a Reader accepts (Lambda's
// invocation payload limit is 6 MB); a larger one is one Item with Err.
const MaxDocument = 8 << 20

// readSize is the size of a Reader's buffer until a document needs more,
// and how much more than its limit the buffer may grow to.
const readSize = 64 << 10

// Reader streams the inputs of one file.
//
// A file holds JSON documents (top-level values): one, possibly
// pretty-printed over many lines; many, one per line (NDJSON); many
// concatenated, with or without white space between them ({…}{…}, as cat
// makes of files that do not end with a newline); or any mix of these.
// Blank lines are ignored, and so is a UTF-8 byte-order mark at the very
// start of the input. Each document goes to AppendDecode: a top-level
// array gives one Item per element, a Lambda event one per record. An
// Item's Input is FILE:LINE, LINE being the line its document starts on
// (lines end with LF or CRLF).
//
// The Reader holds one document at a time, so its memory does not grow
// with the input. A document larger than MaxDocument (a top-level array
// counts as one document) is one Item with Err, at the line it starts on,
// giving its size and the lines it spans; none of it is decoded: the
// Reader scans it to its end without keeping it, and reading resumes
// right after it.
//
// Framing validates the JSON as it reads it (nesting deeper than 10,000
// is an error, as in encoding/json), so that broken input costs as little
// as possible. At the first syntax error the document ends as an Item
// with Err, saying what was expected at which line and column, and
// reading resumes:
//
//   - when the error is at the first non-blank byte of a line and that
//     byte is '{' or '[' (the next NDJSON line, where a line cut short
//     wanted ',' or '}'), at the start of that line; but when the value
//     just before that byte is an object or an array that itself begins a
//     line (a line cut short where a value was wanted took the next line
//     in as that value), at the start of that value's line instead,
//     unless the broken document is already larger than MaxDocument;
//   - else at the start of the next line. Lines that begin with '}', ']',
//     ',' or ':' cannot begin a document: they are skipped with the
//     broken one.
//
// A raw line end inside a string is a syntax error (a JSON string never
// spans lines), so a line cut inside a string costs that line only. A
// document that the input ends inside of is one Item with Err. Of a
// broken or oversized document, nothing is decoded but the lines read
// again as above.
type Reader struct {
	name string
	src  io.Reader
	max  int // the largest document: MaxDocument, smaller in tests

	buf     []byte // buf[:end] is the input from offset base on
	end     int
	pos     int   // the next byte to scan
	base    int64 // the input offset of buf[0]
	srcErr  error // what src returned with the last bytes it gave: io.EOF at the end
	bomRead bool  // whether the start was checked for a byte-order mark

	line    int   // the line of buf[pos], from 1
	lineOff int64 // the input offset of that line's first byte

	sc    scanner
	fault fault // the last syntax error

	inDoc   bool  // the scanner is inside a document
	docOff  int64 // the input offset of its first byte
	docLine int   // the line it starts on
	over    bool  // it is larger than max: its bytes are not kept

	pending []Item
	err     error // returned once pending is empty: io.EOF or a read error

	// The last document passed to AppendDecode, for tests: its input
	// offset and bytes (valid until the next document is framed), and how
	// many documents have been decoded.
	lastOff int64
	lastDoc []byte
	docs    int
}

// NewReader returns a Reader over r; name is the input's name in
// Item.Input ("-" reads as "stdin").
func NewReader(r io.Reader, name string) *Reader {
	if name == "-" || name == "" {
		name = "stdin"
	}
	return &Reader{name: name, src: r, max: MaxDocument, line: 1}
}

// Next returns the next item, or io.EOF after the last one. Any other
// error is a read error of the underlying reader; the items before it were
// all returned.
func (r *Reader) Next() (Item, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return Item{}, r.err
		}
		r.frame()
	}
	it := r.pending[0]
	r.pending[0] = Item{}
	r.pending = r.pending[1:]
	return it, nil
}

// frame reads up to the end of the next document and queues its items,
// or sets r.err at the end of the input.
func (r *Reader) frame() {
	for {
		if r.bomRead {
			switch r.scan() {
			case scanDoc:
				r.document()
				return
			case scanError:
				r.broken()
				return
			}
		}
		if r.srcErr != nil {
			r.atEnd()
			return
		}
		r.fill()
	}
}

// fill reads more input into buf, keeping the document being read (when
// it is not too large) and dropping what was scanned before it.
func (r *Reader) fill() {
	if r.buf == nil {
		r.buf = make([]byte, readSize)
	}
	if r.inDoc && !r.over && r.base+int64(r.pos)-r.docOff > int64(r.max) {
		r.over = true
	}
	keep := r.pos
	if r.inDoc && !r.over {
		keep = int(r.docOff - r.base)
	}
	if keep > 0 {
		r.end = copy(r.buf, r.buf[keep:r.end])
		r.pos -= keep
		r.base += int64(keep)
	}
	if r.end == len(r.buf) {
		// The document so far fills the buffer, and it is no larger than
		// max: grow the buffer, up to a little more than max.
		b := make([]byte, min(max(2*len(r.buf), 1), r.max+readSize))
		copy(b, r.buf[:r.end])
		r.buf = b
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.srcErr = err
		}
		if n > 0 || err != nil {
			break
		}
	}
	if r.srcErr == nil && r.end == r.pos {
		r.srcErr = io.ErrNoProgress
	}
	if !r.bomRead && (r.end >= 3 || r.srcErr != nil) {
		r.bomRead = true
		if r.base == 0 && r.end >= 3 && r.buf[0] == 0xEF && r.buf[1] == 0xBB && r.buf[2] == 0xBF {
			r.pos, r.lineOff = 3, 3
		}
	}
}

// document queues the items of the document that ends at pos.
func (r *Reader) document() {
	input := r.name + ":" + strconv.Itoa(r.docLine)
	size := r.base + int64(r.pos) - r.docOff
	over := r.tooLarge(r.pos)
	r.inDoc, r.over = false, false
	if over {
		lines := "line " + strconv.Itoa(r.docLine)
		if r.line != r.docLine {
			lines = fmt.Sprintf("lines %d to %d", r.docLine, r.line)
		}
		r.fail(input, fmt.Errorf("document larger than %d bytes (%d bytes, on %s)", r.max, size, lines))
		return
	}
	doc := r.buf[r.docOff-r.base : r.pos]
	r.lastOff, r.lastDoc = r.docOff, doc
	r.docs++
	r.pending = AppendDecode(r.pending[:0], input, doc)
}

// tooLarge reports whether the document being read holds more than max
// bytes before buf[i].
func (r *Reader) tooLarge(i int) bool {
	return r.over || r.base+int64(i)-r.docOff > int64(r.max)
}

// fail queues one Item with err for the document being read.
func (r *Reader) fail(input string, err error) {
	r.pending = append(r.pending[:0], Item{Input: input, Envelope: EnvelopeFile, Err: err})
}

// broken ends the document at the syntax error in r.fault and sets where
// reading resumes.
func (r *Reader) broken() {
	s, f := &r.sc, r.fault
	input := r.name + ":" + strconv.Itoa(r.docLine)
	msg := fmt.Sprintf("invalid JSON at line %d, column %d: %s", f.line, f.col, f.msg)
	over := r.tooLarge(r.pos)
	c := r.buf[r.pos]
	switch {
	case !f.first || f.off == r.docOff || (c != '{' && c != '['):
		s.state = sSkipLine
	case f.after && s.closedOK && s.closed.first && !over:
		// The document took a line in as the value a line cut short
		// wanted: read that line again.
		v := s.closed
		r.pos = int(v.off - r.base)
		r.line = v.line
		j := r.pos
		for j > 0 && (r.buf[j-1] == ' ' || r.buf[j-1] == '\t' || r.buf[j-1] == '\r') {
			j--
		}
		r.lineOff = r.base + int64(j)
		msg += fmt.Sprintf(" (line %d is read again as a document of its own)", v.line)
		s.state = sTop
	default:
		s.state = sTop
	}
	if over {
		msg = fmt.Sprintf("document larger than %d bytes from line %d, and %s", r.max, r.docLine, msg)
	}
	r.inDoc, r.over = false, false
	s.stack = s.stack[:0]
	r.fail(input, errors.New(msg))
}

// atEnd handles the end of the input, or a read error, once everything
// before it is scanned.
func (r *Reader) atEnd() {
	if !r.inDoc || r.srcErr != io.EOF {
		r.err = r.srcErr
		return
	}
	s := &r.sc
	if len(s.stack) == 0 {
		switch s.state {
		case sZero, sInt, sFrac, sExp:
			s.state = sTop
			r.document()
			return
		}
	}
	n := len(s.stack)
	brackets := strconv.Itoa(n) + " unclosed bracket"
	if n != 1 {
		brackets += "s"
	}
	var what string
	switch s.state {
	case sString, sEscape, sHex:
		what = "string"
	case sLiteral:
		what = "literal"
	case sMinus, sZero, sInt, sDot, sFrac, sExpMark, sExpSign, sExp:
		what = "number"
	}
	why := "(" + brackets + " at the end of the input)"
	switch {
	case what != "" && n > 0:
		why = "(the input ends inside a " + what + ", " + brackets + ")"
	case what != "":
		why = "(the input ends inside a " + what + ")"
	}
	msg := "invalid JSON: the document starting here never closes " + why
	if r.tooLarge(r.end) {
		msg = fmt.Sprintf("document larger than %d bytes from line %d, and %s", r.max, r.docLine, msg)
	}
	input := r.name + ":" + strconv.Itoa(r.docLine)
	r.inDoc, r.over = false, false
	s.state = sTop
	s.stack = s.stack[:0]
	r.fail(input, errors.New(msg))
}
