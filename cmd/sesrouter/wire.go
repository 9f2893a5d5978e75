package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
)

// newLogger returns the JSON logger, at $SESROUTER_LOG_LEVEL (debug,
// info, warn, error; info when unset).
func newLogger(w io.Writer, e env) (*slog.Logger, error) {
	var level slog.Level
	if v := e.getenv("SESROUTER_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("SESROUTER_LOG_LEVEL is debug, info, warn or error, not %q", v)
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// newHTTPClient returns the HTTP client every Slack destination shares, so
// that connections are reused.
func newHTTPClient(concurrency int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * concurrency
	t.MaxIdleConnsPerHost = 2 * concurrency
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// newDispatcher builds what carries out the plans: a notifier per
// destination, paced at e.slackPace per channel or webhook, and, when a rule changes the suppression list, the SES
// client. A dry run needs no secret and no AWS configuration. Every
// problem is returned, joined; none names a secret.
func newDispatcher(ctx context.Context, rules *engine.Rules, e env, logger *slog.Logger, dryRun bool, concurrency int) (*actions.Dispatcher, error) {
	d := &actions.Dispatcher{Rules: rules, Logger: logger, DryRun: dryRun, Notifiers: map[string]actions.Notifier{}}
	if !dryRun {
		d.Seen = actions.NewSeen(seenLimit)
	}
	hc := newHTTPClient(concurrency)
	retry := actions.DefaultRetry()
	pace := e.slackPace
	if pace == (actions.Pace{}) {
		pace = actions.DefaultPace()
	}
	// One pacer per channel or webhook, whichever destinations post there.
	pacers := map[string]*actions.Pacer{}
	pacer := func(key string) *actions.Pacer {
		if pacers[key] == nil {
			pacers[key] = actions.NewPacer(pace)
		}
		return pacers[key]
	}
	var errs []error
	used := usedDestinations(rules)
	for _, name := range rules.DestinationNames {
		dest := rules.Destinations[name]
		if s := dest.Slack; s.Channel != "" {
			token := actions.Secret(e.getenv("SLACK_BOT_TOKEN"))
			if token == "" && !dryRun && used[name] {
				errs = append(errs, fmt.Errorf("destination %q posts to channel %s with the bot token, but SLACK_BOT_TOKEN is not set", name, s.Channel))
			}
			bot := actions.NewSlackBot(token, e.getenv("SLACK_API_URL"), s.Channel, hc, retry)
			bot.SetPacer(pacer("channel " + s.Channel))
			d.Notifiers[name] = bot
			continue
		}
		hook := dest.Slack.WebhookEnv
		raw := e.getenv(hook)
		if !dryRun && used[name] {
			if raw == "" {
				errs = append(errs, fmt.Errorf("destination %q posts to the incoming webhook in $%s, but %s is not set", name, hook, hook))
			} else if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				errs = append(errs, fmt.Errorf("destination %q: $%s does not hold an http(s) URL", name, hook))
			}
		}
		wh := actions.NewSlackWebhook(actions.Secret(raw), hook, hc, retry)
		wh.SetPacer(pacer("webhook " + raw))
		d.Notifiers[name] = wh
	}
	if !dryRun && usesSES(rules) {
		cfg, err := config.LoadDefaultConfig(ctx)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("AWS configuration for the SES actions: %w", err))
		case cfg.Region == "":
			errs = append(errs, errors.New("the rules unsuppress or suppress, but no AWS region is set (AWS_REGION)"))
		default:
			d.SES = &actions.SuppressionList{Client: sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
				o.Retryer = sesRetryer()
			})}
		}
	}
	return d, errors.Join(errs...)
}

// seenLimit bounds the notifications remembered to tell duplicates:
// 100,000 keys, about 10 MB.
const seenLimit = 100_000

// sesRetryer is the SDK's standard retryer (TooManyRequestsException,
// 5xx and connection errors are retried with its backoff), with more
// attempts and without the client-wide retry quota: in a bounce storm the
// quota would turn throttling into failures for unrelated notifications.
// The per-notification deadline still bounds it.
func sesRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 6
		o.RateLimiter = ratelimit.None
	})
}

// usedDestinations are the destinations some rule notifies.
func usedDestinations(rules *engine.Rules) map[string]bool {
	used := map[string]bool{}
	for _, r := range rules.Rules {
		for _, a := range r.Actions {
			if a.Kind == engine.ActionNotify {
				used[a.Destination] = true
			}
		}
	}
	return used
}

// usesSES reports whether a rule unsuppresses or suppresses.
func usesSES(rules *engine.Rules) bool {
	for _, r := range rules.Rules {
		for _, a := range r.Actions {
			if a.Kind == engine.ActionUnsuppress || a.Kind == engine.ActionSuppress {
				return true
			}
		}
	}
	return false
}

// joinedLines prints a joined error one problem per line.
func joinedLines(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "\n  ")
}
