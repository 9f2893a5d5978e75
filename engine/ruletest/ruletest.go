// Package ruletest runs rule unit tests: files of events, each with the
// actions the rules must decide for every recipient, and the compact
// event form an event may be written in. It routes with the engine and
// performs nothing.
package ruletest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"go.yaml.in/yaml/v3"
)

// File is a loaded rule test file: events and, for every recipient of
// each, the actions the rules must decide.
//
//	rules: ../rules.yaml
//	tests:
//	  - name: dummy addresses are dropped
//	    event: {type: Bounce, recipients: [ignore@example.com]}
//	    expect:
//	      ignore@example.com: [drop]
type File struct {
	// Name is the name the test file was loaded under, used in messages.
	Name string
	// Rules is the rules file as the rules: key wrote it, or empty;
	// RulesPath resolves it. RulesPos is where it is written.
	Rules    string
	RulesPos rules.Pos
	Tests    []*Test
}

// RulesPath returns the rules file the test file names: a file relative
// to the test file's folder, an S3 object (s3://BUCKET/KEY) as it is, or
// "" when it names none.
func (f *File) RulesPath() string {
	switch {
	case f.Rules == "":
		return ""
	case IsS3(f.Rules):
		return f.Rules
	}
	return relativeTo(f.Name, f.Rules)
}

// IsS3 reports whether a rules file's name is an S3 object's,
// s3://BUCKET/KEY, which Suite.Load reads.
func IsS3(name string) bool { return strings.HasPrefix(name, "s3://") }

// Test is one test of a test file.
type Test struct {
	Name string
	// Pos is the position of the test in the file.
	Pos rules.Pos
	// Event is the notification the test routes.
	Event *ses.Notification
	// Expect holds one expectation per recipient of Event, in file order.
	Expect []Expectation
	// History, when the test gives history:, is what history(kind,
	// window) counts for every recipient: the count of each kind named,
	// whatever the window, and 0 for a kind not named. nil: the test
	// gives none, and Run asks the Suite's History (0 without one).
	History map[string]int
}

// fixedHistory is the history: of a test.
type fixedHistory map[string]int

// Count implements rules.History for a test that gives history:.
func (h fixedHistory) Count(_, kind string, _ time.Duration) int { return h[kind] }

// Expectation is the actions one recipient must get, written as the JSON
// output writes them: drop, unsuppress, suppress, log, notify:DEST.
type Expectation struct {
	Address string
	Actions []string
	// Pos is the position of the address in the file.
	Pos rules.Pos
}

// LoadFile reads and loads the test file at path.
func LoadFile(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("test file: %w", err)
	}
	return Load(path, src)
}

// Load parses and checks a test file; name is used in messages, and event
// files are read relative to its folder. It is strict: unknown keys, a
// missing or unreadable event, an expectation for an address that is not
// a recipient of the event, and a recipient without an expectation are
// problems. On failure the error joins one *rules.Problem per problem
// found, in file order, each saying FILE:LINE:COL: test "NAME": message.
func Load(name string, src []byte) (*File, error) {
	l := &loader{YAML: &rules.YAML{File: name, Src: src}}
	f := &File{Name: name}
	l.load(f)
	if err := l.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// relativeTo resolves path relative to the folder of file, unless it is
// absolute.
func relativeTo(file, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(file), path)
}

// loader reads a test file through engine.YAML.
type loader struct {
	*rules.YAML
}

func (l *loader) load(f *File) {
	root := l.Root("test file", "it needs tests", "rules and tests")
	if root == nil {
		return
	}
	var testsNode *yaml.Node
	l.EachKey(root, "", func(k, v *yaml.Node) {
		switch k.Value {
		case "rules":
			f.Rules = l.Str(v, "", "rules")
			f.RulesPos = rules.Pos{Line: v.Line, Col: v.Column}
		case "tests":
			testsNode = v
		default:
			l.Problem(k, "", "unknown key %q (want rules or tests)", k.Value)
		}
	})
	switch {
	case testsNode == nil:
		l.Problem(root, "", "missing tests: a list of tests, each with name, event and expect")
		return
	case testsNode.Kind != yaml.SequenceNode:
		l.Problem(testsNode, "", "tests must be a list of tests, each with name, event and expect")
		return
	case len(testsNode.Content) == 0:
		l.Problem(testsNode, "", "tests is empty")
		return
	}
	names := map[string]*yaml.Node{}
	for i, tn := range testsNode.Content {
		if t := l.loadTest(tn, i, names); t != nil {
			f.Tests = append(f.Tests, t)
		}
	}
}

