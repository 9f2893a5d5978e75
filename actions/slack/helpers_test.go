package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
)

// ms are durations of n milliseconds.
func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

// mustParseDestinations loads src as a rules file named rules.yaml, which
// must load, and returns its destinations in file order.
func mustParseDestinations(t *testing.T, src string) []*rules.Destination {
	t.Helper()
	rs, err := rules.Load("rules.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rules.Load: %v", err)
	}
	return rs.DestinationList()
}

// checkNotRepeated fails t when text holds value or any part of it that
// would identify it: any run of 5 of its characters.
func checkNotRepeated(t *testing.T, text, value string) {
	t.Helper()
	const window = 5
	for i := 0; i+window <= len(value); i++ {
		part := value[i : i+window]
		if strings.Contains(text, part) {
			t.Errorf("the error shows %q of %q:\n%s", part, value, text)
			return
		}
	}
}

// slackDestination is a rules file with one destination, d, whose slack
// mapping holds the lines given (each indented under slack:), and a rule
// that posts to it. The first line is line 5 of the file.
func slackDestination(lines ...string) string {
	return "version: 1\ndestinations:\n  d:\n    slack:\n      " + strings.Join(lines, "\n      ") +
		"\nrules:\n  - name: r\n    when: 'true'\n    actions: [{notify: d}]\n"
}

// testRules has a channel destination and a webhook destination.
const testRules = `version: 1
destinations:
  ses-alerts: {slack: {channel: C0123456789}}
  marketing: {slack: {webhook_env: SLACK_WEBHOOK_MARKETING}}
rules:
  - {name: r, when: 'true', actions: [{notify: ses-alerts}, {notify: marketing}]}
`

// testDestinations are the destinations of testRules.
func testDestinations(t *testing.T) []*rules.Destination {
	t.Helper()
	return mustParseDestinations(t, testRules)
}
