package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRouteLiveActsOnceOnADuplicate delivers the same SNS notification
// twice in one run: one copy is acted on, the other is a duplicate (which
// one is whichever starts first: notifications are handled concurrently).
func TestRouteLiveActsOnceOnADuplicate(t *testing.T) {
	f := startLiveFakes(t)
	body, err := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "sns-dup-1",
		"TopicArn": "arn:aws:sns:us-east-1:123456789012:ses", "Message": strings.TrimSpace(liveBounce(t, "ses-dup-1", "a@example.com"))})
	if err != nil {
		t.Fatal(err)
	}
	rules := "version: 1\ndestinations:\n  hook:\n    slack:\n      webhook_env: SLACK_WEBHOOK_TEST\nrules:\n  - name: all\n    when: \"true\"\n    actions: [{notify: hook}]\n"
	r := routeLive(t, f, rules, string(body)+"\n"+string(body)+"\n", "-format", "json")
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Count(r.stdout, `"outcome":"posted"`) != 1 || strings.Count(r.stdout, `"outcome":"duplicate"`) != 1 {
		t.Errorf("output:\n%s\nwant one copy posted and the other a duplicate", r.stdout)
	}
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
}
