package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Two copies of one notification handled at once in one process (SNS and
// SQS deliver at least once): the second is never reported a duplicate,
// nor done, before the first's outcome is known. Every test here holds
// the first copy's post until the second is known to be blocked, then
// decides how the post ends.

// answered is a Notifier whose every post waits for the test to answer
// it (answer): nil posts, an error fails the post. A post is answered by
// the address it names, so that the test decides which post ends how.
type answered struct {
	mu      sync.Mutex
	answers map[string]chan error // by address
	posts   int                   // posts begun
}

func newAnswered() *answered { return &answered{answers: map[string]chan error{}} }

// ch is the channel of the posts naming addr.
func (a *answered) ch(addr string) chan error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.answers[addr]
	if c == nil {
		c = make(chan error)
		a.answers[addr] = c
	}
	return c
}

// answer ends the post naming addr, which is held or to come, with err.
func (a *answered) answer(addr string, err error) { a.ch(addr) <- err }

func (a *answered) Post(ctx context.Context, m actions.Message) (actions.Outcome, error) {
	a.mu.Lock()
	a.posts++
	var c chan error
	for addr := range a.answers {
		if strings.Contains(m.Text, addr) {
			c = a.answers[addr]
		}
	}
	a.mu.Unlock()
	if c == nil {
		return actions.OutcomeFailed, fmt.Errorf("no answer for %q", m.Text)
	}
	select {
	case err := <-c:
		if err != nil {
			return actions.OutcomeFailed, err
		}
		return actions.OutcomePosted, nil
	case <-ctx.Done():
		return actions.OutcomeFailed, ctx.Err()
	}
}

func (a *answered) Payload(actions.Message) []byte { return []byte("{}") }

// begun is how many posts have begun.
func (a *answered) begun() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.posts
}

// dupAddr is the recipient of the notification delivered twice.
const dupAddr = "a@example.com"

// errSlack is the failure of the first copy's post.
var errSlack = errors.New("slack: 500")

// answeredHandler is a Handler for rulesHook (no storm: every notify is
// posted) whose notifier is a, with timeout for the actions.
func answeredHandler(t *testing.T, a *answered, timeout time.Duration) *Handler {
	cfg := loadConfig(t, rulesHook)
	return &Handler{Router: cfg.Router, Seen: dedup.NewSeen(100), Timeout: timeout, Dispatcher: &actions.Dispatcher{
		Destinations: slack.ByName(cfg.Destinations), Notifiers: map[string]actions.Notifier{"hook": a},
		SES: suppression.DryRun(), Log: actions.DryRunLogbook()}}
}

// outcome is the outcome of j's one result.
func outcome(t *testing.T, j *Job) actions.Outcome {
	t.Helper()
	if len(j.Results) != 1 {
		t.Fatalf("%s: %d results, want 1", j.Item.Input, len(j.Results))
	}
	return j.Results[0].Outcome
}

