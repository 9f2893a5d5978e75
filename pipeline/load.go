package pipeline

import (
	"errors"
	"fmt"
	"os"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
)

// Config is a loaded rules file: the rules, their router, and the
// destinations their notifies post to.
type Config struct {
	Rules        *engine.Rules
	Router       *engine.Router
	Destinations []*actions.Destination
}

// Load reads a rules file and checks all of it: the rules (engine.Load)
// and the destinations (actions.ParseDestinations). Every problem of both
// is reported, joined in file order, each a *engine.Problem.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return LoadBytes(path, src)
}

// LoadBytes is Load of src, named name in problems.
func LoadBytes(name string, src []byte) (*Config, error) {
	rules, problems := engine.Parse(name, src)
	dests, err := actions.ParseDestinations(rules)
	for _, e := range unwrap(err) {
		var p *engine.Problem
		if errors.As(e, &p) {
			problems = append(problems, p)
		}
	}
	if err := engine.JoinProblems(problems); err != nil {
		return nil, err
	}
	return &Config{Rules: rules, Router: engine.NewRouter(rules), Destinations: dests}, nil
}

// unwrap lists the errors joined in err (none for nil).
func unwrap(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Used reports whether some rule notifies the destination named.
func (c *Config) Used(name string) bool {
	for _, r := range c.Rules.Rules {
		for _, a := range r.Actions {
			if a.Kind == engine.ActionNotify && a.Destination == name {
				return true
			}
		}
	}
	return false
}

// UsesSES reports whether some rule unsuppresses or suppresses, and so
// needs AWS credentials.
func (c *Config) UsesSES() bool {
	for _, r := range c.Rules.Rules {
		for _, a := range r.Actions {
			if a.Kind == engine.ActionUnsuppress || a.Kind == engine.ActionSuppress {
				return true
			}
		}
	}
	return false
}

// DryRun returns a Dispatcher for c that performs nothing and renders
// everything: what route -dry-run uses.
func (c *Config) DryRun() *actions.Dispatcher {
	return &actions.Dispatcher{
		Destinations: actions.ByName(c.Destinations),
		Notifiers:    actions.DryRunNotifiers(c.Destinations),
		SES:          actions.DryRunSES(),
		Log:          actions.DryRunLogbook(),
	}
}
