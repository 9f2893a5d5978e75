package actions

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// textForm is the kind of Slack text object a text is written for.
type textForm int

const (
	formMrkdwn textForm = iota // mrkdwn: & < > as entities, no backtick
	formPlain                  // plain_text: shown as it is
)

// escapeText returns s as inert mrkdwn text of at most limit characters
// (runes, counted after escaping), shown as shownText says: & < > become
// &amp; &lt; &gt;, so nothing in s can be a mention (<!channel>, <@U123>)
// or a link (<https://x|y>); a backtick becomes ˋ (U+02CB), so s can
// neither open nor close a code span. When s is longer it is cut, never
// inside an entity or a UTF-8 sequence, and ends with "…".
func escapeText(s string, limit int) string { return shownText(s, limit, formMrkdwn) }

// plainText returns s for a plain_text object, shown as shownText says,
// at most limit characters. plain_text is shown as it is, so it needs no
// escaping.
func plainText(s string, limit int) string { return shownText(s, limit, formPlain) }

// codeSpan returns s as a mrkdwn code span of at most limit characters,
// backticks included: escaped as escapeText does, so that nothing in it
// can close the span, and Slack makes no link of a URL inside it.
func codeSpan(s string, limit int) string {
	return "`" + escapeText(s, limit-2) + "`"
}

// blank reports whether s shows nothing once written by shownText: it
// holds only spaces and control characters.
func blank(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsSpace(r) && !lineBreaking(r) }) < 0
}

// shownText returns s as form shows it, at most limit characters. Every
// text taken from an event reaches a Slack message through it, as mrkdwn
// (escapeText, codeSpan) or as plain_text (plainText), so that what Slack
// shows is what the event holds:
//
//   - a control character (and U+2028, U+2029) becomes a space, so the
//     text stays on one line;
//   - a character that shows as nothing or changes how the text around
//     it reads (hiddenRune: bidi controls, zero-width spaces and joiners,
//     soft hyphen, tag characters, variation selectors, Hangul fillers,
//     …) is shown by its code point, "<U+202E>", except where it is part
//     of an emoji (emojiPart);
//   - invalid UTF-8 becomes U+FFFD;
//   - the text is trimmed of spaces, and, longer than its limit, cut
//     (never inside what stands for one character) and ended with "…".
//
// The code point, not \u202e in a code span, because the one form has to
// read the same in a header (plain_text, where there are no code spans),
// in mrkdwn text and inside the code spans that already hold addresses
// and diagnostic codes (a code span cannot hold another); because U+XXXX
// names a character the way Unicode charts and search engines do, a tag
// character (U+E0041) included, where \u needs a surrogate pair or \U;
// and because a backslash escape reads like part of the value in texts
// that often hold backslashes themselves (SMTP replies, paths). Removing
// the character instead would make "pay\u200Bpal.com" read as a name it
// is not.
func shownText(s string, limit int, form textForm) string {
	s = strings.TrimSpace(s)
	if len(s) <= limit && plainASCII(s, form) {
		return s // the common case: nothing to escape, nothing to cut
	}
	w := cutWriter{limit: limit, cut: -1}
	w.b.Grow(min(len(s), 4*limit) + 16)
	last := rune(-1) // the rune before, when written as it is
	// Past the limit, the rest would be cut: it is not read.
	for i := 0; i < len(s) && w.n <= limit; {
		r, size := utf8.DecodeRuneInString(s[i:])
		next, _ := utf8.DecodeRuneInString(s[i+size:])
		switch {
		case r == utf8.RuneError && size == 1:
			w.unit("\uFFFD", 1)
			last = -1
		case lineBreaking(r):
			w.space(" ")
			last = -1
		case r == blackFlag && flagTags(s[i+size:]) > 0:
			// A subdivision flag: the black flag, then tag characters.
			n := size + flagTags(s[i+size:])
			w.unit(s[i:i+n], utf8.RuneCountInString(s[i:i+n]))
			i, last = i+n, blackFlag
			continue
		case hiddenRune(r) && !emojiPart(last, r, next):
			w.unit(codePoint(r, form), 0)
			last = -1
		case unicode.IsSpace(r):
			w.space(s[i : i+size])
			last = -1
		default:
			if e, ok := mrkdwnEntity(r); ok && form == formMrkdwn {
				w.unit(e, utf8.RuneCountInString(e))
			} else {
				w.unit(s[i:i+size], 1)
			}
			last = r
		}
		i += size
	}
	return w.String()
}

// plainASCII reports whether s is printable ASCII that shownText leaves
// as it is in form.
func plainASCII(s string, form textForm) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f:
			return false
		case form == formMrkdwn && (c == '&' || c == '<' || c == '>' || c == '`'):
			return false
		}
	}
	return true
}

// mrkdwnEntity is what mrkdwn text holds for r, when not r itself.
func mrkdwnEntity(r rune) (string, bool) {
	switch r {
	case '&':
		return "&amp;", true
	case '<':
		return "&lt;", true
	case '>':
		return "&gt;", true
	case '`':
		return inertBacktick, true
	}
	return "", false
}

