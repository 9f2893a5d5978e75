package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/pipeline/state"
)

// countingStore counts the requests a Store makes of its table: reads
// (Events: one Query each) and writes (every other call: one PutItem,
// UpdateItem or DeleteItem each).
type countingStore struct {
	state.Store
	reads, writes atomic.Int64
}

func (c *countingStore) Claim(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	c.writes.Add(1)
	return c.Store.Claim(ctx, key, ttl)
}

func (c *countingStore) Complete(ctx context.Context, key, token string, keep time.Duration) error {
	c.writes.Add(1)
	return c.Store.Complete(ctx, key, token, keep)
}

func (c *countingStore) Release(ctx context.Context, key, token string) error {
	c.writes.Add(1)
	return c.Store.Release(ctx, key, token)
}

func (c *countingStore) Add(ctx context.Context, key string, expires time.Time) (int64, error) {
	c.writes.Add(1)
	return c.Store.Add(ctx, key, expires)
}

func (c *countingStore) Record(ctx context.Context, key string, at time.Time, id string, expires time.Time) error {
	c.writes.Add(1)
	return c.Store.Record(ctx, key, at, id, expires)
}

func (c *countingStore) Events(ctx context.Context, key string, since, until time.Time) ([]state.Event, error) {
	c.reads.Add(1)
	return c.Store.Events(ctx, key, since, until)
}

// benchNotify notifies every bounce, and benchHistory suppresses at the
// third Transient bounce within 7 days; neither folds a storm within a
// benchmark's notifications.
const (
	benchNotify = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s, digest_after: 100000}
rules:
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`
	benchHistory = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s, digest_after: 100000}
rules:
  - name: repeat-soft-bounce
    when: bounce.type == "Transient" && history("Bounce/Transient", "7d") >= 2
    actions: [suppress, {notify: hook}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`
)

// BenchmarkFleetState measures what the state table adds to one
// notification of one recipient, handled by a Lambda invocation of one
// SQS record, posted to a loopback Slack fake: per process (no table),
// and with the table on moto_server on loopback (not DynamoDB: its
// latency is that of a local Python process, not of a DynamoDB endpoint),
// with rules that notify (claim, storm counter, done) and with rules that
// use history too (a Query and a PutItem per kind). It reports the table's
// requests per notification.
//
//	go test ./pipeline -run '^$' -bench BenchmarkFleetState -benchtime 200x -count 3
func BenchmarkFleetState(b *testing.B) {
	for _, c := range []struct {
		name, rules string
		table       bool
	}{
		{"per-process/notify", benchNotify, false},
		{"table/notify", benchNotify, true},
		{"table/notify+history", benchHistory, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newFakes(b)
			var st *countingStore
			var store state.Store
			if c.table {
				srv := motoTable(b)
				st = &countingStore{Store: srv}
				store = st
			}
			h := f.container(b, c.rules, store)
			ctx := context.Background()
			// Distinct notifications, each to an address of its own: no
			// duplicate, no storm fold, no history to count.
			payloads := make([][]byte, b.N)
			for i := range payloads {
				id := fmt.Sprintf("%s-%d", c.name, i)
				payloads[i] = sqsEvent(b, snsBody("s"+id, transient(id, "r"+id+"@example.com", 1)))
			}
			b.ResetTimer()
			for i := range b.N {
				if inv := h.Invoke(ctx, payloads[i], 1, 8); inv.Err != nil || len(inv.FailedIDs) > 0 {
					b.Fatalf("invocation: %v %v\n%s", inv.Err, inv.FailedIDs, f.log)
				}
			}
			b.StopTimer()
			if st != nil {
				b.ReportMetric(float64(st.reads.Load())/float64(b.N), "reads/op")
				b.ReportMetric(float64(st.writes.Load())/float64(b.N), "writes/op")
			}
		})
	}
}
