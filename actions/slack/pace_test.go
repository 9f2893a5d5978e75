package slack

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/internal/pace"
)

// TestRetry429PausesEveryPoster: a 429's Retry-After holds the next post
// of every notifier sharing the pacer (every post to the channel), not
// only the retry of the post that got it; the posts then resume one at a
// time, at the pace.
func TestRetry429PausesEveryPoster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := pace.NewPacer(100*time.Millisecond, 1)
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
func postTimes(t *testing.T, pacer *pace.Pacer, n int) []time.Duration {
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
				pacer := pace.NewPacers(tt.scale).For(dests[tt.dest])
				if got := postTimes(t, pacer, tt.posts); !slices.Equal(got, tt.want) {
					t.Errorf("%d posts at %v, want %v", tt.posts, got, tt.want)
				}
			})
		})
	}

	t.Run("destinations that post to the same channel share its pacer", func(t *testing.T) {
		ps := pace.NewPacers(1)
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
			ps := pace.NewPacers(1)
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
