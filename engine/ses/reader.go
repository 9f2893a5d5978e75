package ses

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// maxDocument is the largest JSON document a Reader accepts (Lambda's
// invocation payload limit is 6 MB); a larger one is one Item with Err.
const maxDocument = 8 << 20

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
// start of the input. Each document goes to appendDecode: a top-level
// array gives one Item per element, a Lambda event one per record. An
// Item's Input is FILE:LINE, LINE being the line its document starts on
// (lines end with LF or CRLF).
//
// The Reader holds one document at a time, so its memory does not grow
// with the input. A document larger than maxDocument (a top-level array
// counts as one document) is one Item with Err, at the line it starts on,
// giving its size and the lines it spans; none of it is decoded: the
// Reader reads it to its end token by token without keeping it, and
// reading resumes right after it. Of such a document the Reader holds one
// JSON value at a time: a single string or number longer than twice
// maxDocument (and one read) ends it as broken, as below.
//
// Framing reads the JSON with jsontext, which validates it as it goes
// (nesting deeper than 10,000 is an error); names given twice and invalid
// UTF-8 are left to appendDecode, which refuses them, so that such a
// document is one Item with Err however it is laid out. At the first
// syntax error the document ends as an Item with Err, saying what was
// wrong at which line and column, and reading resumes:
//
//   - when the error is at the first non-blank byte of a line and that
//     byte is '{' or '[' (the next NDJSON line, where a line cut short
//     wanted ',' or '}'), at that byte; but when the value just before it
//     is an object or an array that itself begins a line (a line cut short
//     where a value was wanted took the next line in as that value), at
//     the start of that value instead, unless the broken document is
//     already larger than maxDocument;
//   - else at the start of the next line. Lines that begin with '}', ']',
//     ',' or ':' cannot begin a document: they are skipped with the
//     broken one.
//
// A raw line end inside a string is a syntax error (a JSON string never
// spans lines), so a line cut inside a string costs that line only. A
// document that the input ends inside of is one Item with Err; when the
// last value it read is an object or an array that begins a line and
// nothing but white space follows it, that value is read again as a
// document of its own, as above (a line cut short just before the last
// line of a file). Of a broken or oversized document, nothing is decoded
// but the lines read again.
type Reader struct {
	name string
	max  int // the largest document: maxDocument, smaller in tests

	in      input
	dec     *jsontext.Decoder
	decAt   int64 // the input offset of the first byte the decoder read
	end     int64 // the input offset of the end of the last document, or where reading resumed
	started bool
	open    []int64  // the offsets of the open brackets of a document read token by token
	doc     document // the top level of the last document that is an object

	pending []Item
	err     error // returned once pending is empty: io.EOF or a read error

	// The last document passed to appendDecode, for tests: its input
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
	return &Reader{name: name, max: maxDocument, in: input{src: r, line: 1}}
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

// frame reads the next document and queues its items, or sets r.err at
// the end of the input. A document is first read whole, which is fast;
// one that is too large for that, broken or cut short is read again token
// by token.
func (r *Reader) frame() {
	if !r.started {
		r.start()
	}
	r.in.limit = r.end + int64(r.max) + readSize
	if r.dec.PeekKind() == '{' {
		r.object()
		return
	}
	v, err := r.dec.ReadValue()
	switch {
	case err == nil:
		end := r.decAt + r.dec.InputOffset()
		start := end - int64(len(v))
		r.in.moveTo(start)
		r.document(start, end, r.in.line, nil)
	case err == io.EOF:
		r.err = io.EOF
	case r.readError(err):
		r.err = r.in.err
	default:
		r.tokens()
	}
}

// object reads a document that is an object: whole, in one pass that
// frames it and reads its top level as appendDecode does, names given
// twice and invalid UTF-8 refused. One that this pass refuses is read
// again token by token, as syntax only, so that it is framed as any other
// (and appendDecode says what is wrong with it).
func (r *Reader) object() {
	start, _ := r.in.skipSpace(r.end)
	d := &r.doc
	d.reset(start - r.decAt)
	err := json.UnmarshalDecode(r.dec, d, jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	switch {
	case err == nil:
		end := r.decAt + r.dec.InputOffset()
		r.in.moveTo(start)
		r.document(start, end, r.in.line, d)
	case r.readError(err):
		r.err = r.in.err
	default:
		r.tokens()
	}
}

// start skips a byte-order mark at the start of the input.
func (r *Reader) start() {
	r.started = true
	for len(r.in.buf) < 3 && r.in.fill() > 0 {
	}
	var from int64
	if bytes.HasPrefix(r.in.buf, []byte("\xEF\xBB\xBF")) {
		from = 3
		r.in.at, r.in.lineStart = from, from
	}
	r.dec = jsontext.NewDecoder(&r.in, framing()...)
	r.resetAt(from)
}

// framing returns the options of the framing decoder: syntax only, the
// checks of meaning being appendDecode's.
func framing() []jsontext.Options {
	return []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}
}

// resetAt makes the decoder read on from input offset off.
func (r *Reader) resetAt(off int64) {
	r.end, r.decAt = off, off
	r.in.keep, r.in.fed = off, off
	r.dec.Reset(&r.in, framing()...)
}

// readError reports whether err is a read error of the underlying reader.
func (r *Reader) readError(err error) bool {
	return r.in.err != nil && r.in.err != io.EOF && errors.Is(err, r.in.err)
}

// tokens reads a document token by token from its first byte, for what
// reading it whole could not: a document too large to hold (read to its
// end without keeping it), a broken one or one cut short (to say where,
// and where reading resumes).
func (r *Reader) tokens() {
	start, ok := r.in.skipSpace(r.end)
	if !ok {
		// White space longer than the limit: read on after it.
		r.resetAt(r.in.fed)
		return
	}
	r.resetAt(start)
	r.in.full = true
	defer func() { r.in.full = false }()
	r.in.moveTo(start)
	line := r.in.line
	open := r.open[:0]
	closed := int64(-1) // the offset of the value the last token closed
	over := false
	tokEnd := start
	for {
		r.in.limit = tokEnd + r.maxValue()
		tok, err := r.dec.ReadToken()
		if err != nil {
			r.open = open
			if !over && r.in.end()-start > int64(r.max) && errors.Is(err, io.ErrUnexpectedEOF) {
				over = true
			}
			r.broken(err, fragment{start: start, line: line, tokEnd: tokEnd, closed: closed, open: len(open), over: over})
			return
		}
		tokEnd = r.decAt + r.dec.InputOffset()
		closed = -1
		switch tok.Kind() {
		case '{', '[':
			open = append(open, tokEnd-1)
		case '}', ']':
			closed = open[len(open)-1]
			open = open[:len(open)-1]
		}
		if !over && tokEnd-start > int64(r.max) {
			over = true
		}
		if over {
			r.in.keep = tokEnd
		}
		if len(open) == 0 {
			r.open = open
			r.document(start, tokEnd, line, nil)
			return
		}
	}
}

// maxValue is the most a document read token by token may hold past its
// last token: a value, with the white space before it, of twice the
// largest document and one read.
func (r *Reader) maxValue() int64 {
	return 2*int64(r.max) + readSize
}

// fragment is what tokens read of a broken document.
type fragment struct {
	start, line int64 // where the document starts, and its line
	tokEnd      int64 // the end of the last token read
	closed      int64 // the offset of the value the last token closed, or -1
	open        int   // how many brackets are open
	over        bool  // the document is larger than the limit
}

// document queues the items of the document at input offsets start to
// end, which starts on line; d is its top level when it was read
// already, else nil.
func (r *Reader) document(start, end, line int64, d *document) {
	input := r.name + ":" + strconv.FormatInt(line, 10)
	r.end, r.in.keep = end, end
	if size := end - start; size > int64(r.max) {
		lines := "line " + strconv.FormatInt(line, 10)
		if last, _ := r.in.lineAt(end); last != line {
			lines = fmt.Sprintf("lines %d to %d", line, last)
		}
		r.fail(input, fmt.Errorf("document larger than %d bytes (%d bytes, on %s)", r.max, size, lines))
		return
	}
	doc := r.in.bytes(start, end)
	r.lastOff, r.lastDoc = start, doc
	r.docs++
	if d == nil {
		r.pending = appendDecode(r.pending[:0], input, doc)
		return
	}
	d.doc = doc
	r.pending = r.pending[:0]
	d.items(input, func(it Item) bool {
		r.pending = append(r.pending, it)
		return true
	})
}

// fail queues one Item with err for the document being read.
func (r *Reader) fail(input string, err error) {
	r.pending = append(r.pending[:0], Item{Input: input, Envelope: EnvelopeFile, Err: err})
}

// broken ends a document that ended in err, reading it token by token,
// and sets where reading resumes.
func (r *Reader) broken(err error, f fragment) {
	if r.readError(err) {
		r.err = r.in.err
		return
	}
	input := r.name + ":" + strconv.FormatInt(f.line, 10)
	prefix := ""
	if f.over {
		prefix = fmt.Sprintf("document larger than %d bytes from line %d, and ", r.max, f.line)
	}
	// The last value read is an object or an array that begins a line,
	// and nothing but white space follows it up to off: a line cut short
	// took it in, and it is read again on its own.
	again := func(off int64) bool {
		return f.closed >= 0 && !f.over && r.in.onlySpace(f.tokEnd, off) && r.in.firstOnLine(f.closed, f.start)
	}
	readAgain := func(msg string) {
		line, _ := r.in.lineAt(f.closed)
		r.fail(input, fmt.Errorf("%s (line %d is read again as a document of its own)", msg, line))
		r.resetAt(f.closed)
	}

	if errors.Is(err, errTooLong) {
		line, col := r.in.lineCol(f.tokEnd)
		r.fail(input, fmt.Errorf("document larger than %d bytes from line %d, and invalid JSON at line %d, column %d: a value longer than %d bytes",
			r.max, f.line, line, col, r.maxValue()))
		r.resync(f.tokEnd)
		return
	}

	serr, ok := errors.AsType[*jsontext.SyntacticError](err)
	if !ok || errors.Is(err, io.ErrUnexpectedEOF) {
		msg := prefix + "invalid JSON: the document starting here never closes " + r.cutShort(f)
		if end := r.in.end(); again(end) {
			readAgain(msg)
			return
		}
		r.fail(input, errors.New(msg))
		r.resetAt(r.in.end())
		return
	}

	off := r.decAt + serr.ByteOffset
	line, col := r.in.lineCol(off)
	msg := fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, serr.Err)
	c := r.in.byteAt(off)
	if errors.Is(serr.Err, jsontext.ErrNonStringName) {
		msg += ", found " + quoteByte(c)
	}
	switch {
	case off == f.start || (c != '{' && c != '[') || !r.in.firstOnLine(off, r.in.keep):
		r.fail(input, errors.New(prefix+msg))
		r.resync(off)
	case again(off):
		readAgain(msg)
	default:
		r.fail(input, errors.New(prefix+msg))
		r.resetAt(off)
	}
}

