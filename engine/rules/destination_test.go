package rules

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseDestinations loads src as a rules file named rules.yaml (which
// returns its destinations, in file order, or its problems.
func parseDestinations(t *testing.T, src string) ([]*Destination, error) {
	t.Helper()
	rs, err := Load("rules.yaml", []byte(src))
	if err != nil {
		return nil, err
	}
	return rs.DestinationList(), nil
}

// mustParseDestinations is parseDestinations for a file without problems.
func mustParseDestinations(t *testing.T, src string) []*Destination {
	t.Helper()
	dests, err := parseDestinations(t, src)
	if err != nil {
		t.Fatalf("ParseDestinations: %v", err)
	}
	return dests
}

// checkProblems fails t unless err joins n problems, each an
// *Problem of rules.yaml with a position.
func checkProblems(t *testing.T, err error, n int) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not join problems", err)
	}
	errs := joined.Unwrap()
	if len(errs) != n {
		t.Fatalf("%d problems, want %d", len(errs), n)
	}
	for _, e := range errs {
		var p *Problem
		if !errors.As(e, &p) {
			t.Errorf("%T is not an *Problem: %v", e, e)
			continue
		}
		if p.File != "rules.yaml" || p.Pos.Line < 1 || p.Pos.Col < 1 {
			t.Errorf("problem %q has file %q, position %+v", p, p.File, p.Pos)
		}
	}
}

// slackDestination is a rules file with one destination, d, whose slack
// mapping holds the lines given (each indented under slack:), and a rule
// that posts to it. The first line is line 5 of the file.
func slackDestination(lines ...string) string {
	return "version: 1\ndestinations:\n  d:\n    slack:\n      " + strings.Join(lines, "\n      ") +
		"\nrules:\n  - name: r\n    when: 'true'\n    actions: [{notify: d}]\n"
}

