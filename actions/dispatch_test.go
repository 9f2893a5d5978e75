package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// testRules has a bot-token destination (ses-alerts) and a webhook
// destination (marketing), and a rule for every action.
const testRules = `version: 1
destinations:
  ses-alerts:
    slack:
      channel: C0123456789
  marketing:
    slack:
      webhook_env: SLACK_WEBHOOK_MARKETING
rules:
  - name: ignore-dummies
    when: recipient.domain == "ignore.example.com"
    actions: [drop]
  - name: log-only
    when: recipient.local startsWith "log-"
    actions: [log]
  - name: keep-deliverable   # on what SES wrote: a display name counts
    when: event.type == "Bounce" && recipient.raw contains "no-suppress"
    actions: [unsuppress, {notify: ses-alerts}]
  - name: newsletter
    when: recipient.domain == "news.example.com"
    actions: [{notify: marketing}]
  - name: complaints
    when: event.type == "Complaint"
    actions: [suppress, {notify: ses-alerts}]
  - name: hard-bounce
    when: event.type == "Bounce"
    actions: [{notify: ses-alerts}]
`

// dispatcherOpts changes what newTestDispatcher builds.
type dispatcherOpts struct {
	webhookURL string    // the marketing webhook; a fresh one of the fake when ""
	logTo      io.Writer // the log action's JSON log; discarded when nil
	// dryRun builds the dispatcher of a dry run: the same notifiers,
	// pointed at the fakes, made to only render (DryRun), suppression.DryRun and
	// DryRunLogbook.
	dryRun  bool
	retry   slack.Retry            // fastRetry when zero
	sesOpts []func(*sesv2.Options) // for the SES fake's client
}

// testDestinations are the destinations of testRules.
func testDestinations(t *testing.T) []*rules.Destination {
	t.Helper()
	return mustParseDestinations(t, testRules)
}

// newTestDispatcher returns a Dispatcher for testRules whose notifiers
// and SES client talk to new fakes, and the fakes. The notifiers are
// built as the application builds them, with Notifiers.
func newTestDispatcher(t *testing.T, o dispatcherOpts) (*actions.Dispatcher, *actionstest.Slack, *actionstest.SES) {
	t.Helper()
	dests := testDestinations(t)
	slackFake := actionstest.NewSlack(t, testChannel)
	sesFake := actionstest.NewSES(t)
	r := o.retry
	if r == (slack.Retry{}) {
		r = fastRetry
	}
	hook := o.webhookURL
	if hook == "" {
		hook = slackFake.WebhookURL("marketing")
	}
	logTo := o.logTo
	if logTo == nil {
		logTo = io.Discard
	}
	notifiers, err := slack.Notifiers(dests, func(string) bool { return true }, slack.SlackConfig{
		Token:  slack.Secret(slackFake.Token()),
		APIURL: slackFake.APIURL(),
		Getenv: func(name string) string {
			if name == "SLACK_WEBHOOK_MARKETING" {
				return hook
			}
			return ""
		},
		HTTPClient: newHTTPClient(t),
		Retry:      r,
	})
	if err != nil {
		t.Fatalf("Notifiers: %v", err)
	}
	d := &actions.Dispatcher{
		Destinations: slack.ByName(dests),
		Notifiers:    notifiers,
		SES:          &suppression.SuppressionList{Client: sesFake.Client(t, o.sesOpts...)},
		Log:          actions.SlogLogbook{Logger: slog.New(slog.NewJSONHandler(logTo, nil))},
	}
	if o.dryRun {
		for name, n := range d.Notifiers {
			d.Notifiers[name] = actions.DryRun(n)
		}
		d.SES, d.Log = suppression.DryRun(), actions.DryRunLogbook()
	}
	return d, slackFake, sesFake
}