// cutShort says how a document the input ends inside of is cut short.
func (r *Reader) cutShort(f fragment) string {
	brackets := strconv.Itoa(f.open) + " unclosed bracket"
	if f.open != 1 {
		brackets += "s"
	}
	var what string
	switch r.in.afterDelimiter(f.tokEnd) {
	case '"':
		what = "string"
	case 't', 'f', 'n':
		what = "literal"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		what = "number"
	}
	switch {
	case what != "" && f.open > 0:
		return "(the input ends inside a " + what + ", " + brackets + ")"
	case what != "":
		return "(the input ends inside a " + what + ")"
	}
	return "(" + brackets + " at the end of the input)"
}

// resync makes reading resume after the broken line holding input offset
// off, or ends it.
func (r *Reader) resync(off int64) {
	next, ok := r.in.nextLine(off)
	if !ok && r.in.err != io.EOF {
		r.err = r.in.err
		return
	}
	r.resetAt(next)
}

// quoteByte names a byte in an error message.
func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// errTooLong is what input gives the decoder for a byte past its limit.
var errTooLong = errors.New("value too long")

// input is the input of a Reader: its bytes from keep on (and from the
// start of the line cursor), read from src, and given to the decoder up
// to limit. Offsets are from the start of the input.
type input struct {
	src  io.Reader
	err  error  // what src returned last: io.EOF at the end
	buf  []byte // the bytes from offset base on
	base int64

	fed   int64 // the next byte the decoder reads
	limit int64 // the decoder gets no byte from here on, but errTooLong
	keep  int64 // the bytes from here on are kept
	// full makes each Read fill its buffer (up to limit or the end of the
	// input), so that the decoder sees the same bytes at each step
	// however src cuts them: what it says of an error then depends on the
	// input only.
	full bool

	// The line cursor: the line of offset at, and the offset it starts at.
	at, line, lineStart int64
}

