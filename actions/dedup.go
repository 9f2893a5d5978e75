package actions

import (
	"sync"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// Seen remembers the notifications handled in this process (a route run,
// serve, a warm Lambda container), so that one delivered twice (SNS and
// SQS deliver at least once) is acted on once. It holds at most a fixed
// number of keys, forgetting the oldest. It is safe for concurrent use.
type Seen struct {
	mu    sync.Mutex
	keys  map[string]int // key → its slot in ring
	ring  []string       // the keys in the order they came; "" is a free slot
	next  int
	limit int
}

// NewSeen returns a Seen that remembers at most limit keys.
func NewSeen(limit int) *Seen {
	limit = max(limit, 1)
	return &Seen{keys: make(map[string]int, limit), ring: make([]string, limit), limit: limit}
}

// Begin records n as being handled, or reports that it is a duplicate:
// all its keys (SeenKeys) are known, being handled or handled. A
// notification without keys is never a duplicate.
func (s *Seen) Begin(n *ses.Notification) (duplicate bool) {
	keys := SeenKeys(n)
	if len(keys) == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known := 0
	for _, k := range keys {
		if _, ok := s.keys[k]; ok {
			known++
		}
	}
	if known == len(keys) {
		return true
	}
	for _, k := range keys {
		if _, ok := s.keys[k]; ok {
			continue
		}
		if old := s.ring[s.next]; old != "" {
			delete(s.keys, old)
		}
		s.ring[s.next] = k
		s.keys[k] = s.next
		s.next = (s.next + 1) % s.limit
	}
	return false
}

// Forget drops keys: a notification whose actions failed is acted on
// again when it is delivered again. Its slots are freed, so that a key
// added again later is not evicted before its time.
func (s *Seen) Forget(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if slot, ok := s.keys[k]; ok {
			delete(s.keys, k)
			s.ring[slot] = ""
		}
	}
}

// Len is how many keys are remembered.
func (s *Seen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// SeenKeys are what makes a notification the same as another: its SNS
// MessageId (SNS keeps it when it delivers again, also through SQS), or,
// without one, its SES feedback id with each recipient. A notification
// with neither is never a duplicate.
func SeenKeys(n *ses.Notification) []string {
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
