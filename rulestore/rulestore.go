// Package rulestore is where rules files are read from and published to:
// a file, or an S3 object named s3://BUCKET/KEY. An S3 object is read
// whole with its ETag, read again only when its ETag changed (a
// conditional GetObject), and written only when it is still the version
// the writer read (a conditional PutObject), so that a publish never
// overwrites someone else's.
//
// The S3 client is made at the first S3 call, never for a file: a
// process whose rules are a file reads no AWS configuration.
package rulestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// scheme starts the name of a rules file that is an S3 object.
const scheme = "s3://"

// Timeout bounds one read of the rules, retries included: a start or a
// refresh never waits longer on S3.
const Timeout = 30 * time.Second

// maxSize is the largest rules object read, in bytes: a rules file is
// kilobytes; an object larger than this is no rules file.
const maxSize = 8 << 20

// IsS3 reports whether name is an S3 object, s3://BUCKET/KEY.
func IsS3(name string) bool { return strings.HasPrefix(name, scheme) }

// Location is an S3 object.
type Location struct{ Bucket, Key string }

// Parse reads s3://BUCKET/KEY.
func Parse(uri string) (Location, error) {
	rest, ok := strings.CutPrefix(uri, scheme)
	if !ok {
		return Location{}, fmt.Errorf("%q is not an S3 object: want s3://BUCKET/KEY", uri)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	switch {
	case bucket == "":
		return Location{}, fmt.Errorf("%q names no bucket: want s3://BUCKET/KEY", uri)
	case key == "" || strings.HasSuffix(key, "/"):
		return Location{}, fmt.Errorf("%q names no object: want s3://BUCKET/KEY", uri)
	}
	return Location{Bucket: bucket, Key: key}, nil
}

// String is the location as s3://BUCKET/KEY.
func (l Location) String() string { return scheme + l.Bucket + "/" + l.Key }

// API is the part of the S3 API rules need. *s3.Client satisfies it.
type API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ API = (*s3.Client)(nil)

// Object is one version of a rules file.
type Object struct {
	Body []byte
	// ETag is the S3 object's ETag as S3 gives it, quotes included; ""
	// for a file.
	ETag string
	// VersionID is the S3 object's version id; "" for a file, or in a
	// bucket without versioning.
	VersionID string
}

// Version says which version an object is, for a log line or a person:
// its ETag, and its version id when it has one.
func (o *Object) Version() string {
	if o.VersionID == "" {
		return o.ETag
	}
	return o.ETag + " (version id " + o.VersionID + ")"
}

var (
	// ErrNotModified says that the object's ETag is still the one given.
	ErrNotModified = errors.New("not modified")
	// ErrChanged says that a write was refused because the object is no
	// longer the version read: someone else wrote it meanwhile.
	ErrChanged = errors.New("changed since it was read")
	// ErrNotFound says that there is no such object.
	ErrNotFound = errors.New("no such object")
)

// Store reads and writes rules files. The zero value reads files only;
// NewStore's reads S3 objects too. It is safe for concurrent use.
type Store struct {
	// NewClient makes the S3 client at the first S3 call; a failure is
	// tried again at the next.
	NewClient func(context.Context) (API, error)

	mu     sync.Mutex
	client API
}

// NewStore returns a Store whose S3 client is made from the AWS SDK's
// default configuration (its environment variables, profiles, role),
// read at the first S3 call.
func NewStore() *Store { return &Store{NewClient: newS3Client} }

// newS3Client makes an S3 client from the AWS SDK's default
// configuration, checking that it names a region.
func newS3Client(ctx context.Context) (API, error) {
	const needed = "the rules are in S3, but "
	cfg, err := config.LoadDefaultConfig(ctx)
	switch {
	case err != nil:
		return nil, fmt.Errorf(needed+"the AWS configuration cannot be read: %w", err)
	case cfg.Region == "":
		return nil, errors.New(needed + "no AWS region is set (AWS_REGION)")
	}
	return s3.NewFromConfig(cfg, Options), nil
}

// Options are the settings of the S3 client rules are read with: the
// SDK writes no line of its own when an object carries no checksum (the
// process's log is JSON lines).
func Options(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }

// s3Client returns the S3 client, making it at the first call.
func (s *Store) s3Client(ctx context.Context) (API, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		if s.NewClient == nil {
			return nil, errors.New("this store reads files only")
		}
		c, err := s.NewClient(ctx)
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	return s.client, nil
}

// Read reads the rules file name: a file, or an S3 object. For an S3
// object, when etag is not "" and the object's ETag is still etag, it
// returns ErrNotModified and reads nothing (a conditional GetObject); a
// file is read whole every time.
func (s *Store) Read(ctx context.Context, name, etag string) (*Object, error) {
	if !IsS3(name) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		return &Object{Body: b}, nil
	}
	loc, err := Parse(name)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, loc, etag)
}