// Read gives the decoder the next bytes.
func (in *input) Read(p []byte) (int, error) {
	if in.fed >= in.limit {
		return 0, errTooLong
	}
	want := in.fed + 1
	if in.full {
		want = min(in.fed+int64(len(p)), in.limit)
	}
	for in.end() < want {
		if in.fill() == 0 {
			if in.fed == in.end() {
				return 0, in.err
			}
			break
		}
	}
	b := in.buf[in.fed-in.base:]
	b = b[:min(int64(len(b)), in.limit-in.fed)]
	n := copy(p, b)
	in.fed += int64(n)
	return n, nil
}

// end returns the offset of the end of what was read from src.
func (in *input) end() int64 {
	return in.base + int64(len(in.buf))
}

// fill reads more of src and returns how many bytes it read: 0 at the end
// of the input or on a read error (in err). When buf is full, the bytes
// before keep make room first; then it grows, within limit.
func (in *input) fill() int {
	if in.err != nil {
		return 0
	}
	if len(in.buf) == cap(in.buf) && in.keep > in.base {
		if in.at < in.keep {
			in.moveTo(in.keep)
		}
		n := copy(in.buf, in.buf[in.keep-in.base:])
		in.buf = in.buf[:n]
		in.base = in.keep
	}
	if len(in.buf) == cap(in.buf) {
		size := 2 * cap(in.buf)
		if size == 0 {
			size = readSize
		}
		if lim := int(in.limit-in.base) + readSize; size > lim {
			size = max(lim, len(in.buf)+readSize)
		}
		b := make([]byte, len(in.buf), size)
		copy(b, in.buf)
		in.buf = b
	}
	for range 100 {
		n, err := in.src.Read(in.buf[len(in.buf):cap(in.buf)])
		in.buf = in.buf[:len(in.buf)+n]
		if err != nil {
			in.err = err
		}
		if n > 0 || err != nil {
			return n
		}
	}
	in.err = io.ErrNoProgress
	return 0
}

