package rules

import (
	"math"
	"math/bits"
	"reflect"
	"regexp/syntax"

	"github.com/expr-lang/expr/ast"
)

// SlowRule is the cost, in steps (see ruleCost), above which check calls
// a rule slow: a step is about one instruction of expr's machine, so
// that a million of them take some 10 ms. The rules of the examples cost
// a few hundred at most.
const SlowRule uint64 = 1_000_000

// The sizes that ruleCost assumes of a value read from a notification,
// which only run time knows, and the cost of the work on them.
const (
	// costItems is the number of items of a list (mail.destination,
	// mail.tags["k"]) or a map: SES sends to at most 50 recipients.
	costItems = 50
	// costChars is the number of characters of a string: a long address.
	costChars = 320
	// charsPerStep is how many characters comparing, copying or
	// converting strings handles in one step.
	charsPerStep = 16
	// itemSteps is the cost of one turn of a loop besides its body.
	itemSteps = 4
)

// cost is what ruleCost finds of an expression or a part of one.
type cost struct {
	// steps bounds the work of evaluating it once.
	steps uint64
	// size is the number of characters of the string it evaluates to
	// (text is then set), the number of items of the list or map, or 1;
	// elem is, for a list, the size of its largest item.
	size, elem uint64
	text       bool
	// hot is the outermost costly operation in it (a loop, a matches, a
	// glob, a range, a repeat) with the most steps, repetitions included:
	// hotSteps.
	hot      ast.Node
	hotSteps uint64
}

// scan is the cost in steps of going once through the value.
func (c cost) scan() uint64 {
	if c.text {
		return (c.size + charsPerStep - 1) / charsPerStep
	}
	return c.size
}

// ruleCost bounds the work of a rule's compiled expression for one
// recipient, in steps, from the program alone: no clock is read and
// nothing is run, so that the verdict is the same on an idle machine and
// on a busy one. An operation is a step; a loop (all, any, filter, map,
// …) costs its body and itemSteps once per item of its list; matches
// costs the number of instructions of the compiled regular expression
// times the length of the string; glob the pattern's length times the
// string's; other work on strings their length. Work on characters
// counts charsPerStep characters a step, but for matches. A literal list
// (lists.NAME is one) has its own length, a range of constants its own;
// a value of the notification has costItems items or costChars
// characters. Every branch is counted, as if none were cut short. It
// also returns the costly part of the expression that makes at least
// half of the cost, or nil when there is none.
func ruleCost(rule *Rule) (uint64, ast.Node) {
	if rule.Program == nil {
		return 0, nil
	}
	c := costOf(rule.Program.Node(), nil)
	if c.hot != nil && c.hotSteps >= c.steps/2 {
		return c.steps, c.hot
	}
	return c.steps, nil
}

// costScope binds the names of let declarations, and # in a loop's
// body, to the sizes of their values.
type costScope struct {
	name   string
	value  cost
	parent *costScope
}

// lookup sets in c the sizes bound to name, if name is bound.
func (s *costScope) lookup(name string, c *cost) {
	for ; s != nil; s = s.parent {
		if s.name == name {
			c.size, c.elem, c.text = s.value.size, s.value.elem, s.value.text
			return
		}
	}
}

// bind returns the scope with name bound to the sizes of value.
func (s *costScope) bind(name string, value cost) *costScope {
	return &costScope{name: name, value: cost{size: value.size, elem: value.elem, text: value.text}, parent: s}
}

// item is the sizes of an item of the list c.
func (c cost) item() cost {
	return cost{size: c.elem, text: c.text}
}

