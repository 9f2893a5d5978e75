package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/internal/words"
)

// The live route: sesrouter route without -dry-run, in-process through
// run, against the loopback fakes of Slack (Web API and incoming webhooks)
// and of the SES v2 suppression list, through the real slack-go and sesv2
// clients. Test rules post without pace (pace: 0s): pacing is tested in
// actions on a fake clock, and in storm_test.go against a rate limit.
//
// Slack's settings reach sesrouter through env.getenv (testEnv); the AWS
// SDK reads the process environment itself (config.LoadDefaultConfig), so
// the SES fake's Setenv points it at the fake with t.Setenv, which rules
// out t.Parallel for the tests that use SES.

// liveChannel is the channel of the bot-token destination.
const liveChannel = "C0123456789"

// liveRules route by address: local parts starting with "keep" are
// unsuppressed, those starting with "block" suppressed, both then posted
// with the bot token; addresses at hook.example go to the incoming webhook
// in $SLACK_WEBHOOK_TEST; the rest to the bot channel.
const liveRules = `version: 1

destinations:
  bot:
    slack:
      channel: ` + liveChannel + `
      digest_after: 1000000 # every notification posted: digests are tested in storm_test.go
      pace: 0s
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      digest_after: 1000000
      pace: 0s

rules:
  - name: keep-deliverable
    when: recipient.local startsWith "keep"
    actions: [unsuppress, {notify: bot}]
  - name: block
    when: recipient.local startsWith "block"
    actions: [suppress, {notify: bot}]
  - name: webhook
    when: recipient.domain == "hook.example"
    actions: [{notify: hook}]
  - name: bot
    when: "true"
    actions: [{notify: bot}]
`

// liveFakes are the fakes a live route runs against and the variables
// that point sesrouter at them.
type liveFakes struct {
	slack *actionstest.Slack
	ses   *actionstest.SES
	// vars are what env.getenv returns: the bot token, the Web API URL
	// and the webhook URL in $SLACK_WEBHOOK_TEST.
	vars map[string]string
	// actionTimeout, when set, bounds each notification's actions.
	actionTimeout time.Duration
	// inMemory says that the fakes are served in memory: a route reaches
	// them through their own clients.
	inMemory bool
}

// startLiveFakes starts a Slack fake (with liveChannel) and an SES fake,
// and points the AWS SDK at the latter through the process environment.
func startLiveFakes(t *testing.T) *liveFakes {
	t.Helper()
	return pointAtFakes(t, &liveFakes{slack: actionstest.NewSlack(t, liveChannel), ses: actionstest.NewSES(t)})
}

// startLiveFakesInMemory is startLiveFakes with both fakes served in
// memory, for a test on a testing/synctest bubble's clock: call it inside
// the bubble.
func startLiveFakesInMemory(t *testing.T) *liveFakes {
	t.Helper()
	f := &liveFakes{slack: actionstest.NewSlackInMemory(t, liveChannel), ses: actionstest.NewSESInMemory(t), inMemory: true}
	return pointAtFakes(t, f)
}

// pointAtFakes sets f's variables and points the AWS SDK at f.ses.
func pointAtFakes(t *testing.T, f *liveFakes) *liveFakes {
	t.Helper()
	f.ses.Setenv(t)
	f.vars = map[string]string{
		"SLACK_BOT_TOKEN":    f.slack.Token(),
		"SLACK_API_URL":      f.slack.APIURL(),
		"SLACK_WEBHOOK_TEST": f.slack.WebhookURL("hook"),
	}
	return f
}

// secrets are the values that must never be printed: the bot token, and
// every webhook URL in vars with its secret path segment.
func (f *liveFakes) secrets() []string {
	s := []string{f.slack.Token()}
	for name, v := range f.vars {
		if strings.HasPrefix(name, "SLACK_WEBHOOK") {
			s = append(s, webhookSecrets(v)...)
		}
	}
	return s
}

// webhookSecrets are a webhook URL and its last path segment, the secret.
func webhookSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	return []string{raw, strings.TrimPrefix(u.Path, "/"), path.Base(u.Path)}
}

// checkNoSecrets fails t if any of secrets appears in what a run printed.
func checkNoSecrets(t *testing.T, r cliResult, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for stream, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
			if strings.Contains(out, s) {
				t.Errorf("%s shows the secret %q:\n%s", stream, s, out)
			}
		}
	}
}

// routeLive writes rules and input into a temporary folder and runs
// sesrouter route there without -dry-run, with args before the input.
func routeLive(t *testing.T, f *liveFakes, rules, input string, args ...string) cliResult {
	t.Helper()
	dir := t.TempDir()
	rulesPath := writeFile(t, dir, "rules.yaml", rules)
	inPath := writeFile(t, dir, "events.ndjson", input)
	argv := append(append([]string{"route", "-rules", rulesPath}, args...), inPath)
	e := testEnv(f.vars)
	e.actionTimeout = f.actionTimeout
	if f.inMemory {
		e.slackClient, e.sesClient = f.slack.HTTPClient(), f.ses.HTTPClient()
	}
	r := runCLI(t, e, "", argv...)
	checkNoSecrets(t, r, f.secrets()...)
	return r
}

// liveLine is one line of route's JSON output, as far as these tests look.
type liveLine struct {
	Input      string          `json:"input"`
	Type       string          `json:"type"`
	Skipped    string          `json:"skipped"`
	Error      string          `json:"error"`
	Recipients []liveRecipient `json:"recipients"`
	Results    []liveResult    `json:"results"`
}

