package awstest

import (
	"context"
	"errors"
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
	return s.NamedBucket(tb, Name(tb), versioned)
}

// NamedBucket makes the bucket name, versioned when asked, for a test
// whose text fixes the name (a page of the docs): when an earlier run of
// this test process made it, every version of every object in it is
// deleted, so that the bucket is new each time. It returns name.
func (s *Server) NamedBucket(tb testing.TB, name string, versioned bool) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.S3()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	// In us-east-1, making a bucket one owns again succeeds, as in S3;
	// elsewhere it is BucketAlreadyOwnedByYou. Either way, it is emptied.
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		tb.Fatalf("awstest: creating bucket %s: %v\n%s", name, err, lastLines(s.Output(), 5))
	}
	s.empty(tb, ctx, name)
	if versioned {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			tb.Fatalf("awstest: versioning bucket %s: %v", name, err)
		}
	}
	return name
}

// empty deletes every version of every object in the bucket.
func (s *Server) empty(tb testing.TB, ctx context.Context, bucket string) {
	tb.Helper()
	c := s.S3()
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			tb.Fatalf("awstest: listing bucket %s: %v", bucket, err)
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		for _, id := range ids {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: id.Key, VersionId: id.VersionId}); err != nil {
				tb.Fatalf("awstest: emptying bucket %s: %v", bucket, err)
			}
		}
	}
}
