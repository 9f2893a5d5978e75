package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Fleet state. With a state table (Handler.State), a notification is
// claimed in it before anything is done, after the process's own Seen
// has let it through: a claim that is not held (another process holds a
// live claim, or acted on it) makes the job a duplicate; a claim whose
// actions failed is released, so that the retry acts; one that
// succeeded becomes a completed record, kept for doneTTL. A table that
// cannot be reached fails the job, so that it is tried again.
const (
	// doneTTL is how long a completed notification is remembered across
	// the fleet: longer than SNS and SQS take to deliver a copy again.
	doneTTL = 24 * time.Hour
	// defaultClaimTTL is the claim's life when the handler has no
	// Timeout.
	defaultClaimTTL = 15 * time.Minute
	// settleTimeout bounds the write that completes or releases a claim,
	// after the actions' own time may have run out.
	settleTimeout = 10 * time.Second
)

// fleetClaim is a job's claim in the state table.
type fleetClaim struct {
	key, token string
}

// claimTTL is how long a claim lives: the time the actions may take, so
// that the claim of a process that died frees the notification once the
// process would have timed out.
func (h *Handler) claimTTL() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return defaultClaimTTL
}

// claimFleet claims j's notification in the state table. held false: the
// job is a duplicate. err: the table could not be reached, and the job
// is to fail.
func (h *Handler) claimFleet(ctx context.Context, j *Job) (held bool, err error) {
	keys := dedup.Keys(j.Item.Notification)
	if len(keys) == 0 {
		return true, nil // never a duplicate, as in one process
	}
	key := state.ClaimKey(keys)
	token, held, err := h.State.Claim(ctx, key, h.claimTTL())
	if err != nil || !held {
		return false, err
	}
	j.fleet = &fleetClaim{key: key, token: token}
	return true, nil
}

// endFleet completes (ok) or releases j's claim in the state table. A
// failure is logged: a claim not completed is free again once its TTL
// passes; one not released, too.
func (h *Handler) endFleet(ctx context.Context, j *Job, ok bool) {
	c := j.fleet
	if c == nil {
		return
	}
	j.fleet = nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	var err error
	if ok {
		err = h.State.Complete(ctx, c.key, c.token, doneTTL)
	} else {
		err = h.State.Release(ctx, c.key, c.token)
	}
	if err != nil && h.Logger != nil {
		h.Logger.LogAttrs(ctx, slog.LevelError, "state table", slog.String("input", j.Item.Input), slog.String("error", err.Error()))
	}
}

// releaseFleet releases the claims of notifications whose digest was not
// posted (their keys, one slice per notification): they are acted on
// again when delivered again.
func (h *Handler) releaseFleet(ctx context.Context, claims [][]string) {
	if h.State == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	for _, keys := range claims {
		if len(keys) == 0 {
			continue
		}
		if err := h.State.Release(ctx, state.ClaimKey(keys), ""); err != nil && h.Logger != nil {
			h.Logger.LogAttrs(ctx, slog.LevelError, "state table", slog.String("error", err.Error()))
		}
	}
}

// failSteps are the results of a plan none of whose steps was tried, for
// err.
func failSteps(p *route.Plan, err error) []actions.Result {
	steps := p.Steps()
	rs := make([]actions.Result, len(steps))
	for i, s := range steps {
		rs[i] = actions.Result{Step: s, Outcome: actions.OutcomeFailed, Err: err}
	}
	return rs
}

// FleetStorm returns the storm state of a fleet that shares st: a
// destination's messages are counted in st, across every process, and
// each storm's root is posted once for the whole fleet (StormRoots).
func FleetStorm(st state.Store) *storm.Storm {
	return storm.NewFleet(StormCounter{st}, StormRoots{st})
}

const (
	// rootWait bounds how long a process waits for the process that
	// claimed a storm's root to note its ts; past it, the process's
	// messages of that storm are posted flat.
	rootWait = 5 * time.Second
	// rootPoll is how often a waiting process reads the root's ts.
	rootPoll = 100 * time.Millisecond
)

// StormRoots keeps the roots of storm threads in a state Store, one per
// destination and fleet storm window: the first process whose storm
// starts claims the root's key (state.RootKey) until the window ends,
// posts the root and notes its ts on the claim; the others read the ts,
// waiting up to rootWait for it, and post in its thread. Only the
// process that posted the root edits it.
type StormRoots struct{ Store state.Store }

var _ storm.Roots = StormRoots{}

// Claim implements storm.Roots. A root whose post failed is released,
// so that the next claim, in this process or another, posts it.
func (r StormRoots) Claim(ctx context.Context, dest string, end time.Time, post func(context.Context) (string, error)) (string, bool, error) {
	key := state.RootKey(dest, end)
	deadline := time.Now().Add(rootWait)
	for {
		token, held, err := r.Store.Claim(ctx, key, max(time.Until(end), rootPoll))
		if err != nil {
			return "", false, fmt.Errorf("storm root of %s: %w", dest, err)
		}
		if held {
			return r.post(ctx, dest, key, token, post)
		}
		ts, err := r.Store.Note(ctx, key)
		if err != nil {
			return "", false, fmt.Errorf("storm root of %s: %w", dest, err)
		}
		if ts != "" {
			return ts, false, nil
		}
		if !time.Now().Before(deadline) {
			return "", false, fmt.Errorf("storm root of %s: its ts not noted within %s", dest, rootWait)
		}
		t := time.NewTimer(rootPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", false, context.Cause(ctx)
		}
	}
}

