package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// dedupRules post every notification, each in a message of its own.
const dedupRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      digest_after: 1000000
      pace: 0s
rules:
  - name: all
    when: "true"
    actions: [{notify: hook}]
`

// dedupSNS is an SNS notification (MessageId sns-dup-i) carrying a bounce
// for dup-i@example.com, on one line.
func dedupSNS(t *testing.T, i int) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"Type": "Notification", "MessageId": fmt.Sprintf("sns-dup-%d", i),
		"TopicArn": "arn:aws:sns:us-east-1:123456789012:ses",
		"Message":  strings.TrimSpace(liveBounce(t, fmt.Sprintf("ses-dup-%d", i), fmt.Sprintf("dup-%d@example.com", i)))})
	if err != nil {
		t.Fatal(err)
	}
	return string(body) + "\n"
}

// TestRouteLiveActsOnTheFirstCopy delivers each of 40 SNS notifications
// twice in one live run, the copies far apart (lines i and 40+i), the
// other way round too (a reversed second half), while route acts on many
// notifications at once: the first copy in input order is always the one
// acted on, the second is a duplicate, and each is posted once.
func TestRouteLiveActsOnTheFirstCopy(t *testing.T) {
	const n = 40
	f := startLiveFakes(t)
	var in strings.Builder
	for i := range n {
		in.WriteString(dedupSNS(t, i))
	}
	for i := range n {
		in.WriteString(dedupSNS(t, n-1-i))
	}
	r := routeLive(t, f, dedupRules, in.String(), "-format", "json")
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	lines := parseLines(t, r.stdout)
	if len(lines) != 2*n {
		t.Fatalf("%d output lines, want %d", len(lines), 2*n)
	}
	for i, l := range lines {
		want := "posted"
		if i >= n {
			want = "duplicate"
		}
		if len(l.Results) != 1 || l.Results[0].Outcome != want {
			t.Errorf("line %d (%s, %v): results %+v, want one %s", i+1, l.Input, l.Recipients, l.Results, want)
		}
	}
	if got := len(f.slack.Posts()); got != n {
		t.Errorf("%d posts, want %d", got, n)
	}
	checkContains(t, "the summary", r.stderr, fmt.Sprintf("%d notifications (%d recipients), 0 skipped, 0 failed, %d duplicate", 2*n, 2*n, n))
}
