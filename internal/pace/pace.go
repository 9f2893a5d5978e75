package pace

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
)

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
	waiting     int // posts waiting for their turn
}

// NewPacer returns a Pacer that lets one post through every every, at
// most burst at once after a quiet spell; every <= 0 posts without
// waiting, burst < 1 counts as 1.
func NewPacer(every time.Duration, burst int) *Pacer {
	every = max(every, 0)
	return &Pacer{every: every, tau: time.Duration(max(burst, 1)-1) * every}
}

// Pacers hands out the Pacer of each channel or webhook: destinations
// that post to the same one share it. It lives as long as the process, so
// that a reload of the rules keeps the pace. It is safe for concurrent
// use.
type Pacers struct {
	// scale multiplies every pace, so that the processes posting to the
	// same destinations at once keep the destination's pace together.
	scale int

	mu sync.Mutex
	m  map[string]*Pacer
}

// NewPacers returns the Pacers of one of processes that post to the same
// destinations at once (SESROUTER_CONCURRENCY; < 1 counts as 1). Alone,
// a process posts at each destination's pace. One of n > 1 posts at
// pace × (n+1): n to share the pace, and one more pace of room. The
// processes do not talk to each other, so two of them may post within
// the same second, and Slack answers the second one 429; that one's
// schedule then moves by the Retry-After (a second), and the room is
// what lets it land clear of the other processes' posts, where it stays.
// At pace × n there is no such room: the one moved collides with the
// next process, which moves and collides in turn, at every post.
func NewPacers(processes int) *Pacers {
	scale := max(processes, 1)
	if scale > 1 {
		scale++
	}
	return &Pacers{scale: scale, m: map[string]*Pacer{}}
}

// For returns the pacer of d's channel or webhook, made on first use
// with d's pace and burst.
func (ps *Pacers) For(d *rules.Destination) *Pacer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	every := d.Pace * time.Duration(ps.scale)
	key := d.Target()
	if p := ps.m[key]; p != nil {
		p.set(every, d.Burst) // the rules were reloaded, maybe with another pace
		return p
	}
	p := NewPacer(every, d.Burst)
	ps.m[key] = p
	return p
}

// set changes the pace, keeping the turns already given.
func (p *Pacer) set(every time.Duration, burst int) {
	q := NewPacer(every, burst)
	p.mu.Lock()
	p.every, p.tau = q.every, q.tau
	p.mu.Unlock()
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
			return fmt.Errorf("not posted: the destination's turn comes in %s, after the deadline (it is paced at one post every %s)", start.Sub(now).Round(time.Millisecond), p.every)
		}
		prev := p.tat
		if p.tat.Before(start) {
			p.tat = start
		}
		p.tat = p.tat.Add(p.every)
		end, pauses := p.tat, p.pauses
		p.mu.Unlock()

		if wait := time.Until(start); wait > 0 {
			if err := p.sleep(ctx, wait); err != nil {
				p.giveBack(prev, end, pauses)
				return err
			}
		}
		p.mu.Lock()
		paused := p.pauses != pauses
		p.mu.Unlock()
		if !paused {
			return nil
		}
		// A 429 paused the destination while this post waited: the turn
		// it had belongs to the old schedule, and is taken again on the
		// new one.
	}
}

// giveBack returns the turn that moved the schedule from prev to end,
// when no later one was given and no pause came meanwhile: a post that
// gave up waiting leaves no gap. It restores prev rather than taking a
// pace off end: after a pause or a reload, end - pace may be another
// post's turn.
func (p *Pacer) giveBack(prev, end time.Time, pauses int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pauses == pauses && p.tat.Equal(end) {
		p.tat = prev
	}
}

// PausedUntil is when the last pause (Pause) ends; the zero time when
// there was none.
func (p *Pacer) PausedUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pausedUntil
}

// Pause holds every post to the destination for d (a 429's Retry-After);
// the posts then resume at the pace, one at a time, on a new schedule
// that starts when the pause ends. Starting anew matters when several
// processes post to one destination, each at its own pace: a process
// whose post collided with another's would, on its old schedule, collide
// again at every turn; moved by the pause, it falls in the gap between
// the other's posts.
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
	// after one Every later. The turns already given are taken again.
	p.tat = until.Add(p.tau)
}

// sleep waits d for the caller's turn, counted as waiting.
func (p *Pacer) sleep(ctx context.Context, d time.Duration) error {
	p.mu.Lock()
	p.waiting++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("not posted: %w", context.Cause(ctx))
	case <-t.C:
		return nil
	}
}

// Queue says how many posts wait for their turn on every pacer, and when
// the last of them will have gone (zero when none waits).
func (ps *Pacers) Queue() (waiting int, drained time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.m {
		p.mu.Lock()
		if p.waiting > 0 {
			waiting += p.waiting
			if p.tat.After(drained) {
				drained = p.tat
			}
		}
		p.mu.Unlock()
	}
	return waiting, drained
}
