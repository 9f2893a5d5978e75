package main

import (
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The progress line of route, in a testing/synctest bubble: a dry run
// touches nothing outside the process, so its clock is the bubble's, and
// time passes only while the run waits for its input.

// routeInBubble runs route -dry-run -format json with stdin fed by feed
// (which may sleep: the bubble's clock then moves on while the run waits
// for input), stderr on a terminal or not, and returns what it printed.
func routeInBubble(t *testing.T, tty bool, feed func(w io.Writer)) cliResult {
	t.Helper()
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", minimalRules)
	e := testEnv(nil)
	e.stderrIsTTY = tty
	pr, pw := io.Pipe()
	var stdout, stderr syncBuffer
	code := make(chan int)
	go func() {
		code <- run([]string{"route", "-dry-run", "-format", "json", "-rules", rules}, pr, &stdout, &stderr, e)
	}()
	feed(pw)
	pw.Close()
	return cliResult{<-code, stdout.String(), stderr.String()}
}

// TestRouteProgress checks the progress line of a run that waits for its
// input: on a terminal, nothing in the first second, then the line,
// redrawn in place ("\r", erase to the end of the line), counting the
// inputs read and handled, and erased before the summary; when standard
// error is no terminal, no line at all. A run over before the first second
// draws none either.
func TestRouteProgress(t *testing.T) {
	const erase = "\r\x1b[K"
	slow := func(w io.Writer) {
		io.WriteString(w, strings.Repeat(bounceLine, 3))
		time.Sleep(1400 * time.Millisecond) // the bubble's clock: the run waits for its fourth input
		io.WriteString(w, bounceLine)
	}
	tests := []struct {
		name       string
		tty        bool
		feed       func(io.Writer)
		wantLines  int
		wantStderr string
	}{
		// Drawn at 1 s and 1.25 s of the run, while it waits for input.
		{"terminal, a run of 1.4 s", true, slow, 4,
			strings.Repeat(erase+"sesrouter: 3 inputs read, 3 handled (3 notifications)", 2) + erase +
				"sesrouter route: 4 notifications (4 recipients), 0 skipped, 0 failed; dropped 4, in 1.4s\n"},
		{"no terminal, a run of 1.4 s", false, slow, 4,
			"sesrouter route: 4 notifications (4 recipients), 0 skipped, 0 failed; dropped 4, in 1.4s\n"},
		{"terminal, a run under a second", true, func(w io.Writer) { io.WriteString(w, strings.Repeat(bounceLine, 5000)) }, 5000,
			"sesrouter route: 5000 notifications (5000 recipients), 0 skipped, 0 failed; dropped 5000, in 0s\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := routeInBubble(t, tt.tty, tt.feed)
				if r.code != exitOK {
					t.Errorf("exit status %d, want 0", r.code)
				}
				if n := strings.Count(r.stdout, "\n"); n != tt.wantLines {
					t.Errorf("%d output lines, want %d", n, tt.wantLines)
				}
				if r.stderr != tt.wantStderr {
					t.Errorf("stderr:\n%q\nwant:\n%q", r.stderr, tt.wantStderr)
				}
			})
		})
	}
}
