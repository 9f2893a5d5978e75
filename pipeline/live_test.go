package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/awstest"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/storm"
	"github.com/sesrouter/sesrouter/rulestore"
)

// liveRules log every bounce by one rule, whose name tells the versions
// apart; they need no client.
const liveRules = `version: 1
rules:
  - name: RULE
    when: event.type == "Bounce"
    actions: [log]
`

// brokenRules do not load: a name that does not exist, at line 4.
const brokenRules = "version: 1\nrules:\n  - name: x\n    when: event.tpye == 1\n    actions: [drop]\n"

// liveS3 is a rules object in moto, read through a store that counts its
// GetObject calls.
type liveS3 struct {
	loc   rulestore.Location
	store *rulestore.Store
	gets  *atomic.Int32
}

// newLiveS3 makes a bucket of the test's own; call it outside a synctest
// bubble (it starts moto). Its clients are made at first use, inside.
func newLiveS3(t *testing.T) *liveS3 {
	t.Helper()
	srv := awstest.Moto(t)
	l := &liveS3{loc: rulestore.Location{Bucket: srv.Bucket(t, true), Key: "rules.yaml"}, gets: new(atomic.Int32)}
	l.store = &rulestore.Store{NewClient: func(context.Context) (rulestore.API, error) {
		return countingS3{srv.S3(), l.gets}, nil
	}}
	return l
}

// countingS3 counts the GetObject calls of an S3 client.
type countingS3 struct {
	*s3.Client
	gets *atomic.Int32
}

func (c countingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	c.gets.Add(1)
	return c.Client.GetObject(ctx, in, optFns...)
}

