package actionstest

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
)

// Client returns a real sesv2 client for the fake: region SESRegion,
// static credentials, BaseEndpoint URL, its own HTTP transport (closed by
// t.Cleanup; for [NewSESInMemory], [SES.HTTPClient]) and [FastRetryer].
// opts run last and may change any of it (o.Retryer, o.RetryMaxAttempts,
// …).
func (s *SES) Client(t testing.TB, opts ...func(*sesv2.Options)) *sesv2.Client {
	t.Helper()
	client := s.client
	if !s.inMemory {
		tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
		t.Cleanup(tr.CloseIdleConnections)
		client = &http.Client{Transport: tr}
	}
	return sesv2.New(sesv2.Options{
		Region:       SESRegion,
		BaseEndpoint: aws.String(s.url),
		Credentials:  credentials.NewStaticCredentialsProvider(SESAccessKeyID, SESSecretAccessKey, ""),
		HTTPClient:   client,
		Retryer:      FastRetryer(),
	}, opts...)
}

// FastRetryer is the SDK's standard retryer (retry.NewStandard: the same
// retryable and throttling errors, 3 attempts, the same retry-token bucket)
// with a fixed 2 ms backoff in place of the default exponential one (up to
// 1 s for a throttling error, 20 s at most), so tests that retry stay fast.
// opts run after and may change anything, MaxAttempts included.
func FastRetryer(opts ...func(*retry.StandardOptions)) aws.Retryer {
	fast := func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
			return 2 * time.Millisecond, nil
		})
	}
	return retry.NewStandard(append([]func(*retry.StandardOptions){fast}, opts...)...)
}

// Setenv points aws-sdk-go-v2/config at the fake for the rest of the test:
// AWS_ENDPOINT_URL_SESV2 is URL, AWS_REGION is SESRegion, the static
// credentials are in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, IMDS is
// disabled, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name an empty
// file, and the variables that could pull in anything else (AWS_PROFILE,
// AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_USE_FIPS_ENDPOINT, …) are
// emptied. Like t.Setenv, it cannot be used in parallel tests. The SDK's
// default retryer then applies, with its real backoff.
func (s *SES) Setenv(t testing.TB) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatalf("actionstest: %v", err)
	}
	for k, v := range map[string]string{
		"AWS_REGION":                          SESRegion,
		"AWS_DEFAULT_REGION":                  "",
		"AWS_ACCESS_KEY_ID":                   SESAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":               SESSecretAccessKey,
		"AWS_SESSION_TOKEN":                   "",
		"AWS_ENDPOINT_URL_SESV2":              s.url,
		"AWS_ENDPOINT_URL":                    "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
		"AWS_USE_FIPS_ENDPOINT":               "",
		"AWS_USE_DUALSTACK_ENDPOINT":          "",
		"AWS_EC2_METADATA_DISABLED":           "true",
		"AWS_CONFIG_FILE":                     empty,
		"AWS_SHARED_CREDENTIALS_FILE":         empty,
		"AWS_PROFILE":                         "",
		"AWS_DEFAULT_PROFILE":                 "",
		"AWS_CA_BUNDLE":                       "",
		"AWS_RETRY_MODE":                      "",
		"AWS_MAX_ATTEMPTS":                    "",
	} {
		t.Setenv(k, v)
	}
}
