package dedup_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
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
	d      *actions.Dispatcher
	seen   *dedup.Seen
	router *route.Router
}

func (dd *deduper) handle(ctx context.Context, n *ses.Notification) []actions.Result {
	plan := dd.router.Route(n)
	c := dd.seen.Begin(n)
	for c.Wait != nil {
		<-c.Wait
		c = dd.seen.Begin(n)
	}
	if c.Duplicate {
		return actions.Duplicates(plan)
	}
	results := dd.d.Dispatch(ctx, plan, nil)
	c.End(!actions.Failed(results))
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
	d := &actions.Dispatcher{Destinations: slack.ByName(dests), Notifiers: map[string]actions.Notifier{
		"hook": slack.NewSlackWebhook(slack.Secret(fake.WebhookURL("hook")), "HOOK", nil, slack.Retry{Attempts: 1}, nil),
	}}
	return &deduper{d: d, seen: dedup.NewSeen(100), router: route.NewRouter(rules)}, fake
}

func outcomes(rs []actions.Result) string {
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
	posted := make(chan actions.Outcome, 20)
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
	count := map[actions.Outcome]int{}
	for o := range posted {
		count[o]++
	}
	if count[actions.OutcomePosted] != 1 || count[actions.OutcomeDuplicate] != 19 || len(fake.Posts()) != 1 {
		t.Errorf("outcomes %v, %d posts; want 1 posted and 19 duplicates", count, len(fake.Posts()))
	}
}

// snsNotification is a notification SNS delivered with message id id: its
// one key is sns:id.
func snsNotification(id string) *ses.Notification {
	return &ses.Notification{SNSMessageID: id}
}

// handled claims n and, when it holds it, ends the claim as done; it
// reports whether n was a duplicate.
func handled(t *testing.T, s *dedup.Seen, n *ses.Notification) (duplicate bool) {
	t.Helper()
	c := s.Begin(n)
	if c.Wait != nil {
		t.Fatalf("%s: waiting for a copy in flight; none is", n.SNSMessageID)
	}
	c.End(true)
	return c.Duplicate
}

func TestSeenForgetsTheOldest(t *testing.T) {
	s := dedup.NewSeen(3)
	for _, k := range []string{"a", "b", "c", "d"} {
		if handled(t, s, snsNotification(k)) {
			t.Fatalf("%s seen before it was added", k)
		}
	}
	if handled(t, s, snsNotification("a")) {
		t.Error(`"a" is still remembered after 3 newer keys; the limit is 3`)
	}
	if !handled(t, s, snsNotification("d")) {
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
			s := dedup.NewSeen(limit)
			// Fill some of the ring first, so that the slot freed is not
			// the next one either.
			for i := range limit / 2 {
				handled(t, s, snsNotification(fmt.Sprint("old-", i)))
			}
			k := snsNotification("k")
			if handled(t, s, k) {
				t.Fatal("k seen before it was added")
			}
			s.Forget(dedup.Keys(k)...)
			if handled(t, s, k) {
				t.Fatal("k is still known after Forget")
			}
			for i := range limit - 1 {
				if handled(t, s, snsNotification(fmt.Sprint("new-", i))) {
					t.Fatalf("new-%d seen before it was added", i)
				}
			}
			if !handled(t, s, k) {
				t.Errorf("k, added again, was forgotten after %d newer keys; the limit is %d", limit-1, limit)
			}
			if s.Len() > limit {
				t.Errorf("%d keys remembered, limit %d", s.Len(), limit)
			}
		})
	}
}

// TestSeenCopyInFlightWaits claims a notification and, while that claim
// is held, begins a second copy: the copy is never told it is a
// duplicate while the first's outcome is unknown. When the first fails,
// the copy holds the notification; when it succeeds, the copy is a
// duplicate.
func TestSeenCopyInFlightWaits(t *testing.T) {
	tests := []struct {
		name string
		n    func() *ses.Notification
	}{
		{"SNS message id", func() *ses.Notification { return snsNotification("sns-1") }},
		{"feedback id and recipients", func() *ses.Notification { return dedupBounce(t, "", "fb-1", "a@x.com", "b@x.com") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dedup.NewSeen(10)
			first := s.Begin(tt.n())
			if !first.Held() {
				t.Fatalf("first copy: %+v, want held", first)
			}
			second := s.Begin(tt.n())
			if second.Duplicate || second.Wait == nil {
				t.Fatalf("copy while the first is in flight: %+v, want to wait", second)
			}
			select {
			case <-second.Wait:
				t.Fatal("the wait is over before the first copy ended")
			default:
			}
			first.End(false)
			<-second.Wait
			retry := s.Begin(tt.n())
			if !retry.Held() {
				t.Fatalf("copy after the first failed: %+v, want held", retry)
			}
			third := s.Begin(tt.n())
			if third.Wait == nil {
				t.Fatalf("third copy while the retry is in flight: %+v, want to wait", third)
			}
			retry.End(true)
			retry.End(false) // a second End changes nothing
			<-third.Wait
			if again := s.Begin(tt.n()); !again.Duplicate {
				t.Errorf("copy after the retry succeeded: %+v, want a duplicate", again)
			}
		})
	}
}

// TestSeenReleasesOnlyItsOwnKeys: a notification that shares some keys
// with one handled before (same feedback id, one more recipient) holds
// only its new keys; when it fails, the keys of the one handled before
// stay.
func TestSeenReleasesOnlyItsOwnKeys(t *testing.T) {
	s := dedup.NewSeen(10)
	if handled(t, s, dedupBounce(t, "", "fb-9", "a@x.com", "z@x.com")) {
		t.Fatal("first notification is a duplicate")
	}
	c := s.Begin(dedupBounce(t, "", "fb-9", "a@x.com", "y@x.com"))
	if !c.Held() {
		t.Fatalf("%+v, want held: y@x.com is new", c)
	}
	c.End(false)
	if !handled(t, s, dedupBounce(t, "", "fb-9", "a@x.com", "z@x.com")) {
		t.Error("the first notification is acted on again after another that shares a key failed")
	}
}

// TestKeys: what makes two notifications the same.
func TestKeys(t *testing.T) {
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
			if got := dedup.Keys(tt.n); !slices.Equal(got, tt.want) {
				t.Errorf("Keys = %q, want %q", got, tt.want)
			}
		})
	}
	s := dedup.NewSeen(10)
	for range 2 {
		if c := s.Begin(dedupBounce(t, "", "", "a@x.com")); !c.Held() {
			t.Errorf("a notification without keys: %+v, want held", c)
		}
	}
	if s.Len() != 0 {
		t.Errorf("%d keys remembered of notifications without keys", s.Len())
	}
}