// sesNotification decodes a bare SES notification of type typ ("Bounce"
// or "Complaint") to the given recipients.
func sesNotification(t *testing.T, typ string, recipients ...string) *ses.Notification {
	t.Helper()
	doc := map[string]any{
		"notificationType": typ,
		"mail": map[string]any{
			"timestamp":   "2024-05-02T10:00:00.000Z",
			"source":      "billing@shop.example.org",
			"messageId":   "0102018f3c000001-0a1b2c3d-000000",
			"destination": recipients,
			"commonHeaders": map[string]any{
				"subject": "Your invoice",
			},
		},
	}
	switch typ {
	case ses.TypeBounce:
		var rs []map[string]string
		for _, a := range recipients {
			rs = append(rs, map[string]string{
				"emailAddress": a, "status": "5.1.1", "action": "failed",
				"diagnosticCode": "smtp; 550 5.1.1 user unknown",
			})
		}
		doc["bounce"] = map[string]any{
			"bounceType": "Permanent", "bounceSubType": "General",
			"bouncedRecipients": rs, "timestamp": "2024-05-02T10:00:05.123Z",
			"feedbackId": "0102018f3c000002-feedback",
		}
	case ses.TypeComplaint:
		var rs []map[string]string
		for _, a := range recipients {
			rs = append(rs, map[string]string{"emailAddress": a})
		}
		doc["complaint"] = map[string]any{
			"complainedRecipients": rs, "timestamp": "2024-05-02T10:00:05.123Z",
			"feedbackId": "0102018f3c000002-feedback", "complaintFeedbackType": "abuse",
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	items := ses.Decode("test.json:1", b)
	if len(items) != 1 || items[0].Notification == nil {
		t.Fatalf("ses.Decode gave %+v", items)
	}
	return items[0].Notification
}

// bounce is a permanent bounce to recipients.
func bounce(t *testing.T, recipients ...string) *ses.Notification {
	t.Helper()
	return sesNotification(t, ses.TypeBounce, recipients...)
}

// planFor is the plan testRules make for n.
func planFor(t *testing.T, n *ses.Notification) *route.Plan {
	t.Helper()
	rules, err := rules.Load("rules.yaml", []byte(testRules))
	if err != nil {
		t.Fatalf("rules.Load: %v", err)
	}
	return route.NewRouter(rules).Route(n)
}

// brief is what a test checks of a Result.
type brief struct {
	Action, Recipient string
	Outcome           actions.Outcome
}

func briefs(results []actions.Result) []brief {
	out := make([]brief, len(results))
	for i, r := range results {
		out[i] = brief{r.Action(), r.Recipient(), r.Outcome}
	}
	return out
}

// checkStepOrder fails t unless results are one per step of plan, in
// order.
func checkStepOrder(t *testing.T, plan *route.Plan, results []actions.Result) {
	t.Helper()
	steps := plan.Steps()
	if len(results) != len(steps) {
		t.Fatalf("%d results for %d steps", len(results), len(steps))
	}
	for i, s := range steps {
		if results[i].Action() != s.Action.String() || results[i].Step.Recipient != s.Recipient {
			t.Errorf("result %d is %s for %q, step is %s", i, results[i].Action(), results[i].Recipient(), s.Action)
		}
	}
}

// sections returns the text of every section block of a posted blocks
// array.
func sections(t *testing.T, blocks json.RawMessage) []string {
	t.Helper()
	var bs []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	if err := json.Unmarshal(blocks, &bs); err != nil {
		t.Fatalf("blocks: %v\n%s", err, blocks)
	}
	var out []string
	for _, b := range bs {
		if b.Type == "section" && b.Text != nil {
			out = append(out, b.Text.Text)
		}
	}
	return out
}

// sectionOf returns the section of posted blocks that names address.
func sectionOf(t *testing.T, blocks []byte, address string) string {
	t.Helper()
	for _, s := range sections(t, blocks) {
		if strings.Contains(s, "`"+address+"`") {
			return s
		}
	}
	t.Errorf("no section names %s in\n%s", address, blocks)
	return ""
}

func TestDispatchUnsuppressThenNotify(t *testing.T) {
	const (
		listed    = "no-suppress-1@example.com"
		notListed = "no-suppress-2@example.com"
		plain     = "jane@example.com"
	)
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{})
	sesFake.Suppress(listed, "BOUNCE", listedAt)
	plan := planFor(t, bounce(t, listed, notListed, plain))

	results := d.Dispatch(context.Background(), plan, nil)

	checkStepOrder(t, plan, results)
	want := []brief{
		{"unsuppress", listed, actions.OutcomeRemoved},
		{"unsuppress", notListed, actions.OutcomeNotSuppressed},
		{"notify:ses-alerts", "", actions.OutcomePosted},
	}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Fatalf("results %+v\nwant %+v", got, want)
	}
	for _, r := range results {
		if r.Err != nil {
			t.Errorf("%s %s has error %v", r.Action(), r.Recipient(), r.Err)
		}
	}
	if _, ok := sesFake.Suppressed(listed); ok {
		t.Errorf("%s is still on the suppression list", listed)
	}

	posts := slackFake.Posts()
	if len(posts) != 1 || posts[0].Channel != testChannel {
		t.Fatalf("fake accepted %+v, want one post to %s", posts, testChannel)
	}
	if s := sectionOf(t, posts[0].Blocks, listed); !strings.Contains(s, "removed from the suppression list (listed for BOUNCE since 2024-05-01 10:00 UTC)") {
		t.Errorf("section of %s does not say it was removed, why and since when:\n%s", listed, s)
	}
	if s := sectionOf(t, posts[0].Blocks, notListed); !strings.Contains(s, "not on the suppression list") {
		t.Errorf("section of %s does not say it was not on the list:\n%s", notListed, s)
	}
	if s := sectionOf(t, posts[0].Blocks, plain); strings.Contains(s, "suppression list") {
		t.Errorf("section of %s, which had no SES action, speaks of the suppression list:\n%s", plain, s)
	}
}

