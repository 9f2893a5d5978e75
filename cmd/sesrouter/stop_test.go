package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWatchSignals checks the one place signals are read: the first
// SIGINT or SIGTERM ends ctx (its cause the signal), the second ends now
// and gives the signals back their default action; SIGHUP asks for a
// reload only when asked for; stop ends the relay and both contexts.
func TestWatchSignals(t *testing.T) {
	e := testEnv(nil)
	notified := make(chan chan<- os.Signal, 1)
	var asked []os.Signal
	stopped := make(chan struct{}, 2)
	e.notify = func(c chan<- os.Signal, sigs ...os.Signal) { asked = sigs; notified <- c }
	e.stop = func(chan<- os.Signal) { stopped <- struct{}{} }
	sig := watchSignals(e, true)
	c := <-notified
	if len(asked) != 3 || asked[2] != syscall.SIGHUP {
		t.Errorf("signals relayed %v, want SIGINT, SIGTERM and SIGHUP", asked)
	}

	c <- syscall.SIGHUP
	<-sig.reload
	if sig.ctx.Err() != nil {
		t.Fatal("SIGHUP stopped the command")
	}
	c <- syscall.SIGTERM
	<-sig.ctx.Done()
	if s, ok := stoppedBy(sig.ctx); !ok || s != syscall.SIGTERM || signalCode(s) != 143 {
		t.Errorf("stopped by %v (%v), want SIGTERM, exit status 143", s, ok)
	}
	if sig.now.Err() != nil {
		t.Error("the first signal stopped the command at once")
	}
	c <- syscall.SIGINT
	<-sig.now.Done()
	<-stopped // the default action is back
	if s, _ := stoppedBy(sig.ctx); s != syscall.SIGTERM {
		t.Errorf("after the second signal, stopped by %v, want still the first, SIGTERM", s)
	}
	sig.stop()

	quiet := watchSignals(e, false)
	<-notified
	if len(asked) != 2 || quiet.reload != nil {
		t.Errorf("without hup: relayed %v, reload %v; want SIGINT and SIGTERM only", asked, quiet.reload)
	}
	quiet.stop()
	if quiet.ctx.Err() == nil || quiet.now.Err() == nil {
		t.Error("stop left a context running")
	}
	if _, ok := stoppedBy(quiet.ctx); ok {
		t.Error("stop reads as a signal")
	}
}

// failingWriter is an output that cannot be written.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestWriteErrorFails checks that route and sweep report an output that
// cannot be written the same way, from the same place: a line on
// standard error, the summary, and exit status 1.
func TestWriteErrorFails(t *testing.T) {
	f := startLiveFakes(t)
	f.ses.Suppress("a+no-suppress@example.com", "BOUNCE", time.Now().Add(-time.Hour))
	f.vars["SLACK_WEBHOOK_URL"] = f.slack.WebhookURL("hook")
	rules := filepath.Join("..", "..", "testdata", "rules", "handler.yaml")
	for _, tt := range []struct {
		name, stdin string
		args        []string
		summary     string
	}{
		{"route", bounceLine, []string{"route", "-dry-run", "-rules", rules}, "sesrouter route: 1 notification (1 recipient)"},
		{"sweep", "", []string{"sweep", "-dry-run", "-rules", rules, "-rate", "1000"}, "sesrouter sweep: 1 entries read (the whole list); 1 notification (1 recipient)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tt.args, strings.NewReader(tt.stdin), failingWriter{}, &stderr, testEnv(f.vars))
			if code != exitFailed {
				t.Errorf("exit status %d, want 1", code)
			}
			checkContains(t, "stderr", stderr.String(), "sesrouter "+tt.name+": writing the output: no space left on device\n", tt.summary)
		})
	}
}
