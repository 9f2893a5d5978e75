package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// sqsEvent is a Lambda SQS event of SNS-wrapped bodies, ids q1, q2, …
func sqsEvent(t testing.TB, bodies ...string) []byte {
	t.Helper()
	type rec struct {
		MessageID   string `json:"messageId"`
		Body        string `json:"body"`
		EventSource string `json:"eventSource"`
	}
	var ev struct {
		Records []rec `json:"Records"`
	}
	for i, b := range bodies {
		ev.Records = append(ev.Records, rec{fmt.Sprintf("q%d", i+1), b, "aws:sqs"})
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInvokeSQS checks what a Lambda SQS batch reports for retry: the
// record whose action failed and the unreadable one, not the record whose
// rule failed (a retry would fail the same way and repeat the other
// recipients' posts), which is logged at error and counted as RuleErrors.
func TestInvokeSQS(t *testing.T) {
	f := newFakes(t)
	f.ses.Suppress("x@keep.example", "BOUNCE", time.Now())
	f.ses.Script(actionstest.FaultAccessDenied()) // the first SES call: q3's unsuppress
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	payload := sqsEvent(t,
		snsBody("s1", bounce("1", "a@example.com")),
		snsBody("s2", bounce("2", "b@fail.example", "c@example.com")),
		snsBody("s3", bounce("3", "x@keep.example")),
		"{not json",
	)
	inv := h.Invoke(context.Background(), payload, 1, 8)
	if inv.Err != nil || !inv.SQS {
		t.Fatalf("invocation error %v, SQS %v", inv.Err, inv.SQS)
	}
	if !slices.Equal(inv.FailedIDs, []string{"q3", "q4"}) {
		t.Errorf("failed ids %v, want [q3 q4]: the failed action and the unreadable body, not the failed rule", inv.FailedIDs)
	}
	if inv.Tally.RuleErrors != 1 || inv.Tally.Failed != 3 {
		t.Errorf("rule errors %d, failed %d; want 1 and 3", inv.Tally.RuleErrors, inv.Tally.Failed)
	}
	posts := f.slack.Posts()
	var texts []string
	for _, p := range posts {
		texts = append(texts, p.Text)
	}
	joined := strings.Join(texts, "\n")
	if !strings.Contains(joined, "a@example.com") || !strings.Contains(joined, "c@example.com") || strings.Contains(joined, "b@fail.example") {
		t.Errorf("posts %q: want a@ and c@ notified, never b@fail.example", texts)
	}
	logs := f.log.String()
	if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, `rule \"fragile\"`) || !strings.Contains(logs, "invocation#2") {
		t.Errorf("log %s: want an error line naming the rule and the input", logs)
	}
}

// TestInvokeSNS checks that an SNS event fails the invocation when an
// action failed (Lambda retries it), but not when only a rule failed.
func TestInvokeSNS(t *testing.T) {
	f := newFakes(t)
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	snsEvent := func(id, ses string) []byte {
		b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{"EventSource": "aws:sns",
			"Sns": map[string]string{"Type": "Notification", "MessageId": id, "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": ses}}}})
		return b
	}
	if inv := h.Invoke(context.Background(), snsEvent("r1", bounce("r1", "b@fail.example")), 1, 8); inv.Err != nil || inv.SQS {
		t.Errorf("a rule that failed: error %v, want none", inv.Err)
	}
	f.slack.Script(actionstest.Fault500(), actionstest.Fault500())
	inv := h.Invoke(context.Background(), snsEvent("r2", bounce("r2", "a@example.com")), 1, 8)
	if inv.Err == nil || !strings.Contains(inv.Err.Error(), "notify:hook") {
		t.Errorf("a post that failed: error %v, want one naming notify:hook", inv.Err)
	}
}

