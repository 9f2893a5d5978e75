package main

import (
	"bufio"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRouteProgressOnlyOnTerminal routes a generated input of several
// thousand notifications (more than the 1024 between progress checks) and
// checks that standard error holds only the summary line: no progress
// line ("\r", escape sequences) when stderr is not a terminal, and none
// on a terminal either for a run shorter than a second.
func TestRouteProgressOnlyOnTerminal(t *testing.T) {
	const n = 5000
	input := strings.Repeat(bounceLine, n)
	dir := t.TempDir()
	writeFile(t, dir, "rules.yaml", minimalRules)
	t.Chdir(dir)
	summary := regexp.MustCompile(`^sesrouter route: 5000 notifications \(5000 recipients\), 0 skipped, 0 failed, in [0-9.]+[a-zµ]+\n$`)
	tests := []struct {
		name string
		tty  bool
	}{
		{"stderr not a terminal", false},
		{"terminal, run under a second", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(nil)
			e.stderrIsTTY = tt.tty
			start := time.Now()
			r := runCLI(t, e, input, "route", "-dry-run", "-format", "json")
			if tt.tty && time.Since(start) >= time.Second {
				t.Skip("the run took over a second, so a progress line is allowed")
			}
			if r.code != exitOK {
				t.Errorf("exit status %d, want 0", r.code)
			}
			if got := strings.Count(r.stdout, "\n"); got != n {
				t.Errorf("%d output lines, want %d", got, n)
			}
			if strings.ContainsAny(r.stderr, "\r\033") {
				t.Errorf("stderr has a progress line: %q", r.stderr)
			}
			if !summary.MatchString(r.stderr) {
				t.Errorf("stderr = %q, want only the summary line", r.stderr)
			}
		})
	}
}

// TestShowProgress checks the progress line itself, which a test cannot
// reach through run without lasting over a second: nothing in the first
// second, then at most one line a second, each erasing the one before, and
// flush erasing the last one.
func TestShowProgress(t *testing.T) {
	var stderr strings.Builder
	rt := &router{
		out:    bufio.NewWriter(io.Discard),
		stderr: &stderr,
		opt:    routeOptions{progress: true},
		start:  time.Now(),
	}
	rt.inputs = 2048

	rt.showProgress("events.ndjson:2048")
	if stderr.Len() != 0 {
		t.Fatalf("progress in the first second: %q", stderr.String())
	}

	rt.start = time.Now().Add(-2 * time.Second)
	rt.showProgress("events.ndjson:2048")
	line := regexp.MustCompile(`^\r\x1b\[Ksesrouter: 2048 inputs, [0-9]+/s, at events\.ndjson:2048$`)
	if !line.MatchString(stderr.String()) {
		t.Fatalf("progress line %q, want a match for %s", stderr.String(), line)
	}

	stderr.Reset()
	rt.inputs = 3072
	rt.showProgress("events.ndjson:3072")
	if stderr.Len() != 0 {
		t.Errorf("second progress line within a second: %q", stderr.String())
	}

	rt.flush()
	if got := stderr.String(); got != "\r\x1b[K" {
		t.Errorf("flush wrote %q to stderr, want the progress line erased (\\r ESC[K)", got)
	}
	stderr.Reset()
	rt.flush()
	if stderr.Len() != 0 {
		t.Errorf("second flush wrote %q, want nothing: the line was already erased", stderr.String())
	}
}