// loadTest loads one test; it returns nil when the test has problems.
func (l *loader) loadTest(tn *yaml.Node, i int, names map[string]*yaml.Node) *Test {
	before := len(l.Problems)
	ctx := fmt.Sprintf("test #%d", i+1)
	if tn.Kind != yaml.MappingNode {
		l.Problem(tn, ctx, "a test is a mapping with name, event (or event_json) and expect")
		return nil
	}
	for j := 0; j+1 < len(tn.Content); j += 2 {
		if tn.Content[j].Value == "name" && tn.Content[j+1].Kind == yaml.ScalarNode && tn.Content[j+1].Value != "" {
			ctx = fmt.Sprintf("test %q", tn.Content[j+1].Value)
		}
	}
	t := &Test{Pos: rules.Pos{Line: tn.Line, Col: tn.Column}}
	var eventKey, eventNode, jsonKey, jsonNode, expectKey, expectNode, historyNode *yaml.Node
	hasName := false
	l.EachKey(tn, ctx, func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			hasName = true
			t.Name = l.Str(v, ctx, "name")
			if prev, dup := names[t.Name]; dup && t.Name != "" {
				l.Problem(v, ctx, "duplicate test name (first used at line %d)", prev.Line)
			} else if t.Name != "" {
				names[t.Name] = v
			}
		case "event":
			eventKey, eventNode = k, v
		case "event_json":
			jsonKey, jsonNode = k, v
		case "expect":
			expectKey, expectNode = k, v
		case "history":
			historyNode = v
		default:
			l.Problem(k, ctx, "unknown key %q (want name, event, event_json, history or expect)", k.Value)
		}
	})
	if !hasName {
		l.Problem(tn, ctx, "missing name")
	}
	input := fmt.Sprintf("%s:%d", l.File, tn.Line)
	switch {
	case eventNode != nil && jsonNode != nil:
		l.Problem(jsonKey, ctx, "give event or event_json, not both")
	case eventNode == nil && jsonNode == nil:
		l.Problem(tn, ctx, "missing event: a file (event: events/bounce.json), an inline event (event: {type: Bounce, recipients: [a@example.com]}) or event_json")
	case jsonNode != nil:
		if s := l.Str(jsonNode, ctx, "event_json"); s != "" {
			t.Event = l.decoded(jsonNode, ctx, "event_json", ses.Decode(input, []byte(s)))
		}
	case eventNode.Kind == yaml.MappingNode:
		t.Event = l.compactEvent(eventNode, ctx, input)
	case eventNode.Kind == yaml.ScalarNode && eventNode.Tag != "!!null":
		path := relativeTo(l.File, eventNode.Value)
		src, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			l.Problem(eventNode, ctx, "event file %s does not exist (event files are relative to the test file)", path)
		case err != nil:
			l.Problem(eventNode, ctx, "event file: %v", err)
		default:
			t.Event = l.decoded(eventNode, ctx, "event file "+path, readAll(path, src))
		}
	default:
		l.Problem(eventKey, ctx, "event must be a file name or a mapping (the compact form), not %s", rules.NodeText(eventNode))
	}
	if historyNode != nil {
		t.History = l.loadHistory(historyNode, ctx)
	}
	if expectNode == nil {
		l.Problem(tn, ctx, "missing expect: for every recipient of the event, the actions in order ([] for none)")
	} else {
		t.Expect = l.loadExpect(expectNode, ctx)
		if t.Event != nil {
			l.matchExpect(t, expectKey, ctx)
		}
	}
	if len(l.Problems) > before {
		return nil
	}
	return t
}

