package engine

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// TestFile is a loaded rule test file: events and, for every recipient of
// each, the actions the rules must decide.
//
//	rules: ../rules.yaml
//	tests:
//	  - name: dummy addresses are dropped
//	    event: events/bounce-ignore.json
//	    expect:
//	      ignore@example.com: [drop]
type TestFile struct {
	// File is the name the test file was loaded under, used in messages.
	File string
	// Rules is the rules file as the rules: key wrote it, or empty;
	// RulesPath resolves it. RulesPos is where it is written.
	Rules    string
	RulesPos Pos
	Tests    []*RuleTest
}

// RulesPath returns the rules file the test file names, relative to the
// test file's folder, or "" when it names none.
func (tf *TestFile) RulesPath() string {
	if tf.Rules == "" {
		return ""
	}
	return relativeTo(tf.File, tf.Rules)
}

// RuleTest is one test of a test file.
type RuleTest struct {
	Name string
	// Pos is the position of the test in the file.
	Pos Pos
	// Event is the notification the test routes.
	Event *Notification
	// Expect holds one expectation per recipient of Event, in file order.
	Expect []Expectation
}

// Expectation is the actions one recipient must get, written as the JSON
// output writes them: drop, unsuppress, suppress, log, notify:DEST.
type Expectation struct {
	Address string
	Actions []string
	// Pos is the position of the address in the file.
	Pos Pos
}

// LoadTestFile reads and loads the test file at path.
func LoadTestFile(path string) (*TestFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("test file: %w", err)
	}
	return LoadTests(path, src)
}

// LoadTests parses and checks a test file; name is used in messages, and
// event files are read relative to its folder. Like Load it is strict:
// unknown keys, a missing or unreadable event, an expectation for an
// address that is not a recipient of the event, and a recipient without
// an expectation are problems. On failure the error joins one *Problem
// per problem found, in file order, each saying FILE:LINE:COL: test
// "NAME": message.
func LoadTests(name string, src []byte) (*TestFile, error) {
	l := &loader{file: name, src: src}
	tf := &TestFile{File: name}
	l.loadTests(tf)
	if len(l.problems) > 0 {
		return nil, joinProblems(l.problems)
	}
	return tf, nil
}