// costOf estimates one node, parts included.
func costOf(node ast.Node, vars *costScope) cost {
	c := cost{steps: 1, size: 1}
	if t := node.Type(); t != nil {
		c.size, c.text = nominalSize(t), t.Kind() == reflect.String
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			c.elem, c.text = nominalSize(t.Elem()), t.Elem().Kind() == reflect.String
		}
	}
	costly := false
	switch n := node.(type) {
	case *ast.StringNode:
		c.size = uint64(len(n.Value))
	case *ast.ConstantNode:
		c.size, c.elem = constantSize(n.Value)
	case *ast.IdentifierNode:
		vars.lookup(n.Value, &c)
	case *ast.PointerNode:
		if n.Name == "" {
			vars.lookup("#", &c)
		}
	case *ast.ArrayNode:
		c.elem = 0
		for _, e := range n.Nodes {
			ec := c.add(costOf(e, vars), 1)
			c.elem = max(c.elem, ec.size)
		}
		c.size = uint64(len(n.Nodes))
	case *ast.MapNode:
		for _, p := range n.Pairs {
			c.add(costOf(p, vars), 1)
		}
		c.size = uint64(len(n.Pairs))
	case *ast.PairNode:
		c.add(costOf(n.Key, vars), 1)
		c.add(costOf(n.Value, vars), 1)
	case *ast.UnaryNode:
		c.add(costOf(n.Node, vars), 1)
	case *ast.ChainNode:
		c.sized(c.add(costOf(n.Node, vars), 1))
	case *ast.PredicateNode:
		c.sized(c.add(costOf(n.Node, vars), 1))
	case *ast.MemberNode:
		inner := c.add(costOf(n.Node, vars), 1)
		c.add(costOf(n.Property, vars), 1)
		if t := n.Node.Type(); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			c.size = inner.elem
		}
	case *ast.SliceNode:
		inner := c.add(costOf(n.Node, vars), 1)
		for _, bound := range []ast.Node{n.From, n.To} {
			if bound != nil {
				c.add(costOf(bound, vars), 1)
			}
		}
		c.sized(inner)
		c.steps = addSat(c.steps, inner.scan())
	case *ast.ConditionalNode:
		c.add(costOf(n.Cond, vars), 1)
		e1, e2 := costOf(n.Exp1, vars), costOf(n.Exp2, vars)
		if e2.steps > e1.steps {
			e1, e2 = e2, e1
		}
		c.add(e1, 1)
		c.sized(e1)
		c.size, c.elem = max(e1.size, e2.size), max(e1.elem, e2.elem)
	case *ast.VariableDeclaratorNode:
		value := c.add(costOf(n.Value, vars), 1)
		c.sized(c.add(costOf(n.Expr, vars.bind(n.Name, value)), 1))
	case *ast.SequenceNode:
		for _, e := range n.Nodes {
			c.sized(c.add(costOf(e, vars), 1))
		}
	case *ast.BinaryNode:
		l, r := c.add(costOf(n.Left, vars), 1), c.add(costOf(n.Right, vars), 1)
		costly = c.binary(n, l, r)
	case *ast.CallNode:
		c.add(costOf(n.Callee, vars), 1)
		var args []cost
		for _, a := range n.Arguments {
			args = append(args, c.add(costOf(a, vars), 1))
		}
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "glob" && len(args) == 2 {
			// Backtracking to the last '*' may compare each character
			// of s with most of the pattern.
			c.steps = addSat(c.steps, mulSat(args[0].size, args[1].size)/charsPerStep)
			costly = true
		} else {
			for _, a := range args {
				c.steps = addSat(c.steps, a.scan())
			}
		}
	case *ast.BuiltinNode:
		costly = c.builtin(n, vars)
	}
	if costly {
		// The outermost costly operation: its steps hold its parts'.
		c.hot, c.hotSteps = node, c.steps
	}
	return c
}

// add counts part, times times, in c's steps, keeps its costly
// operation when it is c's hottest so far, and returns part.
func (c *cost) add(part cost, times uint64) cost {
	c.steps = addSat(c.steps, mulSat(part.steps, times))
	if part.hot != nil {
		if hs := mulSat(part.hotSteps, times); c.hot == nil || hs > c.hotSteps {
			c.hot, c.hotSteps = part.hot, hs
		}
	}
	return part
}

// sized gives c the sizes of v, the value c evaluates to.
func (c *cost) sized(v cost) {
	c.size, c.elem, c.text = v.size, v.elem, v.text
}

// binary adds the work of a binary operator itself to c, which holds its
// operands' already, and reports whether it is a costly operation.
func (c *cost) binary(n *ast.BinaryNode, l, r cost) bool {
	switch n.Operator {
	case "matches":
		insts := r.size // a pattern known only at run time is compiled then
		if s, ok := n.Right.(*ast.StringNode); ok {
			insts = regexpSize(s.Value)
		} else {
			c.steps = addSat(c.steps, r.size)
		}
		c.steps = addSat(c.steps, mulSat(insts, max(l.size, 1)))
		return true
	case "..":
		c.size, c.elem, c.text = costChars, 1, false
		lo, lok := n.Left.(*ast.IntegerNode)
		hi, hok := n.Right.(*ast.IntegerNode)
		if lok && hok {
			c.size = 0
			if hi.Value >= lo.Value {
				c.size = uint64(hi.Value) - uint64(lo.Value) + 1
			}
		}
		c.steps = addSat(c.steps, c.size)
		return true
	case "in":
		// The optimiser makes a literal list of strings or numbers a
		// set; a map or a section is looked up; a list is scanned.
		if k, ok := n.Right.(*ast.ConstantNode); ok && reflect.ValueOf(k.Value).Kind() == reflect.Map {
			return false
		}
		if t := n.Right.Type(); t != nil && (t.Kind() == reflect.Map || t.Kind() == reflect.Struct) {
			return false
		}
		c.steps = addSat(c.steps, mulSat(r.size, 1+l.scan()))
	case "contains", "startsWith", "endsWith", "==", "!=", "<", "<=", ">", ">=":
		c.steps = addSat(c.steps, min(l.scan(), r.scan()))
		if n.Operator == "contains" {
			c.steps = addSat(c.steps, l.scan())
		}
	case "+":
		if t := n.Type(); t != nil && (t.Kind() == reflect.String || t.Kind() == reflect.Slice) {
			c.size, c.elem = addSat(l.size, r.size), max(l.elem, r.elem)
			c.steps = addSat(c.steps, c.scan())
		}
	case "??":
		c.size, c.elem, c.text = max(l.size, r.size), max(l.elem, r.elem), l.text || r.text
	}
	return false
}

