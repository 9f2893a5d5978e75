package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// Rules is a loaded rules file: destinations, lists and compiled rules.
type Rules struct {
	// File is the name the rules were loaded under, used in messages.
	File    string
	Version int
	// Destinations by name; DestinationNames lists them in file order.
	Destinations     map[string]*Destination
	DestinationNames []string
	// Lists by name, each a set of strings usable as lists.NAME.
	Lists map[string][]string
	// Rules in the order they are tried.
	Rules []*Rule

	// valueWarnings are the comparisons with values SES never sends that
	// are warnings, not errors (see strangeValues), found at load.
	valueWarnings []*Problem
	// historyKinds are the kinds history counts in some rule, and
	// historyWindow the longest window asked.
	historyKinds  []string
	historyWindow time.Duration
}

// DestinationList returns the destinations in file order.
func (r *Rules) DestinationList() []*Destination {
	out := make([]*Destination, len(r.DestinationNames))
	for i, name := range r.DestinationNames {
		out[i] = r.Destinations[name]
	}
	return out
}

// Rule is one named rule of the rules file.
type Rule struct {
	Name string
	// When is the expression, as written.
	When string
	// Continue says that, when this rule matches, the following rules are
	// tried too.
	Continue bool
	Actions  []Action
	// Pos is the position of the rule in the file.
	Pos Pos

	// Program is the compiled when expression (nil when it did not
	// compile).
	Program *vm.Program
}

// Pos is a position in the rules file.
type Pos struct {
	Line, Col int
}

// ActionKind is the kind of an action.
type ActionKind uint8

// The action kinds.
const (
	ActionDrop ActionKind = iota + 1
	ActionUnsuppress
	ActionSuppress
	ActionLog
	ActionNotify
)

// String returns the action kind as written in the rules file.
func (k ActionKind) String() string {
	switch k {
	case ActionDrop:
		return "drop"
	case ActionUnsuppress:
		return "unsuppress"
	case ActionSuppress:
		return "suppress"
	case ActionLog:
		return "log"
	case ActionNotify:
		return "notify"
	}
	return fmt.Sprintf("ActionKind(%d)", k)
}

// Action is one action of a rule.
type Action struct {
	Kind ActionKind
	// Destination is the destination of a notify action.
	Destination string
}

// String returns the action as the JSON output and rule tests write it:
// "unsuppress", "notify:ses-alerts".
func (a Action) String() string {
	if a.Kind == ActionNotify {
		return "notify:" + a.Destination
	}
	return a.Kind.String()
}

// Problem is one thing wrong with a rules file.
type Problem struct {
	File string
	Pos  Pos
	// Context is what the problem is in: `rule "NAME"`,
	// `destination "NAME"`, `list "NAME"`, or empty.
	Context string
	Message string
}

// Error formats the problem as FILE:LINE:COL: CONTEXT: MESSAGE.
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", p.File, p.Pos.Line, p.Pos.Col)
	if p.Context != "" {
		b.WriteString(p.Context)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return redactCredentials(b.String())
}

// Load parses, checks and compiles a rules file. name is used in messages.
// On failure the error joins one *Problem per problem found, in file
// order, each saying FILE:LINE:COL: rule "NAME": message.
func Load(name string, src []byte) (*Rules, error) {
	rules, problems := parse(name, src)
	if err := JoinProblems(problems); err != nil {
		return nil, err
	}
	return rules, nil
}

// parse is Load for a caller that goes on checking what the rules file
// holds (the destinations' settings, which the actions package reads): it
// returns the rules as far as they could be read, with every problem
// found. The rules are fit to route by only when there is no problem.
func parse(name string, src []byte) (*Rules, []*Problem) {
	l := &loader{YAML: &YAML{File: name, Src: src}, rules: &Rules{
		File:         name,
		Destinations: map[string]*Destination{},
		Lists:        map[string][]string{},
	}}
	l.load()
	return l.rules, l.Problems
}

// loader reads a rules file through YAML.
type loader struct {
	*YAML
	rules *Rules
}

