package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/intake/intaketest"
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

// TestServeCopyInFlightWaitsForTheFirst is the lost notification of a
// redelivery: SNS delivers a notification again while serve is still
// handling the first copy (its Slack post held, then failed by Slack).
// The second copy must not be answered before the first's outcome is
// known (a 200 would tell SNS it is done, and SNS would never deliver it
// again); once the first has failed, the second acts in its place. A
// third copy, after that, is a duplicate.
func TestServeCopyInFlightWaitsForTheFirst(t *testing.T) {
	sg := intaketest.NewSigner(t)
	f := startLiveFakes(t)
	g := newGate(t, f.slack.WebhookURL("hook"))
	ts := startServe(t, lambdaRules, serveSetup{args: []string{"-topic", serveTopic, "-sns-cert-dir", sg.CertDir},
		fakes: f, vars: map[string]string{"SLACK_WEBHOOK_TEST": g.URL}})
	body := intaketest.Body(sg.Notification(t, serveTopic, "redelivered", liveBounce(t, "ses-redelivered", "a@example.com")))
	f.slack.Script(actionstest.FaultChannelNotFound()) // the first post that reaches Slack fails, for good

	first := make(chan int, 1)
	go func() { first <- ts.post(t, nil, body) }()
	g.waitArrived(t) // the first copy's post is held on its way to Slack
	mark := ts.logs.mark()
	second := make(chan int, 1)
	go func() { second <- ts.post(t, nil, body) }()
	waiting := make(chan error, 1)
	go func() {
		_, err := ts.logs.waitFunc(mark, func(l string) bool { return strings.Contains(l, `"msg":"waiting for another copy"`) })
		waiting <- err
	}()
	select {
	case code := <-second:
		t.Fatalf("the second copy was answered %d while the first's post was still held", code)
	case err := <-waiting:
		if err != nil {
			t.Fatalf("the second copy never said it waits: %v\n%s", err, ts.logs)
		}
	}
	select {
	case code := <-second:
		t.Fatalf("the second copy was answered %d while the first's post was still held", code)
	default:
	}

	g.open() // the first copy's post reaches Slack, which fails it
	if code := <-first; code != http.StatusInternalServerError {
		t.Errorf("first copy: status %d, want 500 (its post failed)", code)
	}
	if code := <-second; code != http.StatusOK {
		t.Errorf("second copy, after the first failed: status %d, want 200 once it has acted\n%s", code, ts.logs)
	}
	if n := len(f.slack.Posts()); n != 1 {
		t.Fatalf("%d Slack posts, want 1: the second copy's", n)
	}
	if code := ts.post(t, nil, body); code != http.StatusOK {
		t.Errorf("third copy: status %d, want 200", code)
	}
	if n := len(f.slack.Posts()); n != 1 {
		t.Errorf("%d Slack posts after a third copy, want still 1", n)
	}
	checkContains(t, "log", ts.logs.String(), `"outcome":"failed"`, `"outcome":"posted"`, `"outcome":"duplicate"`)
}