// TestParseDestinationsErrors pins the full text of each problem, with
// its place in the file. The first cases were the engine's, when it read
// destinations; a webhook_env holding a URL no longer repeats the value.
func TestParseDestinationsErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "webhook_url refused",
			src: `version: 1
destinations:
  hook:
    slack:
      webhook_url: https://hooks.slack.com/services/T/B/X
rules: []
`,
			want: []string{
				`rules.yaml:5:7: destination "hook": webhook_url is not allowed: secrets never go in the rules file; put the URL in an environment variable and name it with webhook_env`,
			},
		},
		{
			name: "mention that is not a mention",
			src: `version: 1
destinations:
  d:
    slack:
      channel: C1
      mention: "@here please"
rules: []
`,
			want: []string{
				`rules.yaml:6:16: destination "d": mention is <!here>, <!channel>, a user group <!subteam^ID> or a user <@ID> (several separated by spaces), not "@here please"`,
			},
		},
		{
			name: "channel and webhook_env",
			src: `version: 1
destinations:
  both:
    slack:
      channel: C1
      webhook_env: SLACK_URL
rules: []
`,
			want: []string{`rules.yaml:5:7: destination "both": set channel or webhook_env, not both`},
		},
		{
			// The engine said: webhook_env names an environment variable
			// (letters, digits, '_'), not "https://hooks.slack.com/x": the
			// URL itself never goes in the rules file. That repeated the
			// URL, a credential, in the error.
			name: "webhook_env holding a URL",
			src: `version: 1
destinations:
  hook:
    slack:
      webhook_env: https://hooks.slack.com/x
rules: []
`,
			want: []string{`rules.yaml:5:20: destination "hook": webhook_env must name an environment variable; this value looks like a webhook URL: put the URL in an environment variable and name it here`},
		},
		{
			name: "webhook_env that is no variable name",
			src:  slackDestination("webhook_env: SLACK-HOOK"),
			want: []string{`rules.yaml:5:20: destination "d": webhook_env names an environment variable (letters, digits, '_'), not "SLACK-HOOK"`},
		},
		{
			name: "neither channel nor webhook_env",
			src:  slackDestination("mention: <!here>"),
			want: []string{`rules.yaml:5:7: destination "d": missing channel (bot token) or webhook_env (incoming webhook)`},
		},
		{
			name: "unknown key",
			src:  slackDestination("channel: C1", "chanel: C2"),
			want: []string{`rules.yaml:6:7: destination "d": unknown key "chanel" (want channel, webhook_env, mention, digest_after, digest_window, pace, burst, thread, buttons, allow_users or allow_groups)`},
		},
		{
			name: "thread on a webhook",
			src:  slackDestination("webhook_env: SLACK_URL", "thread: storm"),
			want: []string{`rules.yaml:6:15: destination "d": thread: storm needs a channel and the bot token: an incoming webhook cannot thread or edit its messages (leave thread out, or post to a channel)`},
		},
		{
			name: "thread that is neither",
			src:  slackDestination("channel: C1", "thread: always"),
			want: []string{`rules.yaml:6:15: destination "d": thread is storm (a storm's messages in one thread) or none (flat messages), not "always"`},
		},
		{
			name: "buttons nobody may press",
			src:  slackDestination("channel: C1", "buttons: [unsuppress]"),
			want: []string{`rules.yaml:6:16: destination "d": buttons need allow_users or allow_groups: nobody would be allowed to press them`},
		},
		{
			name: "unknown button, bad ids, a repeat",
			src:  slackDestination("channel: C1", "buttons: [delete]", "allow_users: [U1ABC, S1ABC, U1ABC]", "allow_groups: [U2ABC]", "thread: [storm]"),
			want: []string{
				`rules.yaml:6:17: destination "d": buttons is a list of unsuppress, not "delete"`,
				`rules.yaml:7:28: destination "d": allow_users is a list of Slack user ids (U… or W…), not "S1ABC"`,
				`rules.yaml:7:35: destination "d": allow_users names "U1ABC" twice`,
				`rules.yaml:8:22: destination "d": allow_groups is a list of Slack user group ids (S…), not "U2ABC"`,
				`rules.yaml:9:15: destination "d": thread must be a string, not a list`,
			},
		},
		{
			name: "every problem at once, in file order",
			src:  slackDestination("channel: C1", "pace: fast", "burst: 0", "digest_window: 0s", "digest_after: -1"),
			want: []string{
				`rules.yaml:6:13: destination "d": pace is a duration, like 1.1s or 500ms (0s: no wait), not "fast"`,
				`rules.yaml:7:14: destination "d": burst is a positive whole number of posts, not "0"`,
				`rules.yaml:8:22: destination "d": digest_window is a positive duration, like 5m or 90s, not "0s"`,
				`rules.yaml:9:21: destination "d": digest_after is a positive whole number of messages, not "-1"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDestinations(t, tt.src)
			if err == nil {
				t.Fatalf("ParseDestinations succeeded, want:\n%s", strings.Join(tt.want, "\n"))
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
			checkProblems(t, err, len(tt.want))
		})
	}
}

// TestParseDestinationsMentions checks the mentions a destination may
// set.
func TestParseDestinationsMentions(t *testing.T) {
	for _, m := range []string{"<!here>", "<!channel>", "<!subteam^S0123ABCD>", "<!subteam^S0123ABCD|@oncall>", "<@U0123ABCD>", "<!here> <@W0123>"} {
		t.Run(m, func(t *testing.T) {
			dests := mustParseDestinations(t, slackDestination("channel: C1", `mention: "`+m+`"`))
			if got := dests[0].Mention; got != m {
				t.Errorf("Mention = %q, want %q", got, m)
			}
		})
	}
}

// TestParseDestinationsThreadsAndButtons reads thread, buttons and the
// allow lists, and the default thread of each kind of destination.
func TestParseDestinationsThreadsAndButtons(t *testing.T) {
	d := mustParseDestinations(t, slackDestination("channel: C1", "buttons: [unsuppress]", "allow_users: [U0123ABCD, W0123]", "allow_groups: [S0123ABCD]"))[0]
	if d.Thread != threadStorm || !d.Threads() {
		t.Errorf("a channel's thread is %q, want storm", d.Thread)
	}
	if !d.HasButton(ButtonUnsuppress) || !d.Allows("W0123") || d.Allows("U9") || len(d.AllowGroups) != 1 || d.AllowGroups[0] != "S0123ABCD" {
		t.Errorf("buttons %v, users %v, groups %v", d.Buttons, d.AllowUsers, d.AllowGroups)
	}
	if d.ButtonsPos != (Pos{Line: 6, Col: 16}) {
		t.Errorf("ButtonsPos = %+v", d.ButtonsPos)
	}
	if d := mustParseDestinations(t, slackDestination("channel: C1", "thread: none"))[0]; d.Threads() {
		t.Error("thread: none threads")
	}
	if d := mustParseDestinations(t, slackDestination("webhook_env: SLACK_URL"))[0]; d.Thread != threadNone || d.Threads() {
		t.Errorf("a webhook's thread is %q, want none", d.Thread)
	}
}

func TestParseDestinationsDigestAfter(t *testing.T) {
	dests := mustParseDestinations(t, slackDestination("channel: C0123456789", "digest_after: 25"))
	if got := dests[0].DigestAfter; got != 25 {
		t.Errorf("DigestAfter = %d, want 25", got)
	}
	for bad, shown := range map[string]string{"0": `"0"`, "-3": `"-3"`, "ten": `"ten"`, "1.5": `"1.5"`, "[1]": "a list"} {
		t.Run(bad, func(t *testing.T) {
			_, err := parseDestinations(t, slackDestination("channel: C0123456789", "digest_after: "+bad))
			want := `rules.yaml:6:21: destination "d": digest_after is a positive whole number of messages, not ` + shown
			if err == nil || err.Error() != want {
				t.Errorf("error %v\nwant %s", err, want)
			}
		})
	}
}

// TestParseDestinationsDefaults checks what a destination that sets only
// where it posts gets, and that each setting is read; destinations come
// in file order, with their index.
func TestParseDestinationsDefaults(t *testing.T) {
	src := `version: 1
destinations:
  plain:
    slack:
      channel: C0123456789
  tuned:
    slack:
      webhook_env: SLACK_WEBHOOK_MARKETING
      mention: "<!here>"
      digest_after: 3
      digest_window: 90s
      pace: 250ms
      burst: 4
  eager:
    slack:
      channel: C0000000002
      pace: 0s
rules: []
`
	dests := mustParseDestinations(t, src)
	want := []Destination{
		{Name: "plain", Index: 0, Channel: "C0123456789", DigestAfter: 10, DigestWindow: 5 * time.Minute, Pace: 1100 * time.Millisecond, Burst: 1, Thread: threadStorm},
		{Name: "tuned", Index: 1, WebhookEnv: "SLACK_WEBHOOK_MARKETING", Mention: "<!here>", DigestAfter: 3, DigestWindow: 90 * time.Second, Pace: 250 * time.Millisecond, Burst: 4, Thread: threadNone},
		{Name: "eager", Index: 2, Channel: "C0000000002", DigestAfter: 10, DigestWindow: 5 * time.Minute, Pace: 0, Burst: 1, Thread: threadStorm},
	}
	if len(dests) != len(want) {
		t.Fatalf("%d destinations, want %d", len(dests), len(want))
	}
	for i := range want {
		if d := *dests[i]; d.Pos.Line == 0 {
			t.Errorf("destination %d has no position", i)
		}
		dests[i].Pos = want[i].Pos
		if !reflect.DeepEqual(*dests[i], want[i]) {
			t.Errorf("destination %d = %+v\nwant %+v", i, *dests[i], want[i])
		}
	}
	if defaultDigestAfter != 10 || defaultDigestWindow != 5*time.Minute || defaultPace != 1100*time.Millisecond || defaultBurst != 1 {
		t.Errorf("defaults %d %s %s %d, want 10 5m 1.1s 1 (the documented defaults)", defaultDigestAfter, defaultDigestWindow, defaultPace, defaultBurst)
	}
	if got := dests[0].Describe() + "; " + dests[1].Describe(); got != "Slack channel C0123456789; Slack webhook $SLACK_WEBHOOK_MARKETING" {
		t.Errorf("Describe: %s", got)
	}
}

// TestParseDestinationsDurations checks pace, burst and digest_window,
// each problem at the position of its value.
func TestParseDestinationsDurations(t *testing.T) {
	tests := []struct {
		line string
		want string // the problem; "" when accepted
		get  func(*Destination) any
		val  any
	}{
		{line: "pace: 0s", get: func(d *Destination) any { return d.Pace }, val: time.Duration(0)},
		{line: "pace: 0", get: func(d *Destination) any { return d.Pace }, val: time.Duration(0)},
		{line: "pace: 1.5s", get: func(d *Destination) any { return d.Pace }, val: 1500 * time.Millisecond},
		{line: "pace: fast", want: `rules.yaml:6:13: destination "d": pace is a duration, like 1.1s or 500ms (0s: no wait), not "fast"`},
		{line: "pace: -1s", want: `rules.yaml:6:13: destination "d": pace is a duration, like 1.1s or 500ms (0s: no wait), not "-1s"`},
		{line: "pace: 2", want: `rules.yaml:6:13: destination "d": pace is a duration, like 1.1s or 500ms (0s: no wait), not "2"`},
		{line: "pace: [1s]", want: `rules.yaml:6:13: destination "d": pace is a duration, like 1.1s or 500ms (0s: no wait), not a list`},
		{line: "pace:", want: `rules.yaml:6:12: destination "d": pace is a duration, like 1.1s or 500ms (0s: no wait), not null`},
		{line: "burst: 3", get: func(d *Destination) any { return d.Burst }, val: 3},
		{line: "burst: 0", want: `rules.yaml:6:14: destination "d": burst is a positive whole number of posts, not "0"`},
		{line: "burst: two", want: `rules.yaml:6:14: destination "d": burst is a positive whole number of posts, not "two"`},
		{line: `burst: "3"`, want: `rules.yaml:6:14: destination "d": burst is a positive whole number of posts, not "3"`},
		{line: "digest_window: 10m", get: func(d *Destination) any { return d.DigestWindow }, val: 10 * time.Minute},
		{line: "digest_window: 0s", want: `rules.yaml:6:22: destination "d": digest_window is a positive duration, like 5m or 90s, not "0s"`},
		{line: "digest_window: soon", want: `rules.yaml:6:22: destination "d": digest_window is a positive duration, like 5m or 90s, not "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			dests, err := parseDestinations(t, slackDestination("channel: C1", tt.line))
			if tt.want != "" {
				if err == nil || err.Error() != tt.want {
					t.Errorf("error %v\nwant %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDestinations: %v", err)
			}
			if got := tt.get(dests[0]); got != tt.val {
				t.Errorf("%s: got %v, want %v", tt.line, got, tt.val)
			}
		})
	}
}