// joinProblems sorts problems into file order and joins them.
func joinProblems(problems []*Problem) error {
	slices.SortStableFunc(problems, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// relativeTo resolves path relative to the folder of file, unless it is
// absolute.
func relativeTo(file, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(file), path)
}

func (l *loader) loadTests(tf *TestFile) {
	root := l.root("test file", "it needs tests", "rules and tests")
	if root == nil {
		return
	}
	var testsNode *yaml.Node
	l.eachKey(root, "", func(k, v *yaml.Node) {
		switch k.Value {
		case "rules":
			tf.Rules = l.str(v, "", "rules")
			tf.RulesPos = Pos{v.Line, v.Column}
		case "tests":
			testsNode = v
		default:
			l.problem(k, "", "unknown key %q (want rules or tests)", k.Value)
		}
	})
	switch {
	case testsNode == nil:
		l.problem(root, "", "missing tests: a list of tests, each with name, event and expect")
		return
	case testsNode.Kind != yaml.SequenceNode:
		l.problem(testsNode, "", "tests must be a list of tests, each with name, event and expect")
		return
	case len(testsNode.Content) == 0:
		l.problem(testsNode, "", "tests is empty")
		return
	}
	names := map[string]*yaml.Node{}
	for i, tn := range testsNode.Content {
		if t := l.loadTest(tn, i, names); t != nil {
			tf.Tests = append(tf.Tests, t)
		}
	}
}

// loadTest loads one test; it returns nil when the test has problems.
func (l *loader) loadTest(tn *yaml.Node, i int, names map[string]*yaml.Node) *RuleTest {
	before := len(l.problems)
	ctx := fmt.Sprintf("test #%d", i+1)
	if tn.Kind != yaml.MappingNode {
		l.problem(tn, ctx, "a test is a mapping with name, event (or event_json) and expect")
		return nil
	}
	for j := 0; j+1 < len(tn.Content); j += 2 {
		if tn.Content[j].Value == "name" && tn.Content[j+1].Kind == yaml.ScalarNode && tn.Content[j+1].Value != "" {
			ctx = fmt.Sprintf("test %q", tn.Content[j+1].Value)
		}
	}
	t := &RuleTest{Pos: Pos{tn.Line, tn.Column}}
	var eventKey, eventNode, jsonKey, jsonNode, expectKey, expectNode *yaml.Node
	l.eachKey(tn, ctx, func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			t.Name = l.str(v, ctx, "name")
			if prev, dup := names[t.Name]; dup && t.Name != "" {
				l.problem(v, ctx, "duplicate test name (first used at line %d)", prev.Line)
			} else if t.Name != "" {
				names[t.Name] = v
			}
		case "event":
			eventKey, eventNode = k, v
		case "event_json":
			jsonKey, jsonNode = k, v
		case "expect":
			expectKey, expectNode = k, v
		default:
			l.problem(k, ctx, "unknown key %q (want name, event, event_json or expect)", k.Value)
		}
	})
	if !hasKey(tn, "name") {
		l.problem(tn, ctx, "missing name")
	}
	input := fmt.Sprintf("%s:%d", l.file, tn.Line)
	switch {
	case eventNode != nil && jsonNode != nil:
		l.problem(jsonKey, ctx, "give event or event_json, not both")
	case eventNode == nil && jsonNode == nil:
		l.problem(tn, ctx, "missing event: a file (event: events/bounce.json), an inline event (event: {type: Bounce, recipients: [a@example.com]}) or event_json")
	case jsonNode != nil:
		if s := l.str(jsonNode, ctx, "event_json"); s != "" {
			t.Event = l.testEvent(jsonNode, ctx, "event_json", input, []byte(s), false)
		}
	case eventNode.Kind == yaml.MappingNode:
		if doc := l.compactEvent(eventNode, ctx); doc != nil {
			t.Event = l.testEvent(eventNode, ctx, "event", input, doc, false)
		}
	case eventNode.Kind == yaml.ScalarNode && eventNode.Tag != "!!null":
		path := relativeTo(l.file, eventNode.Value)
		src, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			l.problem(eventNode, ctx, "event file %s does not exist (event files are relative to the test file)", path)
		case err != nil:
			l.problem(eventNode, ctx, "event file: %v", err)
		default:
			t.Event = l.testEvent(eventNode, ctx, "event file "+path, path, src, true)
		}
	default:
		l.problem(eventKey, ctx, "event must be a file name or a mapping (the compact form), not %s", nodeText(eventNode))
	}
	if expectNode == nil {
		l.problem(tn, ctx, "missing expect: for every recipient of the event, the actions in order ([] for none)")
	} else {
		t.Expect = l.loadExpect(expectNode, ctx)
		if t.Event != nil {
			l.matchExpect(t, expectKey, ctx)
		}
	}
	if len(l.problems) > before {
		return nil
	}
	return t
}

func hasKey(m *yaml.Node, key string) bool {
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return true
		}
	}
	return false
}

// testEvent decodes the event of a test, which must be exactly one SES
// notification. stream reads doc as a file (one document or several).
func (l *loader) testEvent(at *yaml.Node, ctx, what, input string, doc []byte, stream bool) *Notification {
	var items []Item
	if stream {
		r := NewReader(bytes.NewReader(doc), input)
		for {
			it, err := r.Next()
			if err != nil {
				break // io.EOF: a bytes.Reader fails no other way
			}
			items = append(items, it)
		}
	} else {
		items = Decode(input, doc)
	}
	switch {
	case len(items) == 0:
		l.problem(at, ctx, "%s holds no notification", what)
		return nil
	case len(items) > 1:
		l.problem(at, ctx, "%s holds %d notifications; a test routes exactly one", what, len(items))
		return nil
	}
	it := items[0]
	switch {
	case it.Err != nil:
		l.problem(at, ctx, "%s cannot be read: %v", what, it.Err)
	case it.Skipped != "":
		l.problem(at, ctx, "%s is not an SES notification: %s", what, it.Skipped)
	default:
		return it.Notification
	}
	return nil
}

