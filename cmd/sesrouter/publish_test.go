package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sesrouter/sesrouter/internal/awstest"
)

// Rules in S3: publish and the commands that read s3:// rules, in
// process, with the AWS SDK pointed at moto_server (awstest) through the
// environment, as a user's would be at AWS. These tests set the process
// environment, so none runs in parallel.

// s3Rules notify every bounce by one rule, whose name tells versions
// apart; they pass check -strict.
const s3Rules = `version: 1
destinations:
  alerts:
    slack: {webhook_env: SLACK_WEBHOOK_URL}
rules:
  - name: RULE
    when: event.type == "Bounce"
    actions: [{notify: alerts}]
`

// s3RulesTest expects a bounce to be notified to alerts.
const s3RulesTest = `tests:
  - name: a bounce is notified
    event: {type: Bounce, recipients: [a@example.com]}
    expect:
      a@example.com: ["notify:alerts"]
`

// s3Fixture is a bucket of moto with the SDK of this process pointed at
// it, and a folder with rules and a rule test.
type s3Fixture struct {
	srv    *awstest.Server
	bucket string
	dir    string
	env    env
}

func newS3Fixture(t *testing.T, versioned bool) *s3Fixture {
	t.Helper()
	srv := awstest.Moto(t)
	srv.Setenv(t)
	f := &s3Fixture{srv: srv, bucket: srv.Bucket(t, versioned), dir: t.TempDir(), env: testEnv(nil)}
	writeFile(t, f.dir, "rules.yaml", strings.ReplaceAll(s3Rules, "RULE", "bounces-v1"))
	writeFile(t, f.dir, "rules.test.yaml", s3RulesTest)
	return f
}

// uri is s3://BUCKET/rules.yaml.
func (f *s3Fixture) uri() string { return "s3://" + f.bucket + "/rules.yaml" }

