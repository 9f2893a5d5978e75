package pipeline

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/internal/words"
)

// Config is a loaded rules file and its router.
type Config struct {
	Rules  *rules.Rules
	Router *route.Router
	// Destinations are the rules' destinations in file order.
	Destinations []*rules.Destination
}

// LoadBytes loads the rules file src, named name in problems, and checks
// all of it (rules.Load): every problem is reported, joined in file
// order, each a *rules.Problem. LoadFrom reads a file or an S3 object and
// loads it so.
func LoadBytes(name string, src []byte) (*Config, error) {
	rs, err := rules.Load(name, src)
	if err != nil {
		return nil, err
	}
	return &Config{Rules: rs, Router: route.NewRouter(rs), Destinations: rs.DestinationList()}, nil
}

// RulesPath finds the rules file: flag when set, else $SESROUTER_RULES,
// else the first rules.yaml there is in the working directory, in
// $LAMBDA_TASK_ROOT (in Lambda), beside executable; else rules.yaml, for
// the error to name.
func RulesPath(flag string, getenv func(string) string, executable string) string {
	if flag != "" {
		return flag
	}
	if p := getenv("SESROUTER_RULES"); p != "" {
		return p
	}
	candidates := []string{"rules.yaml"}
	if root := getenv("LAMBDA_TASK_ROOT"); root != "" {
		candidates = append(candidates, filepath.Join(root, "rules.yaml"))
	}
	if executable != "" {
		candidates = append(candidates, filepath.Join(filepath.Dir(executable), "rules.yaml"))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "rules.yaml"
}

// Check is what sesrouter check says of loaded rules: the problems that
// running every rule on synthetic events finds (rules.Rules.Probe) and
// the warnings, one per line, then the verdict, which is ok unless there
// are problems (or, strict, warnings).
func (c *Config) Check(strict bool) (lines []error, verdict string, ok bool) {
	errs, slow := c.Rules.Probe(rules.SlowRule)
	warnings := append(c.Rules.Warnings(), slow...)
	for _, p := range append(errs, warnings...) {
		lines = append(lines, p)
	}
	if len(errs) > 0 || (strict && len(warnings) > 0) {
		return lines, fmt.Sprintf("%s: %s, %s", c.Rules.File, words.Plural(len(errs), "problem", "problems"), words.Plural(len(warnings), "warning", "warnings")), false
	}
	verdict = fmt.Sprintf("%s: ok: %s, %s, %s", c.Rules.File, words.Plural(len(c.Rules.Rules), "rule", "rules"), words.Plural(len(c.Rules.Destinations), "destination", "destinations"), words.Plural(len(c.Rules.Lists), "list", "lists"))
	if len(warnings) > 0 {
		verdict += ", " + words.Plural(len(warnings), "warning", "warnings")
	}
	return lines, verdict, true
}

// Used reports whether some rule notifies the destination named.
func (c *Config) Used(name string) bool {
	for _, r := range c.Rules.Rules {
		for _, a := range r.Actions {
			if a.Kind == rules.ActionNotify && a.Destination == name {
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
			if a.Kind == rules.ActionUnsuppress || a.Kind == rules.ActionSuppress {
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
		Destinations: slack.ByName(c.Destinations),
		Notifiers:    slack.DryRunNotifiers(c.Destinations),
		SES:          suppression.DryRun(),
		Log:          actions.DryRunLogbook(),
	}
}

// NeedsState says why c cannot run without a state table, when some rule
// uses history and table is false; nil otherwise.
func (c *Config) NeedsState(table bool) error {
	if _, _, ok := c.Rules.UsesHistory(); ok && !table {
		return fmt.Errorf("%s: a rule uses history, which needs the fleet state: set SESROUTER_STATE_TABLE to a DynamoDB table", c.Rules.File)
	}
	return nil
}
