// Package dedup makes a notification delivered more than once (SNS and
// SQS deliver at least once) be acted on once in a process: what makes
// two notifications the same (Keys), and the notifications handled and
// being handled (Seen), whose claims make a copy that comes meanwhile
// wait for the first copy's outcome (Claim). Across the fleet, the
// pipeline claims the same keys in the state table.
package dedup

import (
	"sync"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// Seen remembers the notifications handled in this process (a route run,
// serve, a warm Lambda container), so that one delivered twice (SNS and
// SQS deliver at least once) is acted on once, and those being handled,
// so that a copy that comes meanwhile is never told it is a duplicate
// before the first copy's outcome is known: it waits for it (Claim.Wait).
// It holds at most a fixed number of keys, forgetting the oldest. It is
// safe for concurrent use.
type Seen struct {
	mu    sync.Mutex
	keys  map[string]seenKey
	ring  []string // the keys in the order they came; "" is a free slot
	next  int
	limit int
}

// seenKey is one key Seen remembers: its slot in the ring, and the claim
// handling it, nil once it is handled.
type seenKey struct {
	slot  int
	claim *Claim
}

// NewSeen returns a Seen that remembers at most limit keys.
func NewSeen(limit int) *Seen {
	limit = max(limit, 1)
	return &Seen{keys: map[string]seenKey{}, limit: limit}
}

// Claim is what Begin says of one copy of a notification: it is to be
// acted on (Held), it is a duplicate, or another copy is being handled
// and its outcome is not known yet (Wait).
type Claim struct {
	// Duplicate says that every key of the notification has been
	// handled: nothing is to be done.
	Duplicate bool
	// Wait, when not nil, says that another copy of the notification is
	// being handled: it is closed once that copy's outcome is known, and
	// Begin is then to be called again (the copy failed: this one is
	// acted on; it succeeded: this one is a duplicate). The claim holds
	// nothing meanwhile.
	Wait <-chan struct{}

	seen  *Seen
	keys  []string      // the keys this claim added, and holds until End
	done  chan struct{} // closed by End; nil when the claim holds no key
	ended bool          // under seen.mu
}

// Held reports whether the claim's copy is the one to act on; End must
// then be called with the outcome.
func (c *Claim) Held() bool { return !c.Duplicate && c.Wait == nil }

// End says what became of a held claim's actions: ok keeps its keys as
// handled (a later copy is a duplicate); otherwise they are dropped, so
// that the next copy is acted on. The copies waiting are woken either
// way. End on a claim that is not held, or a second End, does nothing.
func (c *Claim) End(ok bool) {
	if c.done == nil {
		return
	}
	s := c.seen
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ended {
		return
	}
	c.ended = true
	for _, k := range c.keys {
		e, found := s.keys[k]
		if !found || e.claim != c {
			continue // forgotten or evicted meanwhile
		}
		if ok {
			e.claim = nil
			s.keys[k] = e
		} else {
			s.drop(k, e.slot)
		}
	}
	close(c.done)
}

// Begin claims n: it is held when some of its keys (Keys) are new,
// which it then holds until End; a duplicate when all of them have been
// handled; and to wait for when all are known and some are being handled
// by another claim. A notification without keys is always held.
func (s *Seen) Begin(n *ses.Notification) *Claim {
	keys := Keys(n)
	if len(keys) == 0 {
		return &Claim{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known := 0
	var busy *Claim
	for _, k := range keys {
		if e, ok := s.keys[k]; ok {
			known++
			if busy == nil && e.claim != nil {
				busy = e.claim
			}
		}
	}
	if known == len(keys) {
		if busy != nil {
			return &Claim{Wait: busy.done}
		}
		return &Claim{Duplicate: true}
	}
	c := &Claim{seen: s, done: make(chan struct{})}
	for _, k := range keys {
		if _, ok := s.keys[k]; ok {
			continue
		}
		if s.next == len(s.ring) {
			s.ring = append(s.ring, "") // the ring grows to its limit as keys come
		}
		if old := s.ring[s.next]; old != "" {
			delete(s.keys, old)
		}
		s.ring[s.next] = k
		s.keys[k] = seenKey{slot: s.next, claim: c}
		s.next = (s.next + 1) % s.limit
		c.keys = append(c.keys, k)
	}
	return c
}

// Forget drops keys: a notification whose actions failed is acted on
// again when it is delivered again. Its slots are freed, so that a key
// added again later is not evicted before its time.
func (s *Seen) Forget(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if e, ok := s.keys[k]; ok {
			s.drop(k, e.slot)
		}
	}
}

// drop forgets key k, which is in slot; s.mu is held.
func (s *Seen) drop(k string, slot int) {
	delete(s.keys, k)
	s.ring[slot] = ""
}

// Len is how many keys are remembered.
func (s *Seen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// Keys are what makes a notification the same as another: its SNS
// MessageId (SNS keeps it when it delivers again, also through SQS), or,
// without one, its SES feedback id with each recipient. A notification
// with neither is never a duplicate.
func Keys(n *ses.Notification) []string {
	if n.SNSMessageID != "" {
		return []string{"sns:" + n.SNSMessageID}
	}
	var fb string
	switch n.Event.Type {
	case ses.TypeBounce:
		fb = n.Bounce.FeedbackID
	case ses.TypeComplaint:
		fb = n.Complaint.FeedbackID
	}
	if fb == "" {
		return nil
	}
	keys := make([]string, len(n.Recipients))
	for i, r := range n.Recipients {
		keys[i] = "fb:" + fb + "\x00" + r.Address
	}
	return keys
}
