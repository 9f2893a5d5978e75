package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
)

// gate is a Notifier whose posts wait until the test opens it, so that a
// test can hold actions in flight.
type gate struct {
	open    chan struct{}
	mu      sync.Mutex
	waiting int
	posted  int
}

func (g *gate) Post(ctx context.Context, _ actions.Message) (actions.Outcome, error) {
	g.mu.Lock()
	g.waiting++
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-ctx.Done():
		return actions.OutcomeFailed, ctx.Err()
	}
	g.mu.Lock()
	g.posted++
	g.mu.Unlock()
	return actions.OutcomePosted, nil
}

func (g *gate) Payload(actions.Message) []byte { return []byte("{}") }

// gated is a Handler for rulesHook whose notifier is g.
func gated(t *testing.T, g *gate) *Handler {
	cfg := loadConfig(t, rulesHook)
	return &Handler{Router: cfg.Router, Seen: dedup.NewSeen(100), Dispatcher: &actions.Dispatcher{
		Destinations: slack.ByName(cfg.Destinations), Notifiers: map[string]actions.Notifier{"hook": g},
		SES: suppression.DryRun(), Log: actions.DryRunLogbook()}}
}

// TestRunnerOrderAndWindow checks that items are emitted in input order
// whatever order their actions end in, and that reading stops while the
// window is full: with every action held, no more than the window (and
// the one being routed) is read.
func TestRunnerOrderAndWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, window = 40, 5
		g := &gate{open: make(chan struct{})}
		h := gated(t, g)
		var lines []string
		for i := range n {
			lines = append(lines, bounce(fmt.Sprint(i), fmt.Sprintf("a%d@example.com", i)))
		}
		next := items(t, lines...)
		read := 0
		counted := func() (ses.Item, bool) { read++; return next() }
		var emitted []string
		r := Runner{Handler: h, Concurrency: 3, Window: window, Emit: func(j *Job) { emitted = append(emitted, j.Item.Input) }}
		done := make(chan struct{})
		go func() { r.Run(context.Background(), context.Background(), counted); close(done) }()
		synctest.Wait() // every goroutine blocked: the actions held, the window full
		if g.waiting != 3 {
			t.Errorf("%d actions in flight, want the concurrency, 3", g.waiting)
		}
		// window in the queue (one held by the writer), one routed and
		// waiting to enter, one read and being routed.
		if read > window+2 {
			t.Errorf("%d items read with the actions held and a window of %d", read, window)
		}
		close(g.open)
		<-done
		if len(emitted) != n {
			t.Fatalf("%d emitted, want %d", len(emitted), n)
		}
		for i, in := range emitted {
			if want := fmt.Sprintf("in:%d", i+1); in != want {
				t.Fatalf("emitted[%d] = %s, want %s (input order)", i, in, want)
			}
		}
	})
}

// TestRunnerFirstCopyWins checks that of two copies of a notification,
// the first in input order is the one acted on, however the actions are
// scheduled.
func TestRunnerFirstCopyWins(t *testing.T) {
	for range 20 {
		g := &gate{open: make(chan struct{})}
		close(g.open)
		h := gated(t, g)
		msg := bounce("dup", "a@example.com")
		next := items(t, snsBody("sns-1", msg), bounce("x", "b@example.com"), snsBody("sns-1", msg))
		var jobs []*Job
		r := Runner{Handler: h, Concurrency: 8, Emit: func(j *Job) { jobs = append(jobs, j) }}
		r.Run(context.Background(), context.Background(), next)
		if jobs[0].Duplicate || !jobs[2].Duplicate {
			t.Fatalf("duplicate flags %v %v %v, want the third copy to be the duplicate", jobs[0].Duplicate, jobs[1].Duplicate, jobs[2].Duplicate)
		}
		if jobs[2].Results[0].Outcome != actions.OutcomeDuplicate || jobs[0].Results[0].Outcome != actions.OutcomePosted {
			t.Fatalf("outcomes %s, %s", jobs[0].Results[0].Outcome, jobs[2].Results[0].Outcome)
		}
	}
}

// TestRunnerStopsReading checks that once ctx ends, nothing more is read
// and what was read is still emitted.
func TestRunnerStopsReading(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	h := gated(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	reads := 0
	next := func() (ses.Item, bool) {
		reads++
		if reads == 3 {
			cancel()
		}
		return ses.Decode(fmt.Sprintf("in:%d", reads), []byte(bounce(fmt.Sprint(reads), "a@example.com")))[0], true
	}
	var emitted int
	r := Runner{Handler: h, Emit: func(*Job) { emitted++ }}
	r.Run(ctx, context.Background(), next)
	if reads > 4 || emitted > reads || emitted < 2 {
		t.Errorf("read %d, emitted %d after the stop at the third read", reads, emitted)
	}
}
