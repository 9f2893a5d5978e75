package actions

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Pace is how fast a destination is posted to: one message every Every,
// with at most Burst messages at once after a quiet spell.
type Pace struct {
	Every time.Duration
	Burst int
}

// DefaultPace is the pace of every Slack destination: Slack takes about
// one message per second per channel and answers 429 beyond. One message
// every 1.1 s, without a burst, keeps clear of that limit even when the
// network delays one post and not the next.
func DefaultPace() Pace { return Pace{Every: 1100 * time.Millisecond, Burst: 1} }

// Pacer makes the posts to one destination wait their turn: a token
// bucket (one token every Pace.Every, at most Pace.Burst), shared by every
// goroutine posting there, which a 429's Retry-After pauses for all of
// them. The zero Pacer is not usable; make one with NewPacer. A nil
// *Pacer lets every post through at once.
type Pacer struct {
	every time.Duration
	tau   time.Duration // how far ahead of its turn a post may go: (Burst-1)*Every

	mu          sync.Mutex
	tat         time.Time // when the bucket is next full again (GCRA's theoretical arrival time)
	pausedUntil time.Time
	pauses      int // counts the pauses, so that a waiter sees one that came meanwhile
}

// NewPacer returns a Pacer for p; Every <= 0 posts without waiting, Burst
// < 1 counts as 1.
func NewPacer(p Pace) *Pacer {
	return &Pacer{every: max(p.Every, 0), tau: time.Duration(max(p.Burst, 1)-1) * max(p.Every, 0)}
}

// Wait blocks until the caller may post. It fails at once, without
// waiting, when its turn comes after ctx's deadline, and when ctx ends
// meanwhile.
func (p *Pacer) Wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	for {
		p.mu.Lock()
		now := time.Now()
		start := now
		if t := p.tat.Add(-p.tau); t.After(start) {
			start = t
		}
		if p.pausedUntil.After(start) {
			start = p.pausedUntil
		}
		if dl, ok := ctx.Deadline(); ok && start.After(dl) {
			p.mu.Unlock()
			return fmt.Errorf("not posted: the destination's turn comes in %s, after the deadline (Slack takes about one message per second)", start.Sub(now).Round(time.Millisecond))
		}
		if p.tat.Before(start) {
			p.tat = start
		}
		p.tat = p.tat.Add(p.every)
		pauses := p.pauses
		p.mu.Unlock()

		if wait := time.Until(start); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("not posted: %w", context.Cause(ctx))
			case <-t.C:
			}
		}
		p.mu.Lock()
		paused := p.pauses != pauses && p.pausedUntil.After(time.Now())
		p.mu.Unlock()
		if !paused {
			return nil
		}
		// A 429 paused the destination while this post waited: its turn
		// is taken again, after the pause.
	}
}

// Pause holds every post to the destination for d (a 429's Retry-After);
// the posts then resume at the pace, one at a time.
func (p *Pacer) Pause(d time.Duration) {
	if p == nil || d <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	until := time.Now().Add(d)
	if !until.After(p.pausedUntil) {
		return
	}
	p.pausedUntil = until
	p.pauses++
	// No burst right after a pause: the next post goes at until, the one
	// after one Every later.
	if t := until.Add(p.tau); p.tat.Before(t) {
		p.tat = t
	}
}
