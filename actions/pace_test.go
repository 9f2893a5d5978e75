package actions

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The pacer tests run in synctest bubbles: time is the bubble's fake
// clock, so every turn is checked to the nanosecond and none waits for
// real.

// waitTimes calls p.Wait from n goroutines at once and returns how long
// after the start each call returned, in increasing order.
func waitTimes(t *testing.T, p *Pacer, n int) []time.Duration {
	t.Helper()
	start := time.Now()
	var (
		mu    sync.Mutex
		times []time.Duration
		wg    sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			if err := p.Wait(context.Background()); err != nil {
				t.Error(err)
			}
			mu.Lock()
			times = append(times, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(times)
	return times
}

func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

func TestPacerSpacesPosts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 3 at once, then one every 20 ms.
		got := waitTimes(t, NewPacer(20*time.Millisecond, 3), 8)
		if want := ms(0, 0, 0, 20, 40, 60, 80, 100); !slices.Equal(got, want) {
			t.Errorf("8 posts at %v, want %v", got, want)
		}
	})
}

func TestPacerPauseHoldsEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(time.Millisecond, 1)
		p.Pause(150 * time.Millisecond)
		// None before the pause ends; then one at a time, at the pace.
		got := waitTimes(t, p, 4)
		if want := ms(150, 151, 152, 153); !slices.Equal(got, want) {
			t.Errorf("4 posts at %v, want %v", got, want)
		}
	})
}

// TestPacerPauseTakesBackAWaitingTurn: a post already waiting for its
// turn when a pause comes waits for the pause to end, and the posts then
// go one at a time.
func TestPacerPauseTakesBackAWaitingTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(time.Second, 1)
		start := time.Now()
		if err := p.Wait(context.Background()); err != nil { // the first post, at once
			t.Fatal(err)
		}
		var waited time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := p.Wait(context.Background()); err != nil { // its turn is at 1s
				t.Error(err)
			}
			waited = time.Since(start)
		}()
		time.AfterFunc(500*time.Millisecond, func() { p.Pause(3 * time.Second) }) // a 429 with Retry-After: 3
		<-done
		if waited != 3500*time.Millisecond {
			t.Errorf("the waiting post went at %s, want 3.5s, when the pause ended", waited)
		}
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if next := time.Since(start); next != 4500*time.Millisecond {
			t.Errorf("the next post went at %s, want 4.5s, one pace after", next)
		}
	})
}

func TestPacerFailsAtOncePastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(time.Minute, 1)
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := p.Wait(ctx)
		want := "not posted: the destination's turn comes in 1m0s, after the deadline (Slack takes about one message per second)"
		if err == nil || err.Error() != want {
			t.Errorf("error %v\nwant %s", err, want)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("failed after %s, want at once", d)
		}
		// The turn it did not take is still free: the next post goes at
		// 1m, not 2m.
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("the next post went at %s, want 1m", d)
		}
		var nilPacer *Pacer
		if err := nilPacer.Wait(ctx); err != nil {
			t.Errorf("nil Pacer: %v", err)
		}
	})
}

func TestPacerWaitEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(time.Minute, 1)
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Second, cancel)
		start := time.Now()
		err := p.Wait(ctx)
		if err == nil || err.Error() != "not posted: context canceled" || !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want not posted: context canceled", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("gave up after %s, want 10s, when the context ended", d)
		}
	})
}

// TestRetry429PausesEveryPoster: a 429's Retry-After holds the next post
// of every notifier sharing the pacer (every post to the channel), not
// only the retry of the post that got it; the posts then resume one at a
// time, at the pace.
func TestRetry429PausesEveryPoster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(100*time.Millisecond, 1)
		throttled := &scriptedPost{start: time.Now(), errs: []error{rateLimited(time.Second)}}
		other := &scriptedPost{start: throttled.start}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := withRetry(context.Background(), DefaultRetry(), p, throttled.post); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait() // the first post has had its 429 and waits out the Retry-After
		wg.Go(func() {
			if err := withRetry(context.Background(), DefaultRetry(), p, other.post); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if want := ms(1000); !slices.Equal(other.tries, want) {
			t.Errorf("the other post went at %v, want %v, when the Retry-After ended", other.tries, want)
		}
		if want := ms(0, 1100); !slices.Equal(throttled.tries, want) {
			t.Errorf("the throttled post went at %v, want %v: its retry one pace after the other post", throttled.tries, want)
		}
	})
}
