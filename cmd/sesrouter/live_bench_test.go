package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// The live benchmark (issue 3, item 9): route without -dry-run over 2,000
// generated SNS-wrapped notifications (about 70% bounces, 20% complaints,
// 10% deliveries, which the shipped rules leave unmatched) with the
// shipped rules, which post every bounce and complaint to their webhook
// and unsuppress the no-suppress addresses, against the loopback fakes,
// without faults:
//
//	go test -run='^$' -bench=RouteLive -benchtime=20x ./cmd/sesrouter
//
// For the real binary and its peak RSS, TestServeFakesForBench serves the
// fakes from one process while the binary runs in another (see the
// README's Performance section):
//
//	go build -o /tmp/sesrouter ./cmd/sesrouter
//	go test -c -o /tmp/sesrouter.test ./cmd/sesrouter
//	SESROUTER_BENCH_OUT=/tmp/bench2000.ndjson SESROUTER_BENCH_N=2000 go test -count=1 -run=TestGenerateBenchFile ./cmd/sesrouter
//	SESROUTER_BENCH_FAKES=/tmp/fakes.env taskset -c 1 /tmp/sesrouter.test -test.run=TestServeFakesForBench &
//	until [ -s /tmp/fakes.env ]; do sleep 0.1; done; . /tmp/fakes.env
//	taskset -c 0 /usr/bin/time -v /tmp/sesrouter route -format json -rules rules.yaml /tmp/bench2000.ndjson >/dev/null
//
// The rate is the summary line's count over its time; the peak RSS is
// time's "Maximum resident set size". The fakes keep every message they
// accept, so they slow down over many runs: start them afresh for each
// series. Their suppression list is empty, so every unsuppress is one
// GetSuppressedDestination answered NotFound.

// benchLiveEvents is the size of the file BenchmarkRouteLive routes.
const benchLiveEvents = 2_000

func BenchmarkRouteLive(b *testing.B) {
	sl := actionstest.NewSlack(b)
	ses := actionstest.NewSES(b)
	ses.Setenv(b)
	vars := map[string]string{"SLACK_WEBHOOK_URL": sl.WebhookURL("ses-alerts")}
	e := testEnv(vars)
	path := filepath.Join(b.TempDir(), "bench.ndjson")
	size := writeBenchFileOrFail(b, path, benchLiveEvents)
	args := []string{"route", "-format", "json", "-rules", "../../rules.yaml", path}
	benchRoute(b, args, e, size, benchLiveEvents)
	if c := sl.Counts(); c.Succeeded == 0 || c.Requests != c.Succeeded {
		b.Errorf("Slack counts %+v: want every request a success", c)
	}
}

// TestServeFakesForBench serves the Slack and SES fakes on 127.0.0.1 for
// measuring the real binary beside them. It is skipped unless
// SESROUTER_BENCH_FAKES names a file: it writes there, once the fakes
// listen, the shell lines (export NAME='value') that point sesrouter at
// them (SLACK_WEBHOOK_URL for the shipped rules, SLACK_BOT_TOKEN,
// SLACK_API_URL, and the AWS SDK's variables for the SES fake), then
// serves for $SESROUTER_BENCH_SECONDS (default 120) or until interrupted,
// and logs how many requests each fake answered.
func TestServeFakesForBench(t *testing.T) {
	out := os.Getenv("SESROUTER_BENCH_FAKES")
	if out == "" {
		t.Skip("set SESROUTER_BENCH_FAKES=FILE (and optionally SESROUTER_BENCH_SECONDS) to serve the fakes for the binary")
	}
	d := 120 * time.Second
	if s := os.Getenv("SESROUTER_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SESROUTER_BENCH_SECONDS=%q: want a positive number", s)
		}
		d = time.Duration(n) * time.Second
	}
	sl := actionstest.NewSlack(t, liveChannel)
	ses := actionstest.NewSES(t)
	vars := [][2]string{
		{"SLACK_WEBHOOK_URL", sl.WebhookURL("ses-alerts")},
		{"SLACK_BOT_TOKEN", sl.Token()},
		{"SLACK_API_URL", sl.APIURL()},
		{"AWS_ENDPOINT_URL_SESV2", ses.URL()},
		{"AWS_REGION", actionstest.SESRegion},
		{"AWS_ACCESS_KEY_ID", actionstest.SESAccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", actionstest.SESSecretAccessKey},
		{"AWS_EC2_METADATA_DISABLED", "true"},
		{"AWS_CONFIG_FILE", os.DevNull},
		{"AWS_SHARED_CREDENTIALS_FILE", os.DevNull},
	}
	var buf bytes.Buffer
	for _, v := range vars {
		fmt.Fprintf(&buf, "export %s='%s'\n", v[0], v[1])
	}
	// Written whole, then renamed, so that a script waiting for the file
	// never reads half of it.
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(out) })
	t.Logf("serving the fakes for %s; environment in %s", d, out)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	t.Logf("Slack answered %+v", sl.Counts())
	t.Logf("SES answered %+v", ses.Counts())
}
