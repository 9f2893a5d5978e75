package actions

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine"
)

func TestPacerSpacesPosts(t *testing.T) {
	p := NewPacer(Pace{Every: 20 * time.Millisecond, Burst: 3})
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := p.Wait(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// 3 at once, then 5 more at 20 ms each.
	if d := time.Since(start); d < 90*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("8 posts in %s, want about 100 ms", d)
	}
}

func TestPacerPauseHoldsEveryone(t *testing.T) {
	p := NewPacer(Pace{Every: time.Millisecond, Burst: 1})
	p.Pause(150 * time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := p.Wait(context.Background()); err != nil {
				t.Error(err)
			}
			if d := time.Since(start); d < 140*time.Millisecond {
				t.Errorf("a post went %s into a 150 ms pause", d)
			}
		})
	}
	wg.Wait()
}

func TestPacerFailsAtOncePastTheDeadline(t *testing.T) {
	p := NewPacer(Pace{Every: time.Minute, Burst: 1})
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := p.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "after the deadline") {
		t.Errorf("error %v, want one saying the turn comes after the deadline", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("failed after %s, want at once", d)
	}
	var nilPacer *Pacer
	if err := nilPacer.Wait(ctx); err != nil {
		t.Errorf("nil Pacer: %v", err)
	}
}

// TestWebhook429PausesThePacer: a 429's Retry-After holds the next post
// of every notifier sharing the pacer.
func TestWebhook429PausesThePacer(t *testing.T) {
	sl := actionstest.NewSlack(t)
	sl.Script(actionstest.Fault429After(1))
	p := NewPacer(Pace{Every: time.Millisecond, Burst: 1})
	w := NewSlackWebhook(Secret(sl.WebhookURL("a")), "HOOK", nil, DefaultRetry())
	w.SetPacer(p)
	msg := BuildMessages(Notice{Notification: &engine.Notification{}})[0]
	start := time.Now()
	if err := w.Post(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %s, want after Retry-After: 1", d)
	}
	if c := sl.Counts(); c.Throttled != 1 || c.Succeeded != 1 {
		t.Errorf("counts %+v: want one 429, then one success", c)
	}
}

func TestBatchFoldsPastDigestAfter(t *testing.T) {
	sl := actionstest.NewSlack(t)
	rules, err := engine.Load("rules.yaml", []byte("version: 1\ndestinations:\n  hook:\n    slack:\n      webhook_env: HOOK\n      digest_after: 2\n"+
		"rules:\n  - name: all\n    when: 'true'\n    actions: [{notify: hook}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Dispatcher{Rules: rules, Notifiers: map[string]Notifier{"hook": NewSlackWebhook(Secret(sl.WebhookURL("hook")), "HOOK", nil, DefaultRetry())}}
	router := engine.NewRouter(rules)
	b := d.NewBatch()
	ctx := WithBatch(context.Background(), b)
	var outcomes []string
	for i := range 5 {
		n := &engine.Notification{Event: engine.Event{Type: engine.TypeBounce}, Bounce: engine.Bounce{Type: "Permanent", SubType: "General"}}
		n.Recipients = []engine.Recipient{{Address: "user" + string(rune('a'+i)) + "@example.com"}}
		for _, r := range d.Dispatch(ctx, router.Route(n)) {
			outcomes = append(outcomes, r.Outcome)
		}
	}
	if got := strings.Join(outcomes, " "); got != "posted posted digested digested digested" {
		t.Errorf("outcomes %s", got)
	}
	results := b.Flush(context.Background())
	if len(results) != 1 || results[0].Action != "digest:hook" || results[0].Outcome != OutcomePosted {
		t.Fatalf("flush %+v: want the digest of hook posted", results)
	}
	posts := sl.Posts()
	if len(posts) != 3 {
		t.Fatalf("%d posts, want 2 and the digest", len(posts))
	}
	dg := posts[2]
	if problems := actionstest.CheckBlocks(dg.Blocks); len(problems) > 0 {
		t.Errorf("digest breaks Slack's limits: %v", problems)
	}
	for _, want := range []string{"Digest · 3 notifications folded", "Bounce · Permanent/General: 3", "example.com: 3", "all: 3",
		"`userc@example.com`, `userd@example.com`, `usere@example.com`"} {
		if !strings.Contains(string(dg.Body), want) {
			t.Errorf("digest %s: want %q", dg.Body, want)
		}
	}
	if again := b.Flush(context.Background()); len(again) != 0 {
		t.Errorf("second flush %+v, want nothing", again)
	}
}

func TestDigestManyAddresses(t *testing.T) {
	g := &digest{byType: map[string]int{}, byDomain: map[string]int{}, byRule: map[string]int{}}
	b := &Batch{dests: map[string]*digest{"x": g}}
	g.posted = 1
	for i := range 1254 {
		n := Notice{Notification: &engine.Notification{Event: engine.Event{Type: engine.TypeBounce}},
			Recipients: []NoticeRecipient{{Recipient: &engine.Recipient{Address: strings.Repeat("x", i%300) + "@d" + string(rune('a'+i%26)) + ".example"}, Rule: "rule-" + string(rune('a'+i%20))}}}
		b.admit("x", 1, 1, &n)
	}
	m := g.message()
	raw := string(webhookJSON(m))
	blocks, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if problems := actionstest.CheckBlocks(blocks); len(problems) > 0 {
		t.Errorf("digest breaks Slack's limits: %v", problems)
	}
	for _, want := range []string{"Digest · 1,254 notifications folded", "and 1,234 more", "• and 11 others: 528", "• and 5 others: 310"} {
		if !strings.Contains(raw, want) {
			t.Errorf("digest: want %q in %s", want, raw)
		}
	}
}
