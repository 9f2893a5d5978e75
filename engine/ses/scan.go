package ses

import (
	"fmt"
	"strconv"
)

// scanState is where the scanner is in the JSON grammar.
type scanState uint8

// The states up to sAfter skip white space before their next byte.
const (
	sTop          scanState = iota // between documents
	sLineStart                     // at the start of a line after a broken document
	sValue                         // a value, after ':' or ','
	sValueOrClose                  // a value or ']', after '['
	sKeyOrClose                    // a key or '}', after '{'
	sKey                           // a key, after ','
	sColon                         // ':', after a key
	sAfter                         // ',' or the closing bracket, after a value
	sString                        // in a string
	sEscape                        // after a backslash in a string
	sHex                           // in the hex digits of \u
	sLiteral                       // in true, false or null
	sMinus                         // after a number's '-'
	sZero                          // after a number's leading 0
	sInt                           // in a number's integer digits
	sDot                           // after a number's '.'
	sFrac                          // in a number's fraction digits
	sExpMark                       // after a number's 'e' or 'E'
	sExpSign                       // after the exponent's sign
	sExp                           // in the exponent's digits
	sSkipLine                      // after a broken document, up to the end of the line
)

// scanner is the state of the framing: a validating JSON state machine
// with a stack of the open objects and arrays, that may stop at any byte
// and go on when more input comes.
type scanner struct {
	state scanState
	key   bool   // the string being read is an object key
	nl    bool   // a line ended since the last byte of a token
	lit   string // the literal being read
	n     int    // the bytes of lit read, or the hex digits of \u left
	stack []frame
	// closed is the last object or array that closed, when it was the
	// last value read (closedOK).
	closed   frame
	closedOK bool
}

// frame is an open object or array.
type frame struct {
	off   int64 // the input offset of its bracket
	line  int
	obj   bool
	first bool // the bracket is the first non-blank byte of its line
}

// scanResult is what scan stopped at.
type scanResult uint8

const (
	scanMore  scanResult = iota // the end of the buffered input
	scanDoc                     // the end of a document, at pos
	scanError                   // a syntax error, at pos, described in Reader.fault
)

// fault is a syntax error.
type fault struct {
	off       int64 // its input offset
	line, col int
	msg       string
	first     bool // it is at the first non-blank byte of its line
	after     bool // where ',' or a closing bracket was wanted
}

