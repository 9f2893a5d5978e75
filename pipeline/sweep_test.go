package pipeline

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/internal/words"
)

// rulesSweep are the shipped rules, with a webhook paced at once: dummies
// dropped, no-suppress addresses and no.suppress.domain.jp unsuppressed
// and notified, every other bounce and complaint notified.
const rulesSweep = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s}
lists:
  ignored: [ignore@example.com]
  keep_deliverable_domains: [no.suppress.domain.jp]
rules:
  - name: ignore-dummies
    when: lower(recipient.address) in lists.ignored || recipient.domain == "ignore.domain.jp"
    actions: [drop]
  - name: keep-deliverable
    when: >-
      event.type == "Bounce" &&
      (lower(recipient.address) contains "no-suppress" || recipient.domain in lists.keep_deliverable_domains)
    actions: [unsuppress, {notify: hook}]
  - name: notify-bounces-and-complaints
    when: event.type in ["Bounce", "Complaint"]
    actions: [{notify: hook}]
`

// TestSweep fills the SES fake's suppression list with 5,000 entries
// (ordinary addresses, no-suppress ones, ones at no.suppress.domain.jp,
// and complaints), throttles the first calls, and checks that a sweep
// removes exactly the bounces the rules keep deliverable, once each,
// posts one summary, and that a second sweep removes nothing.
func TestSweep(t *testing.T) {
	f := newFakes(t)
	cfg := loadConfig(t, rulesSweep)
	h, err := f.parts.Handler(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ses, err := f.parts.SES(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	var keep []string
	for i := range 5000 {
		addr, reason := fmt.Sprintf("user%04d@example.com", i), "BOUNCE"
		switch i % 10 {
		case 1:
			addr = fmt.Sprintf("user%04d+no-suppress@example.com", i)
		case 2:
			addr = fmt.Sprintf("user%04d@no.suppress.domain.jp", i)
		case 3:
			addr, reason = fmt.Sprintf("user%04d+no-suppress@example.org", i), "COMPLAINT" // a complaint: not kept
		}
		if reason == "BOUNCE" && (strings.Contains(addr, "no-suppress") || strings.HasSuffix(addr, "@no.suppress.domain.jp")) {
			keep = append(keep, addr)
		}
		f.ses.Suppress(addr, reason, at.Add(time.Duration(i)*time.Second))
	}
	f.ses.Script(actionstest.Fault429(), actionstest.Fault429()) // the first list call is throttled twice
	var emitted int
	res := h.Sweep(context.Background(), ses, false, Sweep{Rate: 1e6}, func(*Job) { emitted++ })
	if !res.Complete || res.Entries != 5000 {
		t.Fatalf("entries %d, complete %v", res.Entries, res.Complete)
	}
	var deleted, lists []string
	for _, c := range f.ses.Calls() {
		switch {
		case c.Op == actionstest.OpDeleteSuppressedDestination && c.Status == 200:
			deleted = append(deleted, c.Address)
		case c.Op == actionstest.OpListSuppressedDestinations && c.Status == 200:
			lists = append(lists, c.PageSize)
		case c.Op == actionstest.OpGetSuppressedDestination, c.Op == actionstest.OpPutSuppressedDestination:
			t.Errorf("a sweep made a %s call", c.Op)
		}
	}
	slices.Sort(deleted)
	if !slices.Equal(deleted, keep) {
		t.Errorf("%d addresses removed, want the %d the rules keep deliverable", len(deleted), len(keep))
	}
	if len(lists) != 5 || lists[0] != "1000" {
		t.Errorf("list pages %v, want 5 pages of 1000", lists)
	}
	if emitted != 5000 || res.Tally.Outcomes[actions.OutcomeRemoved] != len(keep) {
		t.Errorf("emitted %d, removed %d", emitted, res.Tally.Outcomes[actions.OutcomeRemoved])
	}
	posts := f.slack.Posts()
	if len(posts) != 1 || !strings.HasPrefix(posts[0].Text, fmt.Sprintf("Sweep · %s addresses taken off the suppression list", words.Thousands(len(keep)))) {
		var texts []string
		for _, p := range posts {
			texts = append(texts, p.Text)
		}
		t.Errorf("posts %q: want one summary", texts)
	}

	again := h.Sweep(context.Background(), ses, false, Sweep{Rate: 1e6}, func(*Job) {})
	if again.Tally.Outcomes[actions.OutcomeRemoved] != 0 || again.Entries != 5000-len(keep) {
		t.Errorf("a second sweep read %d entries and removed %d; want %d and none", again.Entries, again.Tally.Outcomes[actions.OutcomeRemoved], 5000-len(keep))
	}
}

// TestSweepFilters checks that -reason and -since become the list's
// filters, and that a dry run reads the list and removes nothing.
func TestSweepFilters(t *testing.T) {
	f := newFakes(t)
	cfg := loadConfig(t, rulesSweep)
	h := &Handler{Router: cfg.Router, Dispatcher: cfg.DryRun()}
	ses, _ := f.parts.SES(context.Background())
	f.ses.Suppress("a+no-suppress@example.com", "BOUNCE", time.Now().Add(-time.Hour))
	f.ses.Suppress("b+no-suppress@example.com", "BOUNCE", time.Now().Add(-72*time.Hour))
	f.ses.Suppress("c@example.com", "COMPLAINT", time.Now().Add(-time.Hour))
	res := h.Sweep(context.Background(), ses, true, Sweep{Reason: "BOUNCE", Since: 48 * time.Hour, Rate: 1e6}, func(*Job) {})
	if res.Entries != 1 || res.Tally.Outcomes[actions.OutcomeDryRun] != 1 {
		t.Errorf("entries %d, outcomes %v; want the one recent bounce, dry-run", res.Entries, res.Tally.Outcomes)
	}
	calls := f.ses.Calls()
	if len(calls) != 1 || !slices.Equal(calls[0].Reasons, []string{"BOUNCE"}) || calls[0].StartDate == "" {
		t.Errorf("calls %+v: want one list call with Reason BOUNCE and a StartDate", calls)
	}
	if _, ok := f.ses.Suppressed("a+no-suppress@example.com"); !ok {
		t.Error("a dry run removed an address")
	}
	if n := len(f.slack.Posts()); n != 0 {
		t.Errorf("a dry run posted %d messages", n)
	}
}

// TestSweepStops checks that a sweep whose context ends stops between
// entries, says it did not read the whole list, and still posts its
// summary.
func TestSweepStops(t *testing.T) {
	f := newFakes(t)
	cfg := loadConfig(t, rulesSweep)
	h, _ := f.parts.Handler(context.Background(), cfg)
	ses, _ := f.parts.SES(context.Background())
	for i := range 30 {
		f.ses.Suppress(fmt.Sprintf("u%02d+no-suppress@example.com", i), "BOUNCE", time.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res := h.Sweep(ctx, ses, false, Sweep{Rate: 1e6}, func(*Job) {
		if n++; n == 10 {
			cancel()
		}
	})
	if res.Complete || res.Entries != 10 {
		t.Errorf("entries %d, complete %v; want 10 and not complete", res.Entries, res.Complete)
	}
	if posts := f.slack.Posts(); len(posts) != 1 || !strings.HasPrefix(posts[0].Text, "Sweep · 10 addresses") {
		t.Errorf("posts %v: want the summary of the 10", len(posts))
	}
}

// TestSweepRequest pins what a scheduled invocation's payload may say.
func TestSweepRequest(t *testing.T) {
	for _, tt := range []struct {
		payload string
		ok      bool
		err     string
		want    Sweep
	}{
		{`{"sesrouter":"sweep"}`, true, "", Sweep{Rate: DefaultSweepRate}},
		{`{"sesrouter":"sweep","reason":"COMPLAINT","since":"48h"}`, true, "", Sweep{Reason: "COMPLAINT", Since: 48 * time.Hour, Rate: DefaultSweepRate}},
		{`{"sesrouter":"sweep","rate":20}`, true, "", Sweep{Rate: 20}},
		{`{"sesrouter":"sweep","rate":0}`, true, "rate", Sweep{}},
		{`{"sesrouter":"sweep","rate":-1}`, true, "rate", Sweep{}},
		{`{"sesrouter":"sweep","rate":1e-12}`, true, "rate", Sweep{}}, // a call every 31,710 years: beyond a time.Duration
		{`{"sesrouter":"sweep","rate":"fast"}`, true, `"rate"`, Sweep{}},
		{`{"sesrouter":"sweep","reason":"bounce"}`, true, `reason is BOUNCE or COMPLAINT, not "bounce"`, Sweep{}},
		{`{"sesrouter":"purge"}`, true, `"sesrouter" is "purge"`, Sweep{}},
		{`{"sesrouter":"sweep","Records":[]}`, true, `"Records": unknown key`, Sweep{}},
		{`{"Records":[{"body":"sesrouter"}]}`, false, "", Sweep{}},
		{`{"Records":[{"body":"{\"sesrouter\":\"sweep\"}"}]}`, false, "", Sweep{}},
	} {
		got, ok, err := SweepRequest([]byte(tt.payload))
		switch {
		case ok != tt.ok:
			t.Errorf("%s: ok %v, want %v", tt.payload, ok, tt.ok)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.payload, err, tt.err)
		case tt.ok && tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%s: %+v, %v; want %+v", tt.payload, got, err, tt.want)
		}
	}
}

// TestCheckSweepRate: a rate the pacer cannot keep is refused, never
// read as no pace at all (NaN, and a rate so low that its interval
// overflows, came out as an interval of 0: unpaced SES calls).
func TestCheckSweepRate(t *testing.T) {
	for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), 1e-12, 1e-300} {
		err := CheckSweep(Sweep{Rate: rate})
		if want := fmt.Sprintf("rate is a positive number of calls a second, not %v", rate); err == nil || err.Error() != want {
			t.Errorf("rate %v: error %v, want %s", rate, err, want)
		}
	}
	for _, rate := range []float64{1e-9, 0.5, 1, 1000, 1e12} {
		if err := CheckSweep(Sweep{Rate: rate}); err != nil {
			t.Errorf("rate %v: %v", rate, err)
		}
	}
}

// TestSweepPacesDeletes checks that a sweep's deletes wait their turn at
// the sweep's rate, with its list calls: at one call an hour, the list
// call takes the first turn and no delete can be made before the
// deadline, so none reaches SES.
func TestSweepPacesDeletes(t *testing.T) {
	f := newFakes(t)
	cfg := loadConfig(t, rulesSweep)
	h, _ := f.parts.Handler(context.Background(), cfg)
	ses, _ := f.parts.SES(context.Background())
	f.ses.Suppress("a+no-suppress@example.com", "BOUNCE", time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := h.Sweep(ctx, ses, false, Sweep{Rate: 1.0 / 3600}, func(*Job) {})
	for _, c := range f.ses.Calls() {
		if c.Op == actionstest.OpDeleteSuppressedDestination {
			t.Errorf("a delete reached SES before its turn: %+v", c)
		}
	}
	if res.Tally.Outcomes[actions.OutcomeFailed] != 1 {
		t.Errorf("outcomes %v: want the delete failed, its turn after the deadline", res.Tally.Outcomes)
	}
}
