// Package words says counts for people: "1 rule", "2 rules", "1,234
// addresses". Which form of a word goes with a count is decided here
// once, for the output, the errors and the Slack messages alike.
package words

import (
	"strconv"
	"strings"
)

// noun is the form of a word that goes with a count of n: one when n is
// 1, else many ("address", "addresses").
func noun(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Plural says n with the word that goes with it, in digits alone so that
// a line stays easy for a script to read (route's summary, check's
// verdict): "1 rule", "2 rules", "1234 rules".
func Plural(n int, one, many string) string {
	return strconv.Itoa(n) + " " + noun(n, one, many)
}

// Count says n with the word that goes with it, as a message for people
// writes it (a Slack digest): "1 address", "1,234 addresses".
func Count(n int, one, many string) string {
	return Thousands(n) + " " + noun(n, one, many)
}

// Thousands writes n with commas between groups of three digits: 1,234.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// FirstLine is the first line of s, cut at max runes (an ellipsis
// standing for what was cut).
func FirstLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}
