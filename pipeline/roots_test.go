package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// TestFleetStormOneRoot: two containers share one state (state.Memory)
// and one Slack channel; each has its own fleet storm, batch and
// dispatcher. A storm of 300 bounces, both containers taking one at
// once every half second, gives the first digest_after messages, then
// one root for the whole fleet, every later message in its thread, and
// edits of that root only.
func TestFleetStormOneRoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const channel = "C0STORM"
		sl := actionstest.NewSlackInMemory(t, channel)
		rs, err := rules.Load("rules.yaml", []byte("version: 1\ndestinations:\n  d:\n    slack: {channel: "+channel+", digest_after: 10, digest_window: 5m}\n"+
			"rules:\n  - name: all\n    when: 'true'\n    actions: [{notify: d}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		router := route.NewRouter(rs)
		dests := rs.DestinationList()
		st := state.NewMemory()
		type container struct {
			d     *actions.Dispatcher
			batch *storm.Batch
		}
		var cs [2]container
		for i := range cs {
			n := slack.NewSlackBot(slack.Secret(sl.Token()), sl.APIURL(), channel, sl.HTTPClient(), slack.Retry{Attempts: 4, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}, nil)
			cs[i] = container{
				d:     &actions.Dispatcher{Destinations: slack.ByName(dests), Notifiers: map[string]actions.Notifier{"d": n}},
				batch: storm.NewBatch(FleetStorm(st), true),
			}
		}
		for step := range 150 {
			var wg sync.WaitGroup
			for c := range cs {
				wg.Go(func() {
					i := 2*step + c
					n := &ses.Notification{
						Input:        fmt.Sprintf("storm.ndjson:%d", i),
						SNSMessageID: fmt.Sprintf("sns-%d", i),
						Event:        ses.Event{Type: ses.TypeBounce},
						Bounce:       ses.Bounce{Type: "Permanent", SubType: "General"},
						Recipients:   []ses.Recipient{ses.NewRecipient(fmt.Sprintf("user%d@example.com", i))},
					}
					if res := cs[c].d.Dispatch(context.Background(), router.Route(n), cs[c].batch); len(res) != 1 || res[0].Err != nil {
						t.Errorf("container %d, notification %d: %+v", c, i, res)
					}
					if step%5 == 4 {
						for _, r := range cs[c].batch.Flush(context.Background()) {
							if r.Err != nil {
								t.Errorf("container %d: digest: %v", c, r.Err)
							}
						}
					}
				})
			}
			wg.Wait()
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()

		posts, updates := sl.Posts(), sl.Updates()
		if len(posts) < 12 {
			t.Fatalf("%d posts", len(posts))
		}
		for i, p := range posts[:10] {
			if p.ThreadTS != "" || !strings.HasPrefix(p.Text, "Bounce") {
				t.Errorf("post %d = %q in thread %q, want a top-level bounce", i, p.Text, p.ThreadTS)
			}
		}
		root := posts[10]
		if root.ThreadTS != "" || !strings.HasPrefix(root.Text, "Storm · ") {
			t.Fatalf("post 10 = %q in thread %q, want the storm's root", root.Text, root.ThreadTS)
		}
		digests := 0
		for i, p := range posts[11:] {
			if p.ThreadTS != root.TS {
				t.Errorf("post %d = %q in thread %q, want in the root's thread %q", 11+i, p.Text, p.ThreadTS, root.TS)
			}
			if strings.HasPrefix(p.Text, "Storm") {
				t.Errorf("post %d = %q: a second root", 11+i, p.Text)
			}
			digests++
		}
		if digests == 0 {
			t.Error("no message in the root's thread")
		}
		if len(updates) < 2 {
			t.Fatalf("%d edits of the root, want running ones and a last", len(updates))
		}
		for i, u := range updates {
			if u.TS != root.TS {
				t.Errorf("edit %d is of %q, not the root %q", i, u.TS, root.TS)
			}
			if i > 0 && i < len(updates)-1 && u.Time.Sub(updates[i-1].Time) < storm.RootEditEvery {
				t.Errorf("edits %d and %d %s apart: two containers edit the root", i-1, i, u.Time.Sub(updates[i-1].Time))
			}
		}
		if last := updates[len(updates)-1]; !strings.HasPrefix(last.Text, "Storm over · ") {
			t.Errorf("last edit = %q, want the totals", last.Text)
		}
	})
}