func TestDispatchComplaintSuppresses(t *testing.T) {
	const a = "angry@example.com"
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{})
	plan := planFor(t, sesNotification(t, ses.TypeComplaint, a))

	results := d.Dispatch(context.Background(), plan, nil)

	want := []brief{{"suppress", a, actions.OutcomeAdded}, {"notify:ses-alerts", "", actions.OutcomePosted}}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Fatalf("results %+v\nwant %+v", got, want)
	}
	if reason, ok := sesFake.Suppressed(a); !ok || reason != "COMPLAINT" {
		t.Errorf("on the list %v with reason %q, want COMPLAINT", ok, reason)
	}
	posts := slackFake.Posts()
	if len(posts) != 1 {
		t.Fatalf("fake accepted %d posts, want 1", len(posts))
	}
	if s := sectionOf(t, posts[0].Blocks, a); !strings.Contains(s, "added to the suppression list (COMPLAINT)") {
		t.Errorf("section of %s does not say it was added:\n%s", a, s)
	}
}

func TestDispatchOneFailureDoesNotStopOthers(t *testing.T) {
	const (
		denied = "no-suppress-1@example.com"
		after  = "no-suppress-2@example.com"
		reader = "reader@news.example.com"
	)
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{})
	sesFake.Suppress(denied, "BOUNCE", listedAt)
	sesFake.Suppress(after, "BOUNCE", listedAt)
	sesFake.Script(actionstest.FaultAccessDenied()) // the first call: Get of denied
	plan := planFor(t, bounce(t, denied, after, reader))

	results := d.Dispatch(context.Background(), plan, nil)

	checkStepOrder(t, plan, results)
	want := []brief{
		{"unsuppress", denied, actions.OutcomeFailed},
		{"unsuppress", after, actions.OutcomeRemoved},
		{"notify:ses-alerts", "", actions.OutcomePosted},
		{"notify:marketing", "", actions.OutcomePosted},
	}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Fatalf("results %+v\nwant %+v", got, want)
	}
	wantErr := "SES GetSuppressedDestination: " + accessDenied(actionstest.OpGetSuppressedDestination)
	if err := results[0].Err; err == nil || err.Error() != wantErr {
		t.Errorf("failed unsuppress error %v\nwant %s", err, wantErr)
	}
	if _, ok := sesFake.Suppressed(denied); !ok {
		t.Errorf("%s was taken off the list despite access denied", denied)
	}
	if _, ok := sesFake.Suppressed(after); ok {
		t.Errorf("%s is still on the list", after)
	}

	posts := slackFake.Posts()
	if len(posts) != 2 {
		t.Fatalf("fake accepted %d posts, want 2", len(posts))
	}
	s := sectionOf(t, posts[0].Blocks, denied)
	if !strings.Contains(s, "unsuppress failed") || !strings.Contains(s, "AccessDeniedException") {
		t.Errorf("section of %s does not show the failure and its reason:\n%s", denied, s)
	}
	if s := sectionOf(t, posts[0].Blocks, after); !strings.Contains(s, "removed from the suppression list") {
		t.Errorf("section of %s does not say it was removed:\n%s", after, s)
	}
	if posts[1].Kind != actionstest.KindWebhook || posts[1].Channel != "marketing" {
		t.Errorf("second post went to %s %s, want the marketing webhook", posts[1].Kind, posts[1].Channel)
	}
	sectionOf(t, posts[1].Blocks, reader)
}

