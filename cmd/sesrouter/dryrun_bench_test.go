//go:build unix

package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkDryRunOnly is the dry-run half of BenchmarkDryRunAgainstDecode
// alone, to profile it:
//
//	go test -run='^$' -bench=DryRunOnly -cpu 1 -cpuprofile cpu.out ./cmd/sesrouter
func BenchmarkDryRunOnly(b *testing.B) {
	const events = 50_000
	path := filepath.Join(b.TempDir(), "bench.ndjson")
	writeBenchFileOrFail(b, path, events)
	args := []string{"route", "-dry-run", "-format", "json", "-rules", handlerRules, path}
	e := testEnv(nil)
	var dry time.Duration
	var stderr bytes.Buffer
	for b.Loop() {
		start := processCPU()
		stderr.Reset()
		if code := run(args, strings.NewReader(""), io.Discard, &stderr, e); code != exitOK {
			b.Fatalf("route exited %d:\n%s", code, stderr.String())
		}
		dry += processCPU() - start
	}
	b.ReportMetric(float64(dry.Nanoseconds())/float64(b.N*events), "dryrun-ns/event")
}