// builtin adds the work of a builtin call, arguments included, to c and
// reports whether it is a costly operation. A builtin with a predicate
// (all, any, filter, map, …) is a loop over its first argument: the
// predicate, and a map the optimiser fused into a filter, cost once per
// item, with # an item.
func (c *cost) builtin(n *ast.BuiltinNode, vars *costScope) bool {
	var args []cost
	var list cost
	loop := false
	for i, a := range n.Arguments {
		if p, ok := a.(*ast.PredicateNode); ok && i > 0 {
			loop = true
			args = append(args, c.add(costOf(p, vars.bind("#", list.item())), list.size))
			continue
		}
		args = append(args, c.add(costOf(a, vars), 1))
		if i == 0 {
			list = args[0]
		}
	}
	if loop {
		c.steps = addSat(c.steps, mulSat(list.size, itemSteps))
		switch n.Name {
		case "filter", "sortBy":
			c.sized(list)
			if n.Map != nil {
				body := c.add(costOf(n.Map, vars.bind("#", list.item())), list.size)
				c.elem, c.text = body.size, body.text
			}
		case "map":
			c.sized(list)
			c.elem, c.text = args[1].size, args[1].text
		case "find", "findLast":
			c.sized(list.item())
		}
		return true
	}
	switch n.Name {
	case "len":
		return false
	case "repeat":
		if len(args) == 2 {
			times := uint64(costChars)
			if k, ok := n.Arguments[1].(*ast.IntegerNode); ok {
				times = uint64(max(k.Value, 0))
			}
			c.size = mulSat(args[0].size, times)
			c.steps = addSat(c.steps, c.scan())
		}
		return true
	case "concat":
		c.size, c.elem = 0, 0
		for _, a := range args {
			c.size, c.elem = addSat(c.size, a.size), max(c.elem, a.elem)
		}
	case "split", "splitAfter":
		if len(args) > 0 {
			c.size, c.elem = args[0].size, args[0].size
		}
	case "lower", "upper", "trim", "trimPrefix", "trimSuffix", "replace", "sort", "uniq", "reverse", "take":
		if len(args) > 0 {
			c.sized(args[0])
		}
	case "first", "last", "get":
		if len(args) > 0 && args[0].elem > 0 {
			c.sized(args[0].item())
		}
	}
	for _, a := range args {
		c.steps = addSat(c.steps, a.scan())
	}
	return false
}

// nominalSize is the size of a value of type t read from a notification.
func nominalSize(t reflect.Type) uint64 {
	switch t.Kind() {
	case reflect.String:
		return costChars
	case reflect.Slice, reflect.Array, reflect.Map:
		return costItems
	}
	return 1
}

// constantSize is the size of a constant the optimiser folded, and for a
// list the size of its largest item.
func constantSize(v any) (size, elem uint64) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Map:
		return uint64(rv.Len()), 0
	case reflect.Slice, reflect.Array:
		for i := range rv.Len() {
			e, _ := constantSize(rv.Index(i).Interface())
			elem = max(elem, e)
		}
		return uint64(rv.Len()), elem
	}
	return 1, 0
}

// regexpSize is the number of instructions of the compiled regular
// expression: what matching costs, at worst, per character of the input.
func regexpSize(pattern string) uint64 {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return uint64(len(pattern))
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return uint64(len(pattern))
	}
	return uint64(len(prog.Inst))
}

// addSat is a + b, or the largest uint64 when that overflows.
func addSat(a, b uint64) uint64 {
	sum, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return sum
}

// mulSat is a × b, or the largest uint64 when that overflows.
func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
