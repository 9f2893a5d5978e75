package awstest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Config returns an AWS SDK configuration that talks to the server only:
// its endpoint for every service (BaseEndpoint), the test region and
// static credentials, and an HTTP client that keeps no connection open
// between requests and uses no proxy, so that a client may be used inside
// a synctest bubble (no connection of one bubble is handed to another)
// and nothing leaves loopback. For S3, use S3 (path-style addressing).
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL),
		HTTPClient:   &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Minute},
		// Quick retries: the server is on loopback.
		RetryMaxAttempts: 3,
	}
}

// S3 returns an S3 client of the server (Config), path-style
// (http://127.0.0.1:PORT/BUCKET/KEY), that logs nothing of its own.
func (s *Server) S3() *s3.Client {
	return s3.NewFromConfig(s.Config(), func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// Bucket makes a bucket named after tb (Name), versioned when asked, and
// returns its name.
func (s *Server) Bucket(tb testing.TB, versioned bool) string {
	tb.Helper()
	name := Name(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.S3()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("awstest: creating bucket %s: %v\n%s", name, err, lastLines(s.Output(), 5))
	}
	if versioned {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			tb.Fatalf("awstest: versioning bucket %s: %v", name, err)
		}
	}
	return name
}
