package pipeline

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/storm"
	"github.com/sesrouter/sesrouter/rulestore"
)

// TestWindowsCloseWaitsForAFiredWindow checks that Close waits for the
// digests of a window whose time has come and whose flush is still
// running: at shutdown, no digest is dropped.
func TestWindowsCloseWaitsForAFiredWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		flushed := 0
		ws := &Windows{Length: 10 * time.Second,
			NewBatch: func() *storm.Batch { return storm.NewBatch(storm.New(), true) },
			Flush: func(*storm.Batch) {
				<-release
				flushed++
			}}
		_, done := ws.Join()
		done()
		time.Sleep(11 * time.Second) // the window's time comes; its flush waits on release
		synctest.Wait()
		closed := make(chan struct{})
		go func() { ws.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while the fired window's digests were still being posted")
		default:
		}
		close(release)
		<-closed
		if flushed != 1 {
			t.Errorf("%d flushes, want 1", flushed)
		}
	})
}

// TestWindowsCloseEndsTheCurrentWindow checks that Close ends a window
// before its time, once its notifications are done, and posts its
// digests.
func TestWindowsCloseEndsTheCurrentWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		flushed := 0
		ws := &Windows{Length: time.Hour,
			NewBatch: func() *storm.Batch { return storm.NewBatch(storm.New(), true) },
			Flush:    func(*storm.Batch) { flushed++ }}
		_, done := ws.Join()
		closed := make(chan struct{})
		go func() { ws.Close(); close(closed) }()
		synctest.Wait()
		if flushed != 0 {
			t.Fatal("the window was flushed while a notification was in flight")
		}
		done()
		<-closed
		if flushed != 1 {
			t.Errorf("%d flushes, want 1", flushed)
		}
	})
}

// TestServiceReloadKeepsDigestsAndDuplicates checks what a reload in the
// middle of a window keeps: the digest of what the window folded for a
// destination that only the old rules had, and de-duplication.
func TestServiceReloadKeepsDigestsAndDuplicates(t *testing.T) {
	f := newFakes(t)
	old := strings.Replace(rulesHook, "digest_after: 3", "digest_after: 1", 1)
	path := writeFile(t, "rules.yaml", old)
	live, err := NewLive(context.Background(), f.parts, Source{Name: path, Store: &rulestore.Store{}}, loadConfig(t, old), &rulestore.Object{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(live, time.Hour)
	msg := func(id string) *ses.SNSMessage {
		m, err := ses.ParseSNS([]byte(snsBody(id, bounce(id, id+"@example.com"))))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	svc.Handle(context.Background(), msg("w1")) // posted
	if j := svc.Handle(context.Background(), msg("w2")); j.Results[0].Outcome != actions.OutcomeDigested {
		t.Fatalf("w2: %s, want digested", j.Results[0].Outcome)
	}
	renamed := strings.NewReplacer("  hook:", "  other:", "{notify: hook}", "{notify: other}", "HOOK", "OTHER").Replace(rulesHook)
	if err := os.WriteFile(path, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	f.parts.Slack.Getenv = func(k string) string {
		if k == "OTHER" || k == "HOOK" {
			return f.slack.WebhookURL(strings.ToLower(k))
		}
		return ""
	}
	svc.Reload(context.Background())
	if !strings.Contains(f.log.String(), "rules reloaded") {
		t.Fatalf("log %s: want the rules reloaded", f.log.String())
	}
	if j := svc.Handle(context.Background(), msg("w1")); !j.Duplicate {
		t.Error("w1 again after the reload is not a duplicate: the reload reset de-duplication")
	}
	svc.Close()
	var digests int
	for _, p := range f.slack.Posts() {
		if strings.HasPrefix(p.Text, "Digest") && p.Channel == "hook" {
			digests++
		}
	}
	if digests != 1 {
		t.Errorf("%d digests to the old destination, want 1 (posted at Close, after the reload)", digests)
	}
}
