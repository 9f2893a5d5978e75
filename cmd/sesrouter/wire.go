package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/pipeline"
)

// defaultTimeout bounds the actions of one notification, retries included.
const defaultTimeout = 2 * time.Minute

// seenLimit bounds the notifications remembered to tell duplicates:
// 100,000 keys, about 10 MB.
const seenLimit = 100_000

// newLogger returns the JSON logger, at $SESROUTER_LOG_LEVEL (debug,
// info, warn, error; info when unset). Durations are written as Go
// writes them ("150s"), not as nanoseconds.
func newLogger(w io.Writer, e env) (*slog.Logger, error) {
	var level slog.Level
	if v := e.getenv("SESROUTER_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("SESROUTER_LOG_LEVEL is debug, info, warn or error, not %q", v)
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}})), nil
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

// live is what carries out actions for real, built once per process: the
// parts that outlive a reload of the rules.
type live struct {
	e        env
	logger   *slog.Logger
	http     *http.Client
	ses      actions.Suppressor // nil until a rules file needs it
	pacers   *actions.Pacers
	storm    *actions.Storm
	seen     *actions.Seen
}

// newLive returns the long-lived parts; concurrency sizes the HTTP pool.
func newLive(e env, logger *slog.Logger, concurrency int) (*live, error) {
	scale := 1
	if v := e.getenv("SESROUTER_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("SESROUTER_CONCURRENCY is a positive whole number, not %q", v)
		}
		scale = n
	}
	return &live{e: e, logger: logger, http: newHTTPClient(concurrency), pacers: actions.NewPacers(scale),
		storm: actions.NewStorm(), seen: actions.NewSeen(seenLimit)}, nil
}

// handler builds the Handler of cfg: a notifier per destination, paced,
// and, when a rule changes the suppression list, the SES client, whose
// credentials and region are checked now. Every problem is returned,
// joined; none names a secret.
func (l *live) handler(ctx context.Context, cfg *pipeline.Config) (*pipeline.Handler, error) {
	notifiers, err := actions.Notifiers(cfg.Destinations, cfg.Used, actions.SlackConfig{
		Token: actions.Secret(l.e.getenv("SLACK_BOT_TOKEN")), APIURL: l.e.getenv("SLACK_API_URL"),
		Getenv: l.e.getenv, HTTPClient: l.http, Pacers: l.pacers,
	})
	errs := []error{err}
	if cfg.UsesSES() && l.ses == nil {
		ses, err := l.sesClient(ctx)
		errs = append(errs, err)
		l.ses = ses
	}
	timeout := defaultTimeout
	if l.e.actionTimeout > 0 {
		timeout = l.e.actionTimeout
	}
	h := &pipeline.Handler{Router: cfg.Router, Seen: l.seen, Storm: l.storm, Logger: l.logger, Timeout: timeout,
		Dispatcher: &actions.Dispatcher{Destinations: actions.ByName(cfg.Destinations), Notifiers: notifiers,
			SES: l.ses, Log: actions.SlogLogbook{Logger: l.logger}}}
	return h, errors.Join(errs...)
}

// sesClient builds the SES v2 client, checking at once that the AWS
// configuration has a region and credentials, so that a run fails with
// one clear line at start rather than once per action.
func (l *live) sesClient(ctx context.Context) (actions.Suppressor, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	switch {
	case err != nil:
		return nil, fmt.Errorf("the rules unsuppress or suppress, but the AWS configuration cannot be read: %w", err)
	case cfg.Region == "":
		return nil, errors.New("the rules unsuppress or suppress, but no AWS region is set (AWS_REGION)")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		return nil, fmt.Errorf("the rules unsuppress or suppress, but no AWS credentials were found "+
			"(set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role): %s", actions.ShortError(innermost(err)))
	}
	client := sesv2.NewFromConfig(cfg, func(o *sesv2.Options) { o.Retryer = sesRetryer() })
	return &actions.SuppressionList{Client: client}, nil
}

// innermost is the last error in err's chain.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

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

// joinedLines prints a joined error one problem per line.
func joinedLines(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "\n  ")
}
