package pipeline

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/internal/awstest"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// container is one emulated Lambda container of a fleet: the parts of
// f (the same Slack and SES fakes) with a Seen and a Storm of its own,
// and the fleet's state st (nil: none, a process on its own).
func (f *fakes) container(t testing.TB, src string, st state.Store) *Handler {
	t.Helper()
	// The storm windows are fixed windows of the wall clock: the counts
	// are taken at one instant, so that no window ends within the test.
	at := time.Now()
	storms := storm.New()
	if st != nil {
		storms = storm.NewFleet(fixedClock{StormCounter{st}, at}, nil)
	}
	p := &Parts{Slack: f.parts.Slack, NewSES: f.parts.NewSES, Seen: dedup.NewSeen(1000), Storm: storms,
		State: st, Logger: f.parts.Logger, Timeout: f.parts.Timeout}
	h, err := p.Handler(context.Background(), loadConfig(t, src))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fixedClock counts every message at one instant.
type fixedClock struct {
	c  StormCounter
	at time.Time
}

func (f fixedClock) CountMessage(ctx context.Context, dest string, window time.Duration, _ time.Time) (int64, error) {
	return f.c.CountMessage(ctx, dest, window, f.at)
}

// motoTable returns a Store over a new table on moto.
func motoTable(t testing.TB) *state.Table {
	t.Helper()
	srv := awstest.Moto(t)
	return state.NewTable(srv.Config(), srv.StateTable(t))
}

// postsTo are the texts of the posts the fake accepted that name addr.
func postsTo(f *fakes, addr string) int {
	n := 0
	for _, p := range f.slack.Posts() {
		if strings.Contains(p.Text, addr) {
			n++
		}
	}
	return n
}

func TestFleetActsOnce(t *testing.T) {
	f := newFakes(t)
	st := motoTable(t)
	a, b := f.container(t, rulesHook, st), f.container(t, rulesHook, st)
	payload := sqsEvent(t, snsBody("s1", bounce("1", "a@example.com")), snsBody("s2", bounce("2", "b@example.com")),
		snsBody("s3", bounce("3", "c@example.com")))
	ctx := context.Background()
	first := a.Invoke(ctx, payload, 4, 8)
	second := b.Invoke(ctx, payload, 4, 8)
	for _, inv := range []Invocation{first, second} {
		if inv.Err != nil || len(inv.FailedIDs) > 0 {
			t.Fatalf("invocation: error %v, failed %v", inv.Err, inv.FailedIDs)
		}
	}
	for _, addr := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if n := postsTo(f, addr); n != 1 {
			t.Errorf("%s posted %d times across two containers, want 1", addr, n)
		}
	}
	if second.Tally.Duplicates != 3 {
		t.Errorf("second container: %d duplicates, want 3", second.Tally.Duplicates)
	}
}

func TestFleetFailedPostActedOnByTheRetryElsewhere(t *testing.T) {
	f := newFakes(t)
	st := motoTable(t)
	a, b := f.container(t, rulesHook, st), f.container(t, rulesHook, st)
	payload := sqsEvent(t, snsBody("s1", bounce("1", "a@example.com")))
	f.slack.Script(actionstest.Fault500(), actionstest.Fault500()) // both attempts of a's post
	ctx := context.Background()
	if inv := a.Invoke(ctx, payload, 1, 8); !slices.Equal(inv.FailedIDs, []string{"q1"}) {
		t.Fatalf("first container: failed %v, err %v; want q1 failed", inv.FailedIDs, inv.Err)
	}
	if inv := b.Invoke(ctx, payload, 1, 8); inv.Err != nil || len(inv.FailedIDs) > 0 || inv.Tally.Duplicates != 0 {
		t.Fatalf("retry on the second container: failed %v, err %v, duplicates %d", inv.FailedIDs, inv.Err, inv.Tally.Duplicates)
	}
	if n := postsTo(f, "a@example.com"); n != 1 {
		t.Errorf("a@example.com posted %d times, want 1 (by the retry)", n)
	}
	if inv := a.Invoke(ctx, payload, 1, 8); inv.Tally.Duplicates != 1 {
		t.Errorf("a third delivery, to the first container: %d duplicates, want 1", inv.Tally.Duplicates)
	}
}

