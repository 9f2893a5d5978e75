// Package words writes counts for people: "1 rule", "2 rules", "1,234
// addresses". It is the one place that decides how sesrouter says a
// number, in its output, its errors and its Slack messages alike.
package words

import "strconv"

// Plural says n with the word that goes with it, n written as Thousands
// writes it: "1 address", "2 addresses", "1,234 addresses".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Thousands(n) + " " + many
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
