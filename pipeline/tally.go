package pipeline

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/internal/words"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Tally counts what a run, an invocation or a window did: it is where
// handled items and digests are counted, for route's summary, the exit
// status and Lambda's metrics.
type Tally struct {
	Inputs, Notifications, Recipients, Skipped, Duplicates int
	// Refused counts the items a Gate refused: never acted on, never
	// delivered again.
	Refused int
	// Failed counts the items that failed; RuleErrors the recipients a
	// rule failed for.
	Failed, RuleErrors int
	// Outcomes counts results by outcome; Actions by action kind and
	// outcome ("notify", "posted").
	Outcomes map[actions.Outcome]int
	Actions  map[[2]string]int
	// Types counts notifications by type ("(skipped)", "(unreadable)",
	// "(refused)", "(unverified)" for the others); Rules recipients by
	// deciding rule ("(unmatched)").
	Types, Rules map[string]int
	// Digested counts the notifications folded, by destination; Digests
	// the digests posted and DigestsFailed those that were not.
	Digested               map[string]int
	Digests, DigestsFailed int
}

// NewTally returns an empty Tally.
func NewTally() *Tally {
	return &Tally{Outcomes: map[actions.Outcome]int{}, Actions: map[[2]string]int{}, Types: map[string]int{},
		Rules: map[string]int{}, Digested: map[string]int{}}
}

// Add counts one handled item.
func (t *Tally) Add(j *Job) {
	t.Inputs++
	it := &j.Item
	switch {
	case j.Refused != nil:
		t.Refused++
		t.Types["(refused)"]++
	case j.Unverified != nil:
		t.Types["(unverified)"]++
	case it.Err != nil:
		t.Types["(unreadable)"]++
	case j.Plan == nil:
		t.Skipped++
		t.Types["(skipped)"]++
	default:
		t.Notifications++
		t.Types[it.Notification.Event.Type]++
		t.Recipients += len(j.Plan.Recipients)
		if j.Duplicate {
			t.Duplicates++
		}
		for i := range j.Plan.Recipients {
			d := &j.Plan.Recipients[i]
			rule := actions.DecidingRule(d)
			switch {
			case d.Err != nil:
				t.RuleErrors++
				rule = "(failed)"
			case rule == "":
				rule = "(unmatched)"
			}
			t.Rules[rule]++
		}
		for i := range j.Results {
			r := &j.Results[i]
			t.Outcomes[r.Outcome]++
			t.Actions[[2]string{r.Step.Action.Kind.String(), string(r.Outcome)}]++
			if r.Outcome == actions.OutcomeDigested {
				t.Digested[r.Step.Action.Destination]++
			}
		}
	}
	if j.Failed() {
		t.Failed++
	}
}

// AddDigest counts one digest.
func (t *Tally) AddDigest(r storm.DigestResult) {
	if r.Outcome == actions.OutcomeFailed {
		t.DigestsFailed++
		return
	}
	t.Digests++
}

// Merge adds u's counts to t.
func (t *Tally) Merge(u *Tally) {
	t.Inputs += u.Inputs
	t.Notifications += u.Notifications
	t.Recipients += u.Recipients
	t.Skipped += u.Skipped
	t.Duplicates += u.Duplicates
	t.Refused += u.Refused
	t.Failed += u.Failed
	t.RuleErrors += u.RuleErrors
	t.Digests += u.Digests
	t.DigestsFailed += u.DigestsFailed
	for k, v := range u.Outcomes {
		t.Outcomes[k] += v
	}
	for k, v := range u.Actions {
		t.Actions[k] += v
	}
	for k, v := range u.Types {
		t.Types[k] += v
	}
	for k, v := range u.Rules {
		t.Rules[k] += v
	}
	for k, v := range u.Digested {
		t.Digested[k] += v
	}
}

// Summary says the counts in one line for people (and scripts, so the
// numbers are digits alone):
//
//	3 notifications (5 recipients), 1 skipped, 0 failed; posted 2, removed 1, dropped 1
func (t *Tally) Summary() string {
	s := fmt.Sprintf("%s (%s), %d skipped, %d failed", words.Plural(t.Notifications, "notification", "notifications"),
		words.Plural(t.Recipients, "recipient", "recipients"), t.Skipped, t.Failed+t.DigestsFailed)
	if t.Duplicates > 0 {
		s += fmt.Sprintf(", %d duplicate", t.Duplicates)
	}
	outcomes := slices.SortedFunc(maps.Keys(t.Outcomes), func(a, b actions.Outcome) int {
		return cmp.Or(cmp.Compare(t.Outcomes[b], t.Outcomes[a]), cmp.Compare(a, b))
	})
	var parts []string
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%s %d", o, t.Outcomes[o]))
	}
	if t.Digests+t.DigestsFailed > 0 {
		parts = append(parts, words.Plural(t.Digests+t.DigestsFailed, "digest", "digests"))
	}
	if len(parts) > 0 {
		s += "; " + strings.Join(parts, ", ")
	}
	return s
}
