package rules

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// costRules is a rules file with a list big of n domains and one rule per
// when, named r0, r1, ….
func costRules(t *testing.T, n int, whens ...string) *Rules {
	t.Helper()
	var src strings.Builder
	src.WriteString("version: 1\nlists:\n  big: [")
	for i := range n {
		if i > 0 {
			src.WriteString(", ")
		}
		fmt.Fprintf(&src, "d%d.example", i)
	}
	src.WriteString("]\nrules:\n")
	for i, w := range whens {
		fmt.Fprintf(&src, "  - name: r%d\n    when: '%s'\n    actions: [log]\n", i, strings.ReplaceAll(w, "'", "''"))
	}
	return mustLoad(t, src.String())
}

// alternation is a regular expression of n different words, each one of
// its alternatives.
func alternation(n int) string {
	words := make([]string, n)
	for i := range words {
		words[i] = fmt.Sprintf("%c%dx%d", 'a'+i%26, i, 7*i)
	}
	return "(" + strings.Join(words, "|") + ")"
}

// TestRuleCost checks that the cost of a rule, computed from its
// compiled expression, passes SlowRule for a rule that does a great deal
// of work for each recipient (a matches on a huge regular expression,
// loops nested over long lists), and stays far below it for ordinary
// rules, long lists and loops over what a notification holds included;
// and that it names the part that costs the most.
func TestRuleCost(t *testing.T) {
	tests := []struct {
		name, when string
		slow       bool
		hot        string // where the costly part starts, "" for none
	}{
		{"comparisons", `event.type == "Bounce" && bounce.type == "Permanent" && recipient.domain != "x.example"`, false, ""},
		{"a literal list, a set", `lower(recipient.address) in ["a@x.example", "b@x.example"] || recipient.domain in lists.big`, false, ""},
		{"glob", `glob("no-suppress*", recipient.local)`, false, "glob("},
		{"a loop over a long list", `any(lists.big, inDomain(recipient.domain, #))`, false, "any("},
		{"nested loops over the notification's lists", `any(mail.destination, {any(mail.destination, {# == recipient.address})})`, false, "any("},
		{"a regular expression of 100 words", `recipient.address matches "^` + alternation(100) + `$"`, false, "matches"},
		{"a regular expression built at run time", `recipient.address matches ("^" + recipient.local + "@")`, false, "matches"},
		{"a regular expression of 3000 words", `recipient.address matches "` + alternation(3000) + `"`, true, "matches"},
		{"behind a cheap test", `event.type == "Bounce" && (recipient.domain endsWith ".example" || recipient.raw matches "` + alternation(3000) + `")`, true, "matches"},
		{"loops nested over a long list", `any(lists.big, {all(lists.big, {glob(#, recipient.address)})})`, true, "any(lists.big, {all"},
		{"through a variable", `let l = lists.big; any(l, {any(l, {# == recipient.address})})`, true, "any(l,"},
		{"loops nested over long ranges", `all(1..1000, {all(1..1000, {# > 0})})`, true, "all(1..1000, {all"},
		{"a long repeat", `repeat(recipient.address, 100000) contains "x"`, true, "repeat("},
	}
	whens := make([]string, len(tests))
	for i, tt := range tests {
		whens[i] = tt.when
	}
	rules := costRules(t, 1000, whens...)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, hot := ruleCost(rules.Rules[i])
			if slow := steps > SlowRule; slow != tt.slow {
				t.Errorf("cost %d steps: slow is %v, want %v", steps, slow, tt.slow)
			}
			got := ""
			if hot != nil {
				got = string([]rune(tt.when)[hot.Location().From:])
			}
			if !strings.HasPrefix(got, tt.hot) || (tt.hot == "") != (got == "") {
				t.Errorf("the costly part starts at %.30q, want %q", got, tt.hot)
			}
		})
	}
}

// TestRuleCostSaturates checks that a cost too large for a uint64 is the
// largest one, not a smaller one wrapped around.
func TestRuleCostSaturates(t *testing.T) {
	rules := costRules(t, 1000, `any(lists.big, {any(lists.big, {any(lists.big, {any(lists.big, {any(lists.big, {any(lists.big, {any(lists.big, {# == recipient.address})})})})})})})`)
	if steps, _ := ruleCost(rules.Rules[0]); steps != math.MaxUint64 {
		t.Errorf("cost %d steps, want %d", steps, uint64(math.MaxUint64))
	}
}

// TestRuleCostHandlerRules checks the rules with the shipped rules'
// semantics: each costs less than a hundredth of SlowRule.
func TestRuleCostHandlerRules(t *testing.T) {
	for _, rule := range loadShipped(t).Rules {
		if steps, _ := ruleCost(rule); steps > SlowRule/100 {
			t.Errorf("rule %q costs %d steps, want at most %d", rule.Name, steps, SlowRule/100)
		}
	}
}

// TestSlowVerdictWithoutClock checks that which rules Probe calls slow
// does not depend on time: the same with the clock standing still (in a
// synctest bubble, where time does not move while the probe runs, so that
// a timing would find every rule fast) and on a machine made busy by
// twice as many spinning goroutines as processors (where a timing would
// find rules slower). The slow rule is one whose worst case is costly but
// which, on the probe's recipients, does little: a timing would never
// flag it.
func TestSlowVerdictWithoutClock(t *testing.T) {
	rules := costRules(t, 200,
		`recipient.domain in lists.big`,
		`any(lists.big, {all(lists.big, {glob(#, recipient.address)})})`,
		`any(mail.destination, {any(mail.destination, {# == recipient.address})})`,
	)
	verdict := func() string {
		errs, warns := rules.Probe(SlowRule)
		var out []string
		for _, p := range append(errs, warns...) {
			out = append(out, p.Error())
		}
		return strings.Join(out, "\n")
	}
	const want = `rules.yaml:8:5: rule "r1": warning: slow: up to 10041402 steps for one recipient (over 1000000, most of them at "any(lists.big, {all(list…", offset 0 of the expression); every recipient of every notification runs it`
	if got := verdict(); got != want {
		t.Fatalf("idle:\n%s\nwant:\n%s", got, want)
	}
	synctest.Test(t, func(t *testing.T) {
		if got := verdict(); got != want {
			t.Errorf("with the clock standing still:\n%s\nwant:\n%s", got, want)
		}
	})
	var stop atomic.Bool
	var sink atomic.Uint64
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() { // a CPU burner: busy work until stopped
			x := uint64(1)
			for !stop.Load() {
				x = x*6364136223846793005 + 1
			}
			sink.Add(x)
		})
	}
	defer wg.Wait()
	defer stop.Store(true)
	for i := range 5 {
		if got := verdict(); got != want {
			t.Errorf("busy, run %d:\n%s\nwant:\n%s", i+1, got, want)
		}
	}
}
