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

// newHTTPClient returns an HTTP client whose connections are reused.
func newHTTPClient(concurrency int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * concurrency
	t.MaxIdleConnsPerHost = 2 * concurrency
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// newParts builds what carries out actions for real, from the
// environment: Slack's credentials and URL, SESROUTER_CONCURRENCY (the
// processes that share every pace), and the AWS SDK's configuration when a rules file
// needs SES.
func newParts(e env, logger *slog.Logger, concurrency int) (*pipeline.Parts, error) {
	processes := 1
	if v := e.getenv("SESROUTER_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("SESROUTER_CONCURRENCY is a positive whole number, not %q", v)
		}
		processes = n
	}
	timeout := defaultTimeout
	if e.actionTimeout > 0 {
		timeout = e.actionTimeout
	}
	return &pipeline.Parts{
		Slack: actions.SlackConfig{Token: actions.Secret(e.getenv("SLACK_BOT_TOKEN")), APIURL: e.getenv("SLACK_API_URL"),
			Getenv: e.getenv, HTTPClient: newHTTPClient(concurrency), Pacers: actions.NewPacers(processes)},
		NewSES: func(ctx context.Context) (pipeline.SESAPI, error) { return sesClient(ctx) },
		Seen:   actions.NewSeen(seenLimit), Storm: actions.NewStorm(), Logger: logger, Timeout: timeout,
	}, nil
}

// sesClient builds the SES v2 client, checking at once that the AWS
// configuration has a region and credentials, so that a run fails with
// one clear line at start rather than once per action.
func sesClient(ctx context.Context) (*sesv2.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	switch {
	case err != nil:
		return nil, fmt.Errorf("SES is needed (a rule unsuppresses or suppresses, or a sweep reads the suppression list), but the AWS configuration cannot be read: %w", err)
	case cfg.Region == "":
		return nil, errors.New("SES is needed (a rule unsuppresses or suppresses, or a sweep reads the suppression list), but no AWS region is set (AWS_REGION)")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		for errors.Unwrap(err) != nil {
			err = errors.Unwrap(err)
		}
		return nil, fmt.Errorf("SES is needed (a rule unsuppresses or suppresses, or a sweep reads the suppression list), but no AWS credentials were found "+
			"(set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role): %s", actions.ShortError(err))
	}
	return sesv2.NewFromConfig(cfg, func(o *sesv2.Options) { o.Retryer = sesRetryer() }), nil
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

// setup loads the rules and builds the logger and the parts that carry
// out actions; it prints why not and reports false (exit status 2).
func setup(name, rulesFlag string, e env, stderr io.Writer, concurrency int) (*pipeline.Config, *pipeline.Parts, bool) {
	cfg, ok := loadRules(rulesPath(rulesFlag, e), stderr)
	if !ok {
		return nil, nil, false
	}
	logger, err := newLogger(stderr, e)
	var parts *pipeline.Parts
	if err == nil {
		parts, err = newParts(e, logger, concurrency)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter %s: %v\n", name, err)
		return nil, nil, false
	}
	return cfg, parts, true
}

// cannot prints why the actions cannot be carried out: exit status 2.
func cannot(name string, err error, stderr io.Writer) int {
	if !strings.Contains(err.Error(), "\n") {
		fmt.Fprintf(stderr, "sesrouter %s: cannot carry out the actions: %v\n", name, err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "sesrouter %s: cannot carry out the actions:\n  %s\n", name, joinedLines(err))
	return exitUsage
}
