package rules

import (
	"slices"
	"strconv"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// strangeValue is a comparison of a name whose values SES sends from a
// closed set (event.type, bounce.type, …) with a string SES never sends.
type strangeValue struct {
	offset int // of the string in the expression, in runes
	path   string
	value  string
	// near is the value SES sends that was probably meant, or "".
	near string
}

// message says what is wrong, with a did-you-mean.
func (s strangeValue) message(values []string) string {
	msg := s.path + " is never " + strconv.Quote(s.value)
	if s.near != "" {
		return msg + "; did you mean " + strconv.Quote(s.near) + "?"
	}
	return msg + " (SES sends " + orWords(values) + ")"
}

// strangeValues finds, in a when expression, the comparisons (==, !=, in
// a list) of a name with closed values against a string SES never sends:
// `event.type == "bounce"` passes the type checker and never matches.
func strangeValues(src string) []strangeValue {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	closed := map[string][]string{}
	for _, n := range Names() {
		if n.Values != nil {
			closed[n.Path] = n.Values
		}
	}
	var out []strangeValue
	check := func(path string, lit ast.Node) {
		values, ok := closed[path]
		if !ok {
			return
		}
		var strs []*ast.StringNode
		switch l := lit.(type) {
		case *ast.StringNode:
			strs = append(strs, l)
		case *ast.ArrayNode:
			for _, e := range l.Nodes {
				if s, ok := e.(*ast.StringNode); ok {
					strs = append(strs, s)
				}
			}
		}
		for _, s := range strs {
			// "" is a guard (complaint.subType == ""), never a misspelling.
			if s.Value != "" && !slices.Contains(values, s.Value) {
				out = append(out, strangeValue{offset: s.Location().From, path: path, value: s.Value, near: nearest(s.Value, values)})
			}
		}
	}
	v := &vocabVisitor{check: check}
	ast.Walk(&tree.Node, v)
	slices.SortFunc(out, func(a, b strangeValue) int { return a.offset - b.offset })
	return out
}

// vocabVisitor finds the comparisons strangeValues looks at.
type vocabVisitor struct {
	check func(path string, lit ast.Node)
}

// Visit implements ast.Visitor.
func (v *vocabVisitor) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	switch b.Operator {
	case "==", "!=":
		if p := memberPath(b.Left); p != "" {
			v.check(p, b.Right)
		}
		if p := memberPath(b.Right); p != "" {
			v.check(p, b.Left)
		}
	case "in", "not in":
		if p := memberPath(b.Left); p != "" {
			v.check(p, b.Right)
		}
	}
}

// memberPath is "event.type" for the expression event.type, else "".
func memberPath(n ast.Node) string {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return ""
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	prop, ok2 := m.Property.(*ast.StringNode)
	if !ok || !ok2 {
		return ""
	}
	return id.Value + "." + prop.Value
}

// orWords joins values for a sentence: "a, b or c".
func orWords(values []string) string {
	switch len(values) {
	case 0:
		return ""
	case 1:
		return strconv.Quote(values[0])
	}
	out := ""
	for i, v := range values {
		switch {
		case i == len(values)-1:
			out += " or "
		case i > 0:
			out += ", "
		}
		out += strconv.Quote(v)
	}
	return out
}
