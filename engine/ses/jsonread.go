package ses

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The decoders read JSON with github.com/go-json-experiment/json and its
// jsontext package, with their defaults: member names match exactly (SNS's
// "Message" is not "message"), a member name given twice in one object is
// an error at every level, and so are invalid UTF-8 and nesting deeper
// than 10,000. This file holds what they share: small readers for the
// loose spots of SES's JSON, and the words errors are reported in.

// kindError is a JSON value of a kind the decoder cannot take there.
type kindError struct {
	name string        // the member, when the reader knows it
	got  jsontext.Kind // the kind found
	want string        // "a string", "an object", ...
}

func (e *kindError) Error() string {
	name := e.name
	if name == "" {
		name = "a value"
	} else {
		name = strconv.Quote(name)
	}
	return name + " is a JSON " + kindName(e.got) + ", want " + e.want
}

// rangeError is a number too large for the field it goes in.
type rangeError struct {
	name, value string
}

func (e *rangeError) Error() string {
	return fmt.Sprintf("%q is out of range: %s", e.name, e.value)
}

// dupError is a member name given twice in one object.
type dupError struct {
	name string
	in   jsontext.Pointer // the object, "" for the top level
	fold bool             // names were compared in any letter case
}

func (e *dupError) Error() string {
	msg := fmt.Sprintf("key %q appears twice", e.name)
	if e.in != "" {
		msg += " in " + strconv.Quote(string(e.in))
	}
	if e.fold {
		msg += " (keys are compared in any letter case)"
	}
	return msg
}

// kindName names a JSON kind in an error message.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

// wantName names what a Go type takes, for an error message.
func wantName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "something else"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "something else"
}

// memberName returns the last member name of a pointer (an array index
// is not a name), or "" at the top level.
func memberName(p jsontext.Pointer) string {
	name := ""
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 64); err != nil {
			name = tok
		}
	}
	return name
}

// jsonError says what an error of the JSON library means, in the words
// the decoders use: where a syntax error is, which key appears twice,
// which member has a value of the wrong kind. Other errors are returned
// as they are.
func jsonError(err error) error {
	if serr, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		if errors.Is(serr.Err, jsontext.ErrDuplicateName) {
			return &dupError{name: serr.JSONPointer.LastToken(), in: serr.JSONPointer.Parent()}
		}
		msg := "unexpected end of JSON input"
		if !errors.Is(serr.Err, io.ErrUnexpectedEOF) {
			msg = serr.Err.Error()
		}
		return fmt.Errorf("invalid JSON at byte %d: %s", serr.ByteOffset, msg)
	}
	serr, ok := errors.AsType[*json.SemanticError](err)
	if !ok {
		return err
	}
	if kerr, ok := errors.AsType[*kindError](serr.Err); ok {
		if kerr.name == "" {
			k := *kerr
			k.name = memberName(serr.JSONPointer)
			return &k
		}
		return kerr
	}
	if rerr, ok := errors.AsType[*rangeError](serr.Err); ok {
		if rerr.name == "" {
			r := *rerr
			r.name = memberName(serr.JSONPointer)
			return &r
		}
		return rerr
	}
	if errors.Is(serr.Err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("invalid JSON at byte %d: unexpected end of JSON input", serr.ByteOffset)
	}
	if serr.Err != nil {
		return serr.Err
	}
	return &kindError{name: memberName(serr.JSONPointer), got: serr.JSONKind, want: wantName(serr.GoType)}
}

// wrongKind is the error for the value the decoder is at, which is not
// what the reader wants; a syntax error comes first.
func wrongKind(dec *jsontext.Decoder, name, want string) error {
	k := dec.PeekKind()
	if k == jsontext.KindInvalid {
		_, err := dec.ReadValue()
		return err
	}
	return &kindError{name: name, got: k, want: want}
}

// readString reads a string, or null as "".
func readString(dec *jsontext.Decoder, name string) (string, error) {
	switch dec.PeekKind() {
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return "", err
		}
		return tok.String(), nil
	case 'n':
		_, err := dec.ReadToken()
		return "", err
	}
	return "", wrongKind(dec, name, "a string")
}

// members reads an object, calling member with each name, which must
// read the value. The name is valid until the value is read: the decoder
// may then move its buffer. A null reads as an empty object; any other
// value is an error naming name.
func members(dec *jsontext.Decoder, name string, member func(name []byte) error) error {
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '{':
	default:
		return wrongKind(dec, name, "an object")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var buf []byte
	for dec.PeekKind() != '}' {
		quoted, err := dec.ReadValue()
		if err != nil {
			return err
		}
		key, err := unquoteName(quoted, &buf)
		if err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// unquoteName returns the name a quoted JSON string holds: a slice of it
// when it has no escapes, else unescaped into *buf.
func unquoteName(quoted []byte, buf *[]byte) ([]byte, error) {
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var err error
		*buf, err = jsontext.AppendUnquote((*buf)[:0], quoted)
		return *buf, err
	}
	return name, nil
}

// span is where a value lies in a document: doc[start:end].
type span struct{ start, end int }

// valueSpan reads the next value and returns where it lies in a document
// at offset base of the input of dec (offsets of the input, whatever
// buffer the decoder reads from).
func valueSpan(dec *jsontext.Decoder, base int64) (span, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return span{}, err
	}
	end := int(dec.InputOffset() - base)
	return span{end - len(v), end}, nil
}

// unquote returns the string a JSON string holds, or "" for null; any
// other value is an error naming name. A string with escapes is
// unescaped into *buf, which is kept for the next call, then copied.
func unquote(raw []byte, name string, buf *[]byte) (string, error) {
	b, err := unquoteBytes(raw, name, buf)
	return string(b), err
}

// unquoteBytes is unquote without the copy: the bytes of the string, a
// slice of raw when it holds no escapes, else *buf; nil for null.
func unquoteBytes(raw []byte, name string, buf *[]byte) ([]byte, error) {
	switch jsontext.Value(raw).Kind() {
	case 'n':
		return nil, nil
	case '"':
	default:
		return nil, &kindError{name: name, got: jsontext.Value(raw).Kind(), want: "a string"}
	}
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		var err error
		*buf, err = jsontext.AppendUnquote((*buf)[:0], raw)
		return *buf, err
	}
	return s, nil
}

// skip reads a value that is not read.
func skip(dec *jsontext.Decoder) error {
	_, err := dec.ReadValue()
	return err
}
