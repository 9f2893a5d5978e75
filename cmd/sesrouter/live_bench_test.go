package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// The live benchmarks: route without -dry-run over generated SNS-wrapped
// notifications (about 70% bounces, 20% complaints, 10% deliveries, which
// the handler's rules leave unmatched) by the rules of the original
// handler, which post every bounce and complaint to their webhook and
// unsuppress the no-suppress addresses, against the loopback fakes,
// without faults.
//
//	go test -run='^$' -bench=RouteLive -benchtime=20x ./cmd/sesrouter
//	go test -run='^$' -bench=Binary -benchtime=1x ./cmd/sesrouter
//
// BenchmarkRouteLive runs route in-process, without pace; BenchmarkBinary
// runs the real binary beside the fakes, at the default pace, and reports
// its peak resident memory. The fakes keep every message they accept, so
// they slow down over many runs: each benchmark starts them afresh. Their
// suppression list is empty, so every unsuppress is one
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
	// Every notification posted: digests would fold all but the first 10.
	rules := writeFile(b, b.TempDir(), "rules.yaml", strings.Replace(readHandlerRules(b), "      pace: 0s\n", "      pace: 0s\n      digest_after: 1000000\n", 1))
	args := []string{"route", "-format", "json", "-rules", rules, path}
	benchRoute(b, args, e, size, benchLiveEvents)
	if c := sl.Counts(); c.Succeeded == 0 || c.Requests != c.Succeeded {
		b.Errorf("Slack counts %+v: want every request a success", c)
	}
}

// BenchmarkBinary builds sesrouter and runs it as a user would, over
// 2,000, 20,000 and 100,000 generated notifications: route -dry-run
// -format json, and route -format json live against the loopback fakes
// (in this process) with the handler's rules at the default pace, so that
// posts wait their turn and a storm folds into a digest. Each op is one
// run of the binary; it reports events/s (from the summary line) and
// peak-rss-MiB (the kernel's count of the child's maximum resident set).
// Pin the binary to a core with taskset on go test: the child inherits it.
func BenchmarkBinary(b *testing.B) {
	bin := buildSesrouter(b)
	dir := b.TempDir()
	dryRules := writeFile(b, dir, "dry.yaml", readHandlerRules(b))
	liveRules := writeFile(b, dir, "live.yaml", strings.Replace(readHandlerRules(b), "      pace: 0s\n", "", 1))
	for _, n := range []int{2_000, 20_000, 100_000} {
		input := filepath.Join(dir, fmt.Sprintf("bench-%d.ndjson", n))
		writeBenchFileOrFail(b, input, n)
		b.Run(fmt.Sprintf("dry-run-%d", n), func(b *testing.B) {
			for b.Loop() {
				runBinary(b, bin, nil, n, "route", "-dry-run", "-format", "json", "-rules", dryRules, input)
			}
		})
		b.Run(fmt.Sprintf("live-%d", n), func(b *testing.B) {
			sl := actionstest.NewSlack(b)
			ses := actionstest.NewSES(b)
			vars := []string{
				"SLACK_WEBHOOK_URL=" + sl.WebhookURL("ses-alerts"),
				"AWS_ENDPOINT_URL_SESV2=" + ses.URL(),
				"AWS_REGION=" + actionstest.SESRegion,
				"AWS_ACCESS_KEY_ID=" + actionstest.SESAccessKeyID,
				"AWS_SECRET_ACCESS_KEY=" + actionstest.SESSecretAccessKey,
				"AWS_EC2_METADATA_DISABLED=true",
				"AWS_CONFIG_FILE=" + os.DevNull,
				"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
			}
			for b.Loop() {
				runBinary(b, bin, vars, n, "route", "-format", "json", "-rules", liveRules, input)
			}
			b.Logf("Slack answered %+v; SES answered %+v", sl.Counts(), ses.Counts())
		})
	}
}

// binarySummaryRE reads the count and time of route's summary line.
var binarySummaryRE = regexp.MustCompile(`(?m)^sesrouter route: ([0-9]+) notifications? .*, in ([^\n]+)$`)

// runBinary runs bin with args and exactly the environment vars, wants
// exit status 0 and n notifications on the summary line, and reports
// events/s and the peak RSS.
func runBinary(b *testing.B, bin string, vars []string, n int, args ...string) {
	b.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = vars
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	m := binarySummaryRE.FindStringSubmatch(stderr.String())
	if m == nil || m[1] != strconv.Itoa(n) {
		b.Fatalf("stderr %q: want the summary of %d notifications", stderr.String(), n)
	}
	if took, err := time.ParseDuration(m[2]); err == nil && took > 0 {
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB") // Linux counts it in KiB
	}
}