// bytes returns the input from offset start to end.
func (in *input) bytes(start, end int64) []byte {
	return in.buf[start-in.base : end-in.base]
}

// byteAt returns the byte at offset off, or 0 past the end.
func (in *input) byteAt(off int64) byte {
	if off >= in.end() {
		return 0
	}
	return in.buf[off-in.base]
}

// lineAt returns the line of offset off, which is at or after the line
// cursor, and the offset that line starts at.
func (in *input) lineAt(off int64) (line, start int64) {
	b := in.bytes(in.at, off)
	line, start = in.line+int64(bytes.Count(b, []byte{'\n'})), in.lineStart
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		start = in.at + int64(i) + 1
	}
	return line, start
}

// lineCol returns the line and column (in bytes, from 1) of offset off.
func (in *input) lineCol(off int64) (line, col int64) {
	line, start := in.lineAt(off)
	return line, off - start + 1
}

// moveTo moves the line cursor on to offset off.
func (in *input) moveTo(off int64) {
	if off > in.at {
		in.line, in.lineStart = in.lineAt(off)
		in.at = off
	}
}

// isSpace reports whether c is JSON white space.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// skipSpace returns the offset of the first byte from off on, among those
// given to the decoder, that is not white space; false when there is none.
func (in *input) skipSpace(off int64) (int64, bool) {
	for ; off < in.fed; off++ {
		if !isSpace(in.buf[off-in.base]) {
			return off, true
		}
	}
	return off, false
}

// onlySpace reports whether the bytes from offset from to to are all
// white space.
func (in *input) onlySpace(from, to int64) bool {
	for _, c := range in.bytes(from, to) {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// firstOnLine reports whether the byte at offset off is the first one of
// its line that is not blank, looking back no further than offset lower
// (whose byte is not blank).
func (in *input) firstOnLine(off, lower int64) bool {
	for i := off - 1; i >= lower; i-- {
		switch in.buf[i-in.base] {
		case '\n':
			return true
		case ' ', '\t', '\r':
		default:
			return false
		}
	}
	return false
}

// afterDelimiter returns the first byte from offset off on that is
// neither white space nor a ',' or ':' before it, or 0.
func (in *input) afterDelimiter(off int64) byte {
	delim := false
	for _, c := range in.bytes(off, in.end()) {
		switch {
		case isSpace(c):
		case (c == ',' || c == ':') && !delim:
			delim = true
		default:
			return c
		}
	}
	return 0
}

// nextLine returns where reading resumes after a broken line, the one
// holding offset off: the first byte that is not white space after the
// line's end, skipping too each line whose first such byte is '}', ']',
// ',' or ':', which cannot begin a document. It reads src as it needs,
// without keeping what it has passed, and reports false at the end of
// the input.
func (in *input) nextLine(off int64) (int64, bool) {
	for {
		for {
			b := in.bytes(off, in.end())
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				off += int64(i) + 1
				break
			}
			off = in.end()
			in.keep = off
			if in.fill() == 0 {
				return off, false
			}
		}
		for {
			for ; off < in.end() && isSpace(in.buf[off-in.base]); off++ {
			}
			if off < in.end() {
				break
			}
			in.keep = off
			if in.fill() == 0 {
				return off, false
			}
		}
		switch in.buf[off-in.base] {
		case '}', ']', ',', ':':
			continue
		}
		return off, true
	}
}
