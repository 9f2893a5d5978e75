package storm

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
)

// Batch gathers the digests of one batch: what its notifications folded,
// per destination. Dispatch folds into it (Admit); Flush posts the
// digests once every Dispatch of the batch has returned. It is safe for
// concurrent use.
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
	digest       *actions.Digest
	notifier     actions.Notifier
	inputs, keys []string
	claims       [][]string
}

var _ actions.Folder = (*Batch)(nil)

// Admit implements actions.Folder: it says whether the notice to d is posted
// (true) or folded into the batch's digest for d (false), and, when d
// has an open storm thread (the first fold starts one), its ts: the
// notice's messages go in it, and its root counts the notice. With
// shared counts (the fleet state), an error when they cannot be read,
// and then nothing is folded. A nil Batch folds nothing: every notice is
// posted.
func (b *Batch) Admit(ctx context.Context, d *rules.Destination, n actions.Notifier, notice *actions.Notice) (bool, string, error) {
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
func (b *Batch) fold(d *rules.Destination, n actions.Notifier, notice *actions.Notice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.dests[d.Name]
	if g == nil {
		g = &folded{dest: d, digest: actions.NewDigest(d)}
		if b.sweep {
			g.digest = actions.NewSweepDigest(d)
		}
		b.dests[d.Name] = g
	}
	g.notifier = n
	if b.keep {
		g.inputs = append(g.inputs, notice.Notification.Input)
		keys := dedup.Keys(notice.Notification)
		g.keys = append(g.keys, keys...)
		g.claims = append(g.claims, keys)
	}
	g.digest.Add(notice)
}

// DigestResult is what became of one digest.
type DigestResult struct {
	Destination string
	// Outcome is actions.OutcomePosted, actions.OutcomeDryRun or
	// actions.OutcomeFailed (with Err).
	Outcome actions.Outcome
	Err     error
	Message actions.Message
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