// object returns what the rules object holds, "" when there is none.
func (f *s3Fixture) object(t *testing.T) string {
	t.Helper()
	out, err := f.srv.S3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String("rules.yaml")})
	if err != nil {
		if strings.Contains(err.Error(), "NoSuchKey") {
			return ""
		}
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// put uploads body as someone else would.
func (f *s3Fixture) put(t *testing.T, body string) {
	t.Helper()
	if _, err := f.srv.S3().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String("rules.yaml"),
		Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// publish runs sesrouter publish in the fixture's folder.
func (f *s3Fixture) publish(t *testing.T, args ...string) cliResult {
	t.Helper()
	t.Chdir(f.dir)
	return runCLI(t, f.env, "", append([]string{"publish"}, args...)...)
}

// TestPublish publishes a new object, then a new version over it; each
// time the rules are checked and tested first, and the new ETag (and
// version id) printed; the commands that read rules read them from S3.
func TestPublish(t *testing.T) {
	f := newS3Fixture(t, true)
	r := f.publish(t, "-test", "rules.test.yaml", f.uri())
	if r.code != exitOK {
		t.Fatalf("publish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkContains(t, "publish's output", r.stdout, "rules.yaml: ok: 1 rule, 1 destination, 0 lists\n", "1 passed, 0 failed\n",
		"published rules.yaml to "+f.uri()+": ETag \"", "(version id ", "; a new object\n")
	if got := f.object(t); !strings.Contains(got, "bounces-v1") {
		t.Fatalf("the object holds %q, want the rules", got)
	}

	writeFile(t, f.dir, "rules.yaml", strings.ReplaceAll(s3Rules, "RULE", "bounces-v2"))
	r = f.publish(t, "-rules", "rules.yaml", f.uri(), "-test", "rules.test.yaml")
	if r.code != exitOK || !strings.Contains(r.stdout, "; it replaced ETag \"") {
		t.Fatalf("second publish: exit %d, want 0 replacing the first\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := f.object(t); !strings.Contains(got, "bounces-v2") {
		t.Fatalf("the object holds %q, want the second rules", got)
	}

	// Every command that reads rules reads s3:// rules.
	event := writeFile(t, f.dir, "bounce.json", liveBounce(t, "m-1", "a@example.com"))
	r = runCLI(t, f.env, "", "route", "-dry-run", "-format", "json", "-rules", f.uri(), event)
	if r.code != exitOK || !strings.Contains(r.stdout, `"rules":["bounces-v2"]`) {
		t.Errorf("route -rules %s: exit %d, want 0 and the rule bounces-v2\n%s%s", f.uri(), r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, testEnv(map[string]string{"SESROUTER_RULES": f.uri()}), "", "check", "-strict")
	if r.code != exitOK || r.stdout != f.uri()+": ok: 1 rule, 1 destination, 0 lists\n" {
		t.Errorf("check with SESROUTER_RULES=%s: exit %d\n%s%s", f.uri(), r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, f.env, "", "test", "-rules", f.uri(), "rules.test.yaml")
	if r.code != exitOK || r.stdout != "1 passed, 0 failed\n" {
		t.Errorf("test -rules %s: exit %d\n%s%s", f.uri(), r.code, r.stdout, r.stderr)
	}
	named := writeFile(t, f.dir, "named.test.yaml", "rules: "+f.uri()+"\n"+s3RulesTest)
	r = runCLI(t, f.env, "", "test", named)
	if r.code != exitOK || r.stdout != "1 passed, 0 failed\n" {
		t.Errorf("test of a file whose rules: is %s: exit %d\n%s%s", f.uri(), r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, f.env, "", "check", "-rules", "s3://"+f.bucket+"/none.yaml")
	if r.code != exitUsage || !strings.Contains(r.stderr, "reading s3://"+f.bucket+"/none.yaml: NoSuchKey") {
		t.Errorf("check of a missing object: exit %d, want 2 saying NoSuchKey\n%s", r.code, r.stderr)
	}
}

// TestPublishRefusesBadRules: rules that check -strict refuses, that do
// not load, or that fail a rule test are not uploaded: the object stays
// as it was.
func TestPublishRefusesBadRules(t *testing.T) {
	f := newS3Fixture(t, false)
	f.put(t, "the rules before")
	tests := []struct {
		name, rules string
		code        int
		want        string
	}{
		{"a warning", strings.ReplaceAll(s3Rules, "RULE", "v") + "  - name: never\n    when: event.type == \"Bounce\"\n    actions: [drop]\n",
			exitUsage, "check -strict refuses the rules: nothing uploaded"},
		{"rules that do not load", "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n",
			exitUsage, "rules.yaml:4:17: rule \"x\": event has no field tpye"},
		{"a rule test that fails", strings.ReplaceAll(strings.ReplaceAll(s3Rules, "RULE", "v"), "[{notify: alerts}]", "[drop]\n  - name: unused\n    when: event.type == \"Complaint\"\n    actions: [{notify: alerts}]"),
			exitFailed, "a rule test failed: nothing uploaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, f.dir, "rules.yaml", tt.rules)
			r := f.publish(t, "-test", "rules.test.yaml", f.uri())
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, want %d saying %q\n%s%s", r.code, tt.code, tt.want, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout, "published") {
				t.Errorf("says it published:\n%s", r.stdout)
			}
			if got := f.object(t); got != "the rules before" {
				t.Errorf("the object holds %q, want the rules before", got)
			}
		})
	}
}

// racingS3 is a proxy in front of moto that, when the first PutObject of
// the rules object comes, has someone else upload theirs first, then
// passes the PutObject on: the race publish guards against, made to
// happen between its read and its write. It records the PutObject's
// conditions.
type racingS3 struct {
	URL string
	mu  sync.Mutex
	// ifMatch and ifNoneMatch are the headers of the PutObject.
	ifMatch, ifNoneMatch string
	raced                bool
}

func newRacingS3(t *testing.T, f *s3Fixture, theirs string) *racingS3 {
	t.Helper()
	target, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{Proxy: nil}
	rs := &racingS3{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/rules.yaml") {
			rs.mu.Lock()
			if !rs.raced {
				rs.raced = true
				rs.ifMatch, rs.ifNoneMatch = r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
				f.put(t, theirs)
			}
			rs.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rs.URL = srv.URL
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	return rs
}

// TestPublishRefusesStaleWrite: someone else publishes between publish's
// read of the object and its upload. moto_server, as S3, refuses the
// conditional PutObject (412): publish exits 1 saying so, and the other
// upload stays. This is S3's own check at the write, not a look before
// it: the PutObject carries If-Match the ETag read (If-None-Match "*"
// when there was no object), and the other upload lands after the look.
func TestPublishRefusesStaleWrite(t *testing.T) {
	t.Run("over an object", func(t *testing.T) {
		f := newS3Fixture(t, true)
		f.put(t, "the rules read")
		etag := headETag(t, f)
		rs := newRacingS3(t, f, "someone else's rules")
		r := f.publish(t, "-test", "rules.test.yaml", f.uri())
		if r.code != exitFailed || !strings.Contains(r.stderr, "sesrouter publish: "+f.uri()+" changed while the rules were checked (it had ETag "+etag+"): someone else published to it; nothing uploaded.") {
			t.Errorf("exit %d, want 1 saying the object changed\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !rs.raced || rs.ifMatch != etag || rs.ifNoneMatch != "" {
			t.Errorf("the PutObject had If-Match %q, If-None-Match %q; want If-Match %s", rs.ifMatch, rs.ifNoneMatch, etag)
		}
		if got := f.object(t); got != "someone else's rules" {
			t.Errorf("the object holds %q, want someone else's rules", got)
		}
	})
	t.Run("where there was none", func(t *testing.T) {
		f := newS3Fixture(t, false)
		rs := newRacingS3(t, f, "someone else's rules")
		r := f.publish(t, f.uri())
		if r.code != exitFailed || !strings.Contains(r.stderr, "changed while the rules were checked (there was no object)") {
			t.Errorf("exit %d, want 1 saying the object changed\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !rs.raced || rs.ifMatch != "" || rs.ifNoneMatch != "*" {
			t.Errorf("the PutObject had If-Match %q, If-None-Match %q; want If-None-Match *", rs.ifMatch, rs.ifNoneMatch)
		}
		if got := f.object(t); got != "someone else's rules" {
			t.Errorf("the object holds %q, want someone else's rules", got)
		}
	})
}

// headETag is the ETag of the rules object.
func headETag(t *testing.T, f *s3Fixture) string {
	t.Helper()
	out, err := f.srv.S3().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String("rules.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ETag)
}

// TestPublishUsage: publish wants exactly one s3://BUCKET/KEY.
func TestPublishUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "want one s3://BUCKET/KEY to publish to, got 0 arguments"},
		{[]string{"s3://b/k", "s3://b/l"}, "got 2 arguments"},
		{[]string{"rules.yaml"}, `"rules.yaml" is not an S3 object: want s3://BUCKET/KEY`},
		{[]string{"s3://b/"}, "names no object"},
		{[]string{"-nope", "s3://b/k"}, "flag provided but not defined: -nope"},
	} {
		r := runCLI(t, testEnv(nil), "", append([]string{"publish"}, tt.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("publish %q: exit %d, want 2 saying %q\n%s", tt.args, r.code, tt.want, r.stderr)
		}
	}
}

// TestSweepS3Rules: sweep reads s3:// rules, beside SES (the SES fake;
// S3 is moto, through AWS_ENDPOINT_URL_S3).
func TestSweepS3Rules(t *testing.T) {
	f := newS3Fixture(t, false)
	f.put(t, readHandlerRules(t))
	live := startLiveFakes(t) // points the SDK at the SES fake, with its credentials
	t.Setenv("AWS_ENDPOINT_URL_S3", f.srv.URL)
	live.ses.Suppress("a+no-suppress@example.com", "BOUNCE", listedAt)
	r := runCLI(t, testEnv(live.vars), "", "sweep", "-dry-run", "-rules", f.uri(), "-rate", "1000")
	if r.code != exitOK || !strings.Contains(r.stdout, "take a+no-suppress@example.com off the SES account suppression list") {
		t.Errorf("sweep -rules %s: exit %d\n%s%s", f.uri(), r.code, r.stdout, r.stderr)
	}
}
