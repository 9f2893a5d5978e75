package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// What the tests wait on, without sleeping: the lines a process or an
// in-process run writes, and the requests a gate holds.

// failsafe bounds every wait of these tests. It is no measure of how long
// anything should take: reaching it fails the test, because what it waited
// for never came.
const failsafe = time.Minute

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lineLog is an io.Writer that keeps what is written, line by line, and
// lets a test wait for a line: give it as the stderr of an in-process run
// (the lines are there as soon as the run has written them) or of a child
// process (os/exec copies the child's pipe into it as the child writes).
// A line ends at '\n' or '\r' (a progress line is redrawn after '\r').
type lineLog struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	lines   []string
	closed  bool
	changed chan struct{} // closed and replaced whenever a line comes
	// onLine, when set, is called with each line as it comes.
	onLine func(string)
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexAny(l.partial, "\r\n")
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.lines = append(l.lines, line)
		if l.onLine != nil {
			l.onLine(line)
		}
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// Close says nothing more will be written: a wait for a line that has
// not come fails at once.
func (l *lineLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
	return nil
}

// String is everything written so far.
func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// mark is how many lines have come so far, for waitAfter.
func (l *lineLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// wait blocks until a line holding want has come, and returns it.
func (l *lineLog) wait(t testing.TB, want string) string {
	t.Helper()
	return l.waitAfter(t, 0, want)
}

// waitAfter blocks until a line holding want has come after the first
// from lines, and returns it; it fails t when the log is closed first, or
// at the failsafe.
func (l *lineLog) waitAfter(t testing.TB, from int, want string) string {
	t.Helper()
	line, err := l.waitFunc(from, func(s string) bool { return strings.Contains(s, want) })
	if err != nil {
		t.Fatalf("waiting for a line with %q: %v; so far:\n%s", want, err, l.String())
	}
	return line
}

// waitFunc blocks until a line after the first from satisfies ok.
func (l *lineLog) waitFunc(from int, ok func(string) bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	for seen := from; ; {
		l.mu.Lock()
		for ; seen < len(l.lines); seen++ {
			if ok(l.lines[seen]) {
				line := l.lines[seen]
				l.mu.Unlock()
				return line, nil
			}
		}
		changed, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return "", io.ErrUnexpectedEOF
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// gate is an HTTP server on loopback that stands in front of another
// (a Slack webhook of the fake) and, while it holds, holds each request
// until the test opens it: a test knows when a request is in flight, and
// decides when it ends. A request whose client goes away while held is
// dropped. A new gate holds.
type gate struct {
	URL string // what to give in place of the target's URL
	// arrived gets a value as each request held comes to the gate.
	arrived chan struct{}

	target  string
	mu      sync.Mutex
	release chan struct{} // nil: requests go through
}

// newGate starts a gate in front of target (a full URL: every request is
// forwarded to it, whatever its path), closed by t.Cleanup, which lets
// held requests through first.
func newGate(t testing.TB, target string) *gate {
	g := &gate{arrived: make(chan struct{}, 100), target: target, release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(func() { g.open(); srv.Close() })
	g.URL = srv.URL + "/gate"
	return g
}

// hold makes the gate hold the requests that come from now on.
func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release == nil {
		g.release = make(chan struct{})
	}
}

// open lets the requests held, and every later one, through.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release != nil {
		close(g.release)
		g.release = nil
	}
}

// waitArrived blocks until a request held has come to the gate.
func (g *gate) waitArrived(t testing.TB) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(failsafe):
		t.Fatal("no request came to the gate")
	}
}

func (g *gate) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	g.mu.Lock()
	release := g.release
	g.mu.Unlock()
	if release != nil {
		g.arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, g.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