type liveRecipient struct {
	Address string   `json:"address"`
	Raw     string   `json:"raw"`
	Rules   []string `json:"rules"`
	Actions []string `json:"actions"`
	Error   string   `json:"error"`
}

// liveResult is one result of a JSON line, with every field
// docs/commands.md names but the dry run's payload.
type liveResult struct {
	Action    string `json:"action"`
	Recipient string `json:"recipient,omitempty"`
	Outcome   string `json:"outcome"`
	Error     string `json:"error,omitempty"`
}

// parseLines decodes route's JSON output, one liveLine a line.
func parseLines(t *testing.T, stdout string) []liveLine {
	t.Helper()
	var lines []liveLine
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l liveLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %d is not a JSON notification: %v\n%s", len(lines)+1, err, sc.Bytes())
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// liveBounce is one identity bounce notification on one line, with
// messageId id, for addrs, each with an SMTP status and a diagnostic code.
func liveBounce(t testing.TB, id string, addrs ...string) string {
	t.Helper()
	return liveBounceWith(t, id, func(string) string { return "smtp; 550 5.1.1 user unknown" }, addrs...)
}

// liveBounceWith is liveBounce with each address's diagnostic code from
// diag.
func liveBounceWith(t testing.TB, id string, diag func(addr string) string, addrs ...string) string {
	t.Helper()
	type rcpt struct {
		EmailAddress   string `json:"emailAddress"`
		Action         string `json:"action"`
		Status         string `json:"status"`
		DiagnosticCode string `json:"diagnosticCode"`
	}
	rs := make([]rcpt, len(addrs))
	for i, a := range addrs {
		rs[i] = rcpt{a, "failed", "5.1.1", diag(a)}
	}
	doc := map[string]any{
		"notificationType": "Bounce",
		"bounce": map[string]any{
			"bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": rs,
			"timestamp": "2024-05-01T10:00:02.000Z", "feedbackId": "fb-" + id,
			"reportingMTA": "dsn; a8-1.smtp-out.amazonses.com",
		},
		"mail": map[string]any{
			"timestamp": "2024-05-01T10:00:00.000Z", "source": "shop@example.net", "messageId": id,
			"destination": addrs, "commonHeaders": map[string]any{"subject": "Your order"},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// blockTexts returns the text of every text object in a blocks array:
// section and header texts, section fields and context elements, in order.
func blockTexts(t *testing.T, blocks []byte) []string {
	t.Helper()
	type text struct {
		Text string `json:"text"`
	}
	var list []struct {
		Type     string `json:"type"`
		Text     *text  `json:"text"`
		Fields   []text `json:"fields"`
		Elements []text `json:"elements"`
	}
	if err := json.Unmarshal(blocks, &list); err != nil {
		t.Fatalf("blocks: %v\n%s", err, blocks)
	}
	var out []string
	for _, b := range list {
		if b.Text != nil {
			out = append(out, b.Text.Text)
		}
		for _, f := range b.Fields {
			out = append(out, f.Text)
		}
		for _, e := range b.Elements {
			out = append(out, e.Text)
		}
	}
	return out
}

// postText is all the text a post shows: its blocks' texts, one a line.
func postText(t *testing.T, p actionstest.Post) string {
	t.Helper()
	return strings.Join(blockTexts(t, p.Blocks), "\n")
}

// onePost returns the only post the Slack fake accepted, failing t if
// there is not exactly one.
func onePost(t *testing.T, f *liveFakes) actionstest.Post {
	t.Helper()
	posts := f.slack.Posts()
	if len(posts) != 1 {
		t.Fatalf("Slack got %d messages, want 1", len(posts))
	}
	return posts[0]
}

// checkContains fails t for every want that s does not contain.
func checkContains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

// sesOps lists the SES calls as "Op address status".
func sesOps(f *liveFakes) []string {
	var ops []string
	for _, c := range f.ses.Calls() {
		ops = append(ops, fmt.Sprintf("%s %s %d", c.Op, c.Address, c.Status))
	}
	return ops
}

// listedAt is when the suppressed addresses of these tests were listed.
var listedAt = time.Date(2024, 4, 1, 9, 30, 0, 0, time.UTC)

// What Slack errors say to do, after the error.
const hintChannel = "invite the app to the channel (/invite @app) and give the channel's ID (C…) in channel:, not its name"

// hintWebhook is the hint of a webhook that Slack no longer knows, in
// the variable where.
func hintWebhook(where string) string {
	return "the incoming webhook in " + where + " was removed or disabled: create a new one and put its URL in " + where
}

// accessDenied is the error of an unsuppress that SES refused: in full
// in the results, its first words in the Slack message.
const accessDenied = "SES GetSuppressedDestination: AccessDeniedException: User: arn:aws:iam::000000000000:user/sesrouter-test is not authorized to perform: ses:GetSuppressedDestination"

// TestRouteLive routes one bounce per case without -dry-run against the
// fakes and checks the JSON results, the exit status, and what the fakes
// saw: Slack posts by bot token and by webhook, Slack's errors and its
// retried failures, and the SES suppression-list actions with their
// outcomes and retries.
func TestRouteLive(t *testing.T) {
	tests := []struct {
		name       string
		recipients []string
		setup      func(f *liveFakes)
		wantCode   int
		want       []liveResult
		check      func(t *testing.T, f *liveFakes)
	}{
		{
			name:       "posted with the bot token",
			recipients: []string{"a@bot.example", "b@bot.example"},
			wantCode:   exitOK,
			want:       []liveResult{{Action: "notify:bot", Outcome: "posted"}},
			check: func(t *testing.T, f *liveFakes) {
				p := onePost(t, f)
				if p.Kind != actionstest.KindAPI || p.Channel != liveChannel {
					t.Errorf("posted %s to %q, want api to %s", p.Kind, p.Channel, liveChannel)
				}
				checkContains(t, "the message", postText(t, p), "Bounce · Permanent/General", "`a@bot.example`", "`b@bot.example`", "rule `bot`")
				checkContains(t, "the fallback text", p.Text, "a@bot.example")
				if len(f.ses.Calls()) != 0 {
					t.Errorf("SES calls %q, want none", sesOps(f))
				}
			},
		},
		{
			name:       "posted to the webhook",
			recipients: []string{"c@hook.example"},
			wantCode:   exitOK,
			want:       []liveResult{{Action: "notify:hook", Outcome: "posted"}},
			check: func(t *testing.T, f *liveFakes) {
				p := onePost(t, f)
				if p.Kind != actionstest.KindWebhook || p.Channel != "hook" {
					t.Errorf("posted %s to %q, want a webhook to hook", p.Kind, p.Channel)
				}
				checkContains(t, "the message", postText(t, p), "`c@hook.example`", "rule `webhook`")
			},
		},
		{
			name:       "channel_not_found is failed, not retried",
			recipients: []string{"a@bot.example"},
			setup:      func(f *liveFakes) { f.slack.Script(actionstest.FaultChannelNotFound()) },
			wantCode:   exitFailed,
			want:       []liveResult{{Action: "notify:bot", Outcome: "failed", Error: "channel_not_found (" + hintChannel + ")"}},
			check: func(t *testing.T, f *liveFakes) {
				if c := f.slack.Counts(); c.Requests != 1 || c.Succeeded != 0 {
					t.Errorf("Slack counts %+v, want 1 request and no success", c)
				}
			},
		},
		{
			// That the retry waits the Retry-After is the actions tests'
			// part, on a fake clock: here, that a 429 is not a failure.
			name:       "429, then posted",
			recipients: []string{"a@bot.example"},
			setup:      func(f *liveFakes) { f.slack.Script(actionstest.Fault429After(1)) },
			wantCode:   exitOK,
			want:       []liveResult{{Action: "notify:bot", Outcome: "posted"}},
			check: func(t *testing.T, f *liveFakes) {
				if c := f.slack.Counts(); c.Requests != 2 || c.Throttled != 1 || c.Succeeded != 1 {
					t.Errorf("Slack counts %+v, want 1 throttled and 1 succeeded", c)
				}
				onePost(t, f)
			},
		},
		{
			name:       "500, then posted",
			recipients: []string{"c@hook.example"},
			setup:      func(f *liveFakes) { f.slack.Script(actionstest.Fault500()) },
			wantCode:   exitOK,
			want:       []liveResult{{Action: "notify:hook", Outcome: "posted"}},
			check: func(t *testing.T, f *liveFakes) {
				if c := f.slack.Counts(); c.Requests != 2 || c.ServerErrors != 1 || c.Succeeded != 1 {
					t.Errorf("Slack counts %+v, want 1 server error and 1 succeeded", c)
				}
				onePost(t, f)
			},
		},
		{
			name:       "webhook 404 is failed, not retried",
			recipients: []string{"c@hook.example"},
			setup: func(f *liveFakes) {
				f.vars["SLACK_WEBHOOK_TEST"] = f.slack.URL() + "/services/T000/B000/REVOKEDWEBHOOKSECRET"
			},
			wantCode: exitFailed,
			want:     []liveResult{{Action: "notify:hook", Outcome: "failed", Error: "slack server error: 404 Not Found: no_service (" + hintWebhook("SLACK_WEBHOOK_TEST") + ")"}},
			check: func(t *testing.T, f *liveFakes) {
				if c := f.slack.Counts(); c.Requests != 1 || c.ClientErrors != 1 {
					t.Errorf("Slack counts %+v, want 1 request answered 404", c)
				}
			},
		},
		{
			name:       "removed",
			recipients: []string{"keep-1@x.example"},
			setup:      func(f *liveFakes) { f.ses.Suppress("keep-1@x.example", "BOUNCE", listedAt) },
			wantCode:   exitOK,
			want: []liveResult{
				{Action: "unsuppress", Recipient: "keep-1@x.example", Outcome: "removed"},
				{Action: "notify:bot", Outcome: "posted"},
			},
			check: func(t *testing.T, f *liveFakes) {
				if _, ok := f.ses.Suppressed("keep-1@x.example"); ok {
					t.Error("keep-1@x.example is still on the suppression list")
				}
				want := []string{"GetSuppressedDestination keep-1@x.example 200", "DeleteSuppressedDestination keep-1@x.example 200"}
				if got := sesOps(f); !slices.Equal(got, want) {
					t.Errorf("SES calls %q, want %q", got, want)
				}
				checkContains(t, "the message", postText(t, onePost(t, f)),
					"`keep-1@x.example` · 5.1.1 failed · rule `keep-deliverable`\n`smtp; 550 5.1.1 user unknown`\n→ removed from the suppression list (listed for BOUNCE since 2024-04-01 09:30 UTC)")
			},
		},
		{
			name:       "not on the list: not-suppressed, still in the message",
			recipients: []string{"keep-2@x.example"},
			wantCode:   exitOK,
			want: []liveResult{
				{Action: "unsuppress", Recipient: "keep-2@x.example", Outcome: "not-suppressed"},
				{Action: "notify:bot", Outcome: "posted"},
			},
			check: func(t *testing.T, f *liveFakes) {
				want := []string{"GetSuppressedDestination keep-2@x.example 404"}
				if got := sesOps(f); !slices.Equal(got, want) {
					t.Errorf("SES calls %q, want %q", got, want)
				}
				checkContains(t, "the message", postText(t, onePost(t, f)), "`keep-2@x.example`", "→ not on the suppression list")
			},
		},
		{
			name:       "throttled, then removed",
			recipients: []string{"keep-3@x.example"},
			setup: func(f *liveFakes) {
				f.ses.Suppress("keep-3@x.example", "COMPLAINT", listedAt)
				f.ses.Script(actionstest.Fault429())
			},
			wantCode: exitOK,
			want: []liveResult{
				{Action: "unsuppress", Recipient: "keep-3@x.example", Outcome: "removed"},
				{Action: "notify:bot", Outcome: "posted"},
			},
			check: func(t *testing.T, f *liveFakes) {
				want := []string{
					"GetSuppressedDestination keep-3@x.example 429",
					"GetSuppressedDestination keep-3@x.example 200",
					"DeleteSuppressedDestination keep-3@x.example 200",
				}
				if got := sesOps(f); !slices.Equal(got, want) {
					t.Errorf("SES calls %q, want %q", got, want)
				}
				if _, ok := f.ses.Suppressed("keep-3@x.example"); ok {
					t.Error("keep-3@x.example is still on the suppression list")
				}
				checkContains(t, "the message", postText(t, onePost(t, f)), "→ removed from the suppression list (listed for COMPLAINT since 2024-04-01 09:30 UTC)")
			},
		},
		{
			name:       "access denied on the delete, after the read",
			recipients: []string{"keep-4@x.example"},
			setup: func(f *liveFakes) {
				f.ses.Suppress("keep-4@x.example", "BOUNCE", listedAt)
				f.ses.Script(actionstest.Fault{}, actionstest.FaultAccessDenied())
			},
			wantCode: exitFailed,
			want: []liveResult{
				{Action: "unsuppress", Recipient: "keep-4@x.example", Outcome: "failed", Error: strings.ReplaceAll(accessDenied, "Get", "Delete")},
				{Action: "notify:bot", Outcome: "posted"},
			},
			check: func(t *testing.T, f *liveFakes) {
				if _, ok := f.ses.Suppressed("keep-4@x.example"); !ok {
					t.Error("keep-4@x.example was taken off the list although SES refused")
				}
				checkContains(t, "the message", postText(t, onePost(t, f)),
					"→ *unsuppress failed*: `SES DeleteSuppressedDestination: AccessDeniedException`")
			},
		},
		{
			name:       "suppressed: added with the reason of the event",
			recipients: []string{"block-1@x.example"},
			wantCode:   exitOK,
			want: []liveResult{
				{Action: "suppress", Recipient: "block-1@x.example", Outcome: "added"},
				{Action: "notify:bot", Outcome: "posted"},
			},
			check: func(t *testing.T, f *liveFakes) {
				if reason, ok := f.ses.Suppressed("block-1@x.example"); !ok || reason != "BOUNCE" {
					t.Errorf("block-1@x.example on the list: %v, reason %q; want BOUNCE", ok, reason)
				}
				checkContains(t, "the message", postText(t, onePost(t, f)), "→ added to the suppression list (BOUNCE)")
			},
		},
		{
			name:       "access denied fails one action; the others are still done",
			recipients: []string{"keep-1@x.example", "keep-2@x.example", "c@hook.example"},
			setup: func(f *liveFakes) {
				f.ses.Suppress("keep-1@x.example", "BOUNCE", listedAt)
				f.ses.Suppress("keep-2@x.example", "BOUNCE", listedAt)
				f.ses.Script(actionstest.FaultAccessDenied())
			},
			wantCode: exitFailed,
			want: []liveResult{
				{Action: "unsuppress", Recipient: "keep-1@x.example", Outcome: "failed", Error: accessDenied},
				{Action: "unsuppress", Recipient: "keep-2@x.example", Outcome: "removed"},
				{Action: "notify:bot", Outcome: "posted"},
				{Action: "notify:hook", Outcome: "posted"},
			},
			check: func(t *testing.T, f *liveFakes) {
				if _, ok := f.ses.Suppressed("keep-1@x.example"); !ok {
					t.Error("keep-1@x.example was taken off the list although SES refused")
				}
				if _, ok := f.ses.Suppressed("keep-2@x.example"); ok {
					t.Error("keep-2@x.example is still on the suppression list")
				}
				posts := f.slack.Posts()
				if len(posts) != 2 {
					t.Fatalf("Slack got %d messages, want 2 (bot and webhook)", len(posts))
				}
				var bot actionstest.Post
				for _, p := range posts {
					if p.Kind == actionstest.KindAPI {
						bot = p
					}
				}
				checkContains(t, "the bot message", postText(t, bot),
					"`keep-1@x.example` · 5.1.1 failed · rule `keep-deliverable`\n`smtp; 550 5.1.1 user unknown`\n→ *unsuppress failed*: `SES GetSuppressedDestination: AccessDeniedException`",
					"`keep-2@x.example` · 5.1.1 failed · rule `keep-deliverable`\n`smtp; 550 5.1.1 user unknown`\n→ removed from the suppression list")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startLiveFakes(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			r := routeLive(t, f, liveRules, liveBounce(t, "m-1", tt.recipients...), "-format", "json")
			if r.code != tt.wantCode {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			lines := parseLines(t, r.stdout)
			if len(lines) != 1 {
				t.Fatalf("%d output lines, want 1:\n%s", len(lines), r.stdout)
			}
			if got := lines[0].Results; !slices.Equal(got, tt.want) {
				t.Errorf("results:\n%s\nwant:\n%s", jsonLines(got), jsonLines(tt.want))
			}
			failed := 0
			if tt.wantCode == exitFailed {
				failed = 1
			}
			summary := fmt.Sprintf("sesrouter route: 1 notification (%s), 0 skipped, %d failed; ",
				words.Plural(len(tt.recipients), "recipient", "recipients"), failed)
			if !strings.HasPrefix(r.stderr, summary) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want only the summary line %q…", r.stderr, summary)
			}
			if n := f.slack.Pending() + f.ses.Pending(); n != 0 {
				t.Errorf("%d scripted faults were not served", n)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

// jsonLines shows results one JSON object a line.
func jsonLines(rs []liveResult) string {
	var b strings.Builder
	for _, r := range rs {
		j, _ := json.Marshal(r)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestRouteLiveText checks the text output of a live route once, for a
// notification whose first unsuppress SES refuses: every outcome is
// printed, the failure with its reason, and the exit status is 1.
func TestRouteLiveText(t *testing.T) {
	f := startLiveFakes(t)
	f.ses.Suppress("keep-1@x.example", "BOUNCE", listedAt)
	f.ses.Suppress("keep-2@x.example", "BOUNCE", listedAt)
	f.ses.Script(actionstest.FaultAccessDenied())
	input := liveBounce(t, "m-1", "keep-1@x.example", "keep-2@x.example", "c@hook.example") +
		liveBounce(t, "m-2", "a@bot.example")
	r := routeLive(t, f, liveRules, input)
	if r.code != exitFailed {
		t.Errorf("exit status %d, want 1\nstderr:\n%s", r.code, r.stderr)
	}
	// The second notification has no SES action, so that the fault
	// scripted for SES meets the first one's first call, although the two
	// run concurrently. The input's folder is a temporary one: name it IN.
	stdout := regexp.MustCompile(`(?m)^/[^ ]*/events\.ndjson:`).ReplaceAllString(r.stdout, "IN:")
	want := `IN:1 (file): Bounce Permanent/General
  mail m-1 from shop@example.net, subject "Your order", at 2024-05-01T10:00:02.000Z
  keep-1@x.example  keep-deliverable -> unsuppress, notify:bot
  keep-2@x.example  keep-deliverable -> unsuppress, notify:bot
  c@hook.example    webhook -> notify:hook
  failed: take keep-1@x.example off the SES account suppression list
    error: ` + accessDenied + `
  removed: take keep-2@x.example off the SES account suppression list
  posted: post to bot (Slack channel ` + liveChannel + `) about keep-1@x.example, keep-2@x.example
  posted: post to hook (Slack webhook $SLACK_WEBHOOK_TEST) about c@hook.example

IN:2 (file): Bounce Permanent/General
  mail m-2 from shop@example.net, subject "Your order", at 2024-05-01T10:00:02.000Z
  a@bot.example  bot -> notify:bot
  posted: post to bot (Slack channel ` + liveChannel + `) about a@bot.example

`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s\n%s", stdout, want, lineDiff(want, stdout))
	}
	if got, want := normaliseStderr(r.stderr), "sesrouter route: 2 notifications (4 recipients), 0 skipped, 1 failed; posted 3, failed 1, removed 1, in DURATION\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

// TestRouteLiveSplitsLargeBounce routes a bounce with 60 recipients by
// the rules of the original handler to their webhook: it is
// delivered as several messages, each within Slack's limits and saying
// which part it is, and together naming all 60 addresses once each. Some
// recipients are unsuppressed, so their sections carry SES outcomes, and
// diagnostic codes are long and full of characters Slack escapes.
func TestRouteLiveSplitsLargeBounce(t *testing.T) {
	f := startLiveFakes(t)
	f.vars = map[string]string{"SLACK_WEBHOOK_URL": f.slack.WebhookURL("ses-alerts")}
	var addrs []string
	wantSES := map[string]string{} // the unsuppress outcome of each no-suppress address
	diagLen := map[string]int{}
	for i := range 60 {
		a := fmt.Sprintf("user%02d@example.org", i+1)
		if i%7 == 0 {
			a = fmt.Sprintf("no-suppress-%02d@example.com", i+1)
			wantSES[a] = "not-suppressed"
			if i%2 == 0 {
				f.ses.Suppress(a, "BOUNCE", listedAt)
				wantSES[a] = "removed"
			}
		}
		addrs = append(addrs, a)
		diagLen[a] = 50 + i*97%550
	}
	// Diagnostic codes of 50 to 600 characters, most of them & < > that
	// Slack's escaping makes 4 or 5 characters long, and a mention that
	// must stay inert.
	diag := func(a string) string {
		return "smtp; 550 5.1.1 <" + a + "> <!channel> " + strings.Repeat("R&D <x> ", diagLen[a]/8)
	}
	r := routeLive(t, f, readHandlerRules(t), liveBounceWith(t, "m-60", diag, addrs...), "-format", "json")
	if r.code != exitOK {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	lines := parseLines(t, r.stdout)
	if len(lines) != 1 {
		t.Fatalf("%d output lines, want 1", len(lines))
	}
	results := lines[0].Results
	if last := results[len(results)-1]; last != (liveResult{Action: "notify:ses-alerts", Outcome: "posted"}) {
		t.Errorf("notify result %+v, want posted", last)
	}
	var gotSES []liveResult
	for _, a := range addrs {
		if o, ok := wantSES[a]; ok {
			gotSES = append(gotSES, liveResult{Action: "unsuppress", Recipient: a, Outcome: o})
		}
	}
	if got := results[:len(results)-1]; !slices.Equal(got, gotSES) {
		t.Errorf("SES results:\n%s\nwant:\n%s", jsonLines(got), jsonLines(gotSES))
	}

	posts := f.slack.Posts()
	if len(posts) < 2 {
		t.Fatalf("Slack got %d messages, want several", len(posts))
	}
	seen := map[string]int{}
	for i, p := range posts {
		name := fmt.Sprintf("message %d of %d", i+1, len(posts))
		if problems := actionstest.CheckBlocks(p.Blocks); len(problems) > 0 {
			t.Errorf("%s breaks Slack's limits:\n%s", name, strings.Join(problems, "\n"))
		}
		var blocks []json.RawMessage
		if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(blocks) > actionstest.MaxBlocks {
			t.Errorf("%s has %d blocks, more than %d", name, len(blocks), actionstest.MaxBlocks)
		}
		texts := blockTexts(t, p.Blocks)
		total := 0
		for _, s := range texts {
			total += utf8.RuneCountInString(s)
		}
		// Slack refuses a message whose blocks hold about 12,000 characters
		// in all (msg_blocks_too_long), whatever their kinds.
		if total > actionstest.MaxMarkdownText {
			t.Errorf("%s has %d characters of block text, more than %d", name, total, actionstest.MaxMarkdownText)
		}
		// Slack truncates a message's text at 40,000 characters.
		if n := utf8.RuneCountInString(p.Text); n == 0 || n > 40_000 {
			t.Errorf("%s has %d characters of fallback text", name, n)
		}
		header := texts[0]
		if want := fmt.Sprintf("Bounce · Permanent/General (part %d of %d)", i+1, len(posts)); header != want {
			t.Errorf("%s has header %q, want %q", name, header, want)
		}
		all := strings.Join(texts, "\n")
		if strings.Contains(all, "<!channel>") || strings.Contains(p.Text, "<!channel>") {
			t.Errorf("%s holds a live <!channel> from the event", name)
		}
		for _, a := range addrs {
			if strings.Contains(all, "`"+a+"` · 5.1.1 failed") {
				seen[a]++
			}
		}
	}
	for _, a := range addrs {
		if seen[a] != 1 {
			t.Errorf("%s is in %d messages, want 1", a, seen[a])
		}
	}
	t.Logf("60 recipients in %d messages", len(posts))
}

// TestRouteLiveNotSuppressedIsNotified checks, with the rules of the
// original handler, that a recipient to unsuppress that is not on the list
// is reported not-suppressed, which is no failure, and is still in the
// Slack message, beside the other recipients of the bounce.
func TestRouteLiveNotSuppressedIsNotified(t *testing.T) {
	f := startLiveFakes(t)
	f.vars = map[string]string{"SLACK_WEBHOOK_URL": f.slack.WebhookURL("ses-alerts")}
	r := routeLive(t, f, readHandlerRules(t), liveBounce(t, "m-1", "no-suppress-7@example.com", "someone@example.org"), "-format", "json")
	if r.code != exitOK {
		t.Errorf("exit status %d, want 0\nstderr:\n%s", r.code, r.stderr)
	}
	lines := parseLines(t, r.stdout)
	if len(lines) != 1 {
		t.Fatalf("%d output lines, want 1", len(lines))
	}
	want := []liveResult{
		{Action: "unsuppress", Recipient: "no-suppress-7@example.com", Outcome: "not-suppressed"},
		{Action: "notify:ses-alerts", Outcome: "posted"},
	}
	if got := lines[0].Results; !slices.Equal(got, want) {
		t.Errorf("results:\n%s\nwant:\n%s", jsonLines(got), jsonLines(want))
	}
	checkContains(t, "the message", postText(t, onePost(t, f)),
		"`no-suppress-7@example.com` · 5.1.1 failed · rule `keep-deliverable`\n`smtp; 550 5.1.1 user unknown`\n→ not on the suppression list",
		"`someone@example.org` · 5.1.1 failed · rule `notify-bounces-and-complaints`")
}

// flakyRules unsuppress the bounced no-suppress-1…9 addresses and notify
// every recipient of every notification: complaints with the bot token,
// the rest to the webhook in $SLACK_WEBHOOK_TEST. So every notification
// has exactly one notify result.
const flakyRules = `version: 1

destinations:
  bot:
    slack:
      channel: ` + liveChannel + `
      digest_after: 1000000 # every notification posted: storm_test.go tests digests
      pace: 0s
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      digest_after: 1000000
      pace: 0s

rules:
  - name: keep-deliverable
    when: event.type == "Bounce" && recipient.address matches "^no-suppress-[1-9]@"
    actions: [unsuppress]
    continue: true
  - name: complaints
    when: event.type == "Complaint"
    actions: [{notify: bot}]
  - name: everything-else
    when: "true"
    actions: [{notify: hook}]
`

// summaryRE reads route's summary line.
var summaryRE = regexp.MustCompile(`^sesrouter route: ([0-9]+) notifications \([0-9]+ recipients\), ([0-9]+) skipped, ([0-9]+) failed(?:, [0-9]+ duplicate)?(?:; ([^\n]*))?, in [^\n]+\n$`)

// summaryOutcomes reads the counts by outcome of a summary line's
// "posted 3, removed 1, 2 digests" (m[4] of summaryRE), digests left out.
func summaryOutcomes(s string) map[string]int {
	out := map[string]int{}
	for _, part := range strings.Split(s, ", ") {
		name, n, ok := strings.Cut(part, " ")
		if !ok {
			continue
		}
		if v, err := strconv.Atoi(n); err == nil {
			out[name] = v
		}
	}
	return out
}

// TestRouteLiveFlaky checks that with 30% of Slack and
// SES calls failing transiently (429 with Retry-After: 0, 500, 503), a
// 2,000-event run loses nothing. Every input has its JSON line, in order;
// every notification's notify result is posted or failed; every SES
// result is an outcome; the failed notifications are those the summary
// counts; the exit status is 1 exactly when one failed; and Slack holds
// exactly the posted messages.
func TestRouteLiveFlaky(t *testing.T) {
	if testing.Short() {
		t.Skip("about 20 s of retries with their real backoff; not with -short")
	}
	const n = 2000
	f := startLiveFakes(t)
	for i := range 50 {
		f.ses.Suppress(fmt.Sprintf("no-suppress-%d@example.com", i+1), "BOUNCE", listedAt)
	}
	transient := []actionstest.Fault{actionstest.Fault429After(0), actionstest.Fault500(), actionstest.Fault503()}
	f.slack.FailRandomly(0.3, 1, transient...)
	f.ses.FailRandomly(0.3, 2, transient...)

	dir := t.TempDir()
	input := filepath.Join(dir, "events.ndjson")
	writeBenchFileOrFail(t, input, n)
	rulesPath := writeFile(t, dir, "rules.yaml", flakyRules)
	r := runCLI(t, testEnv(f.vars), "", "route", "-format", "json", "-rules", rulesPath, input)
	checkNoSecrets(t, r, f.secrets()...)

	lines := parseLines(t, r.stdout)
	if len(lines) != n {
		t.Fatalf("%d output lines for %d input events", len(lines), n)
	}
	failedLines, posted, unsuppressed, outcomes := 0, map[string]int{}, 0, map[string]int{}
	for i, l := range lines {
		if want := input + ":" + strconv.Itoa(i+1); l.Input != want {
			t.Fatalf("line %d is for input %q, want %q", i+1, l.Input, want)
		}
		notifies := 0
		lineFailed := false
		for _, res := range l.Results {
			outcomes[res.Outcome]++
			var ok []string
			switch {
			case strings.HasPrefix(res.Action, "notify:"):
				notifies++
				ok = []string{"posted", "failed"}
				if res.Outcome == "posted" {
					posted[res.Action]++
				}
			case res.Action == "unsuppress":
				unsuppressed++
				ok = []string{"removed", "not-suppressed", "failed"}
			}
			if !slices.Contains(ok, res.Outcome) || (res.Outcome == "failed") != (res.Error != "") {
				t.Errorf("line %d: result %+v", i+1, res)
			}
			if res.Outcome == "failed" {
				lineFailed = true
				t.Logf("line %d: %s failed: %s", i+1, res.Action, res.Error)
			}
		}
		if l.Error != "" || l.Skipped != "" || notifies != 1 {
			t.Errorf("line %d: %d notify results, error %q, skipped %q; want 1 notify result", i+1, notifies, l.Error, l.Skipped)
		}
		if lineFailed {
			failedLines++
		}
	}

	// Counted as a grep would: the lines that say "outcome":"failed".
	textualLines := 0
	for _, line := range strings.SplitAfter(r.stdout, "\n") {
		if strings.Contains(line, `"outcome":"failed"`) {
			textualLines++
		}
	}
	if textualLines != failedLines {
		t.Errorf("%d lines contain \"outcome\":\"failed\"; %d have a failed result", textualLines, failedLines)
	}

	m := summaryRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("stderr = %q, want only the summary line", r.stderr)
	}
	if m[1] != strconv.Itoa(n) || m[2] != "0" {
		t.Errorf("summary %q, want %d notifications and none skipped", strings.TrimSpace(m[0]), n)
	}
	if m[3] != strconv.Itoa(failedLines) {
		t.Errorf("summary says %s failed; %d lines have a failed outcome", m[3], failedLines)
	}
	if got := summaryOutcomes(m[4]); !maps.Equal(got, outcomes) {
		t.Errorf("summary counts outcomes %v; the lines say %v", got, outcomes)
	}
	if wantCode := map[bool]int{true: exitFailed, false: exitOK}[failedLines > 0]; r.code != wantCode {
		t.Errorf("exit status %d with %d failed notifications, want %d", r.code, failedLines, wantCode)
	}

	// Slack accepted exactly the messages reported posted (every
	// notification fits one message).
	got := map[string]int{}
	for _, p := range f.slack.Posts() {
		got[map[string]string{actionstest.KindAPI: "notify:bot", actionstest.KindWebhook: "notify:hook"}[p.Kind]]++
	}
	if got["notify:bot"] != posted["notify:bot"] || got["notify:hook"] != posted["notify:hook"] || len(got) != 2 {
		t.Errorf("Slack holds %v messages; the results say %v posted", got, posted)
	}
	sc, ec := f.slack.Counts(), f.ses.Counts()
	if unsuppressed == 0 || ec.Requests == 0 {
		t.Errorf("%d unsuppress results and %d SES requests: the run exercised no SES action", unsuppressed, ec.Requests)
	}
	if sc.Faults*5 < sc.Requests || ec.Faults == 0 { // about 30% of some 2,800 Slack requests and of some 40 SES ones
		t.Errorf("faults served: Slack %d in %d requests, SES %d in %d; want about 30%%", sc.Faults, sc.Requests, ec.Faults, ec.Requests)
	}
	t.Logf("%d failed notifications; Slack %+v; SES %+v", failedLines, sc, ec)
}

// TestRouteLiveNoSecretInOutput checks that no secret is printed, for the
// outputs most likely to leak: posts that fail. A webhook whose every
// attempt loses its connection (the HTTP client's *url.Error names the
// URL, secret and all), a revoked webhook (404), and bot-token posts
// refused with channel_not_found and invalid_auth, with a log action
// writing slog lines; in text and JSON, at the info and debug log levels.
// Neither stdout nor stderr may hold a webhook URL, its secret path or
// the bot token.
func TestRouteLiveNoSecretInOutput(t *testing.T) {
	const rules = `version: 1

destinations:
  alerts:
    slack:
      webhook_env: SLACK_WEBHOOK_ALERTS
      pace: 0s
  revoked:
    slack:
      webhook_env: SLACK_WEBHOOK_REVOKED
      pace: 0s
  bot:
    slack:
      channel: ` + liveChannel + `
      pace: 0s

rules:
  - name: log-all
    when: "true"
    actions: [log]
    continue: true
  - name: alerts
    when: recipient.domain == "alerts.example"
    actions: [{notify: alerts}]
  - name: revoked
    when: recipient.domain == "revoked.example"
    actions: [{notify: revoked}]
  - name: bot
    when: "true"
    actions: [{notify: bot}]
`
	// Both formats and both log levels, in two runs: each lasts as long
	// as the dropping webhook's retries, some 5 s.
	for _, tc := range []struct{ format, level string }{{"json", "info"}, {"text", "debug"}} {
		t.Run(tc.format+" at "+tc.level, func(t *testing.T) {
			t.Parallel()                       // no SES, so no t.Setenv: nothing here reads the process environment
			alerts := actionstest.NewSlack(t)  // every attempt dropped
			revoked := actionstest.NewSlack(t) // knows no webhook: 404
			bot := actionstest.NewSlack(t, liveChannel)
			vars := map[string]string{
				"SLACK_WEBHOOK_ALERTS":  alerts.WebhookURL("alerts"),
				"SLACK_WEBHOOK_REVOKED": revoked.URL() + "/services/T000/B000/" + strings.Repeat("REVOKED", 4),
				"SLACK_BOT_TOKEN":       bot.Token(),
				"SLACK_API_URL":         bot.APIURL(),
				"SESROUTER_LOG_LEVEL":   tc.level,
			}
			for range slack.DefaultRetry().Attempts {
				alerts.Script(actionstest.FaultDrop())
			}
			bot.Script(actionstest.FaultChannelNotFound(), actionstest.FaultAccessDenied())
			dir := t.TempDir()
			rulesPath := writeFile(t, dir, "rules.yaml", rules)
			input := writeFile(t, dir, "events.ndjson",
				liveBounce(t, "m-1", "a@alerts.example")+liveBounce(t, "m-2", "r@revoked.example")+
					liveBounce(t, "m-3", "b@bot.example")+liveBounce(t, "m-4", "c@bot.example"))

			r := runCLI(t, testEnv(vars), "", "route", "-format", tc.format, "-rules", rulesPath, input)
			if r.code != exitFailed {
				t.Errorf("exit status %d, want 1", r.code)
			}
			secrets := []string{bot.Token()}
			secrets = append(secrets, webhookSecrets(vars["SLACK_WEBHOOK_ALERTS"])...)
			secrets = append(secrets, webhookSecrets(vars["SLACK_WEBHOOK_REVOKED"])...)
			checkNoSecrets(t, r, secrets...)

			// The failures are there, with their reasons, and so are
			// the log lines: the search covered them.
			var errs []string
			if tc.format == "json" {
				for _, l := range parseLines(t, r.stdout) {
					for _, res := range l.Results {
						if res.Error != "" {
							errs = append(errs, res.Error)
						}
					}
				}
			} else {
				for _, m := range regexp.MustCompile(`(?m)^    error: (.*)$`).FindAllStringSubmatch(r.stdout, -1) {
					errs = append(errs, m[1])
				}
			}
			wantErrs := []*regexp.Regexp{
				regexp.MustCompile(`^failed to post webhook: Post "webhook \$SLACK_WEBHOOK_ALERTS": [^"]+ \(gave up after ` +
					strconv.Itoa(slack.DefaultRetry().Attempts) + ` attempts\)$`),
				regexp.MustCompile(`^slack server error: 404 Not Found: no_service \(` + regexp.QuoteMeta(hintWebhook("SLACK_WEBHOOK_REVOKED")) + `\)$`),
				regexp.MustCompile(`^(channel_not_found|invalid_auth) \(`), // bot posts run concurrently:
				regexp.MustCompile(`^(channel_not_found|invalid_auth) \(`), // either may meet either fault
			}
			if len(errs) != len(wantErrs) || errs[2] == errs[3] {
				t.Fatalf("errors %q, want one for each destination, the two bot ones different", errs)
			}
			for i, re := range wantErrs {
				if !re.MatchString(errs[i]) {
					t.Errorf("error of input %d = %q, want a match for %s", i+1, errs[i], re)
				}
			}
			if got := strings.Count(r.stderr, `"msg":"recipient"`); got != 4 {
				t.Errorf("stderr has %d log lines of the log action, want 4:\n%s", got, r.stderr)
			}
			checkContains(t, "stderr", r.stderr, "4 notifications (4 recipients), 0 skipped, 4 failed")
			if c := alerts.Counts(); c.Dropped != slack.DefaultRetry().Attempts || c.Succeeded != 0 {
				t.Errorf("the dropping webhook's counts %+v, want every attempt dropped", c)
			}
		})
	}
}