func TestFleetUnreachableTableFailsTheRecords(t *testing.T) {
	f := newFakes(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cfg := awstest.Moto(t).Config()
	cfg.BaseEndpoint = aws.String(closed)
	cfg.RetryMaxAttempts = 1
	h := f.container(t, rulesHook, state.NewTable(cfg, "nowhere"))
	payload := sqsEvent(t, snsBody("s1", bounce("1", "a@example.com")), snsBody("s2", bounce("2", "x@keep.example")))
	inv := h.Invoke(context.Background(), payload, 2, 8)
	if !slices.Equal(inv.FailedIDs, []string{"q1", "q2"}) {
		t.Errorf("failed %v, want [q1 q2]: a table that cannot be reached fails the records", inv.FailedIDs)
	}
	if posts := f.slack.Posts(); len(posts) > 0 {
		t.Errorf("%d Slack posts, want none", len(posts))
	}
	if calls := f.ses.Calls(); len(calls) > 0 {
		t.Errorf("%d SES calls, want none", len(calls))
	}
	if !strings.Contains(f.log.String(), "state table nowhere") {
		t.Errorf("log %s: want the table named", f.log.String())
	}
}

func TestFleetStormFoldsAfterDigestAfterInAll(t *testing.T) {
	f := newFakes(t)
	st := motoTable(t)
	hs := []*Handler{f.container(t, rulesHook, st), f.container(t, rulesHook, st)} // digest_after: 3
	ctx := context.Background()
	var outcomes []actions.Outcome
	for i := range 6 {
		id := string(rune('1' + i))
		inv := hs[i%2].Invoke(ctx, sqsEvent(t, snsBody("s"+id, bounce(id, "r"+id+"@example.com"))), 1, 8)
		if inv.Err != nil || len(inv.FailedIDs) > 0 {
			t.Fatalf("invocation %d: %v %v", i+1, inv.Err, inv.FailedIDs)
		}
		if inv.Tally.Digested["hook"] == 1 {
			outcomes = append(outcomes, actions.OutcomeDigested)
		} else {
			outcomes = append(outcomes, actions.OutcomePosted)
		}
	}
	want := []actions.Outcome{"posted", "posted", "posted", "digested", "digested", "digested"}
	if !slices.Equal(outcomes, want) {
		t.Errorf("outcomes %v across two containers, want %v: the storm folds after 3 messages in all", outcomes, want)
	}
}

// rulesRepeat suppresses an address at its third Transient bounce within
// seven days, and notifies every bounce.
const rulesRepeat = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s}
rules:
  - name: repeat-soft-bounce
    when: bounce.type == "Transient" && history("Bounce/Transient", "7d") >= 2
    actions: [suppress, {notify: hook}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// transient is a Transient bounce with id to addr, on day day.
func transient(id, addr string, day int) string {
	b := bounce(id, addr)
	b = strings.Replace(b, `"bounceType":"Permanent"`, `"bounceType":"Transient"`, 1)
	return strings.Replace(b, `"timestamp":"2024-05-01T10:00:02.000Z"`, fmt.Sprintf(`"timestamp":"2024-05-%02dT10:00:02.000Z"`, day), 1)
}

func TestFleetHistoryThirdTransientBounceSuppresses(t *testing.T) {
	f := newFakes(t)
	st := motoTable(t)
	hs := []*Handler{f.container(t, rulesRepeat, st), f.container(t, rulesRepeat, st)}
	ctx := context.Background()
	for i := range 3 {
		id := fmt.Sprint(i + 1)
		inv := hs[i%2].Invoke(ctx, sqsEvent(t, snsBody("s"+id, transient(id, "soft@example.com", 1+i))), 1, 8)
		if inv.Err != nil || len(inv.FailedIDs) > 0 {
			t.Fatalf("bounce %d: %v %v", i+1, inv.Err, inv.FailedIDs)
		}
	}
	// A copy of the third, delivered again elsewhere, changes nothing.
	hs[1].Invoke(ctx, sqsEvent(t, snsBody("s3", transient("3", "soft@example.com", 3))), 1, 8)
	suppressed := 0
	for _, c := range f.ses.Calls() {
		if c.Op == actionstest.OpPutSuppressedDestination {
			suppressed++
		}
	}
	if suppressed != 1 {
		t.Errorf("%d suppress calls after three Transient bounces through two containers, want 1", suppressed)
	}
}
