package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// A bounce storm: thousands of bounces for one webhook destination,
// against a Slack fake that answers 429 (Retry-After: 1) to more than its
// limit of messages per second per webhook. Pacing keeps the posts under
// the limit; digests keep the channel readable; every recipient is in a
// posted message or counted in a digest.
//
// The Slack fake is served in memory, so that the tests run on a
// testing/synctest bubble's clock, where the pace and the fake's window
// are kept exactly, however busy the machine; the benchmark runs on the
// real clock:
//
//	go test -run='^$' -bench=Storm -benchtime=1x -timeout=60m ./cmd/sesrouter

// stormRules send every bounce to one webhook, digest_after at its
// default, paced at PACE (the destination's pace: line, or none for the
// default pace).
const stormRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_STORM
PACE
rules:
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// stormPace is the pace: line of stormRules for d, none for 0 (the
// default pace).
func stormPace(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return "      pace: " + d.String()
}

// stormRun is what one storm gave.
type stormRun struct {
	posts    []actionstest.Post
	counts   actionstest.Counts
	wall     time.Duration
	outcomes map[string]int // notify outcomes, from the output or the results
}

// stormAddress is the recipient of the i-th notification of a storm.
func stormAddress(i int) string { return fmt.Sprintf("storm-%d@d%d.example", i, i%7) }

// stormSNS is the i-th notification of a storm, as an SNS message body.
func stormSNS(tb testing.TB, i int) string {
	body, err := json.Marshal(map[string]string{"Type": "Notification", "MessageId": fmt.Sprintf("sns-storm-%d", i),
		"TopicArn": "arn:aws:sns:us-east-1:123456789012:ses", "Message": strings.TrimSpace(liveBounce(tb, fmt.Sprintf("ses-storm-%d", i), stormAddress(i)))})
	if err != nil {
		tb.Fatal(err)
	}
	return string(body)
}

// stormFakes starts the Slack fake, in memory, at limit messages per
// second and returns the env that points sesrouter at it, and rules paced
// at pace (0: the default pace).
func stormFakes(tb testing.TB, limit int, pace time.Duration) (*actionstest.Slack, env, string) {
	sl := actionstest.NewSlackInMemory(tb)
	sl.LimitPerSecond(limit)
	e := testEnv(map[string]string{"SLACK_WEBHOOK_STORM": sl.WebhookURL("storm")})
	e.slackClient = sl.HTTPClient()
	rules := writeFile(tb, tb.TempDir(), "rules.yaml", strings.Replace(stormRules, "PACE\n", stormPace(pace)+"\n", 1))
	return sl, e, rules
}

// stormRoute routes n storm notifications with route, live.
func stormRoute(tb testing.TB, n, limit int, pace time.Duration) stormRun {
	sl, e, rules := stormFakes(tb, limit, pace)
	var in strings.Builder
	for i := range n {
		in.WriteString(stormSNS(tb, i))
		in.WriteByte('\n')
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"route", "-format", "json", "-rules", rules}, strings.NewReader(in.String()), &stdout, &stderr, e)
	wall := time.Since(start)
	if code != exitOK {
		tb.Fatalf("route: exit status %d\n%s", code, stderr.String())
	}
	run := stormRun{posts: sl.Posts(), counts: sl.Counts(), wall: wall, outcomes: map[string]int{}}
	outcomeRE := regexp.MustCompile(`"action":"notify:hook","outcome":"([a-z-]+)"`)
	for _, m := range outcomeRE.FindAllStringSubmatch(stdout.String(), -1) {
		run.outcomes[m[1]]++
	}
	if !strings.Contains(stderr.String(), "sesrouter route: digest to hook posted: Digest · ") && n > stormDigestAfter {
		tb.Errorf("stderr %q: want the digest's line", stderr.String())
	}
	return run
}

// stormDigestAfter is the digest_after of stormRules.
const stormDigestAfter = 10

// stormLambda hands n storm notifications to the Lambda handler in SQS
// batches of batch records.
func stormLambda(tb testing.TB, n, batch, limit int, pace time.Duration) stormRun {
	sl, e, rules := stormFakes(tb, limit, pace)
	// The storm's envelopes are not signed (signing thousands would take
	// longer than the storm): the function is told not to check them, as
	// on a network that cannot reach SNS's certificates.
	getenv := e.getenv
	e.getenv = func(k string) string {
		if k == "SESROUTER_VERIFY_SNS" {
			return "off"
		}
		return getenv(k)
	}
	var stderr bytes.Buffer
	invoke, ok := lambdaInit(rules, io.Discard, &stderr, e)
	if !ok {
		tb.Fatalf("lambda init failed:\n%s", stderr.String())
	}
	run := stormRun{outcomes: map[string]int{}}
	start := time.Now()
	for from := 0; from < n; from += batch {
		var ev events.SQSEvent
		for i := from; i < min(from+batch, n); i++ {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + strconv.Itoa(i), Body: stormSNS(tb, i), EventSource: "aws:sqs"})
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			tb.Fatal(err)
		}
		out, err := invoke(context.Background(), payload)
		if err != nil {
			tb.Fatalf("invoke: %v", err)
		}
		if resp, ok := out.(events.SQSEventResponse); ok && len(resp.BatchItemFailures) > 0 {
			tb.Fatalf("batch at %d: %d records failed", from, len(resp.BatchItemFailures))
		}
	}
	run.wall = time.Since(start)
	run.posts, run.counts = sl.Posts(), sl.Counts()
	return run
}

