package storm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// testChannel is the channel the bot-token tests post to.
const testChannel = "C0123456789"

// fastRetry keeps the tests that post to the Slack fake fast: 4
// attempts, 5 ms of backoff doubling up to 20 ms.
var fastRetry = slack.Retry{Attempts: 4, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// threadStorm sends 300 bounces, one every half second, to the one
// destination d of the rules given (digest_after 10, digest_window 5m),
// flushing the batch every ten notices as serve's windows do, then lets
// the window end. It returns the fake's posts and edits.
func threadStorm(t *testing.T, sl *actionstest.Slack, slackLines string, notifier func(d *rules.Destination) actions.Notifier) ([]actionstest.Post, []actionstest.Update) {
	t.Helper()
	rs, err := rules.Load("rules.yaml", []byte("version: 1\ndestinations:\n  d:\n    slack: {"+slackLines+", digest_after: 10, digest_window: 5m}\n"+
		"rules:\n  - name: all\n    when: 'true'\n    actions: [{notify: d}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	dests := rs.DestinationList()
	d := &actions.Dispatcher{Destinations: slack.ByName(dests), Notifiers: map[string]actions.Notifier{"d": notifier(dests[0])}}
	router := route.NewRouter(rs)
	batch := storm.NewBatch(storm.New(), true)
	for i := range 300 {
		domain := []string{"example.com", "example.net", "example.org"}[i%3]
		res := d.Dispatch(context.Background(), router.Route(stormBounce(i, fmt.Sprintf("user%d@%s", i, domain))), batch)
		if len(res) != 1 || res[0].Err != nil {
			t.Fatalf("notification %d: %+v", i, res)
		}
		if i%10 == 9 {
			for _, r := range batch.Flush(context.Background()) {
				if r.Err != nil {
					t.Fatalf("digest: %v", r.Err)
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(5 * time.Minute)
	synctest.Wait()
	return sl.Posts(), sl.Updates()
}

// TestStormThread: a storm of 300 bounces to a bot-token destination
// gives its first digest_after messages, then one root, every later
// message (the digests) in the root's thread, the root edited at most
// every 10 s, and a last edit with the totals.
func TestStormThread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sl := actionstest.NewSlackInMemory(t, testChannel)
		posts, updates := threadStorm(t, sl, "channel: "+testChannel, func(*rules.Destination) actions.Notifier {
			return slack.NewSlackBot(slack.Secret(sl.Token()), sl.APIURL(), testChannel, sl.HTTPClient(), fastRetry, nil)
		})
		if len(posts) < 12 {
			t.Fatalf("%d posts", len(posts))
		}
		for i, p := range posts[:10] {
			if p.ThreadTS != "" || !strings.HasPrefix(p.Text, "Bounce") {
				t.Errorf("post %d = %q in thread %q, want a top-level bounce", i, p.Text, p.ThreadTS)
			}
		}
		root := posts[10]
		if root.ThreadTS != "" || !strings.HasPrefix(root.Text, "Storm · 1 notification so far") {
			t.Errorf("post 10 = %q in thread %q, want the storm's root", root.Text, root.ThreadTS)
		}
		roots := 0
		for i, p := range posts[11:] {
			if p.ThreadTS != root.TS {
				t.Errorf("post %d = %q in thread %q, want in the root's thread %q", 11+i, p.Text, p.ThreadTS, root.TS)
			}
			if strings.HasPrefix(p.Text, "Storm") {
				roots++
			}
		}
		if roots != 0 {
			t.Errorf("%d more roots", roots)
		}
		if len(updates) < 2 {
			t.Fatalf("%d edits of the root, want running ones and a last", len(updates))
		}
		for i, u := range updates {
			if u.TS != root.TS {
				t.Errorf("edit %d is of %q, not the root %q", i, u.TS, root.TS)
			}
			if i > 0 && i < len(updates)-1 && u.Time.Sub(updates[i-1].Time) < storm.RootEditEvery {
				t.Errorf("edits %d and %d %s apart, want at least %s", i-1, i, u.Time.Sub(updates[i-1].Time), storm.RootEditEvery)
			}
		}
		last := updates[len(updates)-1]
		for _, want := range []string{"Storm over · 290 notifications in total", "290 recipients", "example.com: 96", "example.net: 97", "example.org: 97", "• all: 290", "Permanent/General: 290"} {
			if !strings.Contains(last.Text+string(last.Blocks), want) {
				t.Errorf("last edit: want %q in %s %s", want, last.Text, last.Blocks)
			}
		}
	})
}

// TestStormThreadNoneAndWebhook: thread: none, and a webhook, keep flat
// messages and edit nothing.
func TestStormThreadNoneAndWebhook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sl := actionstest.NewSlackInMemory(t, testChannel)
		posts, updates := threadStorm(t, sl, "channel: "+testChannel+", thread: none", func(*rules.Destination) actions.Notifier {
			return slack.NewSlackBot(slack.Secret(sl.Token()), sl.APIURL(), testChannel, sl.HTTPClient(), fastRetry, nil)
		})
		checkFlat(t, "thread: none", posts, updates)
	})
	synctest.Test(t, func(t *testing.T) {
		sl := actionstest.NewSlackInMemory(t)
		url := sl.WebhookURL("hook")
		posts, updates := threadStorm(t, sl, "webhook_env: HOOK", func(*rules.Destination) actions.Notifier {
			return slack.NewSlackWebhook(slack.Secret(url), "HOOK", sl.HTTPClient(), fastRetry, nil)
		})
		checkFlat(t, "webhook", posts, updates)
	})
}

// checkFlat fails t unless the storm gave 10 messages and 29 digests,
// none in a thread, and no edit.
func checkFlat(t *testing.T, name string, posts []actionstest.Post, updates []actionstest.Update) {
	t.Helper()
	if len(posts) != 10+29 || len(updates) != 0 {
		t.Errorf("%s: %d posts and %d edits, want 39 and none", name, len(posts), len(updates))
	}
	for i, p := range posts {
		if p.ThreadTS != "" || strings.HasPrefix(p.Text, "Storm") || strings.Contains(string(p.Body), "thread_ts") {
			t.Errorf("%s: post %d = %q in thread %q", name, i, p.Text, p.ThreadTS)
		}
	}
}
