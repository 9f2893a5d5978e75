package storm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
)

// Storms. A destination takes DigestAfter messages within its
// DigestWindow; once it has, its later notifies are folded into a digest
// for the batch they belong to (a route run, a Lambda invocation, a
// window of serve), posted when the batch ends. The storm state outlives
// batches (it lives as long as the process: a warm Lambda container, a
// serve across reloads), so that a storm spread over many small batches
// is still folded; the digests never outlive their batch.

// Storm is the storm state of every destination: when each had its
// recent messages. It is safe for concurrent use.
type Storm struct {
	mu      sync.Mutex
	posts   map[string][]time.Time // by destination: the times of its last DigestAfter messages, oldest first
	threads map[string]*threadSlot // by destination: its open storm thread
	roots   Roots

	// shared, when set, counts the messages of every process instead of
	// posts; foldUntil is then, by destination, the end of the window in
	// which it was last found storming.
	shared    Counter
	foldUntil map[string]time.Time
}

// Counter counts a destination's messages across every process that
// shares it (the fleet state), in fixed windows.
type Counter interface {
	// CountMessage adds one to the messages of the destination dest in
	// the window of length window that holds now, and returns how many
	// it has had in that window, this one included. An error leaves the
	// notify undecided: it fails.
	CountMessage(ctx context.Context, dest string, window time.Duration, now time.Time) (int64, error)
}

// New returns a Storm in which no destination has had any message,
// whose storm threads' roots are kept in the process.
func New() *Storm { return newWithRoots(newProcessRoots()) }

// newWithRoots is New with the roots of storm threads kept in roots:
// with fleet state, one root per storm for the whole fleet.
func newWithRoots(roots Roots) *Storm {
	return &Storm{posts: map[string][]time.Time{}, threads: map[string]*threadSlot{}, roots: roots}
}

// NewFleet returns a Storm whose counts are shared: a destination
// storms once c counts more than its digest_after messages within the
// digest_window (a fixed window of that length) across every process
// that shares c, however many there are. Its storm threads last to the
// end of that window, and their roots are kept in roots (nil: in the
// process), which, shared too, gives the fleet one root per storm.
func NewFleet(c Counter, roots Roots) *Storm {
	if roots == nil {
		roots = newProcessRoots()
	}
	s := newWithRoots(roots)
	s.shared, s.foldUntil = c, map[string]time.Time{}
	return s
}

// decide is admit, from the shared counts when s has them.
func (s *Storm) decide(ctx context.Context, d *rules.Destination, now time.Time) (bool, error) {
	if s.shared == nil {
		return s.admit(d, now), nil
	}
	after, window := d.StormLimits()
	c, err := s.shared.CountMessage(ctx, d.Name, window, now)
	if err != nil {
		return false, fmt.Errorf("storm count of %s: %w", d.Name, err)
	}
	if c <= int64(after) {
		return true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.foldUntil[d.Name] = now.Truncate(window).Add(window)
	return false, nil
}

// admit says whether a notice to d at now is posted (true, and counted)
// or folded (false): folded once d has had DigestAfter notices within
// DigestWindow of now.
func (s *Storm) admit(d *rules.Destination, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	after, window := d.StormLimits()
	recent := s.posts[d.Name]
	cut := 0
	for cut < len(recent) && now.Sub(recent[cut]) >= window {
		cut++
	}
	recent = recent[cut:]
	if len(recent) >= after {
		s.posts[d.Name] = recent
		return false
	}
	recent = append(recent, now)
	s.posts[d.Name] = recent
	return true
}

// Storming reports whether d's later notifies are being folded now.
func (s *Storm) Storming(d *rules.Destination, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared != nil {
		return now.Before(s.foldUntil[d.Name])
	}
	after, window := d.StormLimits()
	n := 0
	for _, t := range s.posts[d.Name] {
		if now.Sub(t) < window {
			n++
		}
	}
	return n >= after
}