// loadExpect reads the expect mapping: address → list of action strings.
func (l *loader) loadExpect(n *yaml.Node, ctx string) []Expectation {
	if n.Kind != yaml.MappingNode {
		l.problem(n, ctx, "expect must be a mapping of recipient address to a list of actions, not %s", nodeText(n))
		return nil
	}
	var out []Expectation
	seen := map[string]*yaml.Node{}
	l.eachKey(n, ctx, func(k, v *yaml.Node) {
		key := addressKey(k.Value)
		if prev, dup := seen[key]; dup {
			l.problem(k, ctx, "expect: %s is the same address as %s (line %d)", k.Value, prev.Value, prev.Line)
			return
		}
		seen[key] = k
		e := Expectation{Address: k.Value, Actions: []string{}, Pos: Pos{k.Line, k.Column}}
		if v.Kind != yaml.SequenceNode {
			l.problem(v, ctx, "expect: %s: the actions are a list, like [unsuppress, \"notify:ses-alerts\"] or [] for none, not %s", k.Value, nodeText(v))
			return
		}
		for _, an := range v.Content {
			if an.Kind == yaml.MappingNode && len(an.Content) == 2 && an.Content[0].Value == "notify" {
				l.problem(an, ctx, "expect: write \"notify:%s\", a string, as the JSON output does", an.Content[1].Value)
				continue
			}
			a := l.str(an, ctx, "an action")
			if a != "" && !validActionString(a) {
				l.problem(an, ctx, "expect: unknown action %q (want drop, unsuppress, suppress, log or notify:DESTINATION)", a)
			}
			e.Actions = append(e.Actions, a)
		}
		out = append(out, e)
	})
	return out
}

func validActionString(a string) bool {
	switch a {
	case "drop", "unsuppress", "suppress", "log":
		return true
	}
	dest, ok := strings.CutPrefix(a, "notify:")
	return ok && destRE.MatchString(dest)
}

// addressKey is how expectations and recipients are matched: the bare
// address in lower case.
func addressKey(address string) string {
	return strings.ToLower(BareAddress(address))
}

// matchExpect reports expectations for addresses that are not recipients
// of the event, and recipients without an expectation.
func (l *loader) matchExpect(t *RuleTest, expectKey *yaml.Node, ctx string) {
	recipients := map[string]bool{}
	var list []string
	for _, r := range t.Event.Recipients {
		if k := addressKey(r.Address); !recipients[k] {
			recipients[k] = true
			list = append(list, r.Address)
		}
	}
	expected := map[string]bool{}
	for _, e := range t.Expect {
		expected[addressKey(e.Address)] = true
		if !recipients[addressKey(e.Address)] {
			names := "the event has no recipients"
			if len(list) > 0 {
				names = "recipients: " + strings.Join(list, ", ")
			}
			l.problems = append(l.problems, &Problem{File: l.file, Pos: e.Pos, Context: ctx,
				Message: fmt.Sprintf("expect: %s is not a recipient of the event (%s)", e.Address, names)})
		}
	}
	for _, a := range list {
		if !expected[addressKey(a)] {
			l.problem(expectKey, ctx, "expect: no expectation for recipient %s: list every recipient ([] for no action)", a)
		}
	}
}

// TestResult is the outcome of one test.
type TestResult struct {
	File string
	Test *RuleTest
	// Failures has one entry per recipient whose actions differ from
	// those expected, or whose routing hit an expression error.
	Failures []RecipientFailure
}

// Passed says whether every recipient got the actions expected.
func (r *TestResult) Passed() bool { return len(r.Failures) == 0 }

// RecipientFailure is one recipient of a failed test.
type RecipientFailure struct {
	Recipient string
	Want, Got []string
	// Matched names the rules that matched, in order; Decider the one
	// that decided (empty when none did).
	Matched []string
	Decider string
	// Err is an expression error met while routing the recipient.
	Err error
}

// RunTests routes the event of every test of tf whose name run matches
// (every test when run is nil) and compares, per recipient, the actions
// decided with those expected. It performs nothing.
func RunTests(router *Router, tf *TestFile, run *regexp.Regexp) []TestResult {
	var results []TestResult
	for _, t := range tf.Tests {
		if run != nil && !run.MatchString(t.Name) {
			continue
		}
		want := map[string][]string{}
		for _, e := range t.Expect {
			want[addressKey(e.Address)] = e.Actions
		}
		res := TestResult{File: tf.File, Test: t}
		plan := router.Route(t.Event)
		for i := range plan.Recipients {
			d := &plan.Recipients[i]
			got := make([]string, len(d.Actions))
			for j, a := range d.Actions {
				got[j] = a.String()
			}
			w := want[addressKey(d.Recipient.Address)]
			if slices.Equal(got, w) && d.Err == nil {
				continue
			}
			f := RecipientFailure{Recipient: d.Recipient.Address, Want: w, Got: got, Err: d.Err}
			for _, r := range d.Matched {
				f.Matched = append(f.Matched, r.Name)
			}
			if d.Decider != nil {
				f.Decider = d.Decider.Name
			}
			res.Failures = append(res.Failures, f)
		}
		results = append(results, res)
	}
	return results
}
