// Package state is the fleet state of a deployment: one DynamoDB table
// (SESROUTER_STATE_TABLE; string keys pk and sk, TTL on the number
// attribute expires) shared by every process, so that they act as one.
// It holds three kinds of item: claims (a notification is acted on once
// across the fleet; a storm's root message is posted once, its ts noted
// on the claim), counters (a destination's messages in a storm
// window, counted across the fleet) and events (the notifications of a
// kind per address, which history rules count).
//
// Store is what the pipeline calls; Table implements it over DynamoDB,
// Memory in process (for tests that run in fake time, where no network
// call may be made).
package state

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Store is the fleet state. Every method fails with an error when the
// state cannot be read or written: the caller fails the item, so that it
// is tried again, and never goes on without the state.
type Store interface {
	// Claim claims key until ttl passes: held reports whether the claim
	// is this call's, with token to Complete or Release it; not held, a
	// live claim of another process or a completed record holds key.
	Claim(ctx context.Context, key string, ttl time.Duration) (token string, held bool, err error)
	// Complete makes the claim of key a completed record, kept for keep:
	// a later claim of key within keep is not held.
	Complete(ctx context.Context, key, token string, keep time.Duration) error
	// Release deletes the claim of key when token still holds it (token
	// "": whoever holds it), so that the next claim is held.
	Release(ctx context.Context, key, token string) error
	// SetNote writes note on the claim of key when token still holds it
	// (a storm's root claims its key, then notes the root's ts there).
	SetNote(ctx context.Context, key, token, note string) error
	// Note returns the note on the live claim of key: "" when there is
	// no such claim or its holder has not noted anything yet.
	Note(ctx context.Context, key string) (string, error)
	// Add adds one to the counter key, which lives until expires, and
	// returns its count, this one included.
	Add(ctx context.Context, key string, expires time.Time) (int64, error)
	// Record writes the event id at at under key, kept until expires.
	// Writing it again changes nothing.
	Record(ctx context.Context, key string, at time.Time, id string, expires time.Time) error
	// Events returns the events under key from since to until, both
	// included, oldest first.
	Events(ctx context.Context, key string, since, until time.Time) ([]Event, error)
}

// Event is one event Record wrote.
type Event struct {
	At time.Time
	ID string
}

// Keys of the items of each kind: the partition key pk; sk is the
// constant of the kind, or the event's time and id.
const (
	claimPrefix   = "once#"
	counterPrefix = "storm#"
	eventPrefix   = "history#"
	claimSK       = "claim"
	counterSK     = "count"
)

// ClaimKey is the key of the claim of a notification whose
// de-duplication keys (dedup.Keys) are keys: the key itself when
// there is one, else a digest of them all (a notification without an SNS
// message id has one key per recipient, and every copy has the same).
func ClaimKey(keys []string) string {
	if len(keys) == 1 && len(keys[0]) <= 512 {
		return keys[0]
	}
	h := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return "sha256:" + hex.EncodeToString(h[:])
}

// StormKey is the key of the counter of destination dest's messages in
// the storm window of length window that holds now, and when that
// counter may go: one window after its own ends.
func StormKey(dest string, window time.Duration, now time.Time) (key string, expires time.Time) {
	start := now.Truncate(window)
	return dest + "#" + start.UTC().Format(time.RFC3339Nano), start.Add(2 * window)
}

// RootKey is the key of the claim of the root of destination dest's
// storm thread whose window ends at end.
func RootKey(dest string, end time.Time) string {
	return "root#" + dest + "#" + end.UTC().Format(time.RFC3339Nano)
}

// HistoryKey is the key of the events of kind for address.
func HistoryKey(address, kind string) string { return address + "#" + kind }

// skTime writes t so that times sort as strings.
const skTime = "2006-01-02T15:04:05.000000000Z"

// eventSK is the sort key of an event: its time, then its id.
func eventSK(at time.Time, id string) string { return at.UTC().Format(skTime) + "#" + id }

// parseEventSK reads an event's sort key.
func parseEventSK(sk string) (Event, error) {
	ts, id, ok := strings.Cut(sk, "#")
	if !ok {
		return Event{}, errors.New("state: malformed event key " + sk)
	}
	at, err := time.Parse(skTime, ts)
	if err != nil {
		return Event{}, errors.New("state: malformed event time " + ts)
	}
	return Event{At: at, ID: id}, nil
}

// newToken returns a random token naming one claim.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
