package ses

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// strBytes reads a string (the lexer is at its opening quote) and returns
// its decoded bytes. owned says whether they are a new buffer; if not,
// they are a slice of the input and must be copied to be kept.
func (l *lexer) strBytes() (s []byte, owned bool) {
	if l.i >= len(l.b) || l.b[l.i] != '"' {
		l.typeError("a string")
		return nil, false
	}
	l.i++
	start := l.i
	b := l.b
	for i := plain(b, start); i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			l.i = i + 1
			return b[start:i], false
		case c == '\\':
			l.i = i
			return l.unescape(start)
		case c < 0x20:
			l.i = i
			l.fail("invalid control character %q in string", c)
			return nil, false
		}
	}
	l.i = len(b)
	l.fail("unexpected end of JSON input in string")
	return nil, false
}

// unescape decodes the rest of a string that has escapes, from start (the
// first byte after the quote); l.i is at the first backslash.
func (l *lexer) unescape(start int) ([]byte, bool) {
	b := l.b
	// The escaped string is at least as long as its decoded bytes: find
	// its end first, so that the buffer is made once, to size.
	end := l.i
	for {
		end = plain(b, end)
		if end+1 >= len(b) || b[end] != '\\' {
			break
		}
		end += 2
	}
	out := make([]byte, 0, end-start)
	out = append(out, b[start:l.i]...)
	i := l.i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			l.i = i + 1
			return out, true
		case c < 0x20:
			l.i = i
			l.fail("invalid control character %q in string", c)
			return nil, false
		case c != '\\':
			// Copy the run up to the next quote, backslash or control.
			j := plain(b, i+1)
			out = append(out, b[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch b[i+1] {
		case '"', '\\', '/':
			out = append(out, b[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				l.i = i
				l.fail("invalid \\u escape in string")
				return nil, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by a low one is one rune;
				// anything else is U+FFFD, as encoding/json does.
				r2, ok2 := rune(-1), false
				if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2, ok2 = hex4(b, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			l.i = i
			l.fail("invalid escape \\%c in string", b[i+1])
			return nil, false
		}
		i += 2
	}
	l.i = len(b)
	l.fail("unexpected end of JSON input in string")
	return nil, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipStr reads and validates a string (the lexer is at its opening
// quote) without decoding it: skipping a value costs no copy. What is
// wrong with a string is said by strBytes, read again from its start.
func (l *lexer) skipStr() {
	i := l.i + 1
	for {
		i = skipString(l.b, i)
		switch {
		case i < len(l.b) && l.b[i] == '"':
			l.i = i + 1
			return
		case i+5 < len(l.b) && l.b[i] == '\\' && l.b[i+1] == 'u':
			if _, ok := hex4(l.b, i+2); ok {
				i += 6
				continue
			}
		}
		l.strBytes()
		return
	}
}

// plain returns the index of the first quote, backslash or control
// character of b from i (len(b) when there is none), eight bytes at a
// time where it can.
func plain(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		// A byte is zero in v when (v - ones) &^ v has its high bit.
		if ((x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs != 0 {
			break
		}
	}
	for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
		i++
	}
	return i
}
