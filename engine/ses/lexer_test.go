package ses

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// lexerSeeds are JSON texts (valid and not) that exercise every branch of
// the lexer.
var lexerSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0.5e+10`, `1E5`, `"a"`,
	`{"a":[1,2,{"b":null}],"c":"\u00e9\ud83d\ude00\/\b\f\n\r\t\\\""}`,
	`"\ud83d"`, `"\ud83dx"`, `"\udc00\ud83d\ude00"`, `"\u12"`, `"\x"`,
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`, `01`, `1.`, `1e`, `-`, `--1`,
	`"abc`, "\"a\tb\"", `{"a":1} x`, `[[[[[[]]]]]]`, ` { "a" : [ ] } `, `nul`, `tru`,
	`{"Type":"Notification","Message":"{\"notificationType\":\"Bounce\"}"}`,
}

func FuzzLexerMatchesEncodingJSON(f *testing.F) {
	for _, s := range lexerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := validJSON(b)
		want := json.Valid(b)
		if got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
		if !want || !utf8.Valid(b) {
			return
		}
		// A valid string decodes to what encoding/json gives.
		var s string
		if json.Unmarshal(b, &s) == nil {
			l := lexer{b: b}
			l.ws()
			if got := l.str(); l.err != nil || got != s {
				t.Fatalf("str(%q) = %q, %v; encoding/json gives %q", b, got, l.err, s)
			}
		}
	})
}

func TestLexerMatchesEncodingJSONOnSeeds(t *testing.T) {
	for _, s := range lexerSeeds {
		t.Run(s, func(t *testing.T) {
			if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
				t.Errorf("validJSON = %v, json.Valid = %v", got, want)
			}
		})
	}
}

func TestLexerNestingLimit(t *testing.T) {
	deep := make([]byte, 0, 2*(maxNesting+1))
	for range maxNesting + 1 {
		deep = append(deep, '[')
	}
	for range maxNesting + 1 {
		deep = append(deep, ']')
	}
	if validJSON(deep) {
		t.Errorf("%d nested arrays accepted; the limit is %d", maxNesting+1, maxNesting)
	}
	if !validJSON(deep[1 : len(deep)-1]) {
		t.Errorf("%d nested arrays refused; the limit is %d", maxNesting, maxNesting)
	}
}
