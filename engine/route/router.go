package route

import (
	"slices"
	"sync"

	"github.com/expr-lang/expr/vm"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// Router routes notifications by a loaded rules file. It is safe for
// concurrent use: each goroutine borrows its own expression VM.
type Router struct {
	rules *rules.Rules
	pool  sync.Pool // of *evaluator
	// actions is how many actions the rules name in all: the most one
	// recipient's decision can take (room).
	actions int
}

// evaluator is one goroutine's VM and environment, reused.
type evaluator struct {
	vm  vm.VM
	env *rules.Env
}

// NewRouter returns a Router for rules, which must come from Load.
func NewRouter(rs *rules.Rules) *Router {
	r := &Router{rules: rs}
	for _, rule := range rs.Rules {
		r.actions += len(rule.Actions)
	}
	r.pool.New = func() any { return &evaluator{env: rules.NewEnv(rs.Lists)} }
	return r
}

// Rules returns the rules the router routes by.
func (r *Router) Rules() *rules.Rules { return r.rules }

// Plan is what the rules decided for one notification: per recipient, the
// rules tried and the actions. Nothing in it has been performed.
type Plan struct {
	Notification *ses.Notification
	Recipients   []Decision
}

// Decision is the routing of one recipient.
type Decision struct {
	// Recipient points into Notification.Recipients.
	Recipient *ses.Recipient
	// Trials are the rules tried, in order, with whether each matched.
	Trials []Trial
	// Matched are the rules that matched: rules with continue, then the
	// deciding rule.
	Matched []*rules.Rule
	// Decider is the rule that ended the evaluation, or nil when no rule
	// without continue matched.
	Decider *rules.Rule
	// Actions are the actions of the matched rules, in order, each once:
	// what is to be carried out for the recipient. None when Err is set.
	Actions []rules.Action
	// Dropped says that a drop action ended the evaluation.
	Dropped bool
	// Unmatched says that no rule matched: the recipient gets no action.
	Unmatched bool
	// History are the history(kind, window) counts the rules saw for
	// the recipient, in the order asked.
	History []rules.HistorySeen
	// Err is set when a rule's expression failed at run time (an index
	// out of range, expr's memory budget): the evaluation ended there,
	// closed: no later rule was tried, and the recipient gets no action at
	// all, not even those of earlier continue rules. It names the rule.
	Err error
}

// Trial is one rule tried for one recipient.
type Trial struct {
	Rule    *rules.Rule
	Matched bool
	Err     error
}

// Route returns the plan for n. It performs nothing. Every
// history(kind, window) is 0.
func (r *Router) Route(n *ses.Notification) *Plan {
	p := new(Plan)
	r.RouteInto(p, n)
	return p
}

// RouteWith returns the plan for n, with the history(kind, window)
// counts of h (nil: every count 0). It performs nothing.
func (r *Router) RouteWith(n *ses.Notification, h rules.History) *Plan {
	p := new(Plan)
	r.route(p, n, h)
	return p
}

// RouteInto writes the plan for n into p, reusing p's storage.
func (r *Router) RouteInto(p *Plan, n *ses.Notification) { r.route(p, n, nil) }

// route writes the plan for n into p, with the history counts of h.
func (r *Router) route(p *Plan, n *ses.Notification, h rules.History) {
	p.Notification = n
	if cap(p.Recipients) < len(n.Recipients) {
		p.Recipients = append(p.Recipients[:cap(p.Recipients)], make([]Decision, len(n.Recipients)-cap(p.Recipients))...)
	}
	p.Recipients = p.Recipients[:len(n.Recipients)]
	if len(n.Recipients) == 0 {
		return
	}
	r.room(p.Recipients)
	ev := r.pool.Get().(*evaluator)
	blank := ev.env.Notification
	ev.env.Notification = n
	ev.env.SetHistory(h)
	for i := range n.Recipients {
		ev.env.Recipient = n.Recipients[i]
		r.decide(ev, &p.Recipients[i], &n.Recipients[i])
		p.Recipients[i].History = ev.env.TakeSeen()
	}
	ev.env.SetHistory(nil)
	ev.env.Notification, ev.env.Recipient = blank, ses.Recipient{}
	r.pool.Put(ev)
}

// room gives each decision of ds that has none the room its trials,
// matches and actions can take (one of each per rule), all cut from one
// array of each, so that deciding allocates nothing more: three
// allocations a plan rather than several a recipient.
func (r *Router) room(ds []Decision) {
	rs, acts := r.rules.Rules, r.actions
	need := 0
	for i := range ds {
		if cap(ds[i].Trials) < len(rs) {
			need++
		}
	}
	if need == 0 || len(rs) == 0 {
		return
	}
	trials, matched, actions := make([]Trial, need*len(rs)), make([]*rules.Rule, need*len(rs)), make([]rules.Action, need*acts)
	for i := range ds {
		d := &ds[i]
		if cap(d.Trials) >= len(rs) {
			continue
		}
		d.Trials, trials = trials[:0:len(rs)], trials[len(rs):]
		d.Matched, matched = matched[:0:len(rs)], matched[len(rs):]
		d.Actions, actions = actions[:0:acts], actions[acts:]
	}
}

// decide tries the rules for one recipient, top to bottom.
func (r *Router) decide(ev *evaluator, d *Decision, rc *ses.Recipient) {
	*d = Decision{Recipient: rc, Trials: d.Trials[:0], Matched: d.Matched[:0], Actions: d.Actions[:0]}
	for _, rule := range r.rules.Rules {
		out, err := ev.vm.Run(rule.Program, ev.env)
		if err != nil {
			// Fail closed: the recipient gets nothing, so that a failing
			// rule never lets a later one (a suppress) decide instead.
			d.Err = rule.RunError(err)
			d.Trials = append(d.Trials, Trial{Rule: rule, Err: d.Err})
			d.Actions, d.Dropped, d.Decider = d.Actions[:0], false, nil
			return
		}
		matched, _ := out.(bool)
		d.Trials = append(d.Trials, Trial{Rule: rule, Matched: matched})
		if !matched {
			continue
		}
		d.Matched = append(d.Matched, rule)
		for _, a := range rule.Actions {
			if !slices.Contains(d.Actions, a) {
				d.Actions = append(d.Actions, a)
			}
			if a.Kind == rules.ActionDrop {
				d.Dropped = true
			}
		}
		if d.Dropped || !rule.Continue {
			d.Decider = rule
			return
		}
	}
	d.Unmatched = len(d.Matched) == 0
}

// Step is one action to carry out for a notification.
type Step struct {
	Action rules.Action
	// Recipient is the recipient of a per-recipient action (drop,
	// unsuppress, suppress, log); nil for notify.
	Recipient *ses.Recipient
	// Recipients are, for notify, the decisions of every recipient routed
	// to the destination, in recipient order.
	Recipients []*Decision
}

// Steps lists what the plan asks for, in the order it is to be carried
// out: first every per-recipient action (SES actions, log, drop) in
// recipient order, then one notify per destination, in order of first
// use, carrying every recipient routed there.
func (p *Plan) Steps() []Step {
	var steps []Step
	for i := range p.Recipients {
		d := &p.Recipients[i]
		for _, a := range d.Actions {
			if a.Kind != rules.ActionNotify {
				steps = append(steps, Step{Action: a, Recipient: d.Recipient})
			}
		}
	}
	first := len(steps)
	for i := range p.Recipients {
		d := &p.Recipients[i]
		for _, a := range d.Actions {
			if a.Kind != rules.ActionNotify {
				continue
			}
			found := false
			for j := first; j < len(steps); j++ {
				if steps[j].Action == a {
					steps[j].Recipients = append(steps[j].Recipients, d)
					found = true
					break
				}
			}
			if !found {
				steps = append(steps, Step{Action: a, Recipients: []*Decision{d}})
			}
		}
	}
	return steps
}
