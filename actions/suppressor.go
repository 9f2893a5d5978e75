package actions

import (
	"context"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// Suppressor carries out unsuppress and suppress for one recipient.
type Suppressor interface {
	// Unsuppress takes the recipient's address off the suppression list.
	Unsuppress(ctx context.Context, r *ses.Recipient) SESOutcome
	// Suppress puts it on the list, with the reason eventType gives.
	Suppress(ctx context.Context, r *ses.Recipient, eventType string) SESOutcome
}
