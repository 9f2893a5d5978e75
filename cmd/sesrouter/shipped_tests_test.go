package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// shippedTestFiles are the rule tests shipped for rules.yaml and
// rules.example.yaml.
var shippedTestFiles = []string{"../../testdata/rules_test.yaml", "../../testdata/rules.example_test.yaml"}

// TestShippedRuleTests runs the shipped rule tests as a user would, with
// sesrouter test, and requires every one of them to run and pass.
func TestShippedRuleTests(t *testing.T) {
	want := 0
	for _, path := range shippedTestFiles {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Tests []yaml.Node `yaml:"tests"`
		}
		if err := yaml.Unmarshal(src, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(f.Tests) == 0 {
			t.Fatalf("%s holds no tests", path)
		}
		want += len(f.Tests)
	}
	r := runCLI(t, testEnv(nil), "", append([]string{"test"}, shippedTestFiles...)...)
	if r.code != exitOK {
		t.Errorf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	summary := fmt.Sprintf("%d passed, 0 failed\n", want)
	if !strings.HasSuffix(r.stdout, summary) {
		t.Errorf("stdout:\n%s\nwant it to end with %q", r.stdout, summary)
	}
}