// TestParseDestinationsNeverRepeatCredentials puts webhook URLs and
// tokens where a name or an ID belongs: each is a problem at the value,
// and no part of the value appears anywhere in the error.
func TestParseDestinationsNeverRepeatCredentials(t *testing.T) {
	const (
		hookMsg = `webhook_env must name an environment variable; this value looks like %s: put the URL in an environment variable and name it here`
		keyMsg  = `%s must not hold a credential; this value looks like %s: credentials go in environment variables (SLACK_BOT_TOKEN, or the variable webhook_env names)`
	)
	tests := []struct {
		key, value string
		col        int
		want       string // the message, after FILE:LINE:COL: destination "d":
	}{
		{"webhook_env", "https://hooks.slack.com/services/T/B/X", 20, fmt.Sprintf(hookMsg, "a webhook URL")},
		{"webhook_env", "xoxb-123", 20, fmt.Sprintf(hookMsg, "a Slack token")},
		{"webhook_env", "http://proxy.internal/services/T/B/X", 20, fmt.Sprintf(hookMsg, "a URL")},
		{"channel", "https://hooks.slack.com/services/T/B/X", 16, fmt.Sprintf(keyMsg, "channel", "a webhook URL")},
		{"channel", "xoxb-123", 16, fmt.Sprintf(keyMsg, "channel", "a Slack token")},
		{"mention", "xoxp-123-456", 16, fmt.Sprintf(keyMsg, "mention", "a Slack token")},
		{"pace", "https://hooks.slack.com/services/T/B/X", 13, fmt.Sprintf(keyMsg, "pace", "a webhook URL")},
		{"chanel", "xoxb-123", 15, fmt.Sprintf(keyMsg, "chanel", "a Slack token")}, // an unknown key too
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			// As the rules file holds it: a leading space, quoted, or bare.
			for _, written := range []string{tt.value, `"` + tt.value + `"`, `" ` + tt.value + `"`} {
				_, err := parseDestinations(t, slackDestination(tt.key+": "+written))
				want := fmt.Sprintf(`rules.yaml:5:%d: destination "d": %s`, tt.col, tt.want)
				if err == nil || err.Error() != want {
					t.Errorf("%s: %s: error %v\nwant %s", tt.key, written, err, want)
					continue
				}
				checkProblems(t, err, 1)
				checkNotRepeated(t, err.Error(), tt.value)
			}
		})
	}
}

