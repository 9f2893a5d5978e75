package ses

import (
	"fmt"
	"strconv"
	"unsafe"
)

// lexer is a small validating pull parser for JSON. sesrouter decodes
// every notification through it: it reads SNS envelopes and SES JSON about
// four times faster than encoding/json's reflection, in one pass that both
// validates and extracts, and it matches keys exactly (encoding/json
// matches them case-insensitively, and SNS's "Message" is not SES's
// "message").
//
// It accepts exactly the JSON that encoding/json.Valid accepts (a fuzz
// test holds it to that), with one difference: invalid UTF-8 inside
// strings is kept as it is instead of being replaced by U+FFFD.
//
// The first error stops it: every method then does nothing, and err says
// where and what.
//
// The lexer never writes to b, so that b may be the bytes of a string
// (readOnlyBytes).
type lexer struct {
	b []byte
	// s, when set, holds the same text as b: strings without escapes are
	// then slices of it, not copies (one allocation for a whole
	// notification instead of one per field).
	s   string
	i   int
	err error
	// depth of nested objects and arrays, bounded like encoding/json's.
	depth int
	// key is the key of the value being read, for error messages.
	keyFrom, keyTo int
}

const maxNesting = 10000

// readOnlyBytes returns the bytes of s without copying them, for a lexer
// (which only reads them): decoding an SES message that came as a string
// (an SNS Message) costs no copy of it.
func readOnlyBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func (l *lexer) fail(format string, args ...any) {
	if l.err == nil {
		msg := fmt.Sprintf(format, args...)
		if l.keyTo > l.keyFrom {
			msg = fmt.Sprintf("%s (in the value of %q)", msg, l.b[l.keyFrom:l.keyTo])
		}
		l.err = fmt.Errorf("invalid JSON at byte %d: %s", l.i, msg)
	}
	l.i = len(l.b)
}

// typeError reports a value of the wrong JSON type.
func (l *lexer) typeError(want string) {
	if l.err != nil {
		return
	}
	got := "end of input"
	if l.i < len(l.b) {
		got = "a JSON " + jsonKind(l.b[l.i])
		if l.b[l.i] == '"' {
			got = "a JSON string"
		}
	}
	key := "a value"
	if l.keyTo > l.keyFrom {
		key = strconv.Quote(string(l.b[l.keyFrom:l.keyTo]))
	}
	l.err = fmt.Errorf("%s is %s, want %s", key, got, want)
	l.i = len(l.b)
}

