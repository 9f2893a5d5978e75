package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/words"
	slackapi "github.com/slack-go/slack"
)

// One notification with many recipients counts once toward digest_after,
// and takes at most digest_after messages of its own: the recipients left
// fold into one digest, as a storm's notifications do.

// foldRules notify hook (digest_after 10) of every bounce; the recipients
// at d0.example are decided by a rule of their own, so that the digest
// counts by rule too.
const foldRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: HOOK
      digest_after: 10
      pace: 0s
rules:
  - name: first-domain
    when: recipient.domain == "d0.example"
    actions: [{notify: hook}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// foldDomains is how many domains the recipients are spread over.
const foldDomains = 7

// foldAddress is the address of recipient i (from 0).
func foldAddress(i int) string { return fmt.Sprintf("user-%04d@d%d.example", i+1, i%foldDomains) }

// foldBounce is a bounce to n recipients, each with a diagnostic code.
func foldBounce(n int) *ses.Notification {
	nt := &ses.Notification{
		Input:  "fold.json:1",
		Event:  ses.Event{Type: ses.TypeBounce, Timestamp: "2024-05-02T10:00:05.123Z"},
		Mail:   ses.Mail{Source: "shop@example.org", MessageID: "0102018f-fold", Subject: "Your invoice"},
		Bounce: ses.Bounce{Type: "Permanent", SubType: "General"},
	}
	for i := range n {
		r := ses.NewRecipient(foldAddress(i))
		r.Status, r.DiagnosticCode = "5.1.1", "smtp; 550 5.1.1 user unknown"
		nt.Recipients = append(nt.Recipients, r)
	}
	return nt
}

// foldRouter routes by foldRules, and the destination hook.
func foldRouter(t *testing.T) (*route.Router, *rules.Destination) {
	t.Helper()
	rs, err := rules.Load("rules.yaml", []byte(foldRules))
	if err != nil {
		t.Fatal(err)
	}
	return route.NewRouter(rs), rs.DestinationList()[0]
}

// digestCounts are the counts a digest message shows, by section title
// ("By type", …): key → count.
func digestCounts(t *testing.T, m actions.Message) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, b := range m.Blocks {
		sb, ok := b.(*slackapi.SectionBlock)
		if !ok || sb.Text == nil {
			continue
		}
		text := sb.Text.Text
		title, rows, ok := strings.Cut(text, "\n")
		if !strings.HasPrefix(title, "*By ") || !ok {
			continue
		}
		counts := map[string]int{}
		for row := range strings.SplitSeq(rows, "\n") {
			i := strings.LastIndex(row, ": ")
			n, err := strconv.Atoi(strings.ReplaceAll(row[i+2:], ",", ""))
			if i < 0 || err != nil {
				t.Fatalf("%s: row %q is not KEY: COUNT", title, row)
			}
			counts[strings.TrimPrefix(row[:i], "• ")] = n
		}
		out[strings.Trim(title, "*")] = counts
	}
	return out
}