func TestDispatchSplitsManyRecipients(t *testing.T) {
	const n = 60
	tests := []struct {
		name, domain, action, kind string
	}{
		{"bot-token destination", "example.com", "notify:ses-alerts", actionstest.KindAPI},
		{"webhook destination", "news.example.com", "notify:marketing", actionstest.KindWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, slackFake, _ := newTestDispatcher(t, dispatcherOpts{})
			addrs := make([]string, n)
			for i := range addrs {
				addrs[i] = fmt.Sprintf("user-%02d@%s", i+1, tt.domain)
			}
			results := d.Dispatch(context.Background(), planFor(t, bounce(t, addrs...)), nil)

			if want := []brief{{tt.action, "", actions.OutcomePosted}}; !slices.Equal(briefs(results), want) {
				t.Fatalf("results %+v (%v), want %+v", briefs(results), results[0].Err, want)
			}
			posts := slackFake.Posts()
			if len(posts) < 2 || len(posts) != len(results[0].Messages) {
				t.Fatalf("fake accepted %d posts for %d messages; want several", len(posts), len(results[0].Messages))
			}
			seen := map[string]int{}
			for i, p := range posts {
				if p.Kind != tt.kind {
					t.Errorf("post %d is %s, want %s", i, p.Kind, tt.kind)
				}
				if problems := actionstest.CheckBlocks(p.Blocks); len(problems) > 0 {
					t.Errorf("post %d breaks Slack's limits:\n%s", i, strings.Join(problems, "\n"))
				}
				var blocks []json.RawMessage
				if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
					t.Fatal(err)
				}
				if len(blocks) > actionstest.MaxBlocks {
					t.Errorf("post %d has %d blocks, more than %d", i, len(blocks), actionstest.MaxBlocks)
				}
				if part := fmt.Sprintf("(part %d of %d)", i+1, len(posts)); !bytes.Contains(p.Blocks, []byte(part)) {
					t.Errorf("post %d does not say %s", i, part)
				}
				for _, a := range addrs {
					if bytes.Contains(p.Blocks, []byte("`"+a+"`")) {
						seen[a]++
					}
				}
			}
			for _, a := range addrs {
				if seen[a] != 1 {
					t.Errorf("%s is in %d messages, want exactly 1", a, seen[a])
				}
			}
		})
	}
}

func TestDispatchFailingDestination(t *testing.T) {
	const (
		plain  = "jane@example.com"        // ses-alerts, posted first
		reader = "reader@news.example.com" // marketing, posted second
	)
	tests := []struct {
		name   string
		faults []actionstest.Fault
		want   []brief
		errs   []string // the error of each result, "" for none
		posted string   // the post kind that still goes through
	}{
		{
			name:   "bot-token destination fails, webhook still posts",
			faults: []actionstest.Fault{actionstest.FaultChannelNotFound()},
			want:   []brief{{"notify:ses-alerts", "", actions.OutcomeFailed}, {"notify:marketing", "", actions.OutcomePosted}},
			errs:   []string{"channel_not_found (" + hintChannel + ")", ""},
			posted: actionstest.KindWebhook,
		},
		{
			name:   "webhook destination fails, bot-token destination still posts",
			faults: []actionstest.Fault{{}, actionstest.FaultChannelNotFound()},
			want:   []brief{{"notify:ses-alerts", "", actions.OutcomePosted}, {"notify:marketing", "", actions.OutcomeFailed}},
			errs:   []string{"", "slack server error: 404 Not Found: channel_not_found (" + hintChannel + ")"},
			posted: actionstest.KindAPI,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, slackFake, _ := newTestDispatcher(t, dispatcherOpts{})
			slackFake.Script(tt.faults...)
			results := d.Dispatch(context.Background(), planFor(t, bounce(t, plain, reader)), nil)

			if got := briefs(results); !slices.Equal(got, tt.want) {
				t.Fatalf("results %+v\nwant %+v", got, tt.want)
			}
			for i, r := range results {
				if got := fmt.Sprint(r.Err); (r.Err == nil) != (tt.errs[i] == "") || (r.Err != nil && got != tt.errs[i]) {
					t.Errorf("%s error %v, want %q", r.Action(), r.Err, tt.errs[i])
				}
			}
			posts := slackFake.Posts()
			if len(posts) != 1 || posts[0].Kind != tt.posted {
				t.Errorf("fake accepted %+v, want one %s post", posts, tt.posted)
			}
			if c := slackFake.Counts(); c.Requests != 2 {
				t.Errorf("fake saw %d requests, want 2: the failure is not retried", c.Requests)
			}
		})
	}
}

