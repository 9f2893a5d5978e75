package pace

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
