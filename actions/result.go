package actions

import (
	"errors"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/internal/words"
)

// Outcome is what became of one action, as the JSON output names it.
type Outcome string

// The outcomes.
const (
	OutcomeRemoved       Outcome = "removed"        // unsuppress: taken off the suppression list
	OutcomeNotSuppressed Outcome = "not-suppressed" // unsuppress: it was not on the list
	OutcomeAdded         Outcome = "added"          // suppress: put on the list
	OutcomePosted        Outcome = "posted"         // notify: posted to Slack
	OutcomeDigested      Outcome = "digested"       // notify: folded into a digest message
	OutcomeDuplicate     Outcome = "duplicate"      // already done for this notification
	OutcomeDryRun        Outcome = "dry-run"        // would be done; a dry run performs nothing
	OutcomeDropped       Outcome = "dropped"        // drop
	OutcomeLogged        Outcome = "logged"         // log
	OutcomeFailed        Outcome = "failed"         // with Err
)

// Result is the outcome of one step of a plan: a per-recipient action
// (Step.Recipient set) or a notify of a destination.
type Result struct {
	// Step is the step of the plan this result is for.
	Step    route.Step
	Outcome Outcome
	// Err says why, for OutcomeFailed; errors.Is and errors.As see
	// through it (a deadline, Slack's rate limit, an SES API error).
	Err error
	// Payload is, for a notify that was only rendered (a dry run), the
	// exact JSON body that would be sent to Slack; a JSON array of bodies
	// when the notification takes several messages. It is marshalled
	// once, here, and written as it is.
	Payload jsontext.Value
	// Messages are, for a notify, the messages posted (or rendered).
	Messages []Message
}

// Action is the action of the result as the JSON output writes it:
// "unsuppress", "notify:ses-alerts".
func (r *Result) Action() string { return r.Step.Action.String() }

// Recipient is the address of a per-recipient result, "" for a notify.
func (r *Result) Recipient() string {
	if r.Step.Recipient == nil {
		return ""
	}
	return r.Step.Recipient.Address
}

// Failed reports whether any of results failed.
func Failed(results []Result) bool {
	for i := range results {
		if results[i].Outcome == OutcomeFailed {
			return true
		}
	}
	return false
}

// ShortError says err in one short line, for a Slack message (an error
// with a Short method, as the suppression list's, says its own); the
// log gets the whole of it.
func ShortError(err error) string {
	var se interface{ Short() string }
	if errors.As(err, &se) {
		return se.Short()
	}
	return words.FirstLine(err.Error(), 200)
}
