package storm

import (
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
)

// What the external tests of this package reach inside for.

// AdmitAt is s.admit: whether a message to d at now is let through.
func (s *Storm) AdmitAt(d *rules.Destination, now time.Time) bool { return s.admit(d, now) }

// Now is the batch's clock.
func (b *Batch) Now() time.Time { return b.now() }

// DigestMessage is the digest message b holds for the destination named.
func (b *Batch) DigestMessage(name string) actions.Message { return b.dests[name].digest.Message() }
