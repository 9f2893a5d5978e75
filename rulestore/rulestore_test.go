package rulestore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sesrouter/sesrouter/internal/awstest"
	"github.com/sesrouter/sesrouter/rulestore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

// motoStore returns a store whose client talks to moto, and a bucket of
// the test's own.
func motoStore(t *testing.T, versioned bool) (*rulestore.Store, string) {
	t.Helper()
	srv := awstest.Moto(t)
	bucket := srv.Bucket(t, versioned)
	return &rulestore.Store{NewClient: func(context.Context) (rulestore.API, error) { return srv.S3(), nil }}, bucket
}

func TestParse(t *testing.T) {
	for _, tt := range []struct{ in, bucket, key, err string }{
		{"s3://b/rules.yaml", "b", "rules.yaml", ""},
		{"s3://b/a/b/rules.yaml", "b", "a/b/rules.yaml", ""},
		{"s3://b", "", "", "names no object"},
		{"s3://b/", "", "", "names no object"},
		{"s3://b/dir/", "", "", "names no object"},
		{"s3:///k", "", "", "names no bucket"},
		{"rules.yaml", "", "", "not an S3 object"},
	} {
		loc, err := rulestore.Parse(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Parse(%q): %v, want an error saying %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || loc.Bucket != tt.bucket || loc.Key != tt.key):
			t.Errorf("Parse(%q) = %+v, %v; want %s %s", tt.in, loc, err, tt.bucket, tt.key)
		case tt.err == "" && loc.String() != tt.in:
			t.Errorf("Parse(%q).String() = %q", tt.in, loc)
		}
	}
}

// A file is read whole, without making the S3 client (no AWS
// configuration is read for rules in a file); the zero Store has none.
func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &rulestore.Store{NewClient: func(context.Context) (rulestore.API, error) {
		t.Error("the S3 client was made to read a file")
		return nil, errors.New("no client")
	}}
	o, err := s.Read(context.Background(), p, "ignored")
	if err != nil || string(o.Body) != "version: 1\n" || o.ETag != "" {
		t.Fatalf("Read = %+v, %v", o, err)
	}
	var zero rulestore.Store
	if _, err := zero.Read(context.Background(), "s3://b/k", ""); err == nil {
		t.Error("the zero Store read an S3 object")
	}
}

// Against moto: a read returns the body and the ETag; a read with the
// current ETag is ErrNotModified (a conditional GetObject, 304); once the
// object changes, the same read returns the new version.
func TestReadS3(t *testing.T) {
	s, bucket := motoStore(t, false)
	ctx := context.Background()
	name := "s3://" + bucket + "/rules.yaml"
	if _, err := s.Read(ctx, name, ""); err == nil || !strings.Contains(err.Error(), "reading "+name+": NoSuchKey") {
		t.Errorf("reading a missing object: %v, want NoSuchKey naming it", err)
	}
	loc, _ := rulestore.Parse(name)
	v1, err := s.Put(ctx, loc, []byte("one"), "")
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Read(ctx, name, "")
	if err != nil || string(o.Body) != "one" || o.ETag != v1.ETag || o.ETag == "" {
		t.Fatalf("Read = %+v, %v; want one with ETag %s", o, err, v1.ETag)
	}
	if _, err := s.Read(ctx, name, v1.ETag); !errors.Is(err, rulestore.ErrNotModified) {
		t.Errorf("Read with the current ETag: %v, want ErrNotModified", err)
	}
	v2, err := s.Put(ctx, loc, []byte("two"), v1.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := s.Read(ctx, name, v1.ETag); err != nil || string(o.Body) != "two" || o.ETag != v2.ETag {
		t.Errorf("Read with the old ETag = %+v, %v; want two", o, err)
	}
}

// moto_server honours conditional writes as S3 does: PutObject with
// If-Match an old ETag, or If-None-Match "*" on an object that exists, is
// refused (412) and writes nothing. Put turns that into ErrChanged.
func TestPutConditional(t *testing.T) {
	s, bucket := motoStore(t, true)
	ctx := context.Background()
	loc := rulestore.Location{Bucket: bucket, Key: "rules.yaml"}
	v1, err := s.Put(ctx, loc, []byte("one"), "") // none there: If-None-Match "*" passes
	if err != nil {
		t.Fatal(err)
	}
	if v1.VersionID == "" {
		t.Error("no version id from a versioned bucket")
	}
	if _, err := s.Put(ctx, loc, []byte("again"), ""); !errors.Is(err, rulestore.ErrChanged) {
		t.Errorf("If-None-Match * on an existing object: %v, want ErrChanged", err)
	}
	v2, err := s.Put(ctx, loc, []byte("two"), v1.ETag)
	if err != nil {
		t.Fatalf("If-Match the current ETag: %v", err)
	}
	if _, err := s.Put(ctx, loc, []byte("stale"), v1.ETag); !errors.Is(err, rulestore.ErrChanged) || !strings.Contains(err.Error(), "PreconditionFailed") {
		t.Errorf("If-Match an old ETag: %v, want ErrChanged (PreconditionFailed)", err)
	}
	head, err := s.Head(ctx, loc)
	if err != nil || head.ETag != v2.ETag {
		t.Errorf("after the refused writes: %+v, %v; want the ETag %s of two", head, err, v2.ETag)
	}
	o, err := s.Get(ctx, loc, "")
	if err != nil || string(o.Body) != "two" {
		t.Errorf("after the refused writes the object holds %q, %v; want two", o.Body, err)
	}
	if _, err := s.Head(ctx, rulestore.Location{Bucket: bucket, Key: "none.yaml"}); !errors.Is(err, rulestore.ErrNotFound) {
		t.Errorf("Head of a missing object: %v, want ErrNotFound", err)
	}
	// If-Match on an object deleted meanwhile: refused too.
	if _, err := awstest.Moto(t).S3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("gone.yaml")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, rulestore.Location{Bucket: bucket, Key: "gone.yaml"}, []byte("x"), v2.ETag); !errors.Is(err, rulestore.ErrChanged) {
		t.Errorf("If-Match on a missing object: %v, want ErrChanged", err)
	}
}

// The client is made at the first S3 call, once, and a failure to make it
// is the read's error.
func TestClientMadeOnce(t *testing.T) {
	calls := 0
	s := &rulestore.Store{NewClient: func(context.Context) (rulestore.API, error) {
		calls++
		return nil, errors.New("no region")
	}}
	if _, err := s.Read(context.Background(), "s3://b/k", ""); err == nil || err.Error() != "no region" {
		t.Errorf("Read: %v, want no region", err)
	}
	if _, err := s.Read(context.Background(), "s3://b/k", ""); err == nil || calls != 2 {
		t.Errorf("a failed client is not tried again: %d calls", calls)
	}
}
