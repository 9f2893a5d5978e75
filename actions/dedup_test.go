package actions

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

const dedupRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: HOOK
rules:
  - name: all
    when: "true"
    actions: [{notify: hook}]
`

// dedupBounce is an SES bounce; with snsID it comes in an SNS body.
func dedupBounce(t *testing.T, snsID, feedbackID string, addrs ...string) *ses.Notification {
	t.Helper()
	rcpts := ""
	for i, a := range addrs {
		if i > 0 {
			rcpts += ","
		}
		rcpts += fmt.Sprintf(`{"emailAddress":%q}`, a)
	}
	sesDoc := fmt.Sprintf(`{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","feedbackId":%q,"bouncedRecipients":[%s]},"mail":{"messageId":"m","source":"s@example.com","destination":[]}}`, feedbackID, rcpts)
	doc := sesDoc
	if snsID != "" {
		doc = fmt.Sprintf(`{"Type":"Notification","MessageId":%q,"TopicArn":"arn:aws:sns:us-east-1:1:t","Message":%q}`, snsID, sesDoc)
	}
	it := ses.Decode("t", []byte(doc))[0]
	if it.Notification == nil {
		t.Fatalf("%+v", it)
	}
	return it.Notification
}

// deduper is what the application does with each notification it gets:
// it acts on a notification once, even when it is delivered twice (as SNS
// and SQS may), and again when its actions failed.
type deduper struct {
	d      *Dispatcher
	seen   *Seen
	router *route.Router
}

func (dd *deduper) handle(ctx context.Context, n *ses.Notification) []Result {
	plan := dd.router.Route(n)
	if dd.seen.Begin(n) {
		return Duplicates(plan)
	}
	results := dd.d.Dispatch(ctx, plan, nil)
	if Failed(results) {
		dd.seen.Forget(SeenKeys(n)...)
	}
	return results
}

func newDeduper(t *testing.T) (*deduper, *actionstest.Slack) {
	t.Helper()
	rules, err := rules.Load("rules.yaml", []byte(dedupRules))
	if err != nil {
		t.Fatal(err)
	}
	dests := rules.DestinationList()
	fake := actionstest.NewSlack(t)
	d := &Dispatcher{Destinations: ByName(dests), Notifiers: map[string]Notifier{
		"hook": NewSlackWebhook(Secret(fake.WebhookURL("hook")), "HOOK", nil, Retry{Attempts: 1}, nil),
	}}
	return &deduper{d: d, seen: NewSeen(100), router: route.NewRouter(rules)}, fake
}

func outcomes(rs []Result) string {
	s := ""
	for _, r := range rs {
		s += r.Action() + "=" + string(r.Outcome) + " "
	}
	return s
}

func TestDispatchActsOnceOnADuplicate(t *testing.T) {
	tests := []struct {
		name       string
		first, dup *ses.Notification
	}{
		{"same SNS message id", dedupBounce(t, "sns-1", "fb-1", "a@x.com"), dedupBounce(t, "sns-1", "fb-1", "a@x.com")},
		{"same feedback id and recipients, no SNS", dedupBounce(t, "", "fb-2", "a@x.com", "b@x.com"), dedupBounce(t, "", "fb-2", "b@x.com", "a@x.com")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dd, fake := newDeduper(t)
			if got := outcomes(dd.handle(context.Background(), tt.first)); got != "notify:hook=posted " {
				t.Fatalf("first delivery: %s", got)
			}
			if got := outcomes(dd.handle(context.Background(), tt.dup)); got != "notify:hook=duplicate " {
				t.Errorf("second delivery: %s, want duplicate", got)
			}
			if n := len(fake.Posts()); n != 1 {
				t.Errorf("%d posts, want 1", n)
			}
		})
	}
}

func TestDispatchDistinctNotificationsAreNotDuplicates(t *testing.T) {
	dd, fake := newDeduper(t)
	for _, n := range []*ses.Notification{
		dedupBounce(t, "sns-1", "fb-1", "a@x.com"),
		dedupBounce(t, "sns-2", "fb-1", "a@x.com"), // another SNS message
		dedupBounce(t, "", "fb-1", "c@x.com"),      // same feedback, another recipient
		dedupBounce(t, "", "", "a@x.com"),          // nothing to tell it by
		dedupBounce(t, "", "", "a@x.com"),          // so never a duplicate
		dedupBounce(t, "", "fb-9", "a@x.com", "z@x.com"),
		dedupBounce(t, "", "fb-9", "a@x.com", "y@x.com"), // a recipient not seen yet
	} {
		if got := outcomes(dd.handle(context.Background(), n)); got != "notify:hook=posted " {
			t.Errorf("%s: %s, want posted", n.Input, got)
		}
	}
	if n := len(fake.Posts()); n != 7 {
		t.Errorf("%d posts, want 7", n)
	}
}

