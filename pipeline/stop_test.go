package pipeline

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// TestRunnerRecoversPanics checks that a panic while reading fails an
// item of its own and stops the reading, and that a panic in Emit fails
// the item being emitted, which is emitted again bare, in its place: the
// process lives on and no item is lost or counted twice.
func TestRunnerRecoversPanics(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	h := gated(t, g)
	lines := items(t, bounce("1", "a@example.com"), bounce("2", "b@example.com"), bounce("3", "c@example.com"))
	reads := 0
	next := func() (ses.Item, bool) {
		if reads++; reads == 4 {
			panic("reader broken")
		}
		return lines()
	}
	var emitted []string
	panicked := false
	r := Runner{Handler: h, Concurrency: 2, Emit: func(j *Job) {
		if j.Item.Input == "in:2" && !panicked {
			panicked = true
			panic("writer broken")
		}
		emitted = append(emitted, fmt.Sprintf("%s %v %q", j.Item.Input, j.Plan != nil, j.Panic))
	}}
	r.Run(context.Background(), context.Background(), next)
	want := []string{`in:1 true ""`, `in:2 false "writer broken"`, `in:3 true ""`, `(reading) false "reader broken"`}
	if !slices.Equal(emitted, want) {
		t.Errorf("emitted %q, want %q", emitted, want)
	}
	if reads != 4 {
		t.Errorf("%d reads, want none after the panic", reads)
	}
}

// TestInputsClose checks that Close stops a read in progress from a pipe
// that sends nothing more: the read returns, Next reports no more (not an
// error of the input), and the pipe is closed.
func TestInputsClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		in := Files([]string{"-"}, pr)
		go io.WriteString(pw, bounce("1", "a@example.com")+"\n")
		if it, ok := in.Next(); !ok || it.Notification == nil {
			t.Fatalf("first item %+v, %v", it, ok)
		}
		type next struct {
			it ses.Item
			ok bool
		}
		got := make(chan next, 1)
		go func() {
			it, ok := in.Next()
			got <- next{it, ok}
		}()
		synctest.Wait() // the read waits for the pipe
		in.Close()
		if n := <-got; n.ok {
			t.Errorf("Next after Close: %+v, want no more", n.it)
		}
		if _, ok := in.Next(); ok {
			t.Error("Next once closed: an item")
		}
		if _, err := io.WriteString(pw, "{}\n"); err != io.ErrClosedPipe {
			t.Errorf("writing to the pipe once closed: %v, want io.ErrClosedPipe", err)
		}
	})
}

// digestPanicky posts every message but digests, at which it panics.
type digestPanicky struct{}

func (digestPanicky) Post(_ context.Context, m actions.Message) (actions.Outcome, error) {
	if strings.HasPrefix(m.Text, "Digest") {
		panic("digest broken")
	}
	return actions.OutcomePosted, nil
}
func (digestPanicky) Payload(actions.Message) []byte { return nil }

// TestInvokeDigestPanic checks that a panic while posting the digests
// is recovered: a failed digest, logged, and the records folded into a
// digest are delivered again, since which digest held them is unknown.
func TestInvokeDigestPanic(t *testing.T) {
	f := newFakes(t)
	h, err := f.parts.Handler(context.Background(), loadConfig(t, rulesHook))
	if err != nil {
		t.Fatal(err)
	}
	h.Dispatcher.Notifiers = map[string]actions.Notifier{"hook": digestPanicky{}}
	var bodies []string
	for i := range 5 {
		bodies = append(bodies, snsBody(fmt.Sprint("p", i), bounce(fmt.Sprint(i), fmt.Sprintf("u%d@example.com", i))))
	}
	inv := h.Invoke(context.Background(), sqsEvent(t, bodies...), 1, 8)
	if !slices.Equal(inv.FailedIDs, []string{"q4", "q5"}) {
		t.Errorf("failed ids %v, want the two folded into a digest", inv.FailedIDs)
	}
	if inv.Tally.DigestsFailed != 1 {
		t.Errorf("%d digests failed, want 1", inv.Tally.DigestsFailed)
	}
	if !strings.Contains(f.log.String(), "digest broken") {
		t.Errorf("log %s: want the panic", f.log.String())
	}
}
