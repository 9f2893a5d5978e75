package rules

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAML reads a YAML file strictly and collects every problem in it, each
// with its position, so that all of them are reported at once. The rules
// file, rule test files (package ruletest) and destinations (package
// actions) are all read through it, so that they say FILE:LINE:COL the
// same way.
type YAML struct {
	// File names the file in problems; Src is its text.
	File string
	Src  []byte
	// Problems are those found so far, in the order found.
	Problems []*Problem
}

// Problem records a problem at n (nil: the start of the file) in context
// (`rule "NAME"`, or empty).
func (y *YAML) Problem(n *yaml.Node, context, format string, args ...any) {
	pos := Pos{1, 1}
	if n != nil {
		pos = Pos{n.Line, n.Column}
	}
	y.ProblemAt(pos, context, format, args...)
}

// ProblemAt records a problem at pos in context.
func (y *YAML) ProblemAt(pos Pos, context, format string, args ...any) {
	y.Problems = append(y.Problems, &Problem{File: y.File, Pos: pos, Context: context, Message: fmt.Sprintf(format, args...)})
}

// Err joins the problems found, in file order; nil when there are none.
func (y *YAML) Err() error { return JoinProblems(y.Problems) }

// JoinProblems sorts problems into file order and joins them into one
// error (each a *Problem); nil when there are none.
func JoinProblems(problems []*Problem) error {
	if len(problems) == 0 {
		return nil
	}
	slices.SortStableFunc(problems, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// Root decodes the one YAML document of the file and returns its top
// mapping, or nil after reporting why there is none. what names the file
// ("rules file"), empty says what an empty one needs, and mapping what its
// mapping holds.
func (y *YAML) Root(what, empty, mapping string) *yaml.Node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(y.Src))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			y.Problem(nil, "", "empty %s: %s", what, empty)
			return nil
		}
		y.yamlError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		y.Problem(&extra, "", "a %s holds one YAML document; a second one starts here", what)
	}
	if len(doc.Content) == 0 {
		y.Problem(&doc, "", "empty %s: %s", what, empty)
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		y.Problem(root, "", "the %s must be a mapping with %s", what, mapping)
		return nil
	}
	return root
}

// yamlError turns a yaml.v3 syntax error ("yaml: line N: msg") into a
// Problem with its line.
func (y *YAML) yamlError(err error) {
	msg := err.Error()
	line := 1
	var n int
	if _, scanErr := fmt.Sscanf(msg, "yaml: line %d:", &n); scanErr == nil {
		line = n
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	y.ProblemAt(Pos{line, 1}, "", "YAML: %s", msg)
}

// EachKey calls fn for each key of a mapping, reporting keys that are not
// plain strings and keys given twice.
func (y *YAML) EachKey(m *yaml.Node, context string, fn func(k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			y.Problem(k, context, "keys must be plain strings")
			continue
		}
		if seen[k.Value] {
			y.Problem(k, context, "key %q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k, v)
	}
}

// Str returns a scalar as a string, reporting anything else and an empty
// string; what names the value in the problem.
func (y *YAML) Str(n *yaml.Node, context, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		y.Problem(n, context, "%s must be a string, not %s", what, NodeText(n))
		return ""
	}
	if n.Value == "" {
		y.Problem(n, context, "%s must not be empty", what)
	}
	return n.Value
}

// NodeText describes a node in a problem: "a mapping", "a list", "null",
// or its value quoted.
func NodeText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "null"
	}
	return fmt.Sprintf("%q", n.Value)
}