func TestDispatchDryRunReachesNothing(t *testing.T) {
	many := make([]string, 60)
	for i := range many {
		many[i] = fmt.Sprintf("user-%02d@example.com", i+1)
	}
	tests := []struct {
		name       string
		recipients []string
		want       []brief
	}{
		{
			name:       "one message per destination",
			recipients: []string{"no-suppress-1@example.com", "reader@news.example.com", "log-me@example.com", "x@ignore.example.com"},
			want: []brief{
				{"unsuppress", "no-suppress-1@example.com", actions.OutcomeDryRun},
				{"log", "log-me@example.com", actions.OutcomeDryRun},
				{"drop", "x@ignore.example.com", actions.OutcomeDropped},
				{"notify:ses-alerts", "", actions.OutcomeDryRun},
				{"notify:marketing", "", actions.OutcomeDryRun},
			},
		},
		{
			name:       "several messages",
			recipients: many,
			want:       []brief{{"notify:ses-alerts", "", actions.OutcomeDryRun}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{dryRun: true, logTo: &log})
			sesFake.Suppress("no-suppress-1@example.com", "BOUNCE", listedAt)

			results := d.Dispatch(context.Background(), planFor(t, bounce(t, tt.recipients...)), nil)

			if got := briefs(results); !slices.Equal(got, tt.want) {
				t.Fatalf("results %+v\nwant %+v", got, tt.want)
			}
			if c := slackFake.Counts(); c.Requests != 0 {
				t.Errorf("Slack fake saw %d requests in a dry run", c.Requests)
			}
			if c := sesFake.Counts(); c.Requests != 0 {
				t.Errorf("SES fake saw %d requests in a dry run", c.Requests)
			}
			if _, ok := sesFake.Suppressed("no-suppress-1@example.com"); !ok {
				t.Error("a dry run took an address off the list")
			}
			if log.Len() != 0 {
				t.Errorf("a dry run logged: %s", log.String())
			}
			for _, r := range results {
				if r.Step.Action.Kind != rules.ActionNotify {
					if r.Payload != nil {
						t.Errorf("%s has a payload", r.Action())
					}
					continue
				}
				notifier := d.Notifiers[r.Step.Action.Destination]
				if !json.Valid(r.Payload) {
					t.Fatalf("%s payload is not JSON: %s", r.Action(), r.Payload)
				}
				if len(r.Messages) == 1 {
					if want := notifier.Payload(r.Messages[0]); !bytes.Equal(r.Payload, want) {
						t.Errorf("%s payload\n%s\nwant Notifier.Payload\n%s", r.Action(), r.Payload, want)
					}
					continue
				}
				var parts []json.RawMessage
				if err := json.Unmarshal(r.Payload, &parts); err != nil || len(parts) != len(r.Messages) || len(parts) < 2 {
					t.Fatalf("%s payload of %d messages is not an array of them (%v): %.200s", r.Action(), len(r.Messages), err, r.Payload)
				}
				for i, p := range parts {
					if want := notifier.Payload(r.Messages[i]); !bytes.Equal(p, want) {
						t.Errorf("%s payload part %d\n%s\nwant Notifier.Payload\n%s", r.Action(), i, p, want)
					}
				}
			}
		})
	}
}

func TestDispatchLog(t *testing.T) {
	const (
		logged  = "log-me@example.com"
		dropped = "x@ignore.example.com"
	)
	var log bytes.Buffer
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{logTo: &log})
	n := bounce(t, dropped, logged)

	results := d.Dispatch(context.Background(), planFor(t, n), nil)

	want := []brief{{"drop", dropped, actions.OutcomeDropped}, {"log", logged, actions.OutcomeLogged}}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Fatalf("results %+v\nwant %+v", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("log has %d lines, want 1:\n%s", len(lines), log.String())
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("log line is not JSON: %v\n%s", err, lines[0])
	}
	for k, v := range map[string]string{
		"msg": "recipient", "recipient": logged, "type": "Bounce", "input": "test.json:1",
		"messageId": n.Mail.MessageID, "status": "5.1.1", "rules": "log-only",
	} {
		if entry[k] != v {
			t.Errorf("log %s = %v, want %q", k, entry[k], v)
		}
	}
	if c := slackFake.Counts().Requests + sesFake.Counts().Requests; c != 0 {
		t.Errorf("drop and log made %d requests", c)
	}
}

