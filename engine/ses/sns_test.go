package ses

import (
	"strconv"
	"strings"
	"testing"
)

// manyKeysBody returns an SNS body of at most size bytes: SNS's own
// fields, then as many members with short distinct keys as fit ("a0":0,
// "b0":0, ...), then extra.
func manyKeysBody(size int, extra string) (body []byte, keys int) {
	var b strings.Builder
	b.WriteString(`{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"{}"`)
	for i := 0; b.Len()+len(extra)+12 < size; i++ {
		// Keys in base 36: lower-case letters and digits only, so that no
		// two are the same in another letter case.
		b.WriteString(`,"` + strconv.FormatInt(int64(i), 36) + `":0`)
		keys++
	}
	b.WriteString(extra + "}")
	return []byte(b.String()), keys
}

// TestParseSNSManyKeys checks that a body of the largest size serve takes
// (256 KiB), made of some 33,000 short distinct keys, is read in time
// linear in its size: the check of keys repeated in another letter case
// looks each key up once, and no key is compared with every earlier one.
// The cost is counted, not timed, so that the test does not depend on the
// machine: the work done for the whole body is the number of its keys,
// and half the body costs half as much.
func TestParseSNSManyKeys(t *testing.T) {
	const size = 256 << 10
	body, keys := manyKeysBody(size, "")
	if len(body) > size || keys < 28000 {
		t.Fatalf("a body of %d bytes with %d keys, want at most %d bytes and more than 28,000 keys", len(body), keys, size)
	}
	m, err := ParseSNS(body)
	if err != nil || m.Type != SNSNotification || m.Message != "{}" {
		t.Fatalf("ParseSNS = %+v, %v; want the notification", m, err)
	}
	work := func(body []byte) (names, work int) {
		t.Helper()
		d := new(document)
		if err := d.read(body); err != nil {
			t.Fatal(err)
		}
		if name, dup := foldDup(d.doc, d.names, &work); dup {
			t.Fatalf("key %q reported as repeated", name)
		}
		return len(d.names), work
	}
	names, whole := work(body)
	if whole > names {
		t.Errorf("%d names cost %d comparisons or lookups, want at most one each", names, whole)
	}
	halfBody, _ := manyKeysBody(size/2, "")
	halfNames, half := work(halfBody)
	if half > halfNames || 2*half > whole+foldNames*foldNames {
		t.Errorf("half the body (%d names) cost %d, the whole (%d names) %d: not linear", halfNames, half, names, whole)
	}

	// A repeat in another case at the very end is found, and so is an
	// exact one (by the JSON reader).
	for _, extra := range []string{`,"TYPE":"x"`, `,"a":1`} {
		body, _ := manyKeysBody(size, extra)
		if _, err := ParseSNS(body); err == nil || !strings.Contains(err.Error(), "appears twice (keys are compared in any letter case)") {
			t.Errorf("%s at the end of %d bytes: %v, want a key given twice", extra, len(body), err)
		}
	}
}

// TestFoldDup checks the check of keys repeated in another letter case,
// with few keys (compared pair by pair) and many (looked up).
func TestFoldDup(t *testing.T) {
	for _, tt := range []struct {
		keys []string
		dup  string
	}{
		{[]string{"Type", "Message"}, ""},
		{[]string{"Message", "message"}, "message"},
		{[]string{"SigningCertURL", "SigningCertUrl"}, "SigningCertUrl"},
		{[]string{"Ä", "ä"}, "ä"},
		{[]string{"a\u0307", "A\u0307"}, "A\u0307"},
		{[]string{"k", "\u212a"}, "\u212a"}, // the Kelvin sign, which strings.ToLower makes k
	} {
		for _, pad := range []int{0, foldNames} {
			var b strings.Builder
			b.WriteString("{")
			for i := range pad {
				b.WriteString(`"pad` + string(rune('a'+i)) + `":0,`)
			}
			for i, k := range tt.keys {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(quoteJSON(t, k) + ":0")
			}
			b.WriteString("}")
			d := new(document)
			if err := d.read([]byte(b.String())); err != nil {
				t.Fatal(err)
			}
			name, dup := foldDup(d.doc, d.names, nil)
			if want := tt.dup != ""; dup != want || name != tt.dup {
				t.Errorf("%q with %d more keys: %q, %v; want %q", tt.keys, pad, name, dup, tt.dup)
			}
		}
	}
}

// TestHasControl checks hasControl, which reads bytes, against the rune
// by rune definition: a C0 or C1 control character or DEL.
func TestHasControl(t *testing.T) {
	byRune := func(s string) bool {
		for _, r := range s {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) {
				return true
			}
		}
		return false
	}
	for _, s := range []string{"", "plain", "tab\there", "\x00", "\x7f", "\u0080", "\u0085", "\u009f", "\u00a0", "é", "\xc2", "x\xc2",
		"\xc2\x85", "\xc3\x85", "\xc2\xa0", "\xff\x85", "日本", "a\u2028b", "\x1f", " ", "~", "\x20\x7e"} {
		// At every offset in printable ASCII, before and after: hasControl
		// reads eight bytes at a time, and a character may straddle two.
		for before := range 17 {
			for _, after := range []int{0, 1, 7, 8, 9} {
				p := strings.Repeat("a~ Z", 5)
				padded := p[:before] + s + p[:after]
				if got, want := hasControl(padded), byRune(padded); got != want {
					t.Errorf("hasControl(%q) = %v, want %v", padded, got, want)
				}
			}
		}
	}
	// Every byte, at every position of a word.
	for c := range 256 {
		for at := range 16 {
			b := []byte(strings.Repeat("0", 16))
			b[at] = byte(c)
			if got, want := hasControl(string(b)), byRune(string(b)); got != want {
				t.Errorf("hasControl(%q) = %v, want %v", b, got, want)
			}
		}
	}
}
