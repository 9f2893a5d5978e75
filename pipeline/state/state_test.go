package state_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/internal/awstest"
	"github.com/sesrouter/sesrouter/pipeline/state"
)

// stores are the two Stores under one set of tests: the table on moto,
// and Memory, each on a clock the test moves.
func stores(t *testing.T) map[string]func(now func() time.Time) state.Store {
	srv := awstest.Moto(t)
	return map[string]func(now func() time.Time) state.Store{
		"table": func(now func() time.Time) state.Store {
			tb := state.NewTable(srv.Config(), srv.StateTable(t))
			tb.Now = now
			return tb
		},
		"memory": func(now func() time.Time) state.Store {
			m := state.NewMemory()
			m.Now = now
			return m
		},
	}
}

func TestClaim(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Now()
			st := mk(func() time.Time { return now })
			tok, held, err := st.Claim(ctx, "sns:1", time.Minute)
			if err != nil || !held {
				t.Fatalf("first claim: held %v, %v", held, err)
			}
			if _, held, err := st.Claim(ctx, "sns:1", time.Minute); err != nil || held {
				t.Fatalf("claim of a live claim: held %v, %v", held, err)
			}
			if err := st.Release(ctx, "sns:1", tok); err != nil {
				t.Fatal(err)
			}
			tok, held, err = st.Claim(ctx, "sns:1", time.Minute)
			if err != nil || !held {
				t.Fatalf("claim after a release: held %v, %v", held, err)
			}
			if err := st.Complete(ctx, "sns:1", tok, 24*time.Hour); err != nil {
				t.Fatal(err)
			}
			now = now.Add(2 * time.Minute) // past the claim's TTL, within the record's
			if _, held, err := st.Claim(ctx, "sns:1", time.Minute); err != nil || held {
				t.Fatalf("claim of a completed record: held %v, %v", held, err)
			}
			// A claim left by a process that died expires.
			if _, held, err := st.Claim(ctx, "sns:2", time.Minute); err != nil || !held {
				t.Fatalf("claim sns:2: held %v, %v", held, err)
			}
			now = now.Add(2 * time.Minute)
			if _, held, err := st.Claim(ctx, "sns:2", time.Minute); err != nil || !held {
				t.Fatalf("claim of an expired claim: held %v, %v", held, err)
			}
		})
	}
}

func TestAddAndEvents(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := mk(time.Now)
			for i := range 3 {
				c, err := st.Add(ctx, "ses-alerts#x", time.Now().Add(time.Hour))
				if err != nil || c != int64(i+1) {
					t.Fatalf("add %d: %d, %v", i+1, c, err)
				}
			}
			base := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
			for i := range 4 {
				at := base.Add(time.Duration(i) * 24 * time.Hour)
				for range 2 { // a second write changes nothing
					if err := st.Record(ctx, "a@x.com#Bounce/Transient", at, fmt.Sprint("id", i), at.Add(time.Hour)); err != nil {
						t.Fatal(err)
					}
				}
			}
			evs, err := st.Events(ctx, "a@x.com#Bounce/Transient", base.Add(24*time.Hour), base.Add(3*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 3 || evs[0].ID != "id1" || evs[2].ID != "id3" || !evs[0].At.Equal(base.Add(24*time.Hour)) {
				t.Fatalf("events: %+v", evs)
			}
		})
	}
}

func TestNote(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Now()
			st := mk(func() time.Time { return now })
			key := state.RootKey("ops", now.Add(time.Minute))
			if note, err := st.Note(ctx, key); err != nil || note != "" {
				t.Fatalf("note before any claim: %q, %v", note, err)
			}
			tok, held, err := st.Claim(ctx, key, time.Minute)
			if err != nil || !held {
				t.Fatalf("claim: held %v, %v", held, err)
			}
			if note, err := st.Note(ctx, key); err != nil || note != "" {
				t.Fatalf("note before it is set: %q, %v", note, err)
			}
			if err := st.SetNote(ctx, key, "not-the-token", "9.9"); err != nil {
				t.Fatal(err)
			}
			if err := st.SetNote(ctx, key, tok, "1.5"); err != nil {
				t.Fatal(err)
			}
			if note, err := st.Note(ctx, key); err != nil || note != "1.5" {
				t.Fatalf("note: %q, %v; want 1.5", note, err)
			}
			now = now.Add(2 * time.Minute)
			if note, err := st.Note(ctx, key); err != nil || note != "" {
				t.Fatalf("note of an expired claim: %q, %v", note, err)
			}
		})
	}
}
