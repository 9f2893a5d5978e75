package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// route stopped by a signal, live: a signal reaches run through
// env.notify, as the test sends it. The run waits on what it reports:
// the progress line (standard error is a terminal here) says when every
// notification but the last is handled and the last waits its turn.

// signalRouteRules post every bounce to alerts, which takes two messages
// before folding the rest into a digest, except those at slow.example,
// which go to a destination paced at one post an hour.
const signalRouteRules = `version: 1
destinations:
  alerts:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      pace: 0s
      digest_after: 2
  slow:
    slack:
      webhook_env: SLACK_WEBHOOK_SLOW
      pace: 1h
rules:
  - name: slow
    when: recipient.domain == "slow.example"
    actions: [{notify: slow}]
  - name: alerts
    when: "true"
    actions: [{notify: alerts}]
`

// signalRoute is a live route run reading standard input from a pipe
// the test writes, stopped by signals the test sends.
type signalRoute struct {
	in     *io.PipeWriter
	stdout *syncBuffer
	stderr *lineLog
	sigs   chan<- os.Signal
	code   chan int
}

// startSignalRoute starts route -format json live against slack (served
// in memory for a test on a testing/synctest bubble's clock, where the
// drain, the pace and the progress line keep their times exactly, however
// busy the machine), with rules, standard error a terminal,
// actions bounded by an action timeout of two hours (so that a post paced
// an hour away waits its turn) and drain as the time the notifications in
// flight get after a signal.
func startSignalRoute(t *testing.T, slack *actionstest.Slack, drain time.Duration) *signalRoute {
	t.Helper()
	rules := writeFile(t, t.TempDir(), "rules.yaml", signalRouteRules)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	r := &signalRoute{in: pw, stdout: &syncBuffer{}, stderr: newLineLog(), code: make(chan int, 1)}
	e := testEnv(map[string]string{"SLACK_WEBHOOK_TEST": slack.WebhookURL("hook"), "SLACK_WEBHOOK_SLOW": slack.WebhookURL("slow")})
	e.slackClient = slack.HTTPClient()
	e.stderrIsTTY = true
	e.actionTimeout = 2 * time.Hour
	e.drain = drain
	notified := make(chan chan<- os.Signal, 1)
	e.notify = func(c chan<- os.Signal, _ ...os.Signal) { notified <- c }
	go func() {
		r.code <- run([]string{"route", "-format", "json", "-rules", rules}, pr, r.stdout, r.stderr, e)
	}()
	r.sigs = <-notified
	return r
}

// feedUntilWaiting writes a bounce for slow (posted at once) and 12 for
// alerts (2 posted, 10 folded), waits until the progress line says all
// 13 are handled, then writes a second one for slow, and waits until the
// line says it waits its turn, an hour away.
func (r *signalRoute) feedUntilWaiting(t *testing.T) {
	t.Helper()
	io.WriteString(r.in, liveBounce(t, "m-s1", "s1@slow.example"))
	for i := range 12 {
		io.WriteString(r.in, liveBounce(t, fmt.Sprintf("m-a%d", i), fmt.Sprintf("a%d@ok.example", i)))
	}
	r.stderr.wait(t, "sesrouter: 13 inputs read, 13 handled (13 notifications)")
	io.WriteString(r.in, liveBounce(t, "m-s2", "s2@slow.example"))
	r.stderr.wait(t, "sesrouter: 14 inputs read, 13 handled (13 notifications); 1 posts waiting, done in ")
}

// waitCode returns run's exit status (failing t at the failsafe).
func (r *signalRoute) waitCode(t *testing.T) int {
	t.Helper()
	select {
	case c := <-r.code:
		return c
	case <-time.After(failsafe):
		t.Fatalf("route still runs:\n%s", r.stderr)
		return 0
	}
}

// TestRouteLiveSignals stops a live route with SIGINT, then SIGTERM: it
// stops reading, the notification waiting for its turn is cut at the
// drain deadline (failed), the digest of what was folded is posted, the
// summary counts it all, and the exit status is 130 or 143. On a
// synctest bubble's clock, the digest is posted within the drain of 50 ms
// however busy the machine.
func TestRouteLiveSignals(t *testing.T) {
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				slack := actionstest.NewSlackInMemory(t)
				r := startSignalRoute(t, slack, 50*time.Millisecond)
				r.feedUntilWaiting(t)

				r.sigs <- tt.sig
				if code := r.waitCode(t); code != tt.code {
					t.Errorf("exit status %d, want %d", code, tt.code)
				}
				checkContains(t, "stderr", r.stderr.String(),
					fmt.Sprintf("sesrouter route: %v: stopped reading; finishing the notifications in flight (at most 50ms)\n", tt.sig),
					"sesrouter route: digest to alerts posted: Digest · 10 notifications folded (10 recipients)\n",
					"sesrouter route: 14 notifications (14 recipients), 0 skipped, 1 failed; digested 10, posted 3, failed 1, 1 digest, in ")

				lines := parseLines(t, r.stdout.String())
				if len(lines) != 14 {
					t.Fatalf("%d output lines, want 14:\n%s", len(lines), r.stdout)
				}
				last := lines[13]
				if len(last.Results) != 1 || last.Results[0].Outcome != "failed" || !strings.HasPrefix(last.Results[0].Error, "not posted: context canceled") {
					t.Errorf("the post waiting its turn: %+v, want failed, cut by the drain", last.Results)
				}
				posts := map[string][]string{}
				for _, p := range slack.Posts() {
					posts[p.Channel] = append(posts[p.Channel], p.Text)
				}
				if len(posts["slow"]) != 1 || len(posts["hook"]) != 3 || !strings.HasPrefix(posts["hook"][2], "Digest · 10 notifications folded") {
					t.Errorf("Slack got %q, want 2 posts and the digest to alerts (hook), 1 post to slow", posts)
				}
			})
		})
	}
}

// TestRouteLiveSecondSignal sends a second signal while the notification
// in flight has an hour to finish: route returns at once, with the exit
// status of the first.
//
// It runs on the wall clock, against the loopback fake: route leaves the
// notification in flight behind, which a synctest bubble would hold for
// ever. Nothing in it is timed: it waits only on what route reports.
func TestRouteLiveSecondSignal(t *testing.T) {
	r := startSignalRoute(t, actionstest.NewSlack(t), time.Hour)
	r.feedUntilWaiting(t)
	mark := r.stderr.mark()
	r.sigs <- syscall.SIGINT
	r.stderr.waitAfter(t, mark, "stopped reading; finishing the notifications in flight (at most 1h0m0s)")
	r.sigs <- syscall.SIGTERM
	if code := r.waitCode(t); code != 130 {
		t.Errorf("exit status %d, want 130", code)
	}
}
