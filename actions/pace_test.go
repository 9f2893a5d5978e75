package actions

import (
	"context"
	"errors"
	"fmt"
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
		want := "not posted: the destination's turn comes in 1m0s, after the deadline (it is paced at one post every 1m0s)"
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
		// The turn it gave up is given back: the next post goes at 1m,
		// not 2m.
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("the next post went at %s, want 1m", d)
		}
	})
}

// TestPacerPauseStartsANewSchedule: after a 429, the posts go on a new
// schedule from the end of the pause, so that a process whose post
// collided with another process's moves out of its way instead of
// colliding again at every turn. The retry of the post that had the 429
// goes when the pause ends, the post that was waiting one pace later.
func TestPacerPauseStartsANewSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(3*time.Second, 1)
		start := time.Now()
		if err := p.Wait(context.Background()); err != nil { // A's post, at once
			t.Fatal(err)
		}
		var waited time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := p.Wait(context.Background()); err != nil { // B: its turn was at 3s
				t.Error(err)
			}
			waited = time.Since(start)
		}()
		time.Sleep(500 * time.Millisecond)
		p.Pause(time.Second) // A's post had a 429 with Retry-After: 1
		time.Sleep(time.Second)
		if err := p.Wait(context.Background()); err != nil { // A's retry
			t.Fatal(err)
		}
		if d := time.Since(start); d != 1500*time.Millisecond {
			t.Errorf("the retry went at %s, want 1.5s, when the pause ended", d)
		}
		<-done
		if waited != 4500*time.Millisecond {
			t.Errorf("the waiting post went at %s, want 4.5s, one pace after the retry (at 3s it would have kept the schedule that collided)", waited)
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

// postTimes posts n times at once with withRetry, as a notifier does,
// through pacer, and returns how long after the start each post went, in
// increasing order.
func postTimes(t *testing.T, pacer *Pacer, n int) []time.Duration {
	t.Helper()
	p := &scriptedPost{start: time.Now()}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := withRetry(context.Background(), DefaultRetry(), pacer, p.post); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	slices.Sort(p.tries)
	return p.tries
}

// TestDestinationPace follows a destination's pace and burst from the
// rules file to the posts: Pacers gives each channel or webhook its
// pacer, scaled by the number of processes posting at once
// (SESROUTER_CONCURRENCY): n > 1 processes post at pace × (n+1).
func TestDestinationPace(t *testing.T) {
	dests := ByName(mustParseDestinations(t, `version: 1
destinations:
  eager:
    slack: {channel: C0000000001, pace: 0s}
  bursty:
    slack: {channel: C0000000002, pace: 1s, burst: 3}
  plain:
    slack: {channel: C0000000003}
  same-channel:
    slack: {channel: C0000000002, pace: 1s, burst: 3}
  hook: # a webhook whose variable is named as the channel above
    slack: {webhook_env: C0000000002, pace: 1s, burst: 3}
rules: []
`))
	tests := []struct {
		dest  string
		scale int
		posts int
		want  []time.Duration
	}{
		{"eager", 1, 10, ms(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"eager", 4, 5, ms(0, 0, 0, 0, 0)},
		{"bursty", 1, 6, ms(0, 0, 0, 1000, 2000, 3000)},
		{"bursty", 3, 5, ms(0, 0, 0, 4000, 8000)},
		{"plain", 1, 3, ms(0, 1100, 2200)},
		{"plain", 2, 3, ms(0, 3300, 6600)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s×%d", tt.dest, tt.scale), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pacer := NewPacers(tt.scale).For(dests[tt.dest])
				if got := postTimes(t, pacer, tt.posts); !slices.Equal(got, tt.want) {
					t.Errorf("%d posts at %v, want %v", tt.posts, got, tt.want)
				}
			})
		})
	}

	t.Run("destinations that post to the same channel share its pacer", func(t *testing.T) {
		ps := NewPacers(1)
		if ps.For(dests["bursty"]) != ps.For(dests["same-channel"]) {
			t.Error("two destinations of one channel got two pacers")
		}
		if ps.For(dests["bursty"]) == ps.For(dests["hook"]) {
			t.Error("a channel and a webhook share a pacer")
		}
		if ps.For(dests["eager"]) == ps.For(dests["plain"]) {
			t.Error("two channels share a pacer")
		}
	})

	t.Run("a reload with another pace keeps the pacer and its turns", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ps := NewPacers(1)
			p := ps.For(dests["plain"])
			start := time.Now()
			if err := p.Wait(context.Background()); err != nil { // the turn after it is at 1.1s
				t.Fatal(err)
			}
			slower := *dests["plain"]
			slower.Pace, slower.Burst = 3*time.Second, 1
			if ps.For(&slower) != p {
				t.Fatal("the reloaded destination got a new pacer")
			}
			for _, want := range ms(1100, 4100) {
				if err := p.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got != want {
					t.Errorf("post at %s, want %s", got, want)
				}
			}
		})
	})
}

// TestPacerGiveBackKeepsOthersTurns: a post that gives up gives back
// only its own turn, never one that a later post holds: not after a
// pause moved the schedule, nor after a reload changed the pace.
func TestPacerGiveBackKeepsOthersTurns(t *testing.T) {
	// wait posts through p when the clock reaches at, and says when it went.
	wait := func(t *testing.T, p *Pacer, at time.Duration, start time.Time) <-chan time.Duration {
		done := make(chan time.Duration, 1)
		time.AfterFunc(at, func() {
			if err := p.Wait(context.Background()); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		})
		return done
	}
	t.Run("after a pause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := NewPacer(time.Second, 1)
			start := time.Now()
			if err := p.Wait(context.Background()); err != nil { // at once; the next turn is at 1s
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error)
			go func() { gaveUp <- p.Wait(ctx) }() // its turn ends at 2s
			synctest.Wait()
			p.Pause(time.Second)                         // a 429: the new schedule starts at 1s
			b := wait(t, p, 500*time.Millisecond, start) // takes the turn at 1s, which ends at 2s
			time.AfterFunc(600*time.Millisecond, cancel) // the waiting post gives up
			c := wait(t, p, 700*time.Millisecond, start) // must not go at 1s too
			if err := <-gaveUp; err == nil {
				t.Fatal("the cancelled post went")
			}
			if tb, tc := <-b, <-c; tb != time.Second || tc != 2*time.Second {
				t.Errorf("posts went at %s and %s, want 1s and 2s", tb, tc)
			}
		})
	})
	t.Run("after a reload", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := NewPacer(time.Second, 1)
			start := time.Now()
			if err := p.Wait(context.Background()); err != nil { // at once; the next turn is at 1s
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error)
			go func() { gaveUp <- p.Wait(ctx) }() // its turn is at 1s
			synctest.Wait()
			p.set(3*time.Second, 1) // the rules were reloaded with a slower pace
			cancel()
			if err := <-gaveUp; err == nil {
				t.Fatal("the cancelled post went")
			}
			if got := <-wait(t, p, 0, start); got != time.Second {
				t.Errorf("the next post went at %s, want 1s, one old pace after the first", got)
			}
		})
	})
}