var (
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	destRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

func (l *loader) load() {
	root := l.Root("rules file", "it needs version: 1 and rules", "version, destinations, lists and rules")
	if root == nil {
		return
	}
	var rulesNode, versionNode *yaml.Node
	var destNode, listNode *yaml.Node
	l.EachKey(root, "", func(k, v *yaml.Node) {
		switch k.Value {
		case "version":
			versionNode = v
		case "destinations":
			destNode = v
		case "lists":
			listNode = v
		case "rules":
			rulesNode = v
		default:
			l.Problem(k, "", "unknown key %q (want version, destinations, lists or rules)", k.Value)
		}
	})
	switch {
	case versionNode == nil:
		l.Problem(root, "", "missing version: 1")
	case versionNode.Kind != yaml.ScalarNode || versionNode.Value != "1":
		l.Problem(versionNode, "", "version must be 1, not %s", NodeText(versionNode))
	default:
		l.rules.Version = 1
	}
	if destNode != nil {
		l.loadDestinations(destNode)
	}
	if listNode != nil {
		l.loadLists(listNode)
	}
	if rulesNode == nil {
		l.Problem(root, "", "missing rules: a list of named rules")
		return
	}
	l.loadRules(rulesNode)
}

func (l *loader) loadDestinations(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		l.Problem(n, "", "destinations must be a mapping of name to destination")
		return
	}
	l.EachKey(n, "", func(k, v *yaml.Node) {
		ctx := fmt.Sprintf("destination %q", k.Value)
		if !destRE.MatchString(k.Value) {
			l.Problem(k, ctx, "a destination name holds letters, digits, '_', '-' and '.'")
		}
		d := parseDestination(l.YAML, k.Value, Pos{k.Line, k.Column}, v, len(l.rules.DestinationNames))
		if d == nil { // its problems are reported; rules may still name it
			d = &Destination{Name: k.Value, Pos: Pos{k.Line, k.Column}}
		}
		l.rules.Destinations[k.Value] = d
		l.rules.DestinationNames = append(l.rules.DestinationNames, k.Value)
	})
}

func (l *loader) loadLists(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		l.Problem(n, "", "lists must be a mapping of name to a list of strings")
		return
	}
	l.EachKey(n, "", func(k, v *yaml.Node) {
		ctx := fmt.Sprintf("list %q", k.Value)
		if !identRE.MatchString(k.Value) {
			l.Problem(k, ctx, "a list name must be usable as lists.NAME: letters, digits and '_', not starting with a digit")
		}
		if v.Kind != yaml.SequenceNode {
			l.Problem(v, ctx, "a list is a sequence of strings, like [a@example.com, b@example.com]")
			return
		}
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if s := l.Str(it, ctx, "a list item"); s != "" {
				items = append(items, s)
			}
		}
		l.rules.Lists[k.Value] = items
	})
}

func (l *loader) loadRules(n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		l.Problem(n, "", "rules must be a list of rules, each with name, when and actions")
		return
	}
	names := map[string]*yaml.Node{}
	c := newCompiler(l.rules.Lists)
	for i, rn := range n.Content {
		ctx := fmt.Sprintf("rule #%d", i+1)
		if rn.Kind != yaml.MappingNode {
			l.Problem(rn, ctx, "a rule is a mapping with name, when, actions and optionally continue")
			continue
		}
		// The name first, so that every other problem can name the rule.
		for j := 0; j+1 < len(rn.Content); j += 2 {
			if rn.Content[j].Value == "name" && rn.Content[j+1].Kind == yaml.ScalarNode && rn.Content[j+1].Value != "" {
				ctx = fmt.Sprintf("rule %q", rn.Content[j+1].Value)
			}
		}
		r := &Rule{Pos: Pos{rn.Line, rn.Column}}
		var whenNode, actionsNode *yaml.Node
		l.EachKey(rn, ctx, func(k, v *yaml.Node) {
			switch k.Value {
			case "name":
				r.Name = l.Str(v, ctx, "name")
				if prev, dup := names[r.Name]; dup && r.Name != "" {
					l.Problem(v, ctx, "duplicate rule name (first used at line %d)", prev.Line)
				} else if r.Name != "" {
					names[r.Name] = v
				}
			case "when":
				whenNode = v
				r.When = l.Str(v, ctx, "when")
			case "actions":
				actionsNode = v
			case "continue":
				if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
					l.Problem(v, ctx, "continue must be true or false, not %s", NodeText(v))
				}
				r.Continue = strings.EqualFold(v.Value, "true")
			default:
				l.Problem(k, ctx, "unknown key %q (want name, when, actions or continue)", k.Value)
			}
		})
		if r.Name == "" {
			l.Problem(rn, ctx, "missing name")
		}
		if whenNode == nil {
			l.Problem(rn, ctx, "missing when: an expression that is true for the recipients this rule takes")
		} else if r.When != "" {
			prog, probs := c.compile(r.When)
			for _, p := range probs {
				line, col := exprPos(whenNode, l.Src, p.offset)
				if whenNode.LineComment != "" && whenNode.Style == 0 {
					// "any(xs, # == 1)" unquoted: YAML took " #…" as a comment.
					p.msg += "; note: YAML read \"" + whenNode.LineComment + "\" as a comment: quote an expression that holds #"
				}
				l.Problems = append(l.Problems, &Problem{File: l.File, Pos: Pos{line, col}, Context: ctx, Message: p.msg})
			}
			r.Program = prog
			for _, u := range c.history {
				line, col := exprPos(whenNode, l.Src, u.loc.From)
				if u.err != "" {
					l.Problems = append(l.Problems, &Problem{File: l.File, Pos: Pos{line, col}, Context: ctx, Message: u.err})
					continue
				}
				if u.kind != "" && !slices.Contains(l.rules.historyKinds, u.kind) {
					l.rules.historyKinds = append(l.rules.historyKinds, u.kind)
				}
				l.rules.historyWindow = max(l.rules.historyWindow, u.window)
			}
			for _, sv := range strangeValues(r.When) {
				line, col := exprPos(whenNode, l.Src, sv.offset)
				var values []string
				for _, n := range Names() {
					if n.Path == sv.path {
						values = n.Values
					}
				}
				p := &Problem{File: l.File, Pos: Pos{line, col}, Context: ctx, Message: sv.message(values)}
				if sv.path == "event.type" {
					l.Problems = append(l.Problems, p) // never matches anything: an error
					continue
				}
				p.Message = "warning: " + p.Message
				l.rules.valueWarnings = append(l.rules.valueWarnings, p)
			}
		}
		if actionsNode == nil {
			l.Problem(rn, ctx, "missing actions: a list of drop, unsuppress, suppress, log and {notify: DESTINATION}")
		} else {
			r.Actions = l.loadActions(actionsNode, ctx)
		}
		l.rules.Rules = append(l.rules.Rules, r)
	}
}

