package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// TestRouteLiveFaultsLoseNothingAndActOnce delivers 300 notifications
// twice each, in a shuffled order, while 30% of Slack and SES calls fail
// (429, 5xx, answers slow enough to time the notification out). Every
// notification must end posted (by one line, and the other a duplicate)
// or failed and counted: none silently lost, none acted on twice (Slack
// holds exactly the notifications reported posted, once each; each
// address is removed once at most).
//
// It runs on a testing/synctest bubble's clock, the fakes served in
// memory: the budget of 1.5 s, the slow answers and every retry's wait
// are kept exactly, however busy the machine, and the real work takes
// none of that time. On the wall clock, a notification's deadline could
// fall between Slack taking its post and the answer: the line then says
// failed, the claim is released as for every failure, and the other copy
// posts it again (delivery is at least once; no client can tell such a
// post from one that never arrived). On the bubble's clock a request
// takes no time: the deadline cuts only an answer the fake holds back,
// and the fake then drops the post.
func TestRouteLiveFaultsLoseNothingAndActOnce(t *testing.T) {
	synctest.Test(t, testRouteLiveFaults)
}

// testRouteLiveFaults is TestRouteLiveFaultsLoseNothingAndActOnce inside
// its bubble.
func testRouteLiveFaults(t *testing.T) {
	const n = 300
	f := startLiveFakesInMemory(t)
	// A notification's actions must finish within 1.5 s: an answer that
	// takes 3 s times it out, and it ends failed.
	f.actionTimeout = 1500 * time.Millisecond
	faults := []actionstest.Fault{actionstest.Fault429After(0), actionstest.Fault500(), actionstest.Fault503(),
		actionstest.FaultSlow(20 * time.Millisecond), actionstest.FaultSlow(3 * time.Second)}
	f.slack.FailRandomly(0.3, 7, faults...)
	f.ses.FailRandomly(0.3, 8, faults...)
	var lines []string
	for i := range n {
		addr := fmt.Sprintf("no-suppress-%d@example.com", i)
		f.ses.Suppress(addr, "BOUNCE", time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC))
		body, err := json.Marshal(map[string]string{"Type": "Notification", "MessageId": fmt.Sprintf("sns-%d", i),
			"TopicArn": "arn:aws:sns:us-east-1:123456789012:ses", "Message": strings.TrimSpace(liveBounce(t, fmt.Sprintf("ses-%d", i), addr))})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(body), string(body))
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	rules := "version: 1\ndestinations:\n  hook:\n    slack:\n      webhook_env: SLACK_WEBHOOK_TEST\n      digest_after: 1000000\n      pace: 0s\nrules:\n" + // every notification posted or failed
		"  - name: keep\n    when: event.type == \"Bounce\"\n    actions: [unsuppress, {notify: hook}]\n"
	r := routeLive(t, f, rules, strings.Join(lines, "\n")+"\n", "-format", "json")
	synctest.Wait() // the fakes see the clients that gave up go

	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(out) != 2*n {
		t.Fatalf("%d output lines for %d inputs", len(out), 2*n)
	}
	idRE := regexp.MustCompile(`"messageId":"(ses-\d+)"`)
	posted, failed, dup := map[string]int{}, map[string]int{}, map[string]int{}
	failedLines := 0
	for _, line := range out {
		m := idRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("a line without a message id: %s", line)
		}
		switch {
		case strings.Contains(line, `"outcome":"failed"`):
			failed[m[1]]++
			failedLines++
		case strings.Contains(line, `"action":"notify:hook","outcome":"posted"`):
			posted[m[1]]++
		case strings.Contains(line, `"outcome":"duplicate"`):
			dup[m[1]]++
		default:
			t.Errorf("a line neither posted, failed nor duplicate: %s", line)
		}
	}
	for i := range n {
		id := fmt.Sprintf("ses-%d", i)
		if posted[id] > 1 {
			t.Errorf("%s posted %d times", id, posted[id])
		}
		if posted[id]+failed[id] == 0 {
			t.Errorf("%s was neither posted nor failed: lost (duplicates %d)", id, dup[id])
		}
	}
	// What Slack received: exactly the notifications reported posted,
	// once each.
	seen := map[string]int{}
	for _, p := range f.slack.Posts() {
		ids := map[string]bool{}
		for _, id := range regexp.MustCompile(`ses-\d+`).FindAllString(string(p.Body), -1) {
			ids[id] = true
		}
		for id := range ids {
			seen[id]++
		}
	}
	for i := range n {
		id := fmt.Sprintf("ses-%d", i)
		if seen[id] != posted[id] {
			t.Errorf("Slack received %s in %d posts; %d lines say posted", id, seen[id], posted[id])
		}
	}
	// What SES did: each address removed at most once.
	removed := map[string]int{}
	for _, c := range f.ses.Calls() {
		if c.Op == actionstest.OpDeleteSuppressedDestination && c.Status == 200 {
			removed[c.Address]++
		}
	}
	for addr, c := range removed {
		if c > 1 {
			t.Errorf("%s removed %d times", addr, c)
		}
	}
	t.Logf("%d lines failed; Slack %+v; SES %+v", failedLines, f.slack.Counts(), f.ses.Counts())
	if c := f.slack.Counts().Abandoned + f.ses.Counts().Abandoned; c == 0 {
		t.Error("no call timed out: the run did not exercise timeouts")
	}
	wantExit := exitOK
	if failedLines > 0 {
		wantExit = exitFailed
	}
	if r.code != wantExit {
		t.Errorf("exit %d with %d failed lines, want %d", r.code, failedLines, wantExit)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("skipped, %d failed", failedLines)) {
		t.Errorf("the summary does not count the %d failed lines:\n%s", failedLines, r.stderr)
	}
	checkNoSecrets(t, r, f.secrets()...)
}