// TestRunnerCopyWaitsForTheFirst runs two copies of one SNS notification
// (and another notification between them) through a Runner that acts on
// several items at once. While the first copy's post is held, the second
// posts nothing and is not emitted. When the first fails, the second
// acts in its place; when the first succeeds, the second is a duplicate.
func TestRunnerCopyWaitsForTheFirst(t *testing.T) {
	tests := []struct {
		name         string
		first        error // how the first copy's post ends
		second       actions.Outcome
		posts        int
		dupes, fails int
	}{
		{"first fails: the copy acts", errSlack, actions.OutcomePosted, 3, 0, 1},
		{"first succeeds: the copy is a duplicate", nil, actions.OutcomeDuplicate, 2, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := newAnswered()
				a.ch(dupAddr)
				a.ch("b@example.com")
				h := answeredHandler(t, a, time.Minute)
				msg := bounce("dup", dupAddr)
				next := items(t, snsBody("sns-1", msg), bounce("x", "b@example.com"), snsBody("sns-1", msg))
				var mu sync.Mutex
				var jobs []*Job
				r := Runner{Handler: h, Concurrency: 8, Emit: func(j *Job) { mu.Lock(); jobs = append(jobs, j); mu.Unlock() }}
				done := make(chan struct{})
				go func() { r.Run(context.Background(), context.Background(), next); close(done) }()

				synctest.Wait() // every item read; the posts of the first two held
				if n := a.begun(); n != 2 {
					t.Fatalf("%d posts begun, want 2: the first copy's and the other notification's; the second copy waits", n)
				}
				a.answer("b@example.com", nil)
				a.answer(dupAddr, tt.first)
				synctest.Wait()
				mu.Lock()
				emitted := len(jobs)
				mu.Unlock()
				if tt.first != nil {
					// The second copy is acting now: its post is held.
					if n := a.begun(); n != 3 {
						t.Fatalf("%d posts begun after the first copy failed, want 3", n)
					}
					if emitted != 2 {
						t.Fatalf("%d items emitted while the second copy's post is held, want 2", emitted)
					}
					a.answer(dupAddr, nil)
				}
				<-done

				if len(jobs) != 3 {
					t.Fatalf("%d items emitted, want 3", len(jobs))
				}
				first, second := jobs[0], jobs[2]
				wantFirst := actions.OutcomePosted
				if tt.first != nil {
					wantFirst = actions.OutcomeFailed
				}
				if got := outcome(t, first); got != wantFirst {
					t.Errorf("first copy: %s, want %s", got, wantFirst)
				}
				if got := outcome(t, second); got != tt.second || second.Duplicate != (tt.second == actions.OutcomeDuplicate) {
					t.Errorf("second copy: %s (duplicate %v), want %s", got, second.Duplicate, tt.second)
				}
				if n := a.begun(); n != tt.posts {
					t.Errorf("%d posts, want %d", n, tt.posts)
				}
				tally := NewTally()
				for _, j := range jobs {
					tally.Add(j)
				}
				if tally.Duplicates != tt.dupes || tally.Failed != tt.fails {
					t.Errorf("%d duplicates, %d failed; want %d and %d", tally.Duplicates, tally.Failed, tt.dupes, tt.fails)
				}
			})
		})
	}
}

// TestInvokeSQSCopyOfAFailedRecord sends one SQS batch holding two copies
// of one SNS notification (SNS delivered it twice to the queue: two
// records, two message ids). The first copy's post is held until the
// second copy is waiting, then answered. What the batch reports must
// never let a failed notification be deleted unacted: a first copy that
// failed is named in batchItemFailures, and its copy acts in its place
// (so that it is named too when it fails as well); a copy of a first
// that succeeded is a duplicate.
func TestInvokeSQSCopyOfAFailedRecord(t *testing.T) {
	tests := []struct {
		name          string
		first, second error // how each post ends; the second is made only when the first failed
		failed        []string
		posts, dupes  int
	}{
		{"first fails, copy posts", errSlack, nil, []string{"q1"}, 2, 0},
		{"first fails, copy fails", errSlack, errSlack, []string{"q1", "q2"}, 2, 0},
		{"first posts, copy is a duplicate", nil, nil, nil, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := newAnswered()
				a.ch(dupAddr)
				h := answeredHandler(t, a, time.Minute)
				body := snsBody("sns-1", bounce("dup", dupAddr))
				var inv Invocation
				done := make(chan struct{})
				go func() { inv = h.Invoke(context.Background(), sqsEvent(t, body, body), 8, 8); close(done) }()

				synctest.Wait() // the first copy's post held, the second copy waiting
				if n := a.begun(); n != 1 {
					t.Fatalf("%d posts begun, want 1: the second copy waits for the first", n)
				}
				a.answer(dupAddr, tt.first)
				if tt.first != nil {
					select {
					case a.ch(dupAddr) <- tt.second:
					case <-done:
						t.Error("the invocation ended without acting on the copy of the failed record")
					}
				}
				<-done

				if inv.Err != nil || !inv.SQS {
					t.Fatalf("invocation error %v, SQS %v", inv.Err, inv.SQS)
				}
				if !slices.Equal(inv.FailedIDs, tt.failed) {
					t.Errorf("batchItemFailures %q, want %q", inv.FailedIDs, tt.failed)
				}
				if n := a.begun(); n != tt.posts {
					t.Errorf("%d posts, want %d", n, tt.posts)
				}
				if inv.Tally.Duplicates != tt.dupes {
					t.Errorf("%d duplicates, want %d", inv.Tally.Duplicates, tt.dupes)
				}
			})
		})
	}
}

// testService is a Service with handler h and windows that fold nothing.
func testService(h *Handler) *Service {
	live := &Live{parts: &Parts{}}
	live.cur.Store(&InForce{Handler: h})
	return &Service{live: live, windows: &Windows{Length: time.Second, NewBatch: func() *storm.Batch { return nil }, Flush: func(*storm.Batch) {}}}
}

