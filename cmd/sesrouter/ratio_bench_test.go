//go:build unix

package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// BenchmarkDryRunAgainstDecode compares, over the same file of 50,000
// generated notifications, the CPU time of a whole dry run (route
// -dry-run -format json, in process, its output discarded) with that of
// decoding both layers of every line (the SNS envelope, then the SES JSON
// in its Message) with json/v2 into typed structs and nothing else: the
// least any reader of these files must do. It reports each per event and
// their ratio, dryrun-x: the median of the rounds' ratios, each round a
// dry run then a decode, so that a burst of load from elsewhere skews one
// round, not the figure. CPU time (the process's, user and system), not
// the clock, so that a busy machine does not skew the ratio:
//
//	go test -run='^$' -bench=DryRunAgainstDecode -benchtime 5x -cpu 1 -count 3 ./cmd/sesrouter
func BenchmarkDryRunAgainstDecode(b *testing.B) {
	const events = 50_000
	path := filepath.Join(b.TempDir(), "bench.ndjson")
	writeBenchFileOrFail(b, path, events)
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if len(lines) != events {
		b.Fatalf("%d lines, want %d", len(lines), events)
	}
	args := []string{"route", "-dry-run", "-format", "json", "-rules", handlerRules, path}
	e := testEnv(nil)
	var dry, plain time.Duration
	var ratios []float64
	var stderr bytes.Buffer
	// One untimed round of each first: the lines held above raise the
	// collector's goal to hundreds of MB, and whichever side ran first
	// would pay for the process's first touch of all that memory (page
	// faults, a quarter of a second), which a route process, whose heap
	// stays near 30 MB, never does.
	if code := run(args, strings.NewReader(""), io.Discard, &stderr, e); code != exitOK {
		b.Fatalf("route exited %d:\n%s", code, stderr.String())
	}
	decodeBothLayers(b, lines)
	for b.Loop() {
		start := processCPU()
		stderr.Reset()
		if code := run(args, strings.NewReader(""), io.Discard, &stderr, e); code != exitOK {
			b.Fatalf("route exited %d:\n%s", code, stderr.String())
		}
		mid := processCPU()
		decodeBothLayers(b, lines)
		end := processCPU()
		dry, plain = dry+mid-start, plain+end-mid
		ratios = append(ratios, float64(mid-start)/float64(end-mid))
	}
	n := float64(b.N * events)
	b.ReportMetric(float64(dry.Nanoseconds())/n, "dryrun-ns/event")
	b.ReportMetric(float64(plain.Nanoseconds())/n, "decode-ns/event")
	slices.Sort(ratios)
	b.ReportMetric((ratios[(len(ratios)-1)/2]+ratios[len(ratios)/2])/2, "dryrun-x")
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The baseline's typed structs: both layers of an SNS body, with the
// fields the model reads.
type (
	baseSNS struct {
		Type, MessageId, TopicArn, Message, Timestamp               string
		Subject                                                     *string
		SignatureVersion, Signature, SigningCertURL, UnsubscribeURL string
	}
	baseRecipient struct {
		EmailAddress   string `json:"emailAddress"`
		Action         string `json:"action"`
		Status         string `json:"status"`
		DiagnosticCode string `json:"diagnosticCode"`
	}
	baseSES struct {
		NotificationType string `json:"notificationType"`
		EventType        string `json:"eventType"`
		Mail             struct {
			Timestamp        string              `json:"timestamp"`
			MessageID        string              `json:"messageId"`
			Source           string              `json:"source"`
			SourceArn        string              `json:"sourceArn"`
			SendingAccountID string              `json:"sendingAccountId"`
			Destination      []string            `json:"destination"`
			Tags             map[string][]string `json:"tags"`
			Headers          []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"headers"`
			CommonHeaders struct {
				From    []string `json:"from"`
				To      []string `json:"to"`
				Subject string   `json:"subject"`
			} `json:"commonHeaders"`
		} `json:"mail"`
		Bounce *struct {
			BounceType        string          `json:"bounceType"`
			BounceSubType     string          `json:"bounceSubType"`
			BouncedRecipients []baseRecipient `json:"bouncedRecipients"`
			Timestamp         string          `json:"timestamp"`
			FeedbackID        string          `json:"feedbackId"`
			ReportingMTA      string          `json:"reportingMTA"`
			RemoteMtaIP       string          `json:"remoteMtaIp"`
		} `json:"bounce"`
		Complaint *struct {
			ComplainedRecipients  []baseRecipient `json:"complainedRecipients"`
			Timestamp             string          `json:"timestamp"`
			FeedbackID            string          `json:"feedbackId"`
			ComplaintFeedbackType string          `json:"complaintFeedbackType"`
			UserAgent             string          `json:"userAgent"`
		} `json:"complaint"`
		Delivery *struct {
			Timestamp            string   `json:"timestamp"`
			ProcessingTimeMillis int64    `json:"processingTimeMillis"`
			Recipients           []string `json:"recipients"`
			SMTPResponse         string   `json:"smtpResponse"`
			ReportingMTA         string   `json:"reportingMTA"`
		} `json:"delivery"`
	}
)

// decodeBothLayers unmarshals each line's envelope, then its Message.
func decodeBothLayers(tb testing.TB, lines [][]byte) {
	for _, line := range lines {
		var env baseSNS
		var ses baseSES
		if err := jsonv2.Unmarshal(line, &env); err != nil {
			tb.Fatal(err)
		}
		if err := jsonv2.Unmarshal([]byte(env.Message), &ses); err != nil {
			tb.Fatal(err)
		}
	}
}