func TestDispatchRetriesAFailedNotificationDeliveredAgain(t *testing.T) {
	dd, fake := newDeduper(t)
	n := dedupBounce(t, "sns-1", "fb-1", "a@x.com")
	fake.Script(actionstest.FaultChannelNotFound())
	if got := outcomes(dd.handle(context.Background(), n)); got != "notify:hook=failed " {
		t.Fatalf("first delivery: %s, want failed", got)
	}
	if got := outcomes(dd.handle(context.Background(), n)); got != "notify:hook=posted " {
		t.Errorf("redelivery after a failure: %s, want posted", got)
	}
}

func TestDispatchConcurrentCopiesActOnce(t *testing.T) {
	dd, fake := newDeduper(t)
	var wg sync.WaitGroup
	posted := make(chan Outcome, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := dd.handle(context.Background(), dedupBounce(t, "sns-1", "fb-1", "a@x.com"))
			posted <- rs[0].Outcome
		}()
	}
	wg.Wait()
	close(posted)
	count := map[Outcome]int{}
	for o := range posted {
		count[o]++
	}
	if count[OutcomePosted] != 1 || count[OutcomeDuplicate] != 19 || len(fake.Posts()) != 1 {
		t.Errorf("outcomes %v, %d posts; want 1 posted and 19 duplicates", count, len(fake.Posts()))
	}
}

// snsNotification is a notification SNS delivered with message id id: its
// one key is sns:id.
func snsNotification(id string) *ses.Notification {
	return &ses.Notification{SNSMessageID: id}
}

func TestSeenForgetsTheOldest(t *testing.T) {
	s := NewSeen(3)
	for _, k := range []string{"a", "b", "c", "d"} {
		if s.Begin(snsNotification(k)) {
			t.Fatalf("%s seen before it was added", k)
		}
	}
	if s.Begin(snsNotification("a")) {
		t.Error(`"a" is still remembered after 3 newer keys; the limit is 3`)
	}
	if !s.Begin(snsNotification("d")) {
		t.Error(`"d" is forgotten`)
	}
	if s.Len() > 3 {
		t.Errorf("%d keys remembered, limit 3", s.Len())
	}
}

// TestSeenForgetFreesTheSlot forgets a key, adds it again, then adds
// limit-1 other keys: the key added again is still known. Forget used to
// leave the key in its ring slot, so the ring evicted the key added
// again when it came round to that slot, before its time.
func TestSeenForgetFreesTheSlot(t *testing.T) {
	for _, limit := range []int{1, 2, 3, 5, 8} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			s := NewSeen(limit)
			// Fill some of the ring first, so that the slot freed is not
			// the next one either.
			for i := range limit / 2 {
				s.Begin(snsNotification(fmt.Sprint("old-", i)))
			}
			k := snsNotification("k")
			if s.Begin(k) {
				t.Fatal("k seen before it was added")
			}
			s.Forget(SeenKeys(k)...)
			if s.Begin(k) {
				t.Fatal("k is still known after Forget")
			}
			for i := range limit - 1 {
				if s.Begin(snsNotification(fmt.Sprint("new-", i))) {
					t.Fatalf("new-%d seen before it was added", i)
				}
			}
			if !s.Begin(k) {
				t.Errorf("k, added again, was forgotten after %d newer keys; the limit is %d", limit-1, limit)
			}
			if s.Len() > limit {
				t.Errorf("%d keys remembered, limit %d", s.Len(), limit)
			}
		})
	}
}

// TestSeenKeys: what makes two notifications the same.
func TestSeenKeys(t *testing.T) {
	tests := []struct {
		name string
		n    *ses.Notification
		want []string
	}{
		{"SNS message id", dedupBounce(t, "sns-1", "fb-1", "a@x.com", "b@x.com"), []string{"sns:sns-1"}},
		{"feedback id with each recipient", dedupBounce(t, "", "fb-1", "a@x.com", "B@X.com"), []string{"fb:fb-1\x00a@x.com", "fb:fb-1\x00B@x.com"}},
		{"neither", dedupBounce(t, "", "", "a@x.com"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SeenKeys(tt.n); !slices.Equal(got, tt.want) {
				t.Errorf("SeenKeys = %q, want %q", got, tt.want)
			}
		})
	}
	s := NewSeen(10)
	for range 2 {
		if s.Begin(dedupBounce(t, "", "", "a@x.com")) {
			t.Error("a notification without keys is a duplicate")
		}
	}
	if s.Len() != 0 {
		t.Errorf("%d keys remembered of notifications without keys", s.Len())
	}
}
