package slack

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/internal/pace"
)

// SlackConfig is what Slack notifiers are built from.
type SlackConfig struct {
	// Token is the bot token, for destinations that name a channel
	// (SLACK_BOT_TOKEN); APIURL is Slack's Web API base URL, "" for
	// Slack's own (SLACK_API_URL).
	Token  Secret
	APIURL string
	// Getenv reads the variable a webhook destination names.
	Getenv func(string) string
	// HTTPClient is shared by every destination, so that connections are
	// reused; nil is http.DefaultClient.
	HTTPClient *http.Client
	// Retry is how a failed post is tried again (zero: DefaultRetry).
	Retry Retry
	// Pacers pace the posts to each channel or webhook; nil posts at once.
	Pacers *pace.Pacers
}

// Notifiers builds the notifier of each destination. A destination that
// used says is used (nil: all are) must have its credential: the bot token for a
// channel, an http(s) URL in its webhook variable; every one missing is
// reported, joined, and no error names a secret.
func Notifiers(dests []*rules.Destination, used func(name string) bool, c SlackConfig) (map[string]actions.Notifier, error) {
	if c.Retry == (Retry{}) {
		c.Retry = DefaultRetry()
	}
	if used == nil {
		used = func(string) bool { return true }
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	var errs []error
	out := make(map[string]actions.Notifier, len(dests))
	for _, d := range dests {
		var pacer *pace.Pacer
		if c.Pacers != nil {
			pacer = c.Pacers.For(d)
		}
		if d.Channel != "" {
			if c.Token == "" && used(d.Name) {
				errs = append(errs, fmt.Errorf("destination %q posts to channel %s with the bot token, but SLACK_BOT_TOKEN is not set", d.Name, d.Channel))
			}
			out[d.Name] = NewSlackBot(c.Token, c.APIURL, d.Channel, hc, c.Retry, pacer)
			continue
		}
		raw := ""
		if c.Getenv != nil {
			raw = c.Getenv(d.WebhookEnv)
		}
		if used(d.Name) {
			if raw == "" {
				errs = append(errs, fmt.Errorf("destination %q posts to the incoming webhook in $%s, but %s is not set", d.Name, d.WebhookEnv, d.WebhookEnv))
			} else if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				errs = append(errs, fmt.Errorf("destination %q: $%s does not hold an http(s) URL", d.Name, d.WebhookEnv))
			}
		}
		out[d.Name] = NewSlackWebhook(Secret(raw), d.WebhookEnv, hc, c.Retry, pacer)
	}
	return out, errors.Join(errs...)
}

// DryRunNotifiers builds, for a dry run, a notifier per destination that
// renders what it would post and posts nothing; it needs no credential.
func DryRunNotifiers(dests []*rules.Destination) map[string]actions.Notifier {
	out := make(map[string]actions.Notifier, len(dests))
	for _, d := range dests {
		if d.Channel != "" {
			out[d.Name] = actions.DryRun(NewSlackBot("", "", d.Channel, http.DefaultClient, DefaultRetry(), nil))
		} else {
			out[d.Name] = actions.DryRun(NewSlackWebhook("", d.WebhookEnv, http.DefaultClient, DefaultRetry(), nil))
		}
	}
	return out
}

// ByName indexes destinations by name.
func ByName(dests []*rules.Destination) map[string]*rules.Destination {
	out := make(map[string]*rules.Destination, len(dests))
	for _, d := range dests {
		out[d.Name] = d
	}
	return out
}