// TestDispatchUnderRandomFailures dispatches 200 notifications, eight at
// a time, while 30% of Slack and SES requests fail transiently: every
// notify ends posted or failed with a reason, none is lost or posted
// twice, and retries post nearly all of them. (No deadline: how a post
// gives up against one is tested on a fake clock, and here a slow
// machine would change the outcomes.)
func TestDispatchUnderRandomFailures(t *testing.T) {
	const (
		notifications = 200
		concurrency   = 8
		rate          = 0.3
	)
	// As cmd/sesrouter builds it: more attempts, no client-wide retry quota.
	noQuota := func(o *sesv2.Options) {
		o.Retryer = actionstest.FastRetryer(func(so *retry.StandardOptions) {
			so.MaxAttempts = 6
			so.RateLimiter = ratelimit.None
		})
	}
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{sesOpts: []func(*sesv2.Options){noQuota}})
	kinds := []actionstest.Fault{actionstest.Fault429After(0), actionstest.Fault500(), actionstest.Fault503()}
	slackFake.FailRandomly(rate, 1, kinds...)
	sesFake.FailRandomly(rate, 2, kinds...)

	plans := make([]*route.Plan, notifications)
	for i := range plans {
		unsuppress := fmt.Sprintf("no-suppress-%03d@example.com", i)
		sesFake.Suppress(unsuppress, "BOUNCE", listedAt)
		plans[i] = planFor(t, bounce(t, unsuppress, fmt.Sprintf("reader-%03d@news.example.com", i)))
	}

	results := make([][]actions.Result, notifications)
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				results[i] = d.Dispatch(context.Background(), plans[i], nil)
			}
		})
	}
	for i := range plans {
		next <- i
	}
	close(next)
	wg.Wait()

	var notifies, posted, removed int
	for i, rs := range results {
		if len(rs) != 3 {
			t.Fatalf("notification %d: %d results, want unsuppress and two notifies", i, len(rs))
		}
		for _, r := range rs {
			switch {
			case r.Outcome == actions.OutcomeFailed && r.Err == nil:
				t.Errorf("notification %d: %s failed without an error", i, r.Action())
			case r.Outcome != actions.OutcomeFailed && r.Err != nil:
				t.Errorf("notification %d: %s %s with error %v", i, r.Action(), r.Outcome, r.Err)
			}
			if r.Step.Action.Kind == rules.ActionUnsuppress {
				if r.Outcome != actions.OutcomeRemoved && r.Outcome != actions.OutcomeFailed {
					t.Errorf("notification %d: unsuppress %s, want removed or failed", i, r.Outcome)
				}
				if r.Outcome == actions.OutcomeRemoved {
					removed++
				}
				continue
			}
			notifies++
			switch r.Outcome {
			case actions.OutcomePosted:
				posted++
			case actions.OutcomeFailed:
				t.Logf("notification %d: %s failed: %v", i, r.Action(), r.Err)
			default:
				t.Errorf("notification %d: %s ended %q, want posted or failed", i, r.Action(), r.Outcome)
			}
		}
	}
	if posted < notifies*9/10 {
		t.Errorf("%d of %d notifies posted, want at least 90%%", posted, notifies)
	}
	if got := len(slackFake.Posts()); got != posted {
		t.Errorf("fake accepted %d posts for %d posted notifies", got, posted)
	}
	stillListed := 0
	for i := range notifications {
		if _, ok := sesFake.Suppressed(fmt.Sprintf("no-suppress-%03d@example.com", i)); ok {
			stillListed++
		}
	}
	if stillListed != notifications-removed {
		t.Errorf("%d addresses still listed, but %d of %d reported removed", stillListed, removed, notifications)
	}
	sc, ec := slackFake.Counts(), sesFake.Counts()
	t.Logf("%d of %d notifies posted, %d of %d removed; Slack %+v; SES %+v", posted, notifies, removed, notifications, sc, ec)
	if sc.Faults == 0 || ec.Faults == 0 {
		t.Errorf("no faults served (Slack %d, SES %d): the test tests nothing", sc.Faults, ec.Faults)
	}
}

// TestDispatchNoMailbox: recipients that hold no valid mailbox get no SES
// action (failed, with ErrNotMailbox, and no call), and the notification
// still tells Slack about them, with why.
func TestDispatchNoMailbox(t *testing.T) {
	long := "no-suppress-" + strings.Repeat("x", 376) + "@example.com" // 400 bytes
	tests := []struct {
		name   string
		n      func(t *testing.T) *ses.Notification
		action string
	}{
		{"unsuppress of a bounce", func(t *testing.T) *ses.Notification {
			return bounce(t, "no-suppress@a@b", "no-suppress-no-at-sign", long)
		}, "unsuppress"},
		{"suppress of a complaint", func(t *testing.T) *ses.Notification {
			return sesNotification(t, ses.TypeComplaint, "a@b@c", "no-at-sign", long)
		}, "suppress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{})
			n := tt.n(t)
			plan := planFor(t, n)

			results := d.Dispatch(context.Background(), plan, nil)

			checkStepOrder(t, plan, results)
			if len(results) != 4 {
				t.Fatalf("%d results, want 3 SES actions and a notify: %+v", len(results), briefs(results))
			}
			for i, r := range results[:3] {
				rc := &n.Recipients[i]
				if r.Action() != tt.action || r.Recipient() != rc.Address || r.Outcome != actions.OutcomeFailed || !errors.Is(r.Err, suppression.ErrNotMailbox) {
					t.Errorf("%s %.20q: %s, %v; want failed with ErrNotMailbox", r.Action(), r.Recipient(), r.Outcome, r.Err)
				}
			}
			if r := results[3]; r.Action() != "notify:ses-alerts" || r.Outcome != actions.OutcomePosted {
				t.Errorf("%s: %s, %v; want posted", r.Action(), r.Outcome, r.Err)
			}
			if c := sesFake.Counts(); c.Requests != 0 {
				t.Errorf("SES saw %d requests: %+v", c.Requests, sesFake.Calls())
			}
			posts := slackFake.Posts()
			if len(posts) != 1 {
				t.Fatalf("%d posts, want 1", len(posts))
			}
			for i := range n.Recipients[:2] {
				rc := &n.Recipients[i]
				want := "→ *" + tt.action + " failed*: `no SES action: " + rc.Invalid + "`"
				if s := sectionOf(t, posts[0].Blocks, rc.Address); !strings.Contains(s, want) {
					t.Errorf("section of %s does not say %q:\n%s", rc.Address, want, s)
				}
			}
		})
	}
}

