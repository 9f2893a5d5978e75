package actions

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// escapeText returns s as inert mrkdwn text of at most limit characters
// (runes, counted after escaping): & < > become &amp; &lt; &gt;, so
// nothing in s can be a mention (<!channel>, <@U123>) or a link
// (<https://x|y>); a backtick becomes ˋ (U+02CB), so s can neither open
// nor close a code span; control characters become spaces and bidi
// controls are dropped, so s stays on one line and reads in order. When s
// is longer it is cut, never inside an entity or a UTF-8 sequence, and
// ends with "…".
func escapeText(s string, limit int) string {
	s = strings.TrimSpace(s)
	if len(s) <= limit && plainASCII(s) {
		return s // the common case: nothing to escape, nothing to cut
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	n, cut := 0, -1 // characters written; bytes of b that fit in limit-1
	for _, r := range s {
		e, special := escapeRune(r)
		w := 1
		if special {
			w = utf8.RuneCountInString(e)
		}
		if cut < 0 && n+w > limit-1 {
			cut = b.Len()
		}
		if special {
			b.WriteString(e)
		} else {
			b.WriteRune(r)
		}
		n += w
	}
	if n <= limit {
		return b.String()
	}
	return strings.TrimRight(b.String()[:cut], " ") + ellipsis
}

// plainASCII reports whether s is printable ASCII that escapeText leaves
// as it is.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '&', c == '<', c == '>', c == '`':
			return false
		}
	}
	return true
}

// escapeRune is what escapeText writes for r, when r is special; special
// is false when r is written as it is.
func escapeRune(r rune) (string, bool) {
	switch {
	case r == '&':
		return "&amp;", true
	case r == '<':
		return "&lt;", true
	case r == '>':
		return "&gt;", true
	case r == '`':
		return inertBacktick, true
	case r == utf8.RuneError:
		return "\uFFFD", true
	case unicode.Is(unicode.Bidi_Control, r), r == '\u200B', r == '\uFEFF':
		return "", true
	case unicode.IsControl(r), r == '\u2028', r == '\u2029':
		return " ", true
	}
	return "", false
}

// codeSpan returns s as a mrkdwn code span of at most limit characters,
// backticks included: escaped as escapeText does, so that nothing in it
// can close the span, and Slack makes no link of a URL inside it.
func codeSpan(s string, limit int) string {
	return "`" + escapeText(s, limit-2) + "`"
}

// plainText returns s for a plain_text object: on one line, at most limit
// characters, cut with "…". plain_text is shown as it is, so it needs no
// escaping.
func plainText(s string, limit int) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD")))
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:limit-1]), " ") + ellipsis
}

// clampMrkdwn cuts mrkdwn text to at most limit characters, ending with
// "…", and never inside an &…; entity. It is the last guard: the caps on
// each value keep the texts BuildMessages makes below their limits.
func clampMrkdwn(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)[:limit-1]
	if amp := lastIndexRune(r, '&'); amp >= 0 && lastIndexRune(r[amp:], ';') < 0 {
		r = r[:amp] // an entity cut short
	}
	return string(r) + ellipsis
}

func lastIndexRune(rs []rune, r rune) int {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] == r {
			return i
		}
	}
	return -1
}

// formatTime writes an SES timestamp as "2024-05-01 10:00:00 UTC", or,
// when it is not RFC 3339, escaped as it is.
func formatTime(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(ts))
	if err != nil {
		return escapeText(ts, 40)
	}
	return t.UTC().Format(timestampLayout)
}

// formatMillis writes a duration in milliseconds for people: "546 ms",
// "11.9 s".
func formatMillis(ms int) string {
	if ms < 1000 {
		return strconv.Itoa(ms) + " ms"
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
}
