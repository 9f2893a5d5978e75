package suppression

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/sesrouter/sesrouter/actions"
)

// AWSConfig is the AWS SDK's configuration (its environment variables,
// profiles, roles) for SES, read at the first call of Check or
// NewSESClient: a run whose rules never call SES never reads it. Once
// read and found complete, it is kept; a failure is tried again at the
// next call. It is safe for concurrent use; the zero value is ready.
type AWSConfig struct {
	// Options apply after the SDK's own sources (config.WithHTTPClient,
	// say); set them before the first call.
	Options []func(*config.LoadOptions) error

	mu  sync.Mutex
	cfg *aws.Config
}

// Check reads the configuration and checks that there is a region and
// credentials, so that a run fails with one clear line at start rather
// than once per action. It makes no client.
func (a *AWSConfig) Check(ctx context.Context) error {
	_, err := a.load(ctx)
	return err
}

// NewSESClient makes the SES v2 client of the configuration, reading and
// checking it first unless Check did.
func (a *AWSConfig) NewSESClient(ctx context.Context) (*sesv2.Client, error) {
	cfg, err := a.load(ctx)
	if err != nil {
		return nil, err
	}
	return sesv2.NewFromConfig(*cfg, func(o *sesv2.Options) { o.Retryer = sesRetryer() }), nil
}

// load returns the configuration, reading and checking it unless done.
func (a *AWSConfig) load(ctx context.Context) (*aws.Config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg != nil {
		return a.cfg, nil
	}
	const needed = "SES is needed (a rule unsuppresses or suppresses, or a sweep reads the suppression list), but "
	cfg, err := config.LoadDefaultConfig(ctx, a.Options...)
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
			"(set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role): %s", actions.ShortError(err))
	}
	a.cfg = &cfg
	return a.cfg, nil
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