// TestDispatchUnsuppressesTheAddress: a recipient SES wrote with a
// display name, "no-suppress" <ceo@bank.example>, is routed by what SES
// wrote (recipient.raw) and unsuppressed as exactly ceo@bank.example.
func TestDispatchUnsuppressesTheAddress(t *testing.T) {
	const (
		raw  = `"no-suppress" <ceo@bank.example>`
		addr = "ceo@bank.example"
	)
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{})
	sesFake.Suppress(addr, "BOUNCE", listedAt)

	results := d.Dispatch(context.Background(), planFor(t, bounce(t, raw)), nil)

	want := []brief{{"unsuppress", addr, actions.OutcomeRemoved}, {"notify:ses-alerts", "", actions.OutcomePosted}}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Fatalf("results %+v\nwant %+v", got, want)
	}
	wantCalls := []sesCall{{actionstest.OpGetSuppressedDestination, addr, 200}, {actionstest.OpDeleteSuppressedDestination, addr, 200}}
	if calls := sesCalls(t, sesFake); !slices.Equal(calls, wantCalls) {
		t.Errorf("SES saw %v\nwant %v", calls, wantCalls)
	}
	for _, c := range sesFake.Calls() {
		if c.Path != "/v2/email/suppression/addresses/ceo%40bank.example" {
			t.Errorf("%s path %s", c.Op, c.Path)
		}
	}
	if _, ok := sesFake.Suppressed(addr); ok {
		t.Errorf("%s is still on the list", addr)
	}
	if posts := slackFake.Posts(); len(posts) == 1 {
		if s := sectionOf(t, posts[0].Blocks, addr); !strings.Contains(s, "removed from the suppression list") {
			t.Errorf("section of %s:\n%s", addr, s)
		}
	} else {
		t.Errorf("%d posts, want 1", len(posts))
	}
}

// TestDispatchErrorsForPeopleAndForLogs: in the Slack message, an SES
// AccessDenied is one short line; the result keeps the whole error, and
// a failing Slack post's error carries its hint.
func TestDispatchErrorsForPeopleAndForLogs(t *testing.T) {
	const (
		denied = "no-suppress-1@example.com"
		reader = "reader@news.example.com"
	)
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{})
	sesFake.Suppress(denied, "BOUNCE", listedAt)
	sesFake.Script(actionstest.FaultAccessDenied())
	slackFake.Script(actionstest.Fault{}, actionstest.FaultChannelNotFound()) // the second post: the webhook

	results := d.Dispatch(context.Background(), planFor(t, bounce(t, denied, reader)), nil)

	want := []brief{{"unsuppress", denied, actions.OutcomeFailed}, {"notify:ses-alerts", "", actions.OutcomePosted}, {"notify:marketing", "", actions.OutcomeFailed}}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Fatalf("results %+v\nwant %+v", got, want)
	}
	full := "SES GetSuppressedDestination: " + accessDenied(actionstest.OpGetSuppressedDestination)
	if err := results[0].Err; err == nil || err.Error() != full {
		t.Errorf("unsuppress error %v\nwant the whole of it: %s", err, full)
	}
	posts := slackFake.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	s := sectionOf(t, posts[0].Blocks, denied)
	lines := strings.Split(s, "\n")
	if last := lines[len(lines)-1]; last != "→ *unsuppress failed*: `SES GetSuppressedDestination: AccessDeniedException`" {
		t.Errorf("the failure reads %q in Slack, want one short line", last)
	}
	if strings.Contains(s, "arn:aws") || strings.Contains(s, "not authorized") {
		t.Errorf("the Slack message holds SES's whole message:\n%s", s)
	}
	var he *slack.HintedError
	if err := results[2].Err; !errors.As(err, &he) || he.Code != "channel_not_found" || !strings.HasSuffix(err.Error(), "("+hintChannel+")") {
		t.Errorf("notify:marketing error %v, want channel_not_found with its hint", err)
	}
}

