package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/engine/rules"
)

// SigningSecretName is the variable that holds Slack's signing secret,
// which a button press must be signed with.
const SigningSecretName = "SLACK_SIGNING_SECRET"

// ButtonDestination returns the first destination of c whose messages
// carry a button, nil when none does.
func (c *Config) ButtonDestination() *rules.Destination {
	for _, d := range c.Destinations {
		if len(d.Buttons) > 0 {
			return d
		}
	}
	return nil
}

// ButtonsPressedMetric is the metric of one button press acted on.
func ButtonsPressedMetric() Metric { return Metric{Name: "ButtonsPressed", Count: 1} }

// Interactions returns the handler of Slack's button presses for the
// rules in force in l, verified with secret: the destinations are those
// in force at each press; SES, Slack's user groups and response_urls are
// reached with l's parts; with the fleet state a press is acted on once
// across the fleet. Each press acted on writes the ButtonsPressed metric
// to metrics (nil: none). When the rules in force have a button, secret
// must be set and SES must be reachable (CheckSES): otherwise the error
// says why, in one line.
func (l *Live) Interactions(ctx context.Context, secret slack.Secret, metrics io.Writer) (*slack.Interactions, error) {
	p := l.parts
	cfg := l.Current().Config
	if d := cfg.ButtonDestination(); d != nil {
		if secret == "" {
			where := "in the environment"
			if p.Slack.Vault != nil {
				where += " or in the secret " + p.Slack.Vault.ID() + " ($SESROUTER_SECRETS)"
			}
			return nil, fmt.Errorf("%s: destination %s has buttons, which need %s %s", cfg.Rules.File, d.Name, SigningSecretName, where)
		}
		if p.CheckSES != nil {
			if err := p.CheckSES(ctx); err != nil {
				return nil, fmt.Errorf("destination %s has buttons, which take addresses off the suppression list: %w", d.Name, err)
			}
		}
	}
	token := p.Slack.Token
	if token == "" {
		token = p.Slack.Vault.Value("SLACK_BOT_TOKEN")
	}
	client := p.Slack.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	var mu sync.Mutex // presses are handled at once; their lines are not mixed
	h := &slack.Interactions{
		Secret: secret,
		Destinations: func(name string) *rules.Destination {
			return slack.ByName(l.Current().Config.Destinations)[name]
		},
		SES:    &suppression.SuppressionList{Client: lazySES{p}},
		Client: slack.NewUserGroupClient(token, p.Slack.APIURL, client),
		HTTP:   client,
		Logger: p.Logger,
		Pressed: func() {
			if metrics == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err := WriteMetrics(metrics, time.Now(), NewTally(), ButtonsPressedMetric()); err != nil {
				p.Logger.Error("metrics not written", "error", err.Error())
			}
		},
	}
	if p.State != nil {
		h.Once = p.State
	}
	return h, nil
}