// put uploads rules as someone else would (not through the store).
func (l *liveS3) put(t *testing.T, srv *awstest.Server, body string) {
	t.Helper()
	if _, err := srv.S3().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(l.loc.Bucket), Key: aws.String(l.loc.Key),
		Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// ruleOf is the name of the rule that decides for a bounce by rules.
func ruleOf(t *testing.T, r *InForce) string {
	t.Helper()
	it := ses.Decode("in", []byte(bounce("x", "a@example.com")))[0]
	p := r.Config.Router.Route(it.Notification)
	if len(p.Recipients) != 1 || p.Recipients[0].Decider == nil {
		t.Fatalf("no rule decided: %+v", p)
	}
	return p.Recipients[0].Decider.Name
}

// liveParts are parts that need no client, logging to log.
func liveParts(log *syncWriter) *Parts {
	return &Parts{Logger: slog.New(slog.NewJSONHandler(log, nil)), Seen: dedup.NewSeen(100), Storm: storm.New(), Timeout: time.Minute}
}

// errorLines are the ERROR lines of log.
func errorLines(log string) []string {
	var out []string
	for l := range strings.Lines(log) {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return out
}

// TestLiveRefreshS3 runs on a fake clock against rules in moto: a new
// version is in force for the first Refresh once the refresh interval has
// passed since the last look, and the object is not read before; a broken
// version is refused once (one ERROR line, one RulesRefused metric) and
// the last good rules stay, also at later looks; rules taken before a
// change stay what they were.
func TestLiveRefreshS3(t *testing.T) {
	srv := awstest.Moto(t)
	obj := newLiveS3(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		name := obj.loc.String()
		obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v1"))
		cfg, read, err := LoadFrom(ctx, obj.store, name)
		if err != nil {
			t.Fatal(err)
		}
		log, metrics := &syncWriter{w: &bytes.Buffer{}}, &syncWriter{w: &bytes.Buffer{}}
		live, err := NewLive(ctx, liveParts(log), Source{Name: name, Store: obj.store, Refresh: time.Minute}, cfg, read, metrics)
		if err != nil {
			t.Fatal(err)
		}
		gets := obj.gets.Load()
		taken := live.Refresh(ctx) // an item starts with v1

		obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v2"))
		time.Sleep(time.Minute - time.Millisecond)
		if got := ruleOf(t, live.Refresh(ctx)); got != "v1" || obj.gets.Load() != gets {
			t.Fatalf("before the refresh interval: rule %s after %d reads, want v1 and no read", got, obj.gets.Load()-gets)
		}
		time.Sleep(time.Millisecond)
		if got := ruleOf(t, live.Refresh(ctx)); got != "v2" {
			t.Fatalf("once the refresh interval passed: rule %s, want v2", got)
		}
		if got := ruleOf(t, taken); got != "v1" {
			t.Errorf("the rules an item took before the change now say %s, want v1 still", got)
		}
		if !strings.Contains(log.w.String(), `"msg":"rules reloaded"`) {
			t.Errorf("no rules reloaded line:\n%s", log.w.String())
		}

		// Unchanged: a look is a conditional read, and changes nothing.
		time.Sleep(time.Minute)
		before := live.Current()
		if live.Refresh(ctx) != before {
			t.Error("an unchanged object replaced the rules in force")
		}

		// Broken: refused, once; the last good rules stay.
		obj.put(t, srv, brokenRules)
		time.Sleep(time.Minute)
		if got := ruleOf(t, live.Refresh(ctx)); got != "v2" {
			t.Errorf("after a broken version: rule %s, want v2 still", got)
		}
		time.Sleep(time.Minute)
		live.Refresh(ctx)
		lines := errorLines(log.w.String())
		if len(lines) != 1 || !strings.Contains(lines[0], `"msg":"rules not reloaded; the previous rules stay"`) ||
			!strings.Contains(lines[0], name+`:4:17: rule \"x\": event has no field tpye`) {
			t.Errorf("ERROR lines %q, want one naming the problem at %s:4", lines, name)
		}
		if n := strings.Count(metrics.w.String(), `"RulesRefused":1`); n != 1 {
			t.Errorf("%d RulesRefused metrics, want 1:\n%s", n, metrics.w.String())
		}

		// Fixed: in force at the next look.
		obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v3"))
		time.Sleep(time.Minute)
		if got := ruleOf(t, live.Refresh(ctx)); got != "v3" {
			t.Errorf("after a fixed version: rule %s, want v3", got)
		}
	})
}

// TestLiveRefreshZero: a refresh of 0 looks at every Refresh.
func TestLiveRefreshZero(t *testing.T) {
	srv := awstest.Moto(t)
	obj := newLiveS3(t)
	ctx := context.Background()
	obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v1"))
	cfg, read, err := LoadFrom(ctx, obj.store, obj.loc.String())
	if err != nil {
		t.Fatal(err)
	}
	live, err := NewLive(ctx, liveParts(&syncWriter{w: &bytes.Buffer{}}), Source{Name: obj.loc.String(), Store: obj.store}, cfg, read, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v2"))
	if got := ruleOf(t, live.Refresh(ctx)); got != "v2" {
		t.Errorf("rule %s, want v2 at once", got)
	}
}

// TestLiveUnreadable: an object that cannot be read (deleted) is refused
// at each look, the last good rules staying.
func TestLiveUnreadable(t *testing.T) {
	srv := awstest.Moto(t)
	obj := newLiveS3(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v1"))
		cfg, read, err := LoadFrom(ctx, obj.store, obj.loc.String())
		if err != nil {
			t.Fatal(err)
		}
		log, metrics := &syncWriter{w: &bytes.Buffer{}}, &syncWriter{w: &bytes.Buffer{}}
		live, err := NewLive(ctx, liveParts(log), Source{Name: obj.loc.String(), Store: obj.store, Refresh: time.Minute}, cfg, read, metrics)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.S3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(obj.loc.Bucket), Key: aws.String(obj.loc.Key)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if got := ruleOf(t, live.Refresh(ctx)); got != "v1" {
			t.Errorf("rule %s, want v1 still", got)
		}
		lines := errorLines(log.w.String())
		if len(lines) != 1 || !strings.Contains(lines[0], "NoSuchKey") {
			t.Errorf("ERROR lines %q, want one saying NoSuchKey", lines)
		}
		if n := strings.Count(metrics.w.String(), `"RulesRefused":1`); n != 1 {
			t.Errorf("%d RulesRefused metrics, want 1", n)
		}
	})
}

// TestLiveFileRefreshedOnlyByReload: rules in a file are read again only
// by Reload (SIGHUP), never by Refresh.
func TestLiveFileRefreshedOnlyByReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		path := writeFile(t, "rules.yaml", strings.ReplaceAll(liveRules, "RULE", "v1"))
		store := &rulestore.Store{}
		cfg, read, err := LoadFrom(ctx, store, path)
		if err != nil {
			t.Fatal(err)
		}
		live, err := NewLive(ctx, liveParts(&syncWriter{w: &bytes.Buffer{}}), Source{Name: path, Store: store}, cfg, read, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(liveRules, "RULE", "v2")), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		if got := ruleOf(t, live.Refresh(ctx)); got != "v1" {
			t.Errorf("Refresh read the file: rule %s, want v1", got)
		}
		live.Reload(ctx)
		if got := ruleOf(t, live.Current()); got != "v2" {
			t.Errorf("after Reload: rule %s, want v2", got)
		}
	})
}

