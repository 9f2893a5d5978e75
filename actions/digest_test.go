package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine"
)

// recorder is a Notifier that posts nothing and records every message it
// is given, with the time on the clock (in a synctest bubble, the
// bubble's). Tests of what depends on time use it instead of the Slack
// fake, whose sockets would keep a bubble's clock from moving.
type recorder struct {
	name string

	mu    sync.Mutex
	posts []recorded
}

type recorded struct {
	at time.Time
	m  Message
}

var _ Notifier = (*recorder)(nil)

func (r *recorder) Post(_ context.Context, m Message) (Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts = append(r.posts, recorded{time.Now(), m})
	return OutcomePosted, nil
}

func (r *recorder) Payload(m Message) []byte { return marshalPayload(WebhookPayload(m)) }

// count is how many messages r was given.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.posts)
}

// last is the last message r was given.
func (r *recorder) last(t *testing.T) Message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.posts) == 0 {
		t.Fatalf("%s: nothing posted", r.name)
	}
	return r.posts[len(r.posts)-1].m
}

// stormBounce is a permanent bounce to one address, with an SNS message
// id (so a key to be seen by) made from i.
func stormBounce(i int, address string) *engine.Notification {
	return &engine.Notification{
		Input:        fmt.Sprintf("storm.ndjson:%d", i),
		SNSMessageID: fmt.Sprintf("sns-%d", i),
		Event:        engine.Event{Type: engine.TypeBounce},
		Bounce:       engine.Bounce{Type: "Permanent", SubType: "General"},
		Recipients:   []engine.Recipient{engine.NewRecipient(address)},
	}
}

// outcomesOf is the outcome of every result, space-separated.
func outcomesOf(rs []Result) string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Outcome))
	}
	return strings.Join(out, " ")
}

// TestBatchFoldsPastDigestAfter posts through the real webhook client to
// the Slack fake: within one batch, the notices past digest_after are
// folded, and Flush posts their digest. No time passes that matters
// here: the storm window is five minutes.
func TestBatchFoldsPastDigestAfter(t *testing.T) {
	sl := actionstest.NewSlack(t)
	src := "version: 1\ndestinations:\n  hook:\n    slack:\n      webhook_env: HOOK\n      digest_after: 2\n" +
		"rules:\n  - name: all\n    when: 'true'\n    actions: [{notify: hook}]\n"
	rules, err := engine.Load("rules.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	dests, err := ParseDestinations(rules)
	if err != nil {
		t.Fatal(err)
	}
	d := &Dispatcher{Destinations: ByName(dests), Notifiers: map[string]Notifier{
		"hook": NewSlackWebhook(Secret(sl.WebhookURL("hook")), "HOOK", nil, DefaultRetry(), nil),
	}}
	router := engine.NewRouter(rules)
	b := NewBatch(NewStorm(), false)
	var outcomes []string
	for i := range 5 {
		n := stormBounce(i, "user"+string(rune('a'+i))+"@example.com")
		outcomes = append(outcomes, outcomesOf(d.Dispatch(context.Background(), router.Route(n), b)))
	}
	if got := strings.Join(outcomes, " "); got != "posted posted digested digested digested" {
		t.Errorf("outcomes %s", got)
	}
	results := b.Flush(context.Background())
	if len(results) != 1 || results[0].Destination != "hook" || results[0].Outcome != OutcomePosted || results[0].Err != nil {
		t.Fatalf("flush %+v: want the digest of hook posted", results)
	}
	if r := results[0]; r.Notifications != 3 || r.Recipients != 3 || r.Inputs != nil || r.Keys != nil {
		t.Errorf("digest folded %d notifications, %d recipients, inputs %v, keys %v; want 3, 3 and none kept", r.Notifications, r.Recipients, r.Inputs, r.Keys)
	}
	posts := sl.Posts()
	if len(posts) != 3 {
		t.Fatalf("%d posts, want 2 and the digest", len(posts))
	}
	dg := posts[2]
	if problems := actionstest.CheckBlocks(dg.Blocks); len(problems) > 0 {
		t.Errorf("digest breaks Slack's limits: %v", problems)
	}
	for _, want := range []string{"Digest · 3 notifications folded", "3 recipients, after 2 messages to this destination within 5m0s",
		"Bounce · Permanent/General: 3", "example.com: 3", "all: 3",
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
	dest := &Destination{Name: "x", DigestAfter: 1, DigestWindow: time.Hour}
	storm := NewStorm()
	b := NewBatch(storm, false)
	if !storm.admit(dest, 1, b.now()) {
		t.Fatal("the first message was not let through")
	}
	n := &recorder{name: "x"}
	for i := range 1254 {
		rc := engine.NewRecipient(strings.Repeat("x", i%300) + "@d" + string(rune('a'+i%26)) + ".example")
		notice := Notice{Notification: &engine.Notification{Event: engine.Event{Type: engine.TypeBounce}},
			Recipients: []NoticeRecipient{{Recipient: &rc, Rule: "rule-" + string(rune('a'+i%20))}}}
		if b.admit(dest, n, 1, &notice) {
			t.Fatalf("notice %d was let through in a storm", i)
		}
	}
	m := b.dests["x"].message()
	raw := string(n.Payload(m))
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
