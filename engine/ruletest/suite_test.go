package ruletest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
)

// TestSuiteRunFiles checks the order of a run: every test file is
// loaded before any rules, each rules file is loaded once however many
// test files name it, -rules stands for every rules: key, and the
// counts add up.
func TestSuiteRunFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("rules.yaml", `version: 1
rules:
  - name: drop dummies
    when: recipient.local startsWith "dummy"
    actions: [drop]
`)
	test := func(name, address, want string) string {
		return write(name, "rules: rules.yaml\ntests:\n  - name: "+name+"\n    event: {type: Bounce, recipients: ["+address+"]}\n    expect:\n      "+address+": ["+want+"]\n")
	}
	a := test("a_test.yaml", "dummy@x.com", "drop")
	b := test("b_test.yaml", "real@x.com", "drop") // fails: no rule decides
	var loaded []string
	s := Suite{
		Load: func(path string) (*route.Router, error) {
			loaded = append(loaded, filepath.Base(path))
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			rules, err := rules.Load(path, src)
			if err != nil {
				return nil, err
			}
			return route.NewRouter(rules), nil
		},
		Problem: func(path string, err error) { t.Errorf("problem with %s: %v", path, err) },
	}
	rep, ok := s.RunFiles([]string{a, b})
	if !ok || rep.Passed != 1 || rep.Failed != 1 || len(rep.Results) != 2 {
		t.Fatalf("ok %v, report %+v: want 1 passed, 1 failed, in 2 files", ok, rep)
	}
	if !slices.Equal(loaded, []string{"rules.yaml"}) {
		t.Errorf("rules files loaded %v, want rules.yaml once", loaded)
	}

	// A test file that cannot be read stops the run before any rules
	// are loaded, and every bad file is told.
	loaded = nil
	var problems []string
	s.Problem = func(path string, err error) { problems = append(problems, filepath.Base(path)+": "+err.Error()) }
	bad := write("bad_test.yaml", "tests: 3\n")
	if _, ok := s.RunFiles([]string{a, bad, filepath.Join(dir, "none_test.yaml")}); ok {
		t.Error("a bad test file: ok")
	}
	if len(problems) != 2 || !strings.HasPrefix(problems[0], "bad_test.yaml: ") || !strings.HasPrefix(problems[1], "none_test.yaml: ") || loaded != nil {
		t.Errorf("problems %q, rules loaded %v: want both files told, no rules loaded", problems, loaded)
	}
}
