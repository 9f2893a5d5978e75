package slack

import (
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/internal/pace"
)

// TestNotifiersNeedTheirCredentials: Notifiers asks for the credential
// of each destination that is used, reports every one missing at once,
// and never repeats what a variable holds.
func TestNotifiersNeedTheirCredentials(t *testing.T) {
	const (
		hookVar = "SLACK_WEBHOOK_MARKETING"
		noToken = `destination "ses-alerts" posts to channel C0123456789 with the bot token, but SLACK_BOT_TOKEN is not set`
		noHook  = `destination "marketing" posts to the incoming webhook in $SLACK_WEBHOOK_MARKETING, but SLACK_WEBHOOK_MARKETING is not set`
		notURL  = `destination "marketing": $SLACK_WEBHOOK_MARKETING does not hold an http(s) URL`
	)
	dests := testDestinations(t)
	tests := []struct {
		name  string
		token Secret
		hook  string // what $SLACK_WEBHOOK_MARKETING holds
		used  []string
		want  []string
	}{
		{name: "everything there", token: "xoxb-1-TOPSECRET", hook: "https://hooks.slack.com/services/T0/B0/TOPSECRET", used: []string{"ses-alerts", "marketing"}},
		{name: "what is not used needs nothing"},
		{name: "a webhook needs no token", hook: "https://hooks.slack.com/services/T0/B0/TOPSECRET", used: []string{"marketing"}},
		{name: "no token", used: []string{"ses-alerts"}, want: []string{noToken}},
		{name: "no webhook", token: "xoxb-1-TOPSECRET", used: []string{"ses-alerts", "marketing"}, want: []string{noHook}},
		{name: "both missing", used: []string{"ses-alerts", "marketing"}, want: []string{noToken, noHook}},
		{name: "a URL without its scheme", hook: "hooks.slack.com/services/T0SECRET/B0SECRET/TOPSECRET", used: []string{"marketing"}, want: []string{notURL}},
		{name: "not http(s)", hook: "ftp://hooks.slack.com/services/T0SECRET/B0SECRET/TOPSECRET", used: []string{"marketing"}, want: []string{notURL}},
		{name: "not a URL", hook: "https://hooks.slack.com/services/T0SECRET/B0SECRET/TOP SECRET\n%zz", used: []string{"marketing"}, want: []string{notURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used := func(name string) bool {
				for _, u := range tt.used {
					if u == name {
						return true
					}
				}
				return false
			}
			getenv := func(name string) string {
				if name == hookVar {
					return tt.hook
				}
				return ""
			}
			notifiers, err := Notifiers(dests, used, SlackConfig{Token: tt.token, Getenv: getenv})
			if got, want := errText(err), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
			if err != nil {
				checkNotRepeated(t, err.Error(), strings.TrimPrefix(tt.hook, "https://hooks.slack.com/services/"))
				checkNotRepeated(t, err.Error(), string(tt.token))
			}
			for _, d := range dests {
				if notifiers[d.Name] == nil {
					t.Errorf("no notifier for %s", d.Name)
				}
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestNotifiersShareAChannelsPacer: the notifiers of destinations that
// post to one channel wait their turns on one pacer, and a Retry left
// zero is DefaultRetry.
func TestNotifiersShareAChannelsPacer(t *testing.T) {
	dests := mustParseDestinations(t, `version: 1
destinations:
  a:
    slack: {channel: C0000000001}
  b:
    slack: {channel: C0000000001, mention: "<!here>"}
  c:
    slack: {channel: C0000000002}
rules: []
`)
	notifiers, err := Notifiers(dests, func(string) bool { return true }, SlackConfig{Token: "xoxb-1", Pacers: pace.NewPacers(1)})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := notifiers["a"].(*SlackBot), notifiers["b"].(*SlackBot), notifiers["c"].(*SlackBot)
	if a.pacer == nil || a.pacer != b.pacer || a.pacer == c.pacer {
		t.Errorf("pacers %p %p %p: want a and b to share one, c its own", a.pacer, b.pacer, c.pacer)
	}
	if a.retry != DefaultRetry() {
		t.Errorf("retry %+v, want DefaultRetry", a.retry)
	}
	unpaced, err := Notifiers(dests, func(string) bool { return true }, SlackConfig{Token: "xoxb-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p := unpaced["a"].(*SlackBot).pacer; p != nil {
		t.Errorf("without Pacers, a pacer %p", p)
	}
}