// TestInvokeDigestFailure checks that the records folded into a digest
// that could not be posted are delivered again: nobody has seen them.
// The storm outlives the invocation: the next one folds at once.
func TestInvokeDigestFailure(t *testing.T) {
	f := newFakes(t)
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for i := range 5 {
		bodies = append(bodies, snsBody(fmt.Sprint("d", i), bounce(fmt.Sprint(i), fmt.Sprintf("u%d@example.com", i))))
	}
	f.slack.Script(actionstest.Fault{}, actionstest.Fault{}, actionstest.Fault{}, actionstest.Fault500(), actionstest.Fault500())
	inv := h.Invoke(context.Background(), sqsEvent(t, bodies...), 1, 8)
	if !slices.Equal(inv.FailedIDs, []string{"q4", "q5"}) {
		t.Errorf("failed ids %v, want the two folded into the digest that failed", inv.FailedIDs)
	}
	if inv.Tally.Digested["hook"] != 2 || inv.Tally.DigestsFailed != 1 {
		t.Errorf("digested %v, digests failed %d", inv.Tally.Digested, inv.Tally.DigestsFailed)
	}
	// The keys of what the failed digest folded were forgotten: delivered
	// again, those records are acted on (folded again: the storm goes on).
	inv = h.Invoke(context.Background(), sqsEvent(t, bodies[3:]...), 1, 8)
	if len(inv.FailedIDs) != 0 || inv.Tally.Duplicates != 0 || inv.Tally.Digested["hook"] != 2 || inv.Tally.Digests != 1 {
		t.Errorf("again: failed %v, duplicates %d, digested %v, digests %d", inv.FailedIDs, inv.Tally.Duplicates, inv.Tally.Digested, inv.Tally.Digests)
	}
}

// TestInvokePastDeadline checks that an invocation whose time is up
// still names every record it did not act on, so that SQS delivers them
// again: none is deleted unseen.
func TestInvokePastDeadline(t *testing.T) {
	f := newFakes(t)
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	var want []string
	for i := range 20 {
		bodies = append(bodies, snsBody(fmt.Sprint("l", i), bounce(fmt.Sprint(i), fmt.Sprintf("u%d@example.com", i))))
		want = append(want, fmt.Sprintf("q%d", i+1))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inv := h.Invoke(ctx, sqsEvent(t, bodies...), 2, 4)
	if !slices.Equal(inv.FailedIDs, want) {
		t.Errorf("failed ids %v, want all 20: none was acted on", inv.FailedIDs)
	}
	if n := len(f.slack.Posts()); n != 0 {
		t.Errorf("%d posts after the deadline, want none", n)
	}
}

// panicky is a Notifier that panics.
type panicky struct{}

func (panicky) Post(context.Context, actions.Message) (actions.Outcome, error) { panic("boom") }
func (panicky) Payload(actions.Message) []byte                                 { return nil }

// TestActRecovers checks that a panic while acting on one item fails that
// item, is logged with its input, and the process lives on.
func TestActRecovers(t *testing.T) {
	f := newFakes(t)
	cfg := loadConfig(t, rulesHook)
	h, err := f.parts.Handler(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Dispatcher.Notifiers = map[string]actions.Notifier{"hook": panicky{}}
	inv := h.Invoke(context.Background(), sqsEvent(t, snsBody("p1", bounce("p", "a@example.com"))), 1, 8)
	if !slices.Equal(inv.FailedIDs, []string{"q1"}) {
		t.Errorf("failed ids %v, want q1", inv.FailedIDs)
	}
	if !strings.Contains(f.log.String(), `"panic":"boom"`) || !strings.Contains(f.log.String(), "invocation#1") {
		t.Errorf("log %s: want the panic with the input", f.log.String())
	}
}

// TestFailures pins the kinds of failure of a job, the one place that
// says what failed.
func TestFailures(t *testing.T) {
	cfg := loadConfig(t, rulesHook)
	h := &Handler{Router: cfg.Router, Dispatcher: cfg.DryRun()}
	kinds := func(j *Job) []string {
		var out []string
		for _, f := range j.Failures() {
			out = append(out, f.Kind)
		}
		return out
	}
	unreadable := h.Prepare(ses.Decode("u", []byte("{"))[0])
	rule := h.Prepare(ses.Decode("r", []byte(bounce("r", "b@fail.example")))[0])
	h.Act(context.Background(), rule, nil)
	ok := h.Prepare(ses.Decode("o", []byte(bounce("o", "a@example.com")))[0])
	h.Act(context.Background(), ok, nil)
	for _, tt := range []struct {
		j    *Job
		want []string
	}{{unreadable, []string{FailUnreadable}}, {rule, []string{failRule}}, {ok, nil}} {
		if got := kinds(tt.j); !slices.Equal(got, tt.want) {
			t.Errorf("%s: failures %v, want %v", tt.j.Item.Input, got, tt.want)
		}
	}
}