// post posts the root whose key this process holds with token, and
// notes its ts for the other processes.
func (r StormRoots) post(ctx context.Context, dest, key, token string, post func(context.Context) (string, error)) (string, bool, error) {
	ts, err := post(ctx)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		defer cancel()
		if rerr := r.Store.Release(rctx, key, token); rerr != nil {
			return "", false, errors.Join(err, fmt.Errorf("storm root of %s: %w", dest, rerr))
		}
		return "", false, err
	}
	// A note that cannot be written leaves the root posted: this process
	// threads in it and edits it; the others, not finding its ts, post
	// flat.
	_ = r.Store.SetNote(ctx, key, token, ts)
	return ts, true, nil
}

// Release implements storm.Roots: nothing to do, the root's claim
// expires with its window.
func (StormRoots) Release(string, string) {}

// StormCounter counts a destination's messages in a state Store: one
// atomic counter per destination and window.
type StormCounter struct{ Store state.Store }

var _ storm.Counter = StormCounter{}

// CountMessage implements storm.Counter.
func (c StormCounter) CountMessage(ctx context.Context, dest string, window time.Duration, now time.Time) (int64, error) {
	k, expires := state.StormKey(dest, window, now)
	return c.Store.Add(ctx, k, expires)
}

// historyKeep is how long past its window an event is kept, so that a
// notification that arrives late still finds it.
const historyKeep = 24 * time.Hour

// usesHistory reports whether h's rules count history in its state.
func (h *Handler) usesHistory() bool {
	if h.State == nil {
		return false
	}
	_, _, ok := h.Router.Rules().UsesHistory()
	return ok
}

// routeHistory routes j again with the history of each recipient read
// from the state table, then records j's notification for the kinds the
// rules count (one Query per recipient and kind, one PutItem per
// recipient and kind of the notification). An error leaves j's plan as
// it was: the job is to fail.
func (h *Handler) routeHistory(ctx context.Context, j *Job) error {
	if h.State == nil {
		return nil
	}
	return h.historyFrom(ctx, j, h.State, true)
}

// historyFrom routes j again with the history read from st, and records
// j's notification in st when write is set. An error leaves j's plan as
// it was.
func (h *Handler) historyFrom(ctx context.Context, j *Job, st state.Store, write bool) error {
	kinds, longest, ok := h.Router.Rules().UsesHistory()
	if !ok {
		return nil
	}
	n := j.Item.Notification
	hist, err := readHistory(ctx, st, n, kinds, longest)
	if err != nil {
		return err
	}
	if write {
		mine := []string{n.Event.Type}
		if n.Event.Type == "Bounce" && n.Bounce.Type != "" {
			mine = append(mine, "Bounce/"+n.Bounce.Type)
		}
		expires := hist.at.Add(longest + historyKeep)
		for _, rc := range n.Recipients {
			for _, k := range mine {
				if !slices.Contains(kinds, k) {
					continue
				}
				if err := st.Record(ctx, state.HistoryKey(rc.Address, k), hist.at, hist.id, expires); err != nil {
					return err
				}
			}
		}
	}
	j.Plan = h.Router.RouteWith(n, hist)
	if h.only != nil {
		h.only(j.Plan)
	}
	return nil
}

// ReadHistory returns the history of n in st for the history rules of
// r: what the rules would count for n, read and never written (one Query
// per recipient and kind the rules use). Rules that use no history read
// nothing.
func ReadHistory(ctx context.Context, st state.Store, r *route.Router, n *ses.Notification) (rules.History, error) {
	kinds, longest, ok := r.Rules().UsesHistory()
	if !ok {
		return nil, nil
	}
	h, err := readHistory(ctx, st, n, kinds, longest)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// readHistory reads the events of n's recipients of kinds within longest
// before n.
func readHistory(ctx context.Context, st state.Store, n *ses.Notification, kinds []string, longest time.Duration) (*fleetHistory, error) {
	at, err := time.Parse(time.RFC3339Nano, n.Event.Timestamp)
	if err != nil {
		at = time.Now()
	}
	id := n.Mail.MessageID
	if keys := dedup.Keys(n); len(keys) > 0 {
		id = state.ClaimKey(keys)
	}
	hist := &fleetHistory{at: at, id: id, events: map[string][]state.Event{}}
	for _, rc := range n.Recipients {
		for _, k := range kinds {
			key := state.HistoryKey(rc.Address, k)
			if _, done := hist.events[key]; done {
				continue
			}
			evs, err := st.Events(ctx, key, at.Add(-longest), at)
			if err != nil {
				return nil, err
			}
			hist.events[key] = evs
		}
	}
	return hist, nil
}

// fleetHistory is the history of one notification, from the events read:
// the notification itself (id) is never counted, nor anything after it.
type fleetHistory struct {
	at     time.Time
	id     string
	events map[string][]state.Event
}

// Count implements rules.History.
func (f *fleetHistory) Count(address, kind string, window time.Duration) int {
	n := 0
	for _, e := range f.events[state.HistoryKey(address, kind)] {
		if e.ID != f.id && !e.At.After(f.at) && !e.At.Before(f.at.Add(-window)) {
			n++
		}
	}
	return n
}