// jsonOf is v in JSON.
func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sum is the sum of counts.
func sum(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// admitCounter is a Folder that posts every notice, and counts how many
// it was asked about.
type admitCounter struct{ notices int }

func (a *admitCounter) Admit(context.Context, *rules.Destination, actions.Notifier, *actions.Notice) (bool, string, error) {
	a.notices++
	return true, "", nil
}

// TestDispatchFoldsRecipientsPastDigestAfter posts one bounce to 4,000
// recipients through the real webhook client to the Slack fake, to a
// destination with digest_after 10: it takes 11 messages, 10 naming its
// first recipients (each once) and one digest that counts every
// recipient left, by type, domain and rule, within Slack's limits.
func TestDispatchFoldsRecipientsPastDigestAfter(t *testing.T) {
	const n, after = 4000, 10
	router, dest := foldRouter(t)
	sl := actionstest.NewSlack(t)
	d := &actions.Dispatcher{Destinations: slack.ByName([]*rules.Destination{dest}), Notifiers: map[string]actions.Notifier{
		"hook": slack.NewSlackWebhook(slack.Secret(sl.WebhookURL("hook")), "HOOK", newHTTPClient(t), fastRetry, nil),
	}}
	folder := &admitCounter{}
	results := d.Dispatch(context.Background(), router.Route(foldBounce(n)), folder)

	if len(results) != 1 || results[0].Outcome != actions.OutcomePosted {
		t.Fatalf("results %+v, want one notify posted", briefs(results))
	}
	if folder.notices != 1 {
		t.Errorf("the folder was asked about %d notices, want 1: the notification counts once toward digest_after", folder.notices)
	}
	posts := sl.Posts()
	if len(posts) != after+1 || len(results[0].Messages) != after+1 {
		t.Fatalf("%d posts (%d messages), want %d: digest_after of its own, then one digest", len(posts), len(results[0].Messages), after+1)
	}
	for i, p := range posts {
		if problems := actionstest.CheckBlocks(p.Blocks); len(problems) > 0 {
			t.Errorf("post %d breaks Slack's limits:\n%s", i, strings.Join(problems, "\n"))
		}
	}
	// The messages of its own name its first recipients, each once.
	named := 0
	for i := range n {
		in := 0
		for _, p := range posts[:after] {
			if bytes.Contains(p.Blocks, []byte("`"+foldAddress(i)+"`")) {
				in++
			}
		}
		switch {
		case in > 1:
			t.Errorf("%s is named in %d messages", foldAddress(i), in)
		case in == 1 && named != i:
			t.Fatalf("%s is named, but %s before it is not", foldAddress(i), foldAddress(named))
		case in == 1:
			named++
		}
	}
	if named < after {
		t.Fatalf("the %d messages of its own name %d recipients", after, named)
	}
	if last := fmt.Sprintf("–%d of 4000", named); !bytes.Contains(posts[after-1].Blocks, []byte(last)) {
		t.Errorf("the last message of its own does not say it ends at recipient %d of all 4000: %s", named, posts[after-1].Blocks)
	}
	digest := results[0].Messages[after]
	rest := n - named
	if want := fmt.Sprintf("Digest · %s more recipients folded (of 4,000 recipients)", words.Thousands(rest)); digest.Text != want {
		t.Errorf("digest text %q, want %q", digest.Text, want)
	}
	counts := digestCounts(t, digest)
	if got := counts["By type"]; len(got) != 1 || got["Bounce · Permanent/General"] != 1 {
		t.Errorf("by type %v, want the one bounce", got)
	}
	if got := sum(counts["By recipient domain"]); got != rest || len(counts["By recipient domain"]) != foldDomains {
		t.Errorf("by domain %v: %d recipients, want %d over %d domains", counts["By recipient domain"], got, rest, foldDomains)
	}
	wantRule := map[string]int{}
	for i := named; i < n; i++ {
		if i%foldDomains == 0 {
			wantRule["first-domain"]++
		} else {
			wantRule["bounces"]++
		}
	}
	if got := counts["By rule"]; got["first-domain"] != wantRule["first-domain"] || got["bounces"] != wantRule["bounces"] || len(got) != 2 {
		t.Errorf("by rule %v, want %v", got, wantRule)
	}
	if first := "`" + foldAddress(named) + "`"; !bytes.Contains(jsonOf(t, digest.Blocks), []byte(first)) {
		t.Errorf("the digest does not name %s, the first recipient it folds", first)
	}
}

// TestDispatchFewRecipientsUnchanged: a notification whose recipients
// take digest_after messages or fewer is posted as BuildMessages makes
// it; one more recipient than fits makes digest_after messages and a
// digest of that one.
func TestDispatchFewRecipientsUnchanged(t *testing.T) {
	const after = 10
	router, dest := foldRouter(t)
	built := func(n int) []actions.Message {
		nt := foldBounce(n)
		notice := actions.Notice{Notification: nt}
		for i := range nt.Recipients {
			rule := "bounces"
			if i%foldDomains == 0 {
				rule = "first-domain"
			}
			notice.Recipients = append(notice.Recipients, actions.NoticeRecipient{Recipient: &nt.Recipients[i], Rule: rule})
		}
		return actions.BuildMessages(notice)
	}
	// The most recipients that take after messages.
	most := 1
	for len(built(most+1)) <= after {
		most++
	}
	for _, n := range []int{1, 60, most, most + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sl := actionstest.NewSlack(t)
			d := &actions.Dispatcher{Destinations: slack.ByName([]*rules.Destination{dest}), Notifiers: map[string]actions.Notifier{
				"hook": slack.NewSlackWebhook(slack.Secret(sl.WebhookURL("hook")), "HOOK", newHTTPClient(t), fastRetry, nil),
			}}
			results := d.Dispatch(context.Background(), router.Route(foldBounce(n)), nil)
			if len(results) != 1 || results[0].Outcome != actions.OutcomePosted {
				t.Fatalf("results %+v, want one notify posted", briefs(results))
			}
			got, want := results[0].Messages, built(n)
			if n == most+1 {
				if len(got) != after+1 {
					t.Fatalf("%d messages, want %d", len(got), after+1)
				}
				if d := got[after]; d.Text != "Digest · 1 more recipient folded (of "+words.Thousands(n)+" recipients)" {
					t.Errorf("last message %q, want the digest of one recipient", d.Text)
				}
				if !bytes.Contains(jsonOf(t, got[after-1].Blocks), []byte(foldAddress(n-2))) {
					t.Errorf("the last message of its own does not name %s", foldAddress(n-2))
				}
				return
			}
			if !bytes.Equal(jsonOf(t, got), jsonOf(t, want)) {
				t.Errorf("%d recipients: messages differ from BuildMessages'", n)
			}
			if posts := sl.Posts(); len(posts) != len(want) {
				t.Errorf("%d posts, want %d", len(posts), len(want))
			}
		})
	}
}
