package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// TestSweepCommand runs sweep end to end against the fakes, with the
// rules of the original handler: a dry run lists what would be removed
// and removes and posts nothing; a live run removes exactly the kept
// addresses and posts one summary; JSON output has one line per entry a
// rule matched, in route's shape; a bad -reason is a usage error.
func TestSweepCommand(t *testing.T) {
	f := startLiveFakes(t)
	rules := filepath.Join("..", "..", "testdata", "rules", "handler.yaml")
	if _, err := os.Stat(rules); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	f.ses.Suppress("a+no-suppress@example.com", "BOUNCE", at)
	f.ses.Suppress("b@no.suppress.domain.jp", "BOUNCE", at)
	f.ses.Suppress("c@example.com", "BOUNCE", at)
	f.ses.Suppress("d+no-suppress@example.com", "COMPLAINT", at)
	f.vars["SLACK_WEBHOOK_URL"] = f.slack.WebhookURL("hook")
	e := testEnv(f.vars)

	r := runCLI(t, e, "", "sweep", "-dry-run", "-rules", rules, "-rate", "1000")
	if r.code != exitOK || !strings.Contains(r.stdout, "take a+no-suppress@example.com off the SES account suppression list") {
		t.Fatalf("dry run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, ok := f.ses.Suppressed("a+no-suppress@example.com"); !ok || len(f.slack.Posts()) != 0 {
		t.Fatal("a dry run removed or posted")
	}

	r = runCLI(t, e, "", "sweep", "-format", "json", "-rules", rules, "-rate", "1000")
	if r.code != exitOK {
		t.Fatalf("live: exit %d\n%s", r.code, r.stderr)
	}
	removed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var l struct {
			Envelope string `json:"envelope"`
			Results  []struct {
				Action, Recipient, Outcome string
			} `json:"results"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if l.Envelope != "sweep" {
			t.Errorf("envelope %q, want sweep", l.Envelope)
		}
		for _, res := range l.Results {
			if res.Action == "unsuppress" && res.Outcome == "removed" {
				removed[res.Recipient] = true
			}
		}
	}
	if len(removed) != 2 || !removed["a+no-suppress@example.com"] || !removed["b@no.suppress.domain.jp"] {
		t.Errorf("removed %v, want the two bounces the rules keep deliverable", removed)
	}
	for _, a := range []string{"c@example.com", "d+no-suppress@example.com"} {
		if _, ok := f.ses.Suppressed(a); !ok {
			t.Errorf("%s was taken off the list", a)
		}
	}
	posts := f.slack.Posts()
	if len(posts) != 1 || !strings.HasPrefix(posts[0].Text, "Sweep · 2 addresses taken off the suppression list") {
		t.Errorf("%d posts: want one summary", len(posts))
	}
	if !strings.Contains(r.stderr, "entries read (the whole list)") {
		t.Errorf("stderr %q: want the summary line", r.stderr)
	}
	for _, c := range f.ses.Calls() {
		if c.Op == actionstest.OpPutSuppressedDestination {
			t.Error("a sweep suppressed")
		}
	}

	if r := runCLI(t, e, "", "sweep", "-reason", "bounce", "-rules", rules); r.code != exitUsage || !strings.Contains(r.stderr, "BOUNCE or COMPLAINT") {
		t.Errorf("-reason bounce: exit %d, %q", r.code, r.stderr)
	}
}

// TestRouteHTML checks route -format html: only with -dry-run, and then
// one self-contained page.
func TestRouteHTML(t *testing.T) {
	rules := filepath.Join("..", "..", "testdata", "rules", "handler.yaml")
	r := runCLI(t, testEnv(nil), bounceLine, "route", "-dry-run", "-format", "html", "-rules", rules)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "<!DOCTYPE html>") || !strings.HasSuffix(r.stdout, "</html>\n") {
		t.Errorf("exit %d, page %.80q … %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, testEnv(nil), bounceLine, "route", "-format", "html", "-rules", rules); r.code != exitUsage {
		t.Errorf("-format html without -dry-run: exit %d, want 2", r.code)
	}
}