// TestServiceCopyWaitsForTheFirst hands serve's Service two copies of
// one SNS message, the second while the first's post is held: the second
// is not answered until the first's outcome is known; then it is a
// duplicate (the first succeeded) or acts (it failed). A second copy
// whose request ends first (SNS hung up) fails, and posts nothing.
func TestServiceCopyWaitsForTheFirst(t *testing.T) {
	tests := []struct {
		name   string
		first  error
		hangUp bool // the second copy's request ends while it waits
		second actions.Outcome
		posts  int
	}{
		{"first fails: the copy acts", errSlack, false, actions.OutcomePosted, 2},
		{"first succeeds: the copy is a duplicate", nil, false, actions.OutcomeDuplicate, 1},
		{"the copy's request ends first: it fails", nil, true, actions.OutcomeFailed, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := newAnswered()
				a.ch(dupAddr)
				h := answeredHandler(t, a, time.Minute)
				svc := testService(h)
				defer svc.Close()
				m, err := ses.ParseSNS([]byte(snsBody("sns-1", bounce("dup", dupAddr))))
				if err != nil {
					t.Fatal(err)
				}
				firstDone := make(chan *Job, 1)
				go func() { firstDone <- svc.Handle(context.Background(), m) }()
				synctest.Wait() // the first copy's post is held
				ctx, hangUp := context.WithCancel(context.Background())
				defer hangUp()
				secondDone := make(chan *Job, 1)
				go func() { secondDone <- svc.Handle(ctx, m) }()
				synctest.Wait()
				select {
				case j := <-secondDone:
					t.Fatalf("second copy answered (%s) while the first's outcome is unknown", outcome(t, j))
				default:
				}
				if n := a.begun(); n != 1 {
					t.Fatalf("%d posts begun, want 1", n)
				}
				if tt.hangUp {
					hangUp()
					j := <-secondDone
					if got := outcome(t, j); got != actions.OutcomeFailed || !j.Failed() {
						t.Fatalf("second copy after its request ended: %s, want failed", got)
					}
					a.answer(dupAddr, tt.first)
					<-firstDone
				} else {
					a.answer(dupAddr, tt.first)
					<-firstDone
					if tt.first != nil {
						a.answer(dupAddr, nil) // the second copy's own post
					}
					if got := outcome(t, <-secondDone); got != tt.second {
						t.Errorf("second copy: %s, want %s", got, tt.second)
					}
				}
				if n := a.begun(); n != tt.posts {
					t.Errorf("%d posts, want %d", n, tt.posts)
				}
			})
		})
	}
}

// TestCopyWaitsWithinItsDeadline: a copy waits for the first only until
// its own context ends (Lambda's deadline, a request SNS hung up), then
// fails, exactly then, so that it is delivered again; it posts nothing,
// and leaves the first copy's claim alone: once the first succeeds, a
// later copy is a duplicate.
func TestCopyWaitsWithinItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAnswered()
		a.ch(dupAddr)
		h := answeredHandler(t, a, time.Minute)
		body := snsBody("sns-1", bounce("dup", dupAddr))
		copyOf := func(i int) *Job { return h.Prepare(ses.Decode(fmt.Sprint("in:", i), []byte(body))[0]) }
		first := copyOf(1)
		firstDone := make(chan struct{})
		go func() { h.Act(context.Background(), first, nil); close(firstDone) }()
		synctest.Wait() // the first copy's post is held

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		second := copyOf(2)
		h.Act(ctx, second, nil)
		if waited := time.Since(start); waited != 5*time.Second {
			t.Errorf("the copy gave up after %s, want 5s, its deadline", waited)
		}
		if got := outcome(t, second); got != actions.OutcomeFailed || second.Duplicate {
			t.Errorf("copy past its deadline: %s (duplicate %v), want failed", got, second.Duplicate)
		}
		if fs := second.Failures(); len(fs) != 1 || fs[0].Kind != FailAction || !strings.Contains(fs[0].Err.Error(), "still being handled") {
			t.Errorf("failures %v, want one action failure saying another copy is still being handled", fs)
		}
		if n := a.begun(); n != 1 {
			t.Errorf("%d posts begun, want 1", n)
		}

		a.answer(dupAddr, nil)
		<-firstDone
		if got := outcome(t, first); got != actions.OutcomePosted {
			t.Errorf("first copy: %s, want posted", got)
		}
		third := copyOf(3)
		h.Act(context.Background(), third, nil)
		if got := outcome(t, third); got != actions.OutcomeDuplicate {
			t.Errorf("a copy after the first succeeded: %s, want duplicate", got)
		}
	})
}
