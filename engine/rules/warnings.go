package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Warnings returns what is allowed in the rules but almost certainly a
// mistake, each as a *Problem whose message starts with "warning: ":
//
//   - a rule that can never decide, because an earlier rule always
//     matches first and ends the evaluation (it does not continue, or it
//     drops): its when is constant true once expr has optimised it
//     (true, 1 == 1, "a" in ["a"]), or it is the same text as the later
//     rule's when;
//   - a destination that no rule notifies;
//   - a comparison of bounce.type, bounce.subType, complaint.feedbackType,
//     delay.type or another name with a closed set of values against a
//     string SES never sends (the same for event.type is an error at
//     load).
//
// Warnings are sound: a rule that some recipient can reach is never
// reported. They are in file order.
func (r *Rules) Warnings() []*Problem {
	var warns []*Problem
	warn := func(pos Pos, context, format string, args ...any) {
		warns = append(warns, &Problem{File: r.File, Pos: pos, Context: context, Message: "warning: " + fmt.Sprintf(format, args...)})
	}
	// ends are the earlier rules that end the evaluation when they match.
	var ends []ender
	env := NewEnv(r.Lists)
	for _, rule := range r.Rules {
		for _, e := range ends {
			if why := e.shadows(rule); why != "" {
				warn(rule.Pos, fmt.Sprintf("rule %q", rule.Name), "never decides: rule %q (line %d) %s", e.rule.Name, e.rule.Pos.Line, why)
				break
			}
		}
		drops := slices.Contains(rule.Actions, Action{Kind: ActionDrop})
		if !rule.Continue || drops {
			ends = append(ends, ender{rule: rule, drops: drops, always: alwaysTrue(rule, env)})
		}
	}
	used := map[string]bool{}
	for _, rule := range r.Rules {
		for _, a := range rule.Actions {
			if a.Kind == ActionNotify {
				used[a.Destination] = true
			}
		}
	}
	for _, name := range r.DestinationNames {
		if d := r.Destinations[name]; d != nil && !used[name] {
			warn(d.Pos, fmt.Sprintf("destination %q", name), "unused: no rule notifies it")
		}
	}
	warns = append(warns, r.valueWarnings...)
	slices.SortStableFunc(warns, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	return warns
}

// ender is a rule that ends the evaluation when it matches: it does not
// continue, or it drops.
type ender struct {
	rule          *Rule
	drops, always bool
}

// shadows says why the ender leaves the later rule nothing to decide, or
// "" when it may not.
func (e ender) shadows(later *Rule) string {
	how := "does not continue"
	if e.drops {
		how = "drops"
	}
	switch {
	case e.always:
		return "always matches first and " + how
	case sameCondition(e.rule, later):
		return "has the same condition and " + how
	}
	return ""
}

// alwaysTrue reports whether the rule's compiled expression is the
// constant true. expr's optimiser folds most constant expressions (true,
// 1 == 1) into one node; what is left made only of literals and
// operators ("a" in ["a"]) is run once.
func alwaysTrue(rule *Rule, env *Env) bool {
	if rule.Program == nil {
		return false
	}
	node := rule.Program.Node()
	switch n := node.(type) {
	case *ast.BoolNode:
		return n.Value
	case *ast.ConstantNode:
		v, ok := n.Value.(bool)
		return ok && v
	}
	c := &constVisitor{constant: true}
	ast.Walk(&node, c)
	if !c.constant {
		return false
	}
	out, err := vm.Run(rule.Program, env)
	v, ok := out.(bool)
	return err == nil && ok && v
}

// constVisitor finds whether an expression tree reads nothing: no name,
// no field, no function (now() changes).
type constVisitor struct{ constant bool }

// Visit implements ast.Visitor.
func (c *constVisitor) Visit(node *ast.Node) {
	switch (*node).(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.ConstantNode,
		*ast.ArrayNode, *ast.MapNode, *ast.PairNode, *ast.UnaryNode, *ast.BinaryNode, *ast.ConditionalNode:
	default:
		c.constant = false
	}
}

// sameCondition reports whether two rules have the same when text. An
// expression depends only on the recipient and its notification, so the
// later rule is false (or fails) whenever the earlier one is; except
// through now(), which is left out.
func sameCondition(a, b *Rule) bool {
	wa, wb := strings.TrimSpace(a.When), strings.TrimSpace(b.When)
	return wa != "" && wa == wb && a.Program != nil && !strings.Contains(wa, "now")
}
