package storm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	"github.com/sesrouter/sesrouter/pipeline/storm"
	slackapi "github.com/slack-go/slack"
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
	m  actions.Message
}

var _ actions.Notifier = (*recorder)(nil)

func (r *recorder) Post(_ context.Context, m actions.Message) (actions.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts = append(r.posts, recorded{time.Now(), m})
	return actions.OutcomePosted, nil
}

func (r *recorder) Payload(m actions.Message) []byte { return actions.WebhookJSON(m) }

// count is how many messages r was given.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.posts)
}

// last is the last message r was given.
func (r *recorder) last(t *testing.T) actions.Message {
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
func stormBounce(i int, address string) *ses.Notification {
	return &ses.Notification{
		Input:        fmt.Sprintf("storm.ndjson:%d", i),
		SNSMessageID: fmt.Sprintf("sns-%d", i),
		Event:        ses.Event{Type: ses.TypeBounce},
		Bounce:       ses.Bounce{Type: "Permanent", SubType: "General"},
		Recipients:   []ses.Recipient{ses.NewRecipient(address)},
	}
}

// headerText is the text of m's header block, "" when it has none.
func headerText(m actions.Message) string {
	if h, ok := m.Blocks[0].(*slackapi.HeaderBlock); ok && h.Text != nil {
		return h.Text.Text
	}
	return ""
}

// outcomesOf is the outcome of every result, space-separated.
func outcomesOf(rs []actions.Result) string {
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
	rules, err := rules.Load("rules.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	dests := rules.DestinationList()
	d := &actions.Dispatcher{Destinations: slack.ByName(dests), Notifiers: map[string]actions.Notifier{
		"hook": slack.NewSlackWebhook(slack.Secret(sl.WebhookURL("hook")), "HOOK", nil, slack.DefaultRetry(), nil),
	}}
	router := route.NewRouter(rules)
	b := storm.NewBatch(storm.New(), false)
	var outcomes []string
	for i := range 5 {
		n := stormBounce(i, "user"+string(rune('a'+i))+"@example.com")
		outcomes = append(outcomes, outcomesOf(d.Dispatch(context.Background(), router.Route(n), b)))
	}
	if got := strings.Join(outcomes, " "); got != "posted posted digested digested digested" {
		t.Errorf("outcomes %s", got)
	}
	results := b.Flush(context.Background())
	if len(results) != 1 || results[0].Destination != "hook" || results[0].Outcome != actions.OutcomePosted || results[0].Err != nil {
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
	for _, want := range []string{"Digest · 3 notifications folded", "3 recipients, after 2 messages to this destination within 5m",
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
	dest := &rules.Destination{Name: "x", DigestAfter: 1, DigestWindow: time.Hour}
	st := storm.New()
	b := storm.NewBatch(st, false)
	if !st.AdmitAt(dest, b.Now()) {
		t.Fatal("the first message was not let through")
	}
	n := &recorder{name: "x"}
	for i := range 1254 {
		rc := ses.NewRecipient(strings.Repeat("x", i%300) + "@d" + string(rune('a'+i%26)) + ".example")
		notice := actions.Notice{Notification: &ses.Notification{Event: ses.Event{Type: ses.TypeBounce}},
			Recipients: []actions.NoticeRecipient{{Recipient: &rc, Rule: "rule-" + string(rune('a'+i%20))}}}
		if posted, _, err := b.Admit(context.Background(), dest, n, &notice); posted || err != nil {
			t.Fatalf("notice %d was let through in a storm (error %v)", i, err)
		}
	}
	m := b.DigestMessage("x")
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

// stormRules has two destinations with small storm limits, and routes
// recipients at other.example to the second.
const stormRules = `version: 1
destinations:
  alerts:
    slack: {channel: C0000000001, digest_after: 2, digest_window: 5m}
  other:
    slack: {channel: C0000000002, digest_after: 1, digest_window: 5m}
rules:
  - name: to-other
    when: recipient.domain == "other.example"
    actions: [{notify: other}]
  - name: all
    when: 'true'
    actions: [{notify: alerts}]
`

// stormDispatcher is a Dispatcher for stormRules whose notifiers record,
// its router, and the recorders.
func stormDispatcher(t *testing.T) (*actions.Dispatcher, *route.Router, map[string]*recorder) {
	t.Helper()
	rules, err := rules.Load("rules.yaml", []byte(stormRules))
	if err != nil {
		t.Fatal(err)
	}
	dests := rules.DestinationList()
	recs := map[string]*recorder{"alerts": {name: "alerts"}, "other": {name: "other"}}
	d := &actions.Dispatcher{Destinations: slack.ByName(dests), Notifiers: map[string]actions.Notifier{"alerts": recs["alerts"], "other": recs["other"]}}
	return d, route.NewRouter(rules), recs
}

// stormStep is a notice dispatched at a time after the start, and what
// is to become of it.
type stormStep struct {
	at   time.Duration
	want actions.Outcome
}

// TestStormOutlivesBatches follows one destination (digest_after 2,
// digest_window 5m) through two batches, as two Lambda invocations of one
// warm container, on a synctest bubble's clock. time.Sleep there only
// moves the fake clock on.
func TestStormOutlivesBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, router, recs := stormDispatcher(t)
		alerts := d.Destinations["alerts"]
		st := storm.New()
		start := time.Now()
		at := func(offset time.Duration) { time.Sleep(time.Until(start.Add(offset))) }
		notify := func(b *storm.Batch, i int) actions.Outcome {
			t.Helper()
			rs := d.Dispatch(context.Background(), router.Route(stormBounce(i, fmt.Sprintf("user%d@example.com", i))), b)
			if len(rs) != 1 || rs[0].Action() != "notify:alerts" || rs[0].Err != nil {
				t.Fatalf("notification %d: %+v", i, rs)
			}
			return rs[0].Outcome
		}
		steps := func(b *storm.Batch, first int, steps ...stormStep) {
			t.Helper()
			for i, s := range steps {
				at(s.at)
				if got := notify(b, first+i); got != s.want {
					t.Errorf("notification %d at %s: %s, want %s", first+i, s.at, got, s.want)
				}
			}
		}

		// The first invocation: two notices posted, the third folded.
		b1 := storm.NewBatch(st, true)
		steps(b1, 0, stormStep{0, actions.OutcomePosted}, stormStep{time.Minute, actions.OutcomePosted}, stormStep{2 * time.Minute, actions.OutcomeDigested})
		if !st.Storming(alerts, time.Now()) {
			t.Error("not storming after two messages within the window")
		}
		if n := recs["alerts"].count(); n != 2 {
			t.Errorf("%d messages before the flush, want 2", n)
		}
		r1 := b1.Flush(context.Background())
		if len(r1) != 1 || r1[0].Destination != "alerts" || r1[0].Outcome != actions.OutcomePosted || r1[0].Notifications != 1 ||
			!slices.Equal(r1[0].Inputs, []string{"storm.ndjson:2"}) || !slices.Equal(r1[0].Keys, []string{"sns:sns-2"}) {
			t.Errorf("first flush %+v: want one digest of alerts, of notification 2", r1)
		}
		if h := headerText(recs["alerts"].last(t)); h != "Digest · 1 notification folded" {
			t.Errorf("the third message is %q, want the digest", h)
		}

		// The next invocation: a new batch, the same storm. Within the
		// window, it still folds; as the first messages leave the
		// window, a notice posts again, one at a time.
		b2 := storm.NewBatch(st, true)
		steps(b2, 3,
			stormStep{3 * time.Minute, actions.OutcomeDigested},
			stormStep{5*time.Minute - time.Nanosecond, actions.OutcomeDigested}, // the message at 0 is still within 5m
			stormStep{5 * time.Minute, actions.OutcomePosted},                   // it is not: one slot is free
			stormStep{5*time.Minute + time.Second, actions.OutcomeDigested},     // messages at 1m and 5m
			stormStep{6 * time.Minute, actions.OutcomePosted},                   // the one at 1m has left
		)
		r2 := b2.Flush(context.Background())
		if len(r2) != 1 || r2[0].Notifications != 3 || r2[0].Recipients != 3 ||
			!slices.Equal(r2[0].Inputs, []string{"storm.ndjson:3", "storm.ndjson:4", "storm.ndjson:6"}) {
			t.Errorf("second flush %+v: want one digest of notifications 3, 4 and 6", r2)
		}
		if n := recs["alerts"].count(); n != 3+2+1 {
			t.Errorf("%d messages, want 3 of the first invocation, 2 posted and 1 digest of the second", n)
		}

		// After a quiet window, the storm is over.
		at(11*time.Minute + time.Second)
		if st.Storming(alerts, time.Now()) {
			t.Error("still storming after a quiet window")
		}
		if got := notify(storm.NewBatch(st, false), 8); got != actions.OutcomePosted {
			t.Errorf("after a quiet window: %s, want posted", got)
		}
	})
}

// TestBatchFlush: one digest per destination, in the order of the rules
// file whatever the order of the folds, each posted with the notifier
// the notices were folded with, even when the notifiers were replaced
// since (the rules reloaded).
func TestBatchFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, router, recs := stormDispatcher(t)
		b := storm.NewBatch(storm.New(), false)
		// other (the second destination) takes one message, alerts two;
		// every later notice folds.
		addrs := []string{"a@other.example", "b@other.example", "c@other.example",
			"d@example.com", "e@example.com", "f@example.com", "g@example.com"}
		var got []string
		for i, a := range addrs {
			got = append(got, outcomesOf(d.Dispatch(context.Background(), router.Route(stormBounce(i, a)), b)))
		}
		if want := "posted digested digested posted posted digested digested"; strings.Join(got, " ") != want {
			t.Errorf("outcomes %s, want %s", strings.Join(got, " "), want)
		}

		reloaded := map[string]*recorder{"alerts": {name: "reloaded alerts"}, "other": {name: "reloaded other"}}
		d.Notifiers = map[string]actions.Notifier{"alerts": reloaded["alerts"], "other": reloaded["other"]}
		results := b.Flush(context.Background())

		var order []string
		for _, r := range results {
			order = append(order, fmt.Sprintf("%s:%d", r.Destination, r.Notifications))
			if r.Outcome != actions.OutcomePosted || r.Err != nil {
				t.Errorf("%s: %s, %v", r.Destination, r.Outcome, r.Err)
			}
		}
		if want := []string{"alerts:2", "other:2"}; !slices.Equal(order, want) {
			t.Errorf("flushed %v, want %v: one digest each, in file order", order, want)
		}
		for name, want := range map[string]int{"alerts": 3, "other": 2} {
			if n := recs[name].count(); n != want {
				t.Errorf("%s's notifier got %d messages, want %d, its digest included", name, n, want)
			}
			if h := headerText(recs[name].last(t)); h != "Digest · 2 notifications folded" {
				t.Errorf("%s's last message is %q, want its digest", name, h)
			}
			if n := reloaded[name].count(); n != 0 {
				t.Errorf("the reloaded notifier of %s got %d messages, want none", name, n)
			}
		}
	})
}