// readAll reads every item of an event file, as route would.
func readAll(name string, src []byte) []ses.Item {
	var items []ses.Item
	r := ses.NewReader(bytes.NewReader(src), name)
	for {
		it, err := r.Next()
		if err != nil {
			return items // io.EOF: a bytes.Reader fails no other way
		}
		items = append(items, it)
	}
}

// decoded returns the one notification of a test's event, or nil after
// reporting why there is not exactly one.
func (l *loader) decoded(at *yaml.Node, ctx, what string, items []ses.Item) *ses.Notification {
	switch {
	case len(items) == 0:
		l.Problem(at, ctx, "%s holds no notification", what)
		return nil
	case len(items) > 1:
		l.Problem(at, ctx, "%s holds %d notifications; a test routes exactly one", what, len(items))
		return nil
	}
	it := items[0]
	switch {
	case it.Err != nil:
		l.Problem(at, ctx, "%s cannot be read: %v", what, it.Err)
	case it.Skipped != "":
		l.Problem(at, ctx, "%s is not an SES notification: %s", what, it.Skipped)
	default:
		return it.Notification
	}
	return nil
}

// actionRE is an action as the JSON output writes it.
var actionRE = regexp.MustCompile(`^(drop|unsuppress|suppress|log|notify:[A-Za-z0-9_][A-Za-z0-9_.-]*)$`)

// loadExpect reads the expect mapping: address → list of action strings.
func (l *loader) loadExpect(n *yaml.Node, ctx string) []Expectation {
	if n.Kind != yaml.MappingNode {
		l.Problem(n, ctx, "expect must be a mapping of recipient address to a list of actions, not %s", rules.NodeText(n))
		return nil
	}
	var out []Expectation
	seen := map[string]*yaml.Node{}
	l.EachKey(n, ctx, func(k, v *yaml.Node) {
		key := ses.BareAddress(k.Value)
		if prev, dup := seen[key]; dup {
			l.Problem(k, ctx, "expect: %s is the same address as %s (line %d)", k.Value, prev.Value, prev.Line)
			return
		}
		seen[key] = k
		e := Expectation{Address: k.Value, Actions: []string{}, Pos: rules.Pos{Line: k.Line, Col: k.Column}}
		if v.Kind != yaml.SequenceNode {
			l.Problem(v, ctx, "expect: %s: the actions are a list, like [unsuppress, \"notify:ses-alerts\"] or [] for none, not %s", k.Value, rules.NodeText(v))
			return
		}
		for _, an := range v.Content {
			if an.Kind == yaml.MappingNode && len(an.Content) == 2 && an.Content[0].Value == "notify" {
				l.Problem(an, ctx, "expect: write \"notify:%s\", a string, as the JSON output does", an.Content[1].Value)
				continue
			}
			a := l.Str(an, ctx, "an action")
			if a != "" && !actionRE.MatchString(a) {
				l.Problem(an, ctx, "expect: unknown action %q (want drop, unsuppress, suppress, log or notify:DESTINATION)", a)
			}
			e.Actions = append(e.Actions, a)
		}
		out = append(out, e)
	})
	return out
}

// loadHistory reads a test's history: a mapping of kind (as history
// counts it: Bounce, Bounce/Transient, …) to a count, a whole number of
// 0 or more.
func (l *loader) loadHistory(n *yaml.Node, ctx string) map[string]int {
	if n.Kind != yaml.MappingNode {
		l.Problem(n, ctx, "history must be a mapping of kind to count, like {\"Bounce/Transient\": 2}, not %s", rules.NodeText(n))
		return nil
	}
	h := map[string]int{}
	l.EachKey(n, ctx, func(k, v *yaml.Node) {
		if !slices.Contains(rules.HistoryKinds(), k.Value) {
			l.Problem(k, ctx, "history: history counts %s, not %q", strings.Join(rules.HistoryKinds(), ", "), k.Value)
			return
		}
		if _, dup := h[k.Value]; dup {
			l.Problem(k, ctx, "history: %s is given twice", k.Value)
			return
		}
		c, err := strconv.Atoi(v.Value)
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil || c < 0 {
			l.Problem(v, ctx, "history: %s: the count is a whole number, 0 or more, not %s", k.Value, rules.NodeText(v))
			return
		}
		h[k.Value] = c
	})
	return h
}