// lineBreaking reports whether r is a control character, or a line or
// paragraph separator: shownText writes a space for it.
func lineBreaking(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// hiddenRune reports whether r shows as nothing, or changes how the text
// around it reads, without showing itself: a format character
// (unicode.Cf: the bidi controls U+202A–U+202E, U+2066–U+2069, U+200E,
// U+200F and U+061C, the zero-width space, joiners and word joiner,
// U+2060–U+2064, U+FEFF, the soft hyphen, U+180E, the tag characters, …),
// a default-ignorable character that is not one (the Hangul fillers,
// U+034F, unassigned U+E0000…), or a variation selector.
func hiddenRune(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Bidi_Control, unicode.Other_Default_Ignorable_Code_Point,
		unicode.Variation_Selector)
}

// The characters of an emoji that hiddenRune would otherwise show.
const (
	zwj         = '\u200D'     // ZERO WIDTH JOINER
	textStyle   = '\uFE0E'     // VARIATION SELECTOR-15
	emojiStyle  = '\uFE0F'     // VARIATION SELECTOR-16
	keycap      = '\u20E3'     // COMBINING ENCLOSING KEYCAP
	blackFlag   = '\U0001F3F4' // 🏴, the base of a subdivision flag
	tagCancel   = '\U000E007F' // CANCEL TAG, ends a tag sequence
	maxFlagTags = 6            // a subdivision code: "gbeng", "usca"
	tagOffset   = 0xE0000      // a tag character is its ASCII one plus this
)

// emojiPart reports whether the hidden rune r, after last (the rune
// before, when written as it is; -1 when not) and before next, is part of
// an emoji, where it does show, and is written as it is:
//
//   - VARIATION SELECTOR-15 or -16 after an emoji ("❤️", "‼️") or in a
//     keycap ("1️⃣");
//   - ZERO WIDTH JOINER between two emoji ("👩‍💻", "🏳️‍🌈", "👨🏽‍🚀").
//
// Go's unicode package has no emoji property: an emoji is taken to be a
// symbol (unicode.S) outside ASCII, or one of the few emoji that are not
// symbols (‼ ⁉ ℹ 〰 〽). Tag characters show only in a subdivision flag
// (flagTags).
func emojiPart(last, r, next rune) bool {
	switch r {
	case textStyle, emojiStyle:
		return emoji(last) || (strings.ContainsRune("#*0123456789", last) && next == keycap)
	case zwj:
		return (emoji(last) || last == emojiStyle) && emoji(next)
	}
	return false
}

// emoji reports whether r is taken for an emoji (see emojiPart).
func emoji(r rune) bool {
	if r < utf8.RuneSelf {
		return false
	}
	switch r {
	case '\u203C', '\u2049', '\u2139', '\u3030', '\u303D':
		return true
	}
	return unicode.Is(unicode.S, r)
}

// flagTags returns the length in bytes of the tag sequence at the start
// of s that makes a subdivision flag of the black flag before it: one to
// maxFlagTags tag letters or digits, then CANCEL TAG. 0 when there is
// none.
func flagTags(s string) int {
	for i, n := 0, 0; i < len(s); n++ {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == tagCancel && n > 0:
			return i + size
		case n == maxFlagTags:
			return 0
		case r >= tagOffset+'a' && r <= tagOffset+'z', r >= tagOffset+'0' && r <= tagOffset+'9':
			i += size
		default:
			return 0
		}
	}
	return 0
}

// codePoint is how shownText shows a hidden rune: "<U+202E>" in plain
// text, "&lt;U+202E&gt;" in mrkdwn.
func codePoint(r rune, form textForm) string {
	if form == formMrkdwn {
		return fmt.Sprintf("&lt;U+%04X&gt;", r)
	}
	return fmt.Sprintf("<U+%04X>", r)
}

// cutWriter writes the units of a text (what stands for one character of
// the input) up to a limit in characters: the units that fit in limit-1,
// then "…" when the rest does not fit. Spaces at the start and the end
// are left out.
type cutWriter struct {
	b      strings.Builder
	limit  int
	n      int      // characters written
	cut    int      // bytes of b that fit in limit-1 characters; -1 until known
	spaces []string // spaces held back until something follows them
}

// unit writes u, of width characters (0: count them).
func (w *cutWriter) unit(u string, width int) {
	for _, sp := range w.spaces {
		w.write(sp, 1)
	}
	w.spaces = w.spaces[:0]
	if width == 0 {
		width = utf8.RuneCountInString(u)
	}
	w.write(u, width)
}

// space holds back the space sp, unless nothing was written yet.
func (w *cutWriter) space(sp string) {
	if w.n > 0 {
		w.spaces = append(w.spaces, sp)
	}
}

func (w *cutWriter) write(u string, width int) {
	if w.cut < 0 && w.n+width > w.limit-1 {
		w.cut = w.b.Len()
	}
	w.b.WriteString(u)
	w.n += width
}

// String is the text written, cut to the limit.
func (w *cutWriter) String() string {
	if w.n <= w.limit {
		return w.b.String()
	}
	return strings.TrimRight(w.b.String()[:w.cut], " ") + ellipsis
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

// CodeText is s as the inside of a code span: escaped for mrkdwn, cut to
// an address's length, with no backtick.
func CodeText(s string) string {
	return strings.Trim(codeSpan(s, capAddress), "`")
}