// TestDryRunDigest: in a dry run, a storm's digest is rendered, not
// posted, by the notifier the notices were folded with.
func TestDryRunDigest(t *testing.T) {
	sl := actionstest.NewSlack(t, testChannel)
	rs, err := rules.Load("rules.yaml", []byte("version: 1\ndestinations:\n  ses-alerts:\n    slack: {channel: "+testChannel+", digest_after: 1}\n"+
		"rules:\n  - name: all\n    when: 'true'\n    actions: [{notify: ses-alerts}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	dests := rs.DestinationList()
	d := &actions.Dispatcher{Destinations: slack.ByName(dests), Notifiers: map[string]actions.Notifier{
		"ses-alerts": actions.DryRun(slack.NewSlackBot(slack.Secret(sl.Token()), sl.APIURL(), testChannel, nil, fastRetry, nil)),
	}}
	router := route.NewRouter(rs)
	b := storm.NewBatch(storm.New(), false)
	var got []string
	for i := range 3 {
		got = append(got, outcomesOf(d.Dispatch(context.Background(), router.Route(stormBounce(i, fmt.Sprintf("u%d@example.com", i))), b)))
	}
	if want := "dry-run digested digested"; strings.Join(got, " ") != want {
		t.Errorf("outcomes %s, want %s", strings.Join(got, " "), want)
	}
	results := b.Flush(context.Background())
	if len(results) != 1 || results[0].Destination != "ses-alerts" || results[0].Outcome != actions.OutcomeDryRun || results[0].Err != nil || results[0].Notifications != 2 {
		t.Errorf("flush %+v, want the dry run of one digest of 2", results)
	}
	if c := sl.Counts(); c.Requests != 0 {
		t.Errorf("the Slack fake saw %d requests in a dry run", c.Requests)
	}
}
