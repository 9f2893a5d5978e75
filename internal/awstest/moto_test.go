package awstest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// TestMotoServer starts the server as every test that needs it does, and
// checks what it hands out: an S3 client that writes and reads a bucket
// of the test's own, on loopback, and an environment that points the
// SDK's default configuration at it. .ci/run runs this test first, so
// that a machine without moto fails the run at once, saying why.
func TestMotoServer(t *testing.T) {
	srv := Moto(t)
	t.Logf("moto_server: %s", strings.Join(srv.Command, " "))
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL %s, want one on 127.0.0.1", srv.URL)
	}
	if again := Moto(t); again != srv {
		t.Error("a second Moto started a second server")
	}
	bucket := srv.Bucket(t, false)
	ctx := context.Background()
	if _, err := srv.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}

	srv.Setenv(t)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != Region {
		t.Errorf("region %q, want %q", cfg.Region, Region)
	}
	out, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject through the default configuration: %v", err)
	}
	out.Body.Close()
	if *out.ContentLength != 1 {
		t.Errorf("read %d bytes, want 1", *out.ContentLength)
	}
}

// Names are valid bucket names, tell tests apart, and differ on a rerun.
func TestName(t *testing.T) {
	t.Run("Some/Sub test_with UPPER case and a name far too long to be a bucket name as it is", func(t *testing.T) {
		a, b := Name(t), Name(t)
		if a == b {
			t.Errorf("two names alike: %s", a)
		}
		if len(a) > 63 || strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.HasPrefix(a, "-") {
			t.Errorf("%q is no bucket name", a)
		}
		if !strings.HasPrefix(a, "testname-some-sub-test-with-upper") {
			t.Errorf("%q does not start with the test's name", a)
		}
	})
}

// With no moto anywhere it looks, starting fails with every place looked
// at named, never a skip.
func TestNoMoto(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv("HOME", empty)
	t.Setenv("PYENV_ROOT", filepath.Join(empty, ".pyenv"))
	t.Setenv("MOTO_SERVER", "")
	_, err := start()
	if err == nil {
		t.Fatal("started without moto")
	}
	for _, want := range []string{"moto_server could not be started", "moto_server on PATH: none", filepath.Join(empty, ".pyenv", "shims", "moto_server") + ": none"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}

// A pyenv Python with moto is found even when PATH has none: here a
// stand-in python3 that says it has moto, and one that says it has not.
func TestPyenvVersionsSearched(t *testing.T) {
	root := t.TempDir()
	fake := func(version, script string) string {
		p := filepath.Join(root, "versions", version, "bin", "python3")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	with := fake("3.9.1", "exit 0")
	without := fake("3.12.0", "exit 3")
	t.Setenv("PATH", "/nonexistent")
	t.Setenv("PYENV_ROOT", root)
	t.Setenv("MOTO_SERVER", "")
	found, looked := Candidates()
	if len(found) != 1 || strings.Join(found[0].Command, " ") != with+" -m moto.server" {
		t.Errorf("found %+v, want %s -m moto.server", found, with)
	}
	if !strings.Contains(strings.Join(looked, "\n"), without+": no moto module") {
		t.Errorf("looked at %q, want %s named as having no moto", looked, without)
	}
}

// The server answers only on loopback: Moto binds 127.0.0.1.
func TestLoopbackOnly(t *testing.T) {
	srv := Moto(t)
	resp, err := http.Get(srv.URL + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if i := strings.Index(strings.Join(srv.Command, " "), "-H 127.0.0.1"); i < 0 {
		t.Errorf("command %q does not bind 127.0.0.1", srv.Command)
	}
}

// A named bucket made again is new: what an earlier run put in it is
// gone, every version.
func TestNamedBucketAgain(t *testing.T) {
	srv := Moto(t)
	ctx := context.Background()
	for _, versioned := range []bool{true, false} {
		name := Name(t)
		for run := range 2 {
			if got := srv.NamedBucket(t, name, versioned); got != name {
				t.Fatalf("NamedBucket = %s, want %s", got, name)
			}
			out, err := srv.S3().ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(out.Versions) + len(out.DeleteMarkers); n != 0 {
				t.Errorf("versioned %v, run %d: %d versions left from the run before", versioned, run, n)
			}
			for _, body := range []string{"a", "b"} {
				if _, err := srv.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String("k"), Body: strings.NewReader(body)}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// A secret made and given a new value reads back as the new value.
func TestSecret(t *testing.T) {
	srv := Moto(t)
	id := srv.Secret(t, "one")
	srv.PutSecret(t, id, "two")
	out, err := srv.SecretsManager().GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.SecretString); got != "two" {
		t.Errorf("SecretString %q, want two", got)
	}
}
