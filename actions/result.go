package actions

import "github.com/sesrouter/sesrouter/engine"

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
	// Step is the step of the plan this result is for.
	Step engine.Step `json:"-"`
}

// DryRun returns the results of carrying out plan without performing
// anything: every action is "dry-run", except drop, which is "dropped"
// (dropping is the absence of an action, so it is the same either way).
func DryRun(plan *engine.Plan) []Result {
	steps := plan.Steps()
	results := make([]Result, 0, len(steps))
	for _, s := range steps {
		r := Result{Action: s.Action.String(), Outcome: OutcomeDryRun, Step: s}
		if s.Recipient != nil {
			r.Recipient = s.Recipient.Address
		}
		if s.Action.Kind == engine.ActionDrop {
			r.Outcome = OutcomeDropped
		}
		results = append(results, r)
	}
	return results
}