// Get reads the S3 object at loc, unless its ETag is still etag (not ""):
// then it returns ErrNotModified.
func (s *Store) Get(ctx context.Context, loc Location, etag string) (*Object, error) {
	c, err := s.s3Client(ctx)
	if err != nil {
		return nil, err
	}
	in := &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key)}
	if etag != "" {
		in.IfNoneMatch = aws.String(etag)
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		if status(err) == http.StatusNotModified {
			return nil, ErrNotModified
		}
		return nil, s3Error("reading", loc, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", loc, err)
	}
	if len(body) > maxSize {
		return nil, fmt.Errorf("reading %s: larger than %d MiB: no rules file", loc, maxSize>>20)
	}
	return &Object{Body: body, ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId)}, nil
}

// Head returns the ETag of the S3 object at loc and its version id, or
// ErrNotFound when there is none.
func (s *Store) Head(ctx context.Context, loc Location) (*Object, error) {
	c, err := s.s3Client(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key)})
	if err != nil {
		if status(err) == http.StatusNotFound {
			return nil, fmt.Errorf("%s: %w", loc, ErrNotFound)
		}
		return nil, s3Error("looking at", loc, err)
	}
	return &Object{ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId)}, nil
}

// Put writes body to the S3 object at loc only if the object is still the
// version read: the one whose ETag is etag, or, when etag is "", none at
// all. S3 checks that as it writes (a conditional PutObject: If-Match, or
// If-None-Match "*"), so no other write can come between the check and
// the write. Otherwise it writes nothing and returns ErrChanged. It
// returns the new version: its ETag and, in a versioned bucket, its
// version id.
func (s *Store) Put(ctx context.Context, loc Location, body []byte, etag string) (*Object, error) {
	c, err := s.s3Client(ctx)
	if err != nil {
		return nil, err
	}
	in := &s3.PutObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/yaml")}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := c.PutObject(ctx, in)
	if err != nil {
		switch st := status(err); {
		case st == http.StatusPreconditionFailed, st == http.StatusConflict,
			st == http.StatusNotFound && etag != "": // If-Match on an object deleted meanwhile
			return nil, fmt.Errorf("%s %w: %s", loc, ErrChanged, short(err))
		}
		return nil, s3Error("writing", loc, err)
	}
	return &Object{Body: body, ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId)}, nil
}

// status is the HTTP status of the response err came with, or 0.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// s3Error says what failed on which object, in one short line, and wraps
// err.
func s3Error(what string, loc Location, err error) error {
	return &shortError{msg: what + " " + loc.String() + ": " + short(err), err: err}
}

// short is an S3 error as its code and message ("AccessDenied: Access
// Denied"), or the SDK's own text, on one line.
func short(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if m := ae.ErrorMessage(); m != "" {
			return ae.ErrorCode() + ": " + m
		}
		return ae.ErrorCode()
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// shortError is an error that says msg and wraps err.
type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }
