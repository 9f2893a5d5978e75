package output

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// rulesHistory suppresses an address at its third Transient bounce within
// seven days, and notifies every bounce.
const rulesHistory = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s}
rules:
  - name: third-soft-bounce
    when: bounce.type == "Transient" && history("Bounce/Transient", "7d") >= 2
    actions: [suppress, {notify: hook}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// readOnly is a state Store that fails the test on every write.
type readOnly struct {
	*state.Memory
	t *testing.T
}

func (r readOnly) Claim(context.Context, string, time.Duration) (string, bool, error) {
	r.t.Error("a dry run claimed in the state table")
	return "", false, nil
}
func (r readOnly) Complete(context.Context, string, string, time.Duration) error {
	r.t.Error("a dry run completed a claim")
	return nil
}
func (r readOnly) Release(context.Context, string, string) error {
	r.t.Error("a dry run released a claim")
	return nil
}
func (r readOnly) Add(context.Context, string, time.Time) (int64, error) {
	r.t.Error("a dry run counted a storm message in the state table")
	return 0, nil
}
func (r readOnly) Record(context.Context, string, time.Time, string, time.Time) error {
	r.t.Error("a dry run recorded history")
	return nil
}

// explainHistory routes one Transient bounce to soft@example.com, on
// 2024-05-01, through a dry run with explain whose history is read from
// st (nil: none), written by the writer of format.
func explainHistory(t *testing.T, st state.Store, format string) string {
	t.Helper()
	cfg, err := pipeline.LoadBytes("rules.yaml", []byte(rulesHistory))
	if err != nil {
		t.Fatal(err)
	}
	h := &pipeline.Handler{Router: cfg.Router, Dispatcher: cfg.DryRun(), Storm: storm.New(), ReadState: st}
	var out bytes.Buffer
	o, err := New(&out, format, true, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Replace(bounce("9", "soft@example.com"), `"bounceType":"Permanent"`, `"bounceType":"Transient"`, 1)
	ctx := context.Background()
	if res := pipeline.Route(ctx, ctx, h, o, true, pipeline.NewProgress(nil, false, nil), items(line), nil, time.Second, nil); res.WriteErr != nil {
		t.Fatal(res.WriteErr)
	}
	return out.String()
}

// TestExplainShowsHistory checks that -explain shows the history counts
// a rule saw, in text and JSON: read from the state table in a dry run,
// which writes nothing to it, and 0 without a table.
func TestExplainShowsHistory(t *testing.T) {
	mem := state.NewMemory()
	ctx := context.Background()
	for i, day := range []int{26, 29} { // within seven days of 2024-05-01
		at := time.Date(2024, 4, day, 9, 0, 0, 0, time.UTC)
		if err := mem.Record(ctx, state.HistoryKey("soft@example.com", "Bounce/Transient"), at, string(rune('a'+i)), at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	st := readOnly{mem, t}

	text := explainHistory(t, st, "text")
	for _, want := range []string{
		"yes third-soft-bounce  (decides)",
		`history("Bounce/Transient", "7d") = 2`,
		"dry-run: put soft@example.com on the SES account suppression list",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text output:\n%s\nwant it to hold %q", text, want)
		}
	}
	js := explainHistory(t, st, "json")
	if want := `"history":[{"kind":"Bounce/Transient","window":"7d","count":2}]`; !strings.Contains(js, want) {
		t.Errorf("JSON output:\n%s\nwant it to hold %s", js, want)
	}
	if evs, _ := mem.Events(ctx, state.HistoryKey("soft@example.com", "Bounce/Transient"), time.Time{}, time.Now()); len(evs) != 2 {
		t.Errorf("%d events in the table after the dry runs, want the 2 written before", len(evs))
	}

	none := explainHistory(t, nil, "text")
	if !strings.Contains(none, `history("Bounce/Transient", "7d") = 0`) || !strings.Contains(none, "yes bounces  (decides)") {
		t.Errorf("text output without a table:\n%s\nwant a count of 0, and the bounces rule deciding", none)
	}
}