// TestDispatchDryRunSaysWhatWouldFail: a dry run performs nothing, but
// what would fail fails in it too: an SES action for a recipient that
// holds no mailbox, suppress for an event SES takes no reason from.
func TestDispatchDryRunSaysWhatWouldFail(t *testing.T) {
	d, slackFake, sesFake := newTestDispatcher(t, dispatcherOpts{dryRun: true})
	ctx := context.Background()

	results := d.Dispatch(ctx, planFor(t, sesNotification(t, ses.TypeComplaint, "a@b@c", "angry@example.com")), nil)
	want := []brief{{"suppress", "a@b@c", actions.OutcomeFailed}, {"suppress", "angry@example.com", actions.OutcomeDryRun}, {"notify:ses-alerts", "", actions.OutcomeDryRun}}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Errorf("results %+v\nwant %+v", got, want)
	}
	if !errors.Is(results[0].Err, suppression.ErrNotMailbox) {
		t.Errorf("error %v, want ErrNotMailbox", results[0].Err)
	}

	rc := recipient("jane@example.com")
	o := d.SES.Suppress(ctx, rc, ses.TypeDelivery)
	if o.Outcome != actions.OutcomeFailed || fmt.Sprint(o.Err) != "suppress needs a Bounce or a Complaint (SES takes reason BOUNCE or COMPLAINT), not a Delivery" {
		t.Errorf("dry-run suppress of a Delivery: %s, %v", o.Outcome, o.Err)
	}
	if c := slackFake.Counts().Requests + sesFake.Counts().Requests; c != 0 {
		t.Errorf("the fakes saw %d requests in a dry run", c)
	}
}

// TestDryRunNotifiers: the notifiers of a dry run need no credential,
// render what the real ones would send and post nothing.
func TestDryRunNotifiers(t *testing.T) {
	dests := testDestinations(t)
	m := testMessage(t)
	for name, n := range slack.DryRunNotifiers(dests) {
		outcome, err := n.Post(context.Background(), m)
		if outcome != actions.OutcomeDryRun || err != nil {
			t.Errorf("%s: Post = %s, %v; want dry-run", name, outcome, err)
		}
		var want []byte
		switch name {
		case "ses-alerts":
			want = actions.PostMessagePayload(testChannel, m)
		case "marketing":
			want = actions.WebhookJSON(m)
		default:
			t.Errorf("a notifier for %s", name)
		}
		if got := n.Payload(m); !bytes.Equal(got, want) {
			t.Errorf("%s: Payload\n%s\nwant\n%s", name, got, want)
		}
	}
	if got := len(slack.DryRunNotifiers(dests)); got != len(dests) {
		t.Errorf("%d notifiers for %d destinations", got, len(dests))
	}
}

// TestDispatchWithoutItsParts: a dispatcher missing a part fails the
// actions that need it, says why, and carries out the rest.
func TestDispatchWithoutItsParts(t *testing.T) {
	d := &actions.Dispatcher{}
	plan := planFor(t, bounce(t, "no-suppress-1@example.com", "log-me@example.com", "x@ignore.example.com"))

	results := d.Dispatch(context.Background(), plan, nil)

	want := []brief{
		{"unsuppress", "no-suppress-1@example.com", actions.OutcomeFailed},
		{"log", "log-me@example.com", actions.OutcomeFailed},
		{"drop", "x@ignore.example.com", actions.OutcomeDropped},
		{"notify:ses-alerts", "", actions.OutcomeFailed},
	}
	if got := briefs(results); !slices.Equal(got, want) {
		t.Fatalf("results %+v\nwant %+v", got, want)
	}
	for i, wantErr := range []string{"no SES client", "no logbook", "", "destination ses-alerts is not set up"} {
		if got := fmt.Sprint(results[i].Err); (wantErr == "" && results[i].Err != nil) || (wantErr != "" && got != wantErr) {
			t.Errorf("%s error %v, want %q", results[i].Action(), results[i].Err, wantErr)
		}
	}
	if !actions.Failed(results) || actions.Failed(results[2:3]) {
		t.Error("Failed does not say which results failed")
	}
	for i, r := range actions.Duplicates(plan) {
		if r.Outcome != actions.OutcomeDuplicate || r.Action() != want[i].Action || r.Recipient() != want[i].Recipient {
			t.Errorf("Duplicates[%d] = %s %s %s", i, r.Action(), r.Recipient(), r.Outcome)
		}
	}
}