// scan runs the scanner over the buffered input from pos.
func (r *Reader) scan() scanResult {
	s := &r.sc
	b := r.buf[:r.end]
	i := r.pos
	for i < len(b) {
		c := b[i]
		if s.state <= sAfter {
			for c == ' ' || c == '\n' || c == '\t' || c == '\r' {
				if c == '\n' {
					r.line++
					r.lineOff = r.base + int64(i) + 1
					s.nl = true
				}
				i++
				if i == len(b) {
					r.pos = i
					return scanMore
				}
				c = b[i]
			}
		}
		ended := false // a value ended before b[i]
		switch s.state {
		case sTop, sValue, sValueOrClose:
			if s.state == sTop {
				r.inDoc, r.docOff, r.docLine = true, r.base+int64(i), r.line
			}
			s.closedOK = false
			switch {
			case c == '{' || c == '[':
				if len(s.stack) == maxNesting {
					return r.syntax(i, "nested more than "+strconv.Itoa(maxNesting)+" deep")
				}
				s.stack = append(s.stack, frame{off: r.base + int64(i), line: r.line, obj: c == '{', first: s.nl})
				s.state = sValueOrClose
				if c == '{' {
					s.state = sKeyOrClose
				}
			case c == '"':
				s.key, s.state = false, sString
			case c == 't':
				s.lit, s.n, s.state = "true", 1, sLiteral
			case c == 'f':
				s.lit, s.n, s.state = "false", 1, sLiteral
			case c == 'n':
				s.lit, s.n, s.state = "null", 1, sLiteral
			case c == '-':
				s.state = sMinus
			case c == '0':
				s.state = sZero
			case '1' <= c && c <= '9':
				s.state = sInt
			case c == ']' && s.state == sValueOrClose:
				ended = r.close()
			case s.state == sValueOrClose:
				return r.syntax(i, "want a value or ']', found "+quoteByte(c))
			default:
				return r.syntax(i, "want a value, found "+quoteByte(c))
			}
			s.nl = false
			i++
		case sKeyOrClose, sKey:
			switch {
			case c == '"':
				s.key, s.state = true, sString
			case c == '}' && s.state == sKeyOrClose:
				ended = r.close()
			case s.state == sKeyOrClose:
				return r.syntax(i, "want a string key or '}', found "+quoteByte(c))
			default:
				return r.syntax(i, "want a string key after ',', found "+quoteByte(c))
			}
			s.nl = false
			i++
		case sColon:
			if c != ':' {
				return r.syntax(i, "want ':' after an object key, found "+quoteByte(c))
			}
			s.state = sValue
			s.nl = false
			i++
		case sAfter:
			obj := s.stack[len(s.stack)-1].obj
			switch {
			case c == ',' && obj:
				s.state = sKey
			case c == ',':
				s.state = sValue
			case c == '}' && obj, c == ']' && !obj:
				ended = r.close()
			case obj:
				return r.syntax(i, "want ',' or '}' after an object member, found "+quoteByte(c))
			default:
				return r.syntax(i, "want ',' or ']' after an array element, found "+quoteByte(c))
			}
			s.nl = false
			i++
		case sString:
			i = skipString(b, i)
			if i == len(b) {
				r.pos = i
				return scanMore
			}
			c = b[i]
			switch {
			case c == '"':
				if s.key {
					s.state = sColon
				} else {
					ended = true
				}
			case c == '\\':
				s.state = sEscape
			case c == '\n':
				return r.syntax(i, "the line ends inside a string (a JSON string never spans lines)")
			default:
				return r.syntax(i, "invalid control character "+quoteByte(c)+" in a string")
			}
			i++
		case sEscape:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.state = sString
			case 'u':
				s.n, s.state = 4, sHex
			default:
				return r.syntax(i, "invalid escape: want one of \"\\/bfnrtu after a backslash, found "+quoteByte(c))
			}
			i++
		case sHex:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return r.syntax(i, "invalid \\u escape: want a hex digit, found "+quoteByte(c))
			}
			if s.n--; s.n == 0 {
				s.state = sString
			}
			i++
		case sLiteral:
			if c != s.lit[s.n] {
				return r.syntax(i, "invalid literal: want "+quoteByte(s.lit[s.n])+" of "+s.lit+", found "+quoteByte(c))
			}
			i++
			if s.n++; s.n == len(s.lit) {
				ended = true
			}
		case sMinus:
			switch {
			case c == '0':
				s.state = sZero
			case '1' <= c && c <= '9':
				s.state = sInt
			default:
				return r.syntax(i, "invalid number: want a digit after '-', found "+quoteByte(c))
			}
			i++
		case sInt, sFrac, sExp:
			for '0' <= c && c <= '9' {
				i++
				if i == len(b) {
					r.pos = i
					return scanMore
				}
				c = b[i]
			}
			switch {
			case c == '.' && s.state == sInt:
				s.state = sDot
				i++
			case (c == 'e' || c == 'E') && s.state != sExp:
				s.state = sExpMark
				i++
			default:
				ended = true
			}
		case sZero:
			switch c {
			case '.':
				s.state = sDot
				i++
			case 'e', 'E':
				s.state = sExpMark
				i++
			default:
				ended = true
			}
		case sDot:
			if c < '0' || c > '9' {
				return r.syntax(i, "invalid number: want a digit after '.', found "+quoteByte(c))
			}
			s.state = sFrac
			i++
		case sExpMark:
			switch {
			case c == '+' || c == '-':
				s.state = sExpSign
			case '0' <= c && c <= '9':
				s.state = sExp
			default:
				return r.syntax(i, "invalid number: want a digit or a sign in the exponent, found "+quoteByte(c))
			}
			i++
		case sExpSign:
			if c < '0' || c > '9' {
				return r.syntax(i, "invalid number: want a digit in the exponent, found "+quoteByte(c))
			}
			s.state = sExp
			i++
		case sSkipLine:
			for c != '\n' {
				i++
				if i == len(b) {
					r.pos = i
					return scanMore
				}
				c = b[i]
			}
			s.state = sLineStart // the white space loop counts the line
		case sLineStart:
			switch c {
			case '}', ']', ',', ':':
				s.state = sSkipLine
			default:
				s.state = sTop
			}
		}
		if ended {
			if len(s.stack) == 0 {
				s.state = sTop
				r.pos = i
				return scanDoc
			}
			s.state = sAfter
		}
	}
	r.pos = i
	return scanMore
}

// skipString returns the index of the first byte from i on that ends a
// string or needs a closer look: a quote, a control character, a
// backslash but one of a two-byte escape, or len(b). Strings are most of
// the input, so it reads eight bytes at a time where it can.
func skipString(b []byte, i int) int {
	for {
		i = plain(b, i)
		if i+1 >= len(b) || b[i] != '\\' {
			return i
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		default:
			return i
		}
	}
}

// close pops the object or array that ends at the current byte and
// reports that a value ended.
func (r *Reader) close() bool {
	s := &r.sc
	s.closed = s.stack[len(s.stack)-1]
	s.closedOK = true
	s.stack = s.stack[:len(s.stack)-1]
	return true
}

// syntax records a syntax error at buf[i] and stops the scan there.
func (r *Reader) syntax(i int, msg string) scanResult {
	off := r.base + int64(i)
	r.pos = i
	r.fault = fault{
		off: off, line: r.line, col: int(off-r.lineOff) + 1, msg: msg,
		first: r.sc.nl, after: r.sc.state == sAfter,
	}
	return scanError
}

// quoteByte names a byte in an error message.
func quoteByte(c byte) string {
	switch {
	case c == '\n':
		return "the end of the line"
	case c < 0x80:
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// validJSON reports whether b is one valid JSON value.
func validJSON(b []byte) bool {
	l := lexer{b: b}
	l.skip()
	l.end()
	return l.err == nil
}