func (l *lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (l *lexer) peek() byte {
	l.ws()
	if l.i < len(l.b) {
		return l.b[l.i]
	}
	return 0
}

// end checks that nothing but white space follows the top-level value.
func (l *lexer) end() {
	if l.err != nil {
		return
	}
	if c := l.peek(); l.i < len(l.b) {
		l.keyFrom, l.keyTo = 0, 0
		l.fail("invalid character %q after top-level value", c)
	}
}

// null consumes a null and reports whether there was one.
func (l *lexer) null() bool {
	if l.peek() == 'n' {
		l.literal("null")
		return true
	}
	return false
}

func (l *lexer) literal(word string) {
	if len(l.b)-l.i >= len(word) && string(l.b[l.i:l.i+len(word)]) == word {
		l.i += len(word)
		return
	}
	l.fail("invalid literal, want %s", word)
}

// object reads an object, calling member for each key; member must read
// the value (with skip if it has no use for it). A null reads as an empty
// object. It reports whether an object (or null) was there.
func (l *lexer) object(member func(key []byte)) bool {
	switch l.peek() {
	case 'n':
		l.literal("null")
		return true
	case '{':
	default:
		l.typeError("an object")
		return false
	}
	if l.depth++; l.depth > maxNesting {
		l.fail("nested too deeply")
		return false
	}
	l.i++
	if l.peek() == '}' {
		l.i++
		l.depth--
		return true
	}
	outerFrom, outerTo := l.keyFrom, l.keyTo
	for l.err == nil {
		if l.peek() != '"' {
			l.fail("want a string key")
			break
		}
		from := l.i + 1
		key, _ := l.strBytes()
		to := l.i - 1
		if l.peek() != ':' {
			l.fail("want ':' after object key")
			break
		}
		l.i++
		if len(key) == to-from { // no escapes: the key is in l.b
			l.keyFrom, l.keyTo = from, to
		}
		member(key)
		l.keyFrom, l.keyTo = outerFrom, outerTo
		switch l.peek() {
		case ',':
			l.i++
			continue
		case '}':
			l.i++
			l.depth--
			return true
		default:
			l.fail("want ',' or '}' after object value")
		}
	}
	return false
}

// array reads an array, calling elem for each element; elem must read it.
// A null reads as an empty array.
func (l *lexer) array(elem func()) bool {
	switch l.peek() {
	case 'n':
		l.literal("null")
		return true
	case '[':
	default:
		l.typeError("an array")
		return false
	}
	if l.depth++; l.depth > maxNesting {
		l.fail("nested too deeply")
		return false
	}
	l.i++
	if l.peek() == ']' {
		l.i++
		l.depth--
		return true
	}
	for l.err == nil {
		elem()
		switch l.peek() {
		case ',':
			l.i++
		case ']':
			l.i++
			l.depth--
			return true
		default:
			l.fail("want ',' or ']' after array element")
		}
	}
	return false
}

// str reads a string; null reads as "". Any other value is an error
// naming the field: a notificationType of 5 is not the type "5".
func (l *lexer) str() string {
	switch c := l.peek(); {
	case c == '"':
		start := l.i + 1
		b, owned := l.strBytes()
		switch {
		case owned && len(b) > 0:
			// A buffer of its own, which nothing else holds or changes:
			// the string is made of it, not copied from it.
			return unsafe.String(unsafe.SliceData(b), len(b))
		case !owned && l.s != "" && l.err == nil:
			return l.s[start : start+len(b)]
		}
		return string(b)
	case c == 'n':
		l.literal("null")
		return ""
	}
	l.typeError("a string")
	return ""
}

// strs reads an array of strings, a single string, or null.
func (l *lexer) strs() []string {
	switch l.peek() {
	case '"':
		return []string{l.str()}
	case 'n':
		l.literal("null")
		return nil
	}
	out := []string{}
	l.array(func() { out = append(out, l.str()) })
	return out
}

// strMap reads an object of string lists (mail.tags, click.linkTags).
func (l *lexer) strMap() map[string][]string {
	if l.null() {
		return nil
	}
	m := map[string][]string{}
	l.object(func(k []byte) { m[string(k)] = l.strs() })
	return m
}

// boolish reads true, false, "true", "false" or null.
func (l *lexer) boolish() bool {
	switch l.peek() {
	case 't':
		l.literal("true")
		return true
	case 'f':
		l.literal("false")
		return false
	case 'n':
		l.literal("null")
		return false
	case '"':
		start := l.i
		switch s := l.str(); s {
		case "true", "True", "TRUE":
			return true
		case "false", "False", "FALSE", "":
			return false
		}
		l.i = start
	}
	l.typeError("a boolean")
	return false
}

// number reads a number, a string holding one, or null (0).
func (l *lexer) number() float64 {
	switch c := l.peek(); {
	case c == 'n':
		l.literal("null")
		return 0
	case c == '"':
		start := l.i
		s := l.str()
		if s == "" {
			return 0
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			l.i = start
			l.typeError("a number")
		}
		return f
	case c == '-' || (c >= '0' && c <= '9'):
		start := l.i
		l.num()
		f, _ := strconv.ParseFloat(string(l.b[start:l.i]), 64)
		return f
	}
	l.typeError("a number")
	return 0
}

// raw reads any value and returns its bytes (a slice of the input).
func (l *lexer) raw() []byte {
	l.ws()
	start := l.i
	l.skip()
	if l.err != nil {
		return nil
	}
	return l.b[start:l.i]
}

// skip reads and validates any value.
func (l *lexer) skip() {
	switch c := l.peek(); {
	case c == '{':
		l.object(func([]byte) { l.skip() })
	case c == '[':
		l.array(l.skip)
	case c == '"':
		l.skipStr()
	case c == 't':
		l.literal("true")
	case c == 'f':
		l.literal("false")
	case c == 'n':
		l.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		l.num()
	case l.i >= len(l.b):
		l.fail("unexpected end of JSON input")
	default:
		l.fail("invalid character %q looking for beginning of value", c)
	}
}

// num reads a number as JSON's grammar has it.
func (l *lexer) num() {
	b, i := l.b, l.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		l.i = i
		l.fail("invalid number")
		return
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			l.i = i
			l.fail("invalid number: want a digit after '.'")
			return
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			l.i = i
			l.fail("invalid number: want a digit in the exponent")
			return
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	l.i = i
}