// TestServiceRefreshS3: serve's Service looks at the rules before a
// request once the refresh interval has passed, on a fake clock, and
// routes that request by the new rules.
func TestServiceRefreshS3(t *testing.T) {
	srv := awstest.Moto(t)
	obj := newLiveS3(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v1"))
		cfg, read, err := LoadFrom(ctx, obj.store, obj.loc.String())
		if err != nil {
			t.Fatal(err)
		}
		live, err := NewLive(ctx, liveParts(&syncWriter{w: &bytes.Buffer{}}), Source{Name: obj.loc.String(), Store: obj.store, Refresh: 30 * time.Second}, cfg, read, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc := NewService(live, time.Hour)
		defer svc.Close()
		handle := func(id string) string {
			m, err := ses.ParseSNS([]byte(snsBody(id, bounce(id, id+"@example.com"))))
			if err != nil {
				t.Fatal(err)
			}
			j := svc.Handle(ctx, m)
			return j.Plan.Recipients[0].Decider.Name
		}
		obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v2"))
		time.Sleep(29 * time.Second)
		if got := handle("a"); got != "v1" {
			t.Errorf("29 s after the start: rule %s, want v1", got)
		}
		time.Sleep(time.Second)
		if got := handle("b"); got != "v2" {
			t.Errorf("30 s after the start: rule %s, want v2", got)
		}
	})
}

// TestLiveReloadRetriesRefused: a version refused because its actions
// could not be built (here, its destination's variable was missing) is
// not read again by Refresh, but Reload (SIGHUP) reads it again, and once
// what was missing is there, it comes into force.
func TestLiveReloadRetriesRefused(t *testing.T) {
	srv := awstest.Moto(t)
	obj := newLiveS3(t)
	ctx := context.Background()
	obj.put(t, srv, strings.ReplaceAll(liveRules, "RULE", "v1"))
	cfg, read, err := LoadFrom(ctx, obj.store, obj.loc.String())
	if err != nil {
		t.Fatal(err)
	}
	log := &syncWriter{w: &bytes.Buffer{}}
	parts := liveParts(log)
	var hook atomic.Value
	hook.Store("")
	parts.Slack = slack.SlackConfig{Getenv: func(k string) string {
		if k == "HOOK" {
			return hook.Load().(string)
		}
		return ""
	}, HTTPClient: &http.Client{}, Pacers: pace.NewPacers(1)}
	live, err := NewLive(ctx, parts, Source{Name: obj.loc.String(), Store: obj.store}, cfg, read, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj.put(t, srv, strings.ReplaceAll(rulesHook, "name: bounces", "name: v2"))
	live.Refresh(ctx)
	live.Refresh(ctx)
	if got := ruleOf(t, live.Current()); got != "v1" || len(errorLines(log.w.String())) != 1 {
		t.Fatalf("rule %s, %d ERROR lines; want v1 still and one refusal:\n%s", got, len(errorLines(log.w.String())), log.w.String())
	}
	hook.Store("https://hooks.slack.com/services/T0/B0/x")
	live.Refresh(ctx)
	if got := ruleOf(t, live.Current()); got != "v1" {
		t.Errorf("Refresh read the refused version again: rule %s", got)
	}
	live.Reload(ctx)
	if got := ruleOf(t, live.Current()); got != "v2" {
		t.Errorf("after Reload with the variable set: rule %s, want v2\n%s", got, log.w.String())
	}
}