// checkNotRepeated fails t when text holds value or any part of it that
// would identify it: any run of 5 of its characters.
func checkNotRepeated(t *testing.T, text, value string) {
	t.Helper()
	const window = 5
	for i := 0; i+window <= len(value); i++ {
		part := value[i : i+window]
		if strings.Contains(text, part) {
			t.Errorf("the error shows %q of %q:\n%s", part, value, text)
			return
		}
	}
}

// TestParseDestinationsCredentialAmidOtherText puts a credential where a
// name belongs with something around it, as it gets pasted from a .env
// file or from Slack: it is still not repeated. Channel names that merely
// hold the letters of a token prefix are still accepted.
func TestParseDestinationsCredentialAmidOtherText(t *testing.T) {
	const url = "https://hooks.slack.com/services/T0SECRET/B0SECRET/TOPSECRET"
	tests := []struct {
		line, value, want string
	}{
		{"webhook_env: SLACK_WEBHOOK_MARKETING=" + url, url,
			`rules.yaml:5:20: destination "d": webhook_env must name an environment variable; this value looks like a webhook URL: put the URL in an environment variable and name it here`},
		{`webhook_env: "<` + url + `>"`, url,
			`rules.yaml:5:20: destination "d": webhook_env must name an environment variable; this value looks like a webhook URL: put the URL in an environment variable and name it here`},
		{"webhook_env: HTTPS://hooks.slack.com/services/T0SECRET/B0SECRET/TOPSECRET", "T0SECRET/B0SECRET/TOPSECRET",
			`rules.yaml:5:20: destination "d": webhook_env must name an environment variable; this value looks like a webhook URL: put the URL in an environment variable and name it here`},
		{`mention: "<!here> xoxb-1234-TOPSECRET"`, "xoxb-1234-TOPSECRET",
			`rules.yaml:5:16: destination "d": mention must not hold a credential; this value looks like a Slack token: credentials go in environment variables (SLACK_BOT_TOKEN, or the variable webhook_env names)`},
		{`channel: "#alerts xoxb-1234-TOPSECRET"`, "xoxb-1234-TOPSECRET",
			`rules.yaml:5:16: destination "d": channel must not hold a credential; this value looks like a Slack token: credentials go in environment variables (SLACK_BOT_TOKEN, or the variable webhook_env names)`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			_, err := parseDestinations(t, slackDestination(tt.line))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v\nwant %s", err, tt.want)
			}
			checkNotRepeated(t, err.Error(), tt.value)
		})
	}
	for _, ok := range []string{`channel: "#proxoxes"`, `channel: C0XOXB0001`, `channel: "#http-errors"`} {
		if _, err := parseDestinations(t, slackDestination(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestCredentialsNeverRepeated holds every problem of a rules file to
// saying what a credential looks like without repeating it: a webhook
// written without its scheme in webhook_env, a webhook path alone, a token
// in mention, and a credential pasted as a key (an unknown key is quoted
// in its problem) or as a destination name.
func TestCredentialsNeverRepeated(t *testing.T) {
	const path = "services/T0SECRET1/B0SECRET1/TOPSECRETTOPSECRET"
	tests := []struct {
		name, src, value, want string
	}{
		{"webhook without scheme", slackDestination("webhook_env: hooks.slack.com/" + path), path,
			`rules.yaml:5:20: destination "d": webhook_env must name an environment variable; this value looks like a webhook URL: put the URL in an environment variable and name it here`},
		{"webhook path alone", slackDestination("webhook_env: /" + path), path,
			`rules.yaml:5:20: destination "d": webhook_env must name an environment variable; this value looks like a webhook URL: put the URL in an environment variable and name it here`},
		{"token in mention", slackDestination(`mention: "xoxp-99-QWERTYUIOPZ"`), "xoxp-99-QWERTYUIOPZ",
			`rules.yaml:5:16: destination "d": mention must not hold a credential; this value looks like a Slack token: credentials go in environment variables (SLACK_BOT_TOKEN, or the variable webhook_env names)`},
		{"webhook as a key", slackDestination("channel: C1", "hooks.slack.com/"+path+": 1"), path,
			`rules.yaml:6:7: destination "d": unknown key "<webhook URL>" (want channel, webhook_env, mention, digest_after, digest_window, pace, burst, thread, buttons, allow_users or allow_groups)`},
		{"token as a key", slackDestination("channel: C1", "xoxb-1234-QWERTYUIOPZ: 1"), "xoxb-1234-QWERTYUIOPZ",
			`rules.yaml:6:7: destination "d": unknown key "<token>" (want channel, webhook_env, mention, digest_after, digest_window, pace, burst, thread, buttons, allow_users or allow_groups)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDestinations(t, tt.src)
			if err == nil {
				t.Fatal("loaded")
			}
			if err.Error() != tt.want {
				t.Errorf("error %v\nwant %s", err, tt.want)
			}
			checkNotRepeated(t, err.Error(), tt.value)
		})
	}
}