// matchExpect reports expectations for addresses that are not recipients
// of the event, and recipients without an expectation. Addresses are
// compared as rules see them (recipient.address: the bare mailbox, its
// domain in lower case), so A@x.com and a@x.com are two recipients.
func (l *loader) matchExpect(t *Test, expectKey *yaml.Node, ctx string) {
	recipients := map[string]bool{}
	var list []string
	for _, r := range t.Event.Recipients {
		if !recipients[r.Address] {
			recipients[r.Address] = true
			list = append(list, r.Address)
		}
	}
	expected := map[string]bool{}
	for _, e := range t.Expect {
		key := ses.BareAddress(e.Address)
		expected[key] = true
		if !recipients[key] {
			names := "the event has no recipients"
			if len(list) > 0 {
				names = "recipients: " + strings.Join(list, ", ")
			}
			l.ProblemAt(e.Pos, ctx, "expect: %s is not a recipient of the event (%s)", e.Address, names)
		}
	}
	for _, a := range list {
		if !expected[a] {
			l.Problem(expectKey, ctx, "expect: no expectation for recipient %s: list every recipient ([] for no action)", a)
		}
	}
}

// Result is the outcome of one test.
type Result struct {
	File *File
	Test *Test
	// Failures has one entry per recipient whose actions differ from
	// those expected, or whose routing hit an expression error.
	Failures []Failure
}

// Passed says whether every recipient got the actions expected.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// Failure is one recipient of a failed test.
type Failure struct {
	Recipient string
	Want, Got []string
	// Matched names the rules that matched, in order; Decider the one
	// that decided (empty when none did).
	Matched []string
	Decider string
	// Err is an expression error met while routing the recipient.
	Err error
}

// Run routes the event of every test of f whose name run matches (every
// test when run is nil) and compares, per recipient, the actions decided
// with those expected. It performs nothing. history(kind, window) counts
// what a test's history: gives, else 0.
func Run(router *route.Router, f *File, run *regexp.Regexp) []Result {
	results, _ := RunWith(router, f, run, nil)
	return results
}

// HistoryFunc gives the history of the event n of a test that gives no
// history:, for the rules of router (the fleet state's, read and never
// written); an error fails the run.
type HistoryFunc func(router *route.Router, n *ses.Notification) (rules.History, error)

// RunWith is Run, with the history of a test that gives no history:
// from history (nil: every count 0). It stops at history's first error.
func RunWith(router *route.Router, f *File, run *regexp.Regexp, history HistoryFunc) ([]Result, error) {
	var results []Result
	for _, t := range f.Tests {
		if run != nil && !run.MatchString(t.Name) {
			continue
		}
		want := map[string][]string{}
		for _, e := range t.Expect {
			want[ses.BareAddress(e.Address)] = e.Actions
		}
		res := Result{File: f, Test: t}
		var h rules.History
		switch {
		case t.History != nil:
			h = fixedHistory(t.History)
		case history != nil:
			var err error
			if h, err = history(router, t.Event); err != nil {
				return results, fmt.Errorf("%s:%d: %s: history: %w", f.Name, t.Pos.Line, t.Name, err)
			}
		}
		plan := router.RouteWith(t.Event, h)
		for i := range plan.Recipients {
			d := &plan.Recipients[i]
			got := make([]string, len(d.Actions))
			for j, a := range d.Actions {
				got[j] = a.String()
			}
			w := want[d.Recipient.Address]
			if slices.Equal(got, w) && d.Err == nil {
				continue
			}
			fl := Failure{Recipient: d.Recipient.Address, Want: w, Got: got, Err: d.Err}
			for _, r := range d.Matched {
				fl.Matched = append(fl.Matched, r.Name)
			}
			if d.Decider != nil {
				fl.Decider = d.Decider.Name
			}
			res.Failures = append(res.Failures, fl)
		}
		results = append(results, res)
	}
	return results, nil
}
