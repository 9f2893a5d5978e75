package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// rulesNoSES notify and drop, and never call SES.
const rulesNoSES = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s}
rules:
  - name: drop-keep
    when: recipient.domain == "keep.example"
    actions: [drop]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// sesCounts counts the calls of Parts' CheckSES and NewSES; NewSES fails
// while failures is above 0, and returns client otherwise.
type sesCounts struct {
	checks, makes, failures atomic.Int32
}

// install makes parts count and use client.
func (c *sesCounts) install(f *fakes, client SESAPI, checkErr error) {
	f.parts.CheckSES = func(context.Context) error {
		c.checks.Add(1)
		return checkErr
	}
	f.parts.NewSES = func(context.Context) (SESAPI, error) {
		c.makes.Add(1)
		if c.failures.Add(-1) >= 0 {
			return nil, errors.New("the SES client could not be made")
		}
		return client, nil
	}
}

// keepBounces are n SQS records, each a bounce to its own address at
// keep.example: the rules of rulesHook unsuppress each.
func keepBounces(t *testing.T, from, n int) []byte {
	var bodies []string
	for i := from; i < from+n; i++ {
		bodies = append(bodies, snsBody(fmt.Sprint("k", i), bounce(fmt.Sprint("k", i), fmt.Sprintf("u%d@keep.example", i))))
	}
	return sqsEvent(t, bodies...)
}

// TestSESNeverForRulesWithoutIt checks that a run whose rules neither
// unsuppress nor suppress checks nothing of AWS and makes no SES client.
func TestSESNeverForRulesWithoutIt(t *testing.T) {
	f := newFakes(t)
	var c sesCounts
	c.install(f, f.ses.Client(t), nil)
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesNoSES))
	if err != nil {
		t.Fatal(err)
	}
	inv := h.Invoke(context.Background(), sqsEvent(t, snsBody("s1", bounce("1", "a@example.com", "b@keep.example"))), 4, 8)
	if inv.Err != nil || len(inv.FailedIDs) != 0 || len(f.slack.Posts()) != 1 {
		t.Fatalf("error %v, failed %v, %d posts; want none, none and 1", inv.Err, inv.FailedIDs, len(f.slack.Posts()))
	}
	if n, m := c.checks.Load(), c.makes.Load(); n != 0 || m != 0 {
		t.Errorf("SES checked %d times and made %d times, want never", n, m)
	}
}

// TestSESMadeAtFirstCall checks that for rules that unsuppress, the SES
// client is checked when the handler is built, not made until the first
// SES call, and made once however many notifications call SES at once
// (run it with -race).
func TestSESMadeAtFirstCall(t *testing.T) {
	f := newFakes(t)
	var c sesCounts
	c.install(f, f.ses.Client(t), nil)
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	if n, m := c.checks.Load(), c.makes.Load(); n != 1 || m != 0 {
		t.Fatalf("once the handler is built, SES checked %d times and made %d times; want 1 and 0", n, m)
	}
	inv := h.Invoke(context.Background(), sqsEvent(t, snsBody("s1", bounce("1", "a@example.com"))), 1, 8)
	if inv.Err != nil || len(inv.FailedIDs) != 0 || c.makes.Load() != 0 {
		t.Fatalf("a bounce no rule unsuppresses: error %v, failed %v, SES made %d times; want none, none, 0", inv.Err, inv.FailedIDs, c.makes.Load())
	}
	inv = h.Invoke(context.Background(), keepBounces(t, 0, 16), 8, 16)
	if inv.Err != nil || len(inv.FailedIDs) != 0 {
		t.Fatalf("16 unsuppresses, 8 at once: error %v, failed %v", inv.Err, inv.FailedIDs)
	}
	if m := c.makes.Load(); m != 1 {
		t.Errorf("SES made %d times, want once", m)
	}
	if n := len(f.ses.Calls()); n != 16 {
		t.Errorf("%d SES calls, want 16: one look-up per address not on the list", n)
	}
}

// TestSESMadeAgainAfterFailure checks that an SES client that could not
// be made fails the action that needed it, and is tried again at the
// next call, then kept.
func TestSESMadeAgainAfterFailure(t *testing.T) {
	f := newFakes(t)
	var c sesCounts
	c.failures.Store(1)
	c.install(f, f.ses.Client(t), nil)
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	inv := h.Invoke(context.Background(), keepBounces(t, 0, 1), 1, 8)
	if strings.Join(inv.FailedIDs, ",") != "q1" {
		t.Errorf("the unsuppress without a client: failed %v, want [q1]", inv.FailedIDs)
	}
	for i := 1; i <= 2; i++ {
		if inv := h.Invoke(context.Background(), keepBounces(t, i, 1), 1, 8); len(inv.FailedIDs) != 0 {
			t.Errorf("unsuppress %d: failed %v, want none", i+1, inv.FailedIDs)
		}
	}
	if m := c.makes.Load(); m != 2 {
		t.Errorf("SES made %d times, want 2: the failure, then once", m)
	}
}

// TestSESCheckFailsHandler checks that when SES cannot be called (no
// region, say), building the handler of rules that unsuppress fails with
// the reason, and makes no client.
func TestSESCheckFailsHandler(t *testing.T) {
	f := newFakes(t)
	var c sesCounts
	c.install(f, f.ses.Client(t), errors.New("no AWS region is set (AWS_REGION)"))
	_, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err == nil || !strings.Contains(err.Error(), "no AWS region is set") {
		t.Errorf("error %v, want the check's", err)
	}
	if _, err := f.parts.Handler(context.Background(), loadConfig(t, rulesNoSES)); err != nil {
		t.Errorf("rules without SES: error %v, want none", err)
	}
	if n, m := c.checks.Load(), c.makes.Load(); n != 1 || m != 0 {
		t.Errorf("SES checked %d times and made %d times, want 1 and 0", n, m)
	}
}