// digestTextRE reads a digest's fallback text.
var digestTextRE = regexp.MustCompile(`^Digest · ([\d,]+) notifications? folded \(([\d,]+) recipients\)$`)

// check checks a storm of n notifications: fewer than 1% of Slack calls
// got a 429; every post keeps within Slack's limits; every recipient is
// named in a message or counted in a digest, none twice. It returns the
// number of digests.
func (r stormRun) check(tb testing.TB, n int) (digests int) {
	tb.Helper()
	if c := r.counts; c.Requests == 0 || float64(c.Throttled) >= 0.01*float64(c.Requests) {
		tb.Errorf("%d of %d Slack calls got a 429: want fewer than 1%%", c.Throttled, c.Requests)
	}
	var messages strings.Builder
	folded := 0
	for _, p := range r.posts {
		if problems := actionstest.CheckBlocks(p.Blocks); len(problems) > 0 {
			tb.Errorf("post %q breaks Slack's limits: %v", p.Text, problems)
		}
		if m := digestTextRE.FindStringSubmatch(p.Text); m != nil {
			digests++
			k, _ := strconv.Atoi(strings.ReplaceAll(m[2], ",", ""))
			folded += k
			continue
		}
		messages.Write(p.Body)
	}
	named := 0
	text := messages.String()
	for i := range n {
		if strings.Contains(text, "`"+stormAddress(i)+"`") {
			named++
		}
	}
	if named+folded != n {
		tb.Errorf("%d recipients named in messages + %d counted in digests = %d, want %d", named, folded, named+folded, n)
	}
	return digests
}

func TestStorm(t *testing.T) {
	// Slack's one message per second, at the default pace (1.1 s): on
	// the bubble's clock, a storm takes no time to run.
	const limit, pace = 1, 0
	t.Run("route", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const n = 2000
			r := stormRoute(t, n, limit, pace)
			if d := r.check(t, n); d != 1 {
				t.Errorf("%d digests, want 1", d)
			}
			if r.outcomes["posted"] != stormDigestAfter || r.outcomes["digested"] != n-stormDigestAfter {
				t.Errorf("outcomes %v: want %d posted, the rest digested", r.outcomes, stormDigestAfter)
			}
			if len(r.posts) != stormDigestAfter+1 {
				t.Errorf("%d posts, want %d and the digest", len(r.posts), stormDigestAfter)
			}
		})
	})
	t.Run("lambda", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const n, batch = 300, 100
			r := stormLambda(t, n, batch, limit, pace)
			if d := r.check(t, n); d != n/batch {
				t.Errorf("%d digests, want one per batch", d)
			}
		})
	})
}

// TestStormPacingKeepsUnderTheLimit routes a small storm, whose posts
// route's 16 workers make at once, to a webhook limited to 10 messages per
// second, paced a little slower: not one 429.
func TestStormPacingKeepsUnderTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 20
		r := stormRoute(t, n, 10, 120*time.Millisecond)
		r.check(t, n)
		if r.counts.Throttled != 0 {
			t.Errorf("%d 429s, want none", r.counts.Throttled)
		}
	})
}

// BenchmarkStorm routes 10,000 bounces for one webhook,
// against Slack's one message per second, at the default pace.
func BenchmarkStorm(b *testing.B) {
	const n = 10_000
	report := func(b *testing.B, r stormRun) {
		r.check(b, n)
		b.ReportMetric(float64(r.counts.Succeeded), "messages")
		b.ReportMetric(float64(r.counts.Throttled), "429s")
		b.ReportMetric(r.wall.Seconds(), "wall-s")
		b.Logf("%d notifications: %d messages posted, %d Slack calls, %d answered 429, in %s",
			n, r.counts.Succeeded, r.counts.Requests, r.counts.Throttled, r.wall.Round(time.Millisecond))
	}
	b.Run("route", func(b *testing.B) {
		for b.Loop() {
			report(b, stormRoute(b, n, 1, 0))
		}
	})
	b.Run("lambda-sqs-100", func(b *testing.B) {
		for b.Loop() {
			report(b, stormLambda(b, n, 100, 1, 0))
		}
	})
}
