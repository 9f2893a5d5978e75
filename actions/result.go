package actions

import (
	"encoding/json"

	"github.com/sesrouter/sesrouter/engine"
)

// Outcomes of an action, as SPEC's JSON output names them.
const (
	OutcomeRemoved       = "removed"        // unsuppress: taken off the suppression list
	OutcomeNotSuppressed = "not-suppressed" // unsuppress: it was not on the list
	OutcomeAdded         = "added"          // suppress: put on the list
	OutcomePosted        = "posted"         // notify: posted to Slack
	OutcomeDigested      = "digested"       // notify: folded into a digest message
	OutcomeDuplicate     = "duplicate"      // already done for this notification
	OutcomeDryRun        = "dry-run"        // would be done; -dry-run performs nothing
	OutcomeDropped       = "dropped"        // drop
	OutcomeLogged        = "logged"         // log
	OutcomeFailed        = "failed"         // with Error
)

// Result is the outcome of one action for one notification: a
// per-recipient action (Recipient set) or a notify of a destination.
type Result struct {
	Action    string `json:"action"`
	Recipient string `json:"recipient,omitempty"`
	Outcome   string `json:"outcome"`
	Error     string `json:"error,omitempty"`
	// Payload is, for a notify in a dry run, the exact JSON body that
	// would be sent to Slack (an array of bodies when the notification
	// takes several messages).
	Payload json.RawMessage `json:"payload,omitempty"`
	// Messages are, for a notify, the messages posted (or, in a dry run,
	// that would be).
	Messages []Message `json:"-"`
	// Step is the step of the plan this result is for.
	Step engine.Step `json:"-"`
}
