package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The shipped rules files are the users' to edit: this is the only test
// that reads them (every other test has fixtures of its own), so that an
// edit of rules.yaml breaks this test alone, and is fixed by editing the
// rule tests beside it, testdata/rules_test.yaml.

// shippedRules are the shipped rules files and their rule tests; table
// says that the rules use history, which check refuses without
// SESROUTER_STATE_TABLE (a name is enough: check reads no table).
var shippedRules = []struct {
	rules, tests string
	table        bool
}{
	{"../../rules.yaml", "../../testdata/rules_test.yaml", false},
	{"../../rules.example.yaml", "../../testdata/rules.example_test.yaml", false},
	{"../../rules.history.example.yaml", "../../testdata/rules.history.example_test.yaml", true},
}

// TestShippedRules checks each shipped rules file as a user would before
// deploying it: sesrouter check -strict passes without a warning (with
// SESROUTER_STATE_TABLE set for rules that use history, and refuses them
// without it), and sesrouter test runs every one of its rule tests, which
// all pass without a table.
func TestShippedRules(t *testing.T) {
	for _, f := range shippedRules {
		t.Run(strings.TrimPrefix(f.rules, "../../"), func(t *testing.T) {
			var vars map[string]string
			if f.table {
				vars = map[string]string{"SESROUTER_STATE_TABLE": "sesrouter-state"}
				r := runCLI(t, testEnv(nil), "", "check", "-strict", "-rules", f.rules)
				if r.code != exitUsage || !strings.Contains(r.stderr, "a rule uses history, which needs the fleet state: set SESROUTER_STATE_TABLE") {
					t.Errorf("check -strict without a table: exit status %d, want 2 and why\nstderr:\n%s", r.code, r.stderr)
				}
			}
			r := runCLI(t, testEnv(vars), "", "check", "-strict", "-rules", f.rules)
			if r.code != exitOK || r.stderr != "" {
				t.Errorf("check -strict: exit status %d, want 0 and no warning\nstderr:\n%s", r.code, r.stderr)
			}

			src, err := os.ReadFile(f.tests)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Rules string      `yaml:"rules"`
				Tests []yaml.Node `yaml:"tests"`
			}
			if err := yaml.Unmarshal(src, &doc); err != nil {
				t.Fatalf("%s: %v", f.tests, err)
			}
			if len(doc.Tests) == 0 {
				t.Fatalf("%s holds no tests", f.tests)
			}
			if want := "../" + strings.TrimPrefix(f.rules, "../../"); doc.Rules != want {
				t.Fatalf("%s tests the rules in %q, want %q", f.tests, doc.Rules, want)
			}
			r = runCLI(t, testEnv(nil), "", "test", f.tests)
			if r.code != exitOK {
				t.Errorf("test: exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			summary := fmt.Sprintf("%d passed, 0 failed\n", len(doc.Tests))
			if !strings.HasSuffix(r.stdout, summary) {
				t.Errorf("stdout:\n%s\nwant it to end with %q", r.stdout, summary)
			}
		})
	}
}
