package storm

import (
	"context"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
)

// Storm threads. When a destination that threads (rules.Destination.Threads,
// and a Threader to post with) starts to fold, one root message says so;
// for one digest_window from then, the destination's digests and other
// messages go in the root's thread, and the root is edited in place with
// the running counts at most every RootEditEvery, and once at the end of
// the window with the totals.

// RootEditEvery is the least time between two edits of a storm's root.
const RootEditEvery = 10 * time.Second

// Roots is where the root of each destination's storm thread is kept.
// New keeps them in the process; with fleet state, Roots shared by every
// process of the fleet (NewFleet, with pipeline.StormRoots) give the
// fleet one root per storm.
type Roots interface {
	// Claim returns the ts of dest's root for the storm window that ends
	// at end, calling post to post one when there is none yet; posted
	// says whether this call posted it (and so owns its edits).
	Claim(ctx context.Context, dest string, end time.Time, post func(context.Context) (string, error)) (ts string, posted bool, err error)
	// Release forgets dest's root ts once its window has ended.
	Release(dest, ts string)
}

// processRoots keeps the roots in the process.
type processRoots struct {
	mu    sync.Mutex
	roots map[string]*processRoot
}

type processRoot struct {
	ready chan struct{} // closed once ts (or err) is set
	ts    string
	err   error
}

// newProcessRoots returns Roots kept in this process: one root per
// destination's storm, per process.
func newProcessRoots() Roots { return &processRoots{roots: map[string]*processRoot{}} }

// Claim implements Roots. Concurrent claims for one destination wait for
// the first to post; a failed post is forgotten, so the next claim tries
// again.
func (p *processRoots) Claim(ctx context.Context, dest string, _ time.Time, post func(context.Context) (string, error)) (string, bool, error) {
	p.mu.Lock()
	r, ok := p.roots[dest]
	if !ok {
		r = &processRoot{ready: make(chan struct{})}
		p.roots[dest] = r
	}
	p.mu.Unlock()
	if ok {
		select {
		case <-r.ready:
			return r.ts, false, r.err
		case <-ctx.Done():
			return "", false, context.Cause(ctx)
		}
	}
	r.ts, r.err = post(ctx)
	if r.err != nil {
		p.mu.Lock()
		delete(p.roots, dest)
		p.mu.Unlock()
	}
	close(r.ready)
	return r.ts, r.err == nil, r.err
}

// Release implements Roots.
func (p *processRoots) Release(dest, ts string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.roots[dest]; ok && r.ts == ts {
		delete(p.roots, dest)
	}
}

// stormThread is one destination's storm thread, in this process.
type stormThread struct {
	dest     *rules.Destination
	notifier actions.Threader
	ts       string
	owner    bool // this process posted the root, and edits it
	start    time.Time
	end      time.Time
	ctx      context.Context // for the edits: the context that started the storm, without its cancellation

	mu       sync.Mutex // guards the counts and the edit state
	counts   *actions.Digest
	lastEdit time.Time
	pending  *time.Timer // the next edit, when one is due
	ended    bool
	edit     sync.Mutex // one edit at a time, in order
}

// threadFor returns d's open storm thread, starting one (posting its
// root, which counts first) when first is not nil and there is none; nil when d does not thread
// or its root could not be posted (the messages then stay flat).
func (s *Storm) threadFor(ctx context.Context, d *rules.Destination, n actions.Notifier, now time.Time, first *actions.Notice) *stormThread {
	start := first != nil
	th, ok := n.(actions.Threader)
	if s == nil || !ok || !d.Threads() {
		return nil
	}
	s.mu.Lock()
	t := s.threads[d.Name]
	if t != nil || !start {
		s.mu.Unlock()
		if t == nil {
			return nil
		}
		<-t.posted
		if t.ts == "" {
			return nil
		}
		if first != nil {
			t.thread.count(first, now)
		}
		return t.thread
	}
	_, window := d.StormLimits()
	t = &threadSlot{posted: make(chan struct{})}
	s.threads[d.Name] = t
	s.mu.Unlock()

	end := now.Add(window)
	if s.shared != nil {
		// The fleet's fixed window, the same in every process: the
		// window of the shared counts, and the one the roots are keyed by.
		end = now.Truncate(window).Add(window)
	}
	st := &stormThread{dest: d, notifier: th, start: now, end: end, ctx: context.WithoutCancel(ctx), counts: actions.NewDigest(d)}
	st.counts.Add(first)
	ts, owner, err := s.roots.Claim(ctx, d.Name, st.end, func(ctx context.Context) (string, error) {
		return th.PostTS(ctx, st.rootMessage(false))
	})
	if err != nil {
		s.mu.Lock()
		delete(s.threads, d.Name)
		s.mu.Unlock()
		close(t.posted)
		return nil
	}
	st.ts, st.owner, st.lastEdit = ts, owner, now
	t.ts, t.thread = ts, st
	close(t.posted)
	time.AfterFunc(end.Sub(now), func() { s.endThread(d.Name, st) })
	return st
}

// threadSlot is a storm thread while its root is being posted.
type threadSlot struct {
	posted chan struct{} // closed once ts is set, or the post failed
	ts     string
	thread *stormThread
}

// threadTS is the ts of d's open storm thread, "" when there is none.
func (s *Storm) threadTS(name string) string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	t := s.threads[name]
	s.mu.Unlock()
	if t == nil {
		return ""
	}
	<-t.posted
	return t.ts
}

// endThread closes st at the end of its window: the root's last edit
// gives the totals, and the destination's next storm starts a new root.
func (s *Storm) endThread(name string, st *stormThread) {
	s.mu.Lock()
	if t := s.threads[name]; t != nil && t.thread == st {
		delete(s.threads, name)
	}
	s.mu.Unlock()
	st.mu.Lock()
	st.ended = true
	if st.pending != nil {
		st.pending.Stop()
		st.pending = nil
	}
	st.mu.Unlock()
	st.update(true)
	s.roots.Release(name, st.ts)
}

// count adds notice to the thread's counts and edits the root when
// RootEditEvery has passed since its last edit, or arranges the edit for
// when it has.
func (st *stormThread) count(notice *actions.Notice, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.counts.Add(notice)
	if st.ended || st.pending != nil || !st.owner {
		return
	}
	wait := max(st.lastEdit.Add(RootEditEvery).Sub(now), 0)
	st.pending = time.AfterFunc(wait, func() {
		st.mu.Lock()
		st.pending = nil
		ended := st.ended
		if !ended {
			// The edit's time, taken now: a count that comes before the
			// edit is made waits a whole RootEditEvery, not none.
			st.lastEdit = time.Now()
		}
		st.mu.Unlock()
		if !ended {
			st.update(false)
		}
	})
}

// update edits the root: the running counts, or with final the totals.
func (st *stormThread) update(final bool) {
	if !st.owner {
		return
	}
	st.edit.Lock()
	defer st.edit.Unlock()
	st.mu.Lock()
	if st.ended && !final {
		st.mu.Unlock()
		return
	}
	m := st.rootMessage(final)
	st.lastEdit = time.Now()
	st.mu.Unlock()
	// A failed edit is not retried beyond the notifier's own retries: the
	// next edit says all the counts again.
	_ = st.notifier.Update(st.ctx, st.ts, m)
}

// rootMessage is the root of the storm: what it is, since when, and the
// counts so far, or with final the totals of the window. Called with
// st.mu held, or before the thread is shared.
func (st *stormThread) rootMessage(final bool) actions.Message {
	return st.counts.RootMessage(st.start, st.end, RootEditEvery, final)
}
