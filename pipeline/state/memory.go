package state

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store in process memory, for tests that share one state
// among several handlers in fake time. Nothing in it ever expires but a
// claim, as in the table. It is safe for concurrent use.
type Memory struct {
	// Now is the clock of claims (nil: time.Now).
	Now func() time.Time

	mu       sync.Mutex
	claims   map[string]memClaim
	counters map[string]int64
	events   map[string][]string // by key: event sort keys, sorted
}

type memClaim struct {
	token   string
	note    string
	done    bool
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{claims: map[string]memClaim{}, counters: map[string]int64{}, events: map[string][]string{}}
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, key string, ttl time.Duration) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if c, ok := m.claims[key]; ok && !c.expires.Before(now) {
		return "", false, nil
	}
	token := newToken()
	m.claims[key] = memClaim{token: token, expires: now.Add(ttl)}
	return token, true, nil
}

// Complete implements Store.
func (m *Memory) Complete(_ context.Context, key, token string, keep time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims[key] = memClaim{token: token, done: true, expires: m.now().Add(keep)}
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, key, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.claims[key]; ok && (token == "" || c.token == token) {
		delete(m.claims, key)
	}
	return nil
}

// SetNote implements Store.
func (m *Memory) SetNote(_ context.Context, key, token, note string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.claims[key]; ok && c.token == token {
		c.note = note
		m.claims[key] = c
	}
	return nil
}

// Note implements Store.
func (m *Memory) Note(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.claims[key]; ok && !c.expires.Before(m.now()) {
		return c.note, nil
	}
	return "", nil
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, key string, _ time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counters[key]++
	return m.counters[key], nil
}

// Record implements Store.
func (m *Memory) Record(_ context.Context, key string, at time.Time, id string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sk := eventSK(at, id)
	evs := m.events[key]
	if i, found := slices.BinarySearch(evs, sk); !found {
		m.events[key] = slices.Insert(evs, i, sk)
	}
	return nil
}

// Events implements Store.
func (m *Memory) Events(_ context.Context, key string, since, until time.Time) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lo, hi := since.UTC().Format(skTime), until.UTC().Format(skTime)+"#\U0010FFFF"
	var out []Event
	for _, sk := range m.events[key] {
		if strings.Compare(sk, lo) >= 0 && strings.Compare(sk, hi) <= 0 {
			e, err := parseEventSK(sk)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}
