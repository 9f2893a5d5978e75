package rules

import (
	"strings"
	"testing"
)

// TestWarnings pins the full text of check's warnings: rules that can
// never decide, and destinations that no rule notifies.
func TestWarnings(t *testing.T) {
	const head = "version: 1\ndestinations:\n  alerts: {slack: {channel: C1}}\nrules:\n"
	tests := []struct {
		name  string
		rules string // after head: the rules start on line 5
		want  []string
	}{
		{
			name: "when true, then another rule",
			rules: `  - name: catch-all
    when: true
    actions: [{notify: alerts}]
  - name: later
    when: event.type == "Bounce"
    actions: [log]
`,
			want: []string{`rules.yaml:8:5: rule "later": warning: never decides: rule "catch-all" (line 5) always matches first and does not continue`},
		},
		{
			name: "1 == 1 folds to true",
			rules: `  - name: first
    when: 1 == 1
    actions: [{notify: alerts}]
  - name: second
    when: event.type == "Bounce"
    actions: [log]
  - name: third
    when: recipient.domain == "x.com"
    actions: [log]
`,
			want: []string{
				`rules.yaml:8:5: rule "second": warning: never decides: rule "first" (line 5) always matches first and does not continue`,
				`rules.yaml:11:5: rule "third": warning: never decides: rule "first" (line 5) always matches first and does not continue`,
			},
		},
		{
			name: "a constant in a literal list folds to true",
			rules: `  - name: first
    when: '"a" in ["a", "b"]'
    actions: [{notify: alerts}]
  - name: second
    when: event.type == "Bounce"
    actions: [log]
`,
			want: []string{`rules.yaml:8:5: rule "second": warning: never decides: rule "first" (line 5) always matches first and does not continue`},
		},
		{
			name: "duplicate condition",
			rules: `  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: alerts}]
  - name: complaints
    when: event.type == "Complaint"
    actions: [log]
  - name: bounces-again
    when: >-
      event.type == "Bounce"
    actions: [log]
`,
			want: []string{`rules.yaml:11:5: rule "bounces-again": warning: never decides: rule "bounces" (line 5) has the same condition and does not continue`},
		},
		{
			name: "an always-true rule that continues leaves the later rules their say",
			rules: `  - name: log-all
    when: true
    continue: true
    actions: [log]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: alerts}]
  - name: log-all-again
    when: "true"
    continue: true
    actions: [log]
`,
		},
		{
			name: "the same condition as a rule that continues",
			rules: `  - name: log-bounces
    when: event.type == "Bounce"
    continue: true
    actions: [log]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: alerts}]
`,
		},
		{
			name: "a drop that always matches, even with continue",
			rules: `  - name: drop-all
    when: true
    continue: true
    actions: [drop]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: alerts}]
`,
			want: []string{`rules.yaml:9:5: rule "bounces": warning: never decides: rule "drop-all" (line 5) always matches first and drops`},
		},
		{
			name: "a rule that is false or varies shadows nothing",
			rules: `  - name: never
    when: 1 == 2
    actions: [{notify: alerts}]
  - name: some
    when: recipient.domain in ["a.com"] || true == false
    actions: [log]
  - name: not-in
    when: '"b" in ["a"]'
    actions: [log]
  - name: other
    when: event.type == "Bounce"
    actions: [log]
`,
		},
		{
			name: "unused destination",
			rules: `  - name: log-all
    when: true
    actions: [log]
`,
			want: []string{`rules.yaml:3:3: destination "alerts": warning: unused: no rule notifies it`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := mustLoad(t, head+tt.rules)
			var got []string
			for _, w := range rules.Warnings() {
				got = append(got, w.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestWarningsOrder checks that warnings come in file order: a
// destination defined before the rules comes first.
func TestWarningsOrder(t *testing.T) {
	rules := mustLoad(t, `version: 1
destinations:
  used: {slack: {channel: C1}}
  spare: {slack: {webhook_env: SLACK_WEBHOOK_SPARE}}
rules:
  - name: all
    when: true
    actions: [{notify: used}]
  - name: unreachable
    when: event.type == "Bounce"
    actions: [log]
`)
	var got []string
	for _, w := range rules.Warnings() {
		got = append(got, w.Error())
	}
	want := []string{
		`rules.yaml:4:3: destination "spare": warning: unused: no rule notifies it`,
		`rules.yaml:9:5: rule "unreachable": warning: never decides: rule "all" (line 6) always matches first and does not continue`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