func (l *loader) loadActions(n *yaml.Node, ctx string) []Action {
	if n.Kind != yaml.SequenceNode {
		l.Problem(n, ctx, "actions must be a list, like [unsuppress, {notify: ses-alerts}]")
		return nil
	}
	if len(n.Content) == 0 {
		l.Problem(n, ctx, "actions is empty: say [drop] to take no action")
		return nil
	}
	var acts []Action
	seen := map[Action]bool{}
	add := func(a Action, at *yaml.Node) {
		if seen[a] {
			l.Problem(at, ctx, "action %s is listed twice", a)
			return
		}
		seen[a] = true
		acts = append(acts, a)
	}
	for _, an := range n.Content {
		switch an.Kind {
		case yaml.ScalarNode:
			switch an.Value {
			case "drop":
				add(Action{Kind: ActionDrop}, an)
			case "unsuppress":
				add(Action{Kind: ActionUnsuppress}, an)
			case "suppress":
				add(Action{Kind: ActionSuppress}, an)
			case "log":
				add(Action{Kind: ActionLog}, an)
			case "notify":
				l.Problem(an, ctx, "notify needs a destination: {notify: NAME}")
			default:
				if dest, ok := strings.CutPrefix(an.Value, "notify:"); ok {
					l.Problem(an, ctx, "write {notify: %s}, a mapping, not the string %q", strings.TrimSpace(dest), an.Value)
				} else {
					l.Problem(an, ctx, "unknown action %q (want drop, unsuppress, suppress, log or {notify: DESTINATION})", an.Value)
				}
			}
		case yaml.MappingNode:
			if len(an.Content) != 2 || an.Content[0].Value != "notify" {
				l.Problem(an, ctx, "an action mapping is {notify: DESTINATION}")
				continue
			}
			v := an.Content[1]
			dest := l.Str(v, ctx, "notify")
			if dest == "" {
				continue
			}
			if _, ok := l.rules.Destinations[dest]; !ok {
				l.Problem(v, ctx, "unknown destination %q%s", dest, l.knownDestinations())
				continue
			}
			add(Action{Kind: ActionNotify, Destination: dest}, v)
		default:
			l.Problem(an, ctx, "an action is drop, unsuppress, suppress, log or {notify: DESTINATION}")
		}
	}
	if seen[Action{Kind: ActionDrop}] {
		for _, a := range acts {
			if a.Kind != ActionDrop && a.Kind != ActionLog {
				l.Problem(n, ctx, "drop cannot go with %s: a dropped recipient gets no further action (only log may go with drop)", a)
				break
			}
		}
	}
	return acts
}

func (l *loader) knownDestinations() string {
	if len(l.rules.DestinationNames) == 0 {
		return " (no destinations are defined)"
	}
	return " (defined: " + strings.Join(l.rules.DestinationNames, ", ") + ")"
}

// RunError is the error of a rule whose expression failed at run time:
// expr's message without its multi-line snippet, and where in the
// expression it happened.
func (rule *Rule) RunError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("rule %q: %s (at %s, offset %d of the expression)", rule.Name, fe.Message, quoteAt(rule.When, fe.From), fe.From)
	}
	return fmt.Errorf("rule %q: %w", rule.Name, err)
}

// quoteAt quotes a little of s from rune offset i.
func quoteAt(s string, i int) string {
	r := []rune(s)
	i = max(0, min(i, len(r)))
	end := min(i+24, len(r))
	frag := strings.TrimSpace(string(r[i:end]))
	if end < len(r) {
		frag += "…"
	}
	return strconv.Quote(frag)
}
