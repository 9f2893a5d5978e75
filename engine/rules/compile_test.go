package rules

import (
	"slices"
	"testing"

	"github.com/expr-lang/expr/vm"
)

// TestCompiledRulesReadByIndex checks how rules are compiled for speed:
// a name is read by its field's index (OpLoadField), never looked up by
// its name (OpLoadConst, which also copies the whole section it reads),
// and glob and inDomain are called as functions (OpCall2), not fetched
// as values and called through reflection.
func TestCompiledRulesReadByIndex(t *testing.T) {
	rules := mustLoad(t, `version: 1
lists:
  keep: [keep.example]
rules:
  - name: a
    when: lower(recipient.address) in lists.keep || recipient.domain == "x.example"
    actions: [drop]
  - name: b
    when: event.type == "Bounce" && bounce.subType == "General" && "spring" in (mail.tags["campaign"] ?? [])
    actions: [drop]
  - name: c
    when: glob("no-suppress*", recipient.local) || inDomain(recipient.address, "example.jp")
    actions: [drop]
`)
	for _, rule := range rules.Rules {
		code := rule.Program.Bytecode
		if slices.Contains(code, vm.OpLoadConst) {
			t.Errorf("rule %q looks a name up by name:\n%s", rule.Name, rule.Program.Disassemble())
		}
		if !slices.Contains(code, vm.OpLoadField) {
			t.Errorf("rule %q reads no field by index:\n%s", rule.Name, rule.Program.Disassemble())
		}
	}
	if code := rules.Rules[2].Program.Bytecode; slices.Contains(code, vm.OpCallTyped) || slices.Contains(code, vm.OpCall) || !slices.Contains(code, vm.OpCall2) {
		t.Errorf("glob and inDomain are not called as functions:\n%s", rules.Rules[2].Program.Disassemble())
	}
}

// TestFunctionErrors pins what Load says of a misused glob or inDomain,
// and that a function is a name like the others ($env.glob is glob,
// glob cannot be redeclared).
func TestFunctionErrors(t *testing.T) {
	const names = " (names: event, mail, bounce, complaint, delivery, delay, reject, failure, open, click, subscription, recipient, lists, history, glob, inDomain)"
	tests := []struct{ when, want string }{
		{`glob(1, recipient.address)`, `r.yaml:4:17: rule "a": cannot use int as argument (type string) to call glob `},
		{`glob("a")`, `r.yaml:4:12: rule "a": not enough arguments to call glob`},
		{`glob("a", "b", "c")`, `r.yaml:4:12: rule "a": too many arguments to call glob`},
		{`inDomain(recipient.address, 5)`, `r.yaml:4:40: rule "a": cannot use int as argument (type string) to call inDomain `},
		{`glob(recipient.address, mail.destination)`, `r.yaml:4:41: rule "a": cannot use []string as argument (type string) to call glob `},
		{`inDomain(recipient, "x")`, `r.yaml:4:21: rule "a": cannot use ses.Recipient as argument (type string) to call inDomain `},
		{`glob("a", recipient.address) == "x"`, `r.yaml:4:41: rule "a": invalid operation: == (mismatched types bool and string)`},
		{`glob`, `r.yaml:4:12: rule "a": expected bool, but got func(string, string) bool`},
		{`lower(glob) == ""`, `r.yaml:4:18: rule "a": cannot use func(string, string) bool as argument (type string) to call lower `},
		{`globb("a", "b")`, `r.yaml:4:12: rule "a": unknown name globb; did you mean glob?` + names},
		{`inDomian("a", "b")`, `r.yaml:4:12: rule "a": unknown name inDomian; did you mean inDomain?` + names},
		{`Glob("a", "b")`, `r.yaml:4:12: rule "a": unknown name Glob; did you mean glob?` + names},
		{`let glob = 1; glob == 1`, `r.yaml:4:16: rule "a": cannot redeclare glob`},
		{`$env.glob("a", recipient.address) && $env.inDomain(recipient.address, "x")`, ``},
		{`any(mail.destination, glob(#, "x*"))`, ``},
	}
	for _, tt := range tests {
		_, err := Load("r.yaml", []byte("version: 1\nrules:\n  - name: a\n    when: '"+tt.when+"'\n    actions: [log]\n"))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.when, got, tt.want)
		}
	}
}
