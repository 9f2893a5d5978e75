package actions

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
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
	shared    StormCounter
	foldUntil map[string]time.Time
}

// StormCounter counts a destination's messages across every process
// that shares it (the fleet state), in fixed windows.
type StormCounter interface {
	// CountMessage adds one to the messages of the destination dest in
	// the window of length window that holds now, and returns how many
	// it has had in that window, this one included. An error leaves the
	// notify undecided: it fails.
	CountMessage(ctx context.Context, dest string, window time.Duration, now time.Time) (int64, error)
}

// NewStorm returns a Storm in which no destination has had any message,
// whose storm threads' roots are kept in the process.
func NewStorm() *Storm { return NewStormWithRoots(ProcessRoots()) }

// NewStormWithRoots is NewStorm with the roots of storm threads kept in
// roots: with fleet state, one root per storm for the whole fleet.
func NewStormWithRoots(roots Roots) *Storm {
	return &Storm{posts: map[string][]time.Time{}, threads: map[string]*threadSlot{}, roots: roots}
}

// NewFleetStorm returns a Storm whose counts are shared: a destination
// storms once c counts more than its digest_after messages within the
// digest_window (a fixed window of that length) across every process
// that shares c, however many there are. Its storm threads last to the
// end of that window, and their roots are kept in roots (nil: in the
// process), which, shared too, gives the fleet one root per storm.
func NewFleetStorm(c StormCounter, roots Roots) *Storm {
	if roots == nil {
		roots = ProcessRoots()
	}
	s := NewStormWithRoots(roots)
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

// Batch gathers the digests of one batch: what its notifications folded,
// per destination. Dispatch folds into it (Admit); Flush posts the digests once
// every Dispatch of the batch has returned. It is safe for concurrent use.
type Batch struct {
	storm *Storm // nil: every notify folds (a sweep)
	now   func() time.Time
	keep  bool
	sweep bool

	mu    sync.Mutex
	dests map[string]*folded
}

// NewBatch returns an empty batch under storm. keep says whether to keep
// the inputs and de-duplication keys of what is folded (for a bounded
// batch whose inputs can be retried: a Lambda invocation, a window of
// serve); without it, only counts are kept, so that a long route run's
// memory does not grow with what it folds.
func NewBatch(storm *Storm, keep bool) *Batch {
	return &Batch{storm: storm, now: time.Now, keep: keep, dests: map[string]*folded{}}
}

// NewSweepBatch returns the batch of a sweep: every notify folds, and
// each destination gets one summary message at the end, saying how many
// addresses were taken off the suppression list.
func NewSweepBatch() *Batch {
	return &Batch{now: time.Now, sweep: true, dests: map[string]*folded{}}
}

// folded is what a batch folded for one destination: the digest, the
// notifier of the rules in force when last folded (the digest is posted
// with it), and, when the batch keeps them, the inputs, de-duplication
// keys and claims of the notices folded.
type folded struct {
	dest         *rules.Destination
	digest       *Digest
	notifier     Notifier
	inputs, keys []string
	claims       [][]string
}

var _ Folder = (*Batch)(nil)

// Admit implements Folder: it says whether the notice to d is posted
// (true) or folded into the batch's digest for d (false), and, when d
// has an open storm thread (the first fold starts one), its ts: the
// notice's messages go in it, and its root counts the notice. With
// shared counts (the fleet state), an error when they cannot be read,
// and then nothing is folded. A nil Batch folds nothing: every notice is
// posted.
func (b *Batch) Admit(ctx context.Context, d *rules.Destination, n Notifier, notice *Notice) (bool, string, error) {
	if b == nil {
		return true, "", nil
	}
	var thread *stormThread
	if b.storm != nil {
		now := b.now()
		ok, err := b.storm.decide(ctx, d, now)
		if err != nil {
			return false, "", err
		}
		if ok {
			thread = b.storm.threadFor(ctx, d, n, now, nil)
			if thread != nil {
				thread.count(notice, now)
				return true, thread.ts, nil
			}
			return true, "", nil
		}
		thread = b.storm.threadFor(ctx, d, n, now, notice)
	}
	b.fold(d, n, notice)
	if thread != nil {
		return false, thread.ts, nil
	}
	return false, "", nil
}

// fold folds notice into the batch's digest for d.
func (b *Batch) fold(d *rules.Destination, n Notifier, notice *Notice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.dests[d.Name]
	if g == nil {
		g = &folded{dest: d, digest: NewDigest(d)}
		if b.sweep {
			g.digest = NewSweepDigest(d)
		}
		b.dests[d.Name] = g
	}
	g.notifier = n
	if b.keep {
		g.inputs = append(g.inputs, notice.Notification.Input)
		keys := SeenKeys(notice.Notification)
		g.keys = append(g.keys, keys...)
		g.claims = append(g.claims, keys)
	}
	g.digest.Add(notice)
}

// DigestResult is what became of one digest.
type DigestResult struct {
	Destination string
	// Outcome is OutcomePosted, OutcomeDryRun or OutcomeFailed (with Err).
	Outcome Outcome
	Err     error
	Message Message
	// Notifications and Recipients are what the digest folded.
	Notifications, Recipients int
	// Inputs are the inputs of the notifications folded, and Keys their
	// de-duplication keys, when the batch keeps them: a failed digest
	// leaves them unseen, so they count as failed and their keys are to
	// be forgotten.
	Inputs, Keys []string
	// Claims are the keys of each notification folded, one slice per
	// notification, when the batch keeps them: the claims in the fleet
	// state to release.
	Claims [][]string
}

// String says what became of the digest, in a line:
//
//	digest to ses-alerts posted: 990 more bounces …
func (r DigestResult) String() string {
	s := "digest to " + r.Destination + " " + string(r.Outcome) + ": " + r.Message.Text
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Flush posts one digest message to each destination that folded
// anything, in the order of the rules file, and says what became of
// each. The batch is then empty (Flush may be called again).
func (b *Batch) Flush(ctx context.Context) []DigestResult {
	b.mu.Lock()
	dests := slices.SortedFunc(maps.Values(b.dests), func(x, y *folded) int {
		return cmp.Or(cmp.Compare(x.dest.Index, y.dest.Index), cmp.Compare(x.dest.Name, y.dest.Name))
	})
	b.dests = map[string]*folded{}
	b.mu.Unlock()
	var results []DigestResult
	for _, g := range dests {
		r := DigestResult{Destination: g.dest.Name, Message: g.digest.Message(), Notifications: g.digest.Notifications(),
			Recipients: g.digest.Recipients(), Inputs: g.inputs, Keys: g.keys, Claims: g.claims}
		r.Message.ThreadTS = b.storm.threadTS(g.dest.Name)
		r.Outcome, r.Err = g.notifier.Post(ctx, r.Message)
		results = append(results, r)
	}
	return results
}
