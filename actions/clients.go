package actions

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
)

// NewHTTPClient returns the HTTP client of the Slack notifiers: its
// connections are reused by up to conns posts at once.
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * conns
	t.MaxIdleConnsPerHost = 2 * conns
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// NewSESClient builds the SES v2 client from the AWS SDK's configuration
// (its environment variables, profiles, roles; optFns, such as
// config.WithHTTPClient, apply after them), checking at once that there
// is a region and credentials, so that a run fails with one clear line at
// start rather than once per action.
func NewSESClient(ctx context.Context, optFns ...func(*config.LoadOptions) error) (*sesv2.Client, error) {
	const needed = "SES is needed (a rule unsuppresses or suppresses, or a sweep reads the suppression list), but "
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	switch {
	case err != nil:
		return nil, fmt.Errorf(needed+"the AWS configuration cannot be read: %w", err)
	case cfg.Region == "":
		return nil, errors.New(needed + "no AWS region is set (AWS_REGION)")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		for errors.Unwrap(err) != nil {
			err = errors.Unwrap(err)
		}
		return nil, fmt.Errorf(needed+"no AWS credentials were found "+
			"(set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role): %s", ShortError(err))
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
