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
	// Vault holds the variables of the secret $SESROUTER_SECRETS names,
	// under Token and Getenv: a variable they leave empty is taken from
	// it, looked up at every post and read again when Slack refuses it.
	// Load it before Notifiers. nil: none.
	Vault *Vault
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
// channel, an http(s) URL in its webhook variable, from the environment or
// else c.Vault; every one missing is reported, joined, and no error names
// a secret.
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
			token := c.credential("SLACK_BOT_TOKEN", c.Token)
			if token.get() == "" && used(d.Name) {
				errs = append(errs, fmt.Errorf("destination %q posts to channel %s with the bot token, but SLACK_BOT_TOKEN is not set%s", d.Name, d.Channel, c.inVault()))
			}
			b := NewSlackBot("", c.APIURL, d.Channel, hc, c.Retry, pacer)
			b.token = token
			out[d.Name] = b
			continue
		}
		env := ""
		if c.Getenv != nil {
			env = c.Getenv(d.WebhookEnv)
		}
		hook := c.credential(d.WebhookEnv, Secret(env))
		raw := hook.get().Reveal()
		if used(d.Name) {
			if raw == "" {
				errs = append(errs, fmt.Errorf("destination %q posts to the incoming webhook in $%s, but %s is not set%s", d.Name, d.WebhookEnv, d.WebhookEnv, c.inVault()))
			} else if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				errs = append(errs, fmt.Errorf("destination %q: $%s does not hold an http(s) URL", d.Name, d.WebhookEnv))
			}
		}
		w := NewSlackWebhook("", d.WebhookEnv, hc, c.Retry, pacer)
		w.url = hook
		out[d.Name] = w
	}
	return out, errors.Join(errs...)
}

// credential is where the variable name comes from: env, the
// environment's value, when set; else the vault, when there is one.
func (c SlackConfig) credential(name string, env Secret) credential {
	if env == "" && c.Vault != nil {
		return credential{vault: c.Vault, name: name}
	}
	return credential{fixed: env}
}

// inVault is what a missing variable's error adds when there is a vault:
// that the secret has none either.
func (c SlackConfig) inVault() string {
	if c.Vault == nil {
		return ""
	}
	return " in the environment or in the secret " + c.Vault.ID() + " ($SESROUTER_SECRETS)"
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
