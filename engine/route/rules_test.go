package route

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// TestLoadErrors pins the full text of Load's errors: every problem, each
// as FILE:LINE:COL: CONTEXT: message, in file order.
func TestLoadErrors(t *testing.T) {
	const names = " (names: event, mail, bounce, complaint, delivery, delay, reject, failure, open, click, subscription, recipient, lists, history, glob, inDomain)"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "four problems at once",
			src: `version: 1
destinations:
  ses-alerts:
    slack:
      channel: C0123456789
rules:
  - name: hard-bounce
    when: recipent.address == "x"
    actions: [drop]
  - name: alert
    when: true
    colour: red
    actions: [{notify: nowhere}]
  - name: hard-bounce
    when: event.type == "Bounce"
    actions: [log]
`,
			want: []string{
				`rules.yaml:8:11: rule "hard-bounce": unknown name recipent; did you mean recipient?` + names,
				`rules.yaml:12:5: rule "alert": unknown key "colour" (want name, when, actions or continue)`,
				`rules.yaml:13:24: rule "alert": unknown destination "nowhere" (defined: ses-alerts)`,
				`rules.yaml:14:11: rule "hard-bounce": duplicate rule name (first used at line 7)`,
			},
		},
		{
			name: "unknown list",
			src: `version: 1
lists:
  ignored: [a@example.com]
  vip: [b@example.com]
rules:
  - name: r
    when: recipient.address in lists.ignord
    actions: [drop]
`,
			want: []string{`rules.yaml:7:38: rule "r": unknown list "ignord"; did you mean lists.ignored? (defined: ignored, vip)`},
		},
		{
			name: "unknown list, none defined",
			src: `version: 1
rules:
  - name: r
    when: recipient.domain in lists.domains
    actions: [drop]
`,
			want: []string{`rules.yaml:4:37: rule "r": unknown list "domains" (no lists are defined)`},
		},
		{
			name: "drop with notify",
			src: `version: 1
destinations:
  d:
    slack: {channel: C1}
rules:
  - name: r
    when: true
    actions: [drop, {notify: d}]
`,
			want: []string{`rules.yaml:8:14: rule "r": drop cannot go with notify:d: a dropped recipient gets no further action (only log may go with drop)`},
		},
		{
			name: "destination errors",
			src: `version: 1
destinations:
  bad name:
    slack: {channel: C1}
rules: []
`,
			want: []string{
				`rules.yaml:3:3: destination "bad name": a destination name holds letters, digits, '_', '-' and '.'`,
			},
		},
		{
			name: "version missing",
			src: `rules: []
`,
			want: []string{`rules.yaml:1:1: missing version: 1`},
		},
		{
			name: "version wrong",
			src: `version: 2
rules: []
`,
			want: []string{`rules.yaml:1:10: version must be 1, not "2"`},
		},
		{
			name: "version a list",
			src: `version: [1]
rules: []
`,
			want: []string{`rules.yaml:1:10: version must be 1, not a list`},
		},
		{
			name: "YAML syntax error",
			src: `version: 1
rules:
  - name: r
    when: [
`,
			want: []string{`rules.yaml:4:1: YAML: did not find expected node content`},
		},
		{
			name: "not a mapping",
			src: `- version: 1
`,
			want: []string{`rules.yaml:1:1: the rules file must be a mapping with version, destinations, lists and rules`},
		},
		{
			name: "unknown top-level key, duplicate key, missing rules",
			src: `version: 1
version: 1
route: {}
`,
			want: []string{
				`rules.yaml:1:1: missing rules: a list of named rules`,
				`rules.yaml:2:1: key "version" appears twice`,
				`rules.yaml:3:1: unknown key "route" (want version, destinations, lists or rules)`,
			},
		},
		{
			name: "a second YAML document",
			src: `version: 1
rules: []
---
version: 1
`,
			want: []string{`rules.yaml:3:1: a rules file holds one YAML document; a second one starts here`},
		},
		{
			name: "list errors",
			src: `version: 1
lists:
  1st: [a]
  notalist: a@example.com
  nulls: [~]
rules: []
`,
			want: []string{
				`rules.yaml:3:3: list "1st": a list name must be usable as lists.NAME: letters, digits and '_', not starting with a digit`,
				`rules.yaml:4:13: list "notalist": a list is a sequence of strings, like [a@example.com, b@example.com]`,
				`rules.yaml:5:11: list "nulls": a list item must be a string, not null`,
			},
		},
		{
			name: "type mismatch: string == int",
			src: `version: 1
rules:
  - name: r
    when: recipient.address == 1
    actions: [log]
`,
			want: []string{`rules.yaml:4:29: rule "r": invalid operation: == (mismatched types string and int)`},
		},
		{
			name: "type mismatch: string + int",
			src: `version: 1
rules:
  - name: r
    when: event.type + 1
    actions: [log]
`,
			want: []string{`rules.yaml:4:22: rule "r": invalid operation: + (mismatched types string and int)`},
		},
		{
			name: "not a boolean",
			src: `version: 1
rules:
  - name: r
    when: recipient.address
    actions: [log]
`,
			want: []string{`rules.yaml:4:11: rule "r": expected bool, but got string`},
		},
		{
			name: "unknown field",
			src: `version: 1
rules:
  - name: r
    when: bounce.subtype == "General"
    actions: [log]
`,
			want: []string{`rules.yaml:4:18: rule "r": bounce has no field subtype; did you mean bounce.subType? (fields: type, subType, reportingMTA, remoteMtaIp, feedbackId, timestamp)`},
		},
		{
			name: "continue not a boolean",
			src: `version: 1
rules:
  - name: r
    when: true
    continue: yes
    actions: [log]
`,
			want: []string{`rules.yaml:5:15: rule "r": continue must be true or false, not "yes"`},
		},
		{
			name: "continue quoted is a string, not a boolean",
			src: `version: 1
rules:
  - name: r
    when: true
    continue: "true"
    actions: [log]
`,
			want: []string{`rules.yaml:5:15: rule "r": continue must be true or false, not "true"`},
		},
		{
			name: "empty file",
			src:  "",
			want: []string{`rules.yaml:1:1: empty rules file: it needs version: 1 and rules`},
		},
		{
			name: "comment-only file",
			src:  "# nothing yet\n",
			want: []string{`rules.yaml:1:1: empty rules file: it needs version: 1 and rules`},
		},
		{
			name: "continue a list",
			src: `version: 1
rules:
  - name: r
    when: true
    continue: [true]
    actions: [log]
`,
			want: []string{`rules.yaml:5:15: rule "r": continue must be true or false, not a list`},
		},
		{
			name: "action problems",
			src: `version: 1
destinations:
  d: {slack: {channel: C1}}
rules:
  - name: r
    when: true
    actions: [notify, "notify:d", frobnicate, log, log, {notify: d, extra: 1}, [drop]]
`,
			want: []string{
				`rules.yaml:7:15: rule "r": notify needs a destination: {notify: NAME}`,
				`rules.yaml:7:23: rule "r": write {notify: d}, a mapping, not the string "notify:d"`,
				`rules.yaml:7:35: rule "r": unknown action "frobnicate" (want drop, unsuppress, suppress, log or {notify: DESTINATION})`,
				`rules.yaml:7:52: rule "r": action log is listed twice`,
				`rules.yaml:7:57: rule "r": an action mapping is {notify: DESTINATION}`,
				`rules.yaml:7:80: rule "r": an action is drop, unsuppress, suppress, log or {notify: DESTINATION}`,
			},
		},
		{
			name: "missing parts of rules",
			src: `version: 1
rules:
  - when: true
    actions: [log]
  - name: no-when
    actions: [log]
  - name: no-actions
    when: true
  - name: empty-actions
    when: true
    actions: []
  - just a string
`,
			want: []string{
				`rules.yaml:3:5: rule #1: missing name`,
				`rules.yaml:5:5: rule "no-when": missing when: an expression that is true for the recipients this rule takes`,
				`rules.yaml:7:5: rule "no-actions": missing actions: a list of drop, unsuppress, suppress, log and {notify: DESTINATION}`,
				`rules.yaml:11:14: rule "empty-actions": actions is empty: say [drop] to take no action`,
				`rules.yaml:12:5: rule #5: a rule is a mapping with name, when, actions and optionally continue`,
			},
		},
		{
			name: "expression syntax error",
			src: `version: 1
rules:
  - name: r
    when: 'recipient.address =='
    actions: [log]
`,
			want: []string{`rules.yaml:4:31: rule "r": unexpected token EOF`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := rules.Load("rules.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Load succeeded with %d rules, want errors:\n%s", len(rules.Rules), strings.Join(tt.want, "\n"))
			}
			if rules != nil {
				t.Errorf("Load returned rules with an error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
			checkProblems(t, err, len(tt.want))
		})
	}
}

// checkProblems checks that err joins n *Problem values, each of which
// formats as its own line.
func checkProblems(t *testing.T, err error, n int) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not join problems", err)
	}
	errs := joined.Unwrap()
	if len(errs) != n {
		t.Fatalf("%d problems, want %d", len(errs), n)
	}
	for _, e := range errs {
		var p *rules.Problem
		if !errors.As(e, &p) {
			t.Errorf("%T is not a *Problem: %v", e, e)
			continue
		}
		if p.File != "rules.yaml" || p.Pos.Line < 1 || p.Pos.Col < 1 {
			t.Errorf("problem %q has file %q, position %+v", p, p.File, p.Pos)
		}
	}
}

// TestLoadExpressionPositions checks that a problem inside an expression
// is reported at its place in the file, whatever the YAML scalar style.
func TestLoadExpressionPositions(t *testing.T) {
	const prefix = "version: 1\nrules:\n  - name: r\n    actions: [log]\n"
	const msg = `: rule "r": recipient has no field adress; did you mean recipient.address? (fields: address, raw, local, domain, status, action, diagnosticCode)`
	tests := []struct {
		name string
		when string // the lines from "when:" on; the rule's when is on line 5
		line int
		col  int
	}{
		{"plain", `    when: event.type == "Bounce" && recipient.adress == "x"`, 5, 47},
		{"plain, later line", "    when: event.type == \"Bounce\" &&\n      recipient.adress == \"x\"", 6, 17},
		{"single-quoted", `    when: 'event.type == "Bounce" && recipient.adress == "x"'`, 5, 48},
		{"single-quoted, later line", "    when: 'event.type == \"Bounce\" &&\n      recipient.adress == \"x\"'", 6, 17},
		{"double-quoted", `    when: "event.type == 'Bounce' && recipient.adress == 'x'"`, 5, 48},
		{"literal block, first line", "    when: |\n      recipient.adress == \"x\"", 6, 17},
		{"literal block, later line", "    when: |\n      event.type == \"Bounce\" &&\n        recipient.adress == \"x\"", 7, 19},
		{"literal block, strip", "    when: |-\n      event.type == \"Bounce\" &&\n      recipient.adress == \"x\"", 7, 17},
		{"folded block, first line", "    when: >\n      recipient.adress == \"x\"", 6, 17},
		{"folded block, later line", "    when: >\n      event.type == \"Bounce\" &&\n      recipient.adress == \"x\"", 7, 17},
		{"folded block, third line", "    when: >-\n      event.type == \"Bounce\"\n      && recipient.domain != \"\"\n      && recipient.adress == \"x\"", 8, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := prefix + tt.when + "\n"
			_, err := rules.Load("rules.yaml", []byte(src))
			want := fmt.Sprintf("rules.yaml:%d:%d%s", tt.line, tt.col, msg)
			if err == nil || err.Error() != want {
				t.Fatalf("error = %v\nwant    %s\nsource:\n%s", err, want, src)
			}
			// The position points at the misspelt name in the source.
			lines := strings.Split(src, "\n")
			if at := lines[tt.line-1][tt.col-1:]; !strings.HasPrefix(at, "adress") {
				t.Errorf("%d:%d is at %q, not at the name", tt.line, tt.col, at)
			}
		})
	}
}

// TestLoadRules checks what a valid rules file loads into.
func TestLoadRules(t *testing.T) {
	src := `version: 1
destinations:
  ses-alerts:
    slack:
      channel: C0123456789
  marketing:
    slack:
      webhook_env: SLACK_WEBHOOK_MARKETING
lists:
  ignored: [ignore@example.com, other@example.com]
  empty: []
rules:
  - name: ignore-dummies
    when: recipient.address in lists.ignored
    actions: [drop, log]
  - name: tag
    when: >-
      event.type == "Bounce"
    continue: true
    actions: [log]
  - name: last
    when: 'true'
    continue: false
    actions: [unsuppress, suppress, {notify: ses-alerts}, {notify: marketing}]
`
	rs, err := rules.Load("rules.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checkEq(t, "File", rs.File, "rules.yaml")
	checkEq(t, "Version", rs.Version, 1)
	checkEq(t, "DestinationNames", rs.DestinationNames, []string{"ses-alerts", "marketing"})
	checkEq(t, "ses-alerts", rs.Destinations["ses-alerts"].Pos, rules.Pos{Line: 3, Col: 3})
	checkEq(t, "marketing", rs.Destinations["marketing"].Pos, rules.Pos{Line: 6, Col: 3})
	checkEq(t, "Lists", rs.Lists, map[string][]string{"ignored": {"ignore@example.com", "other@example.com"}, "empty": {}})
	type ruleView struct {
		Name, When string
		Continue   bool
		Actions    []string
		Pos        rules.Pos
		Compiled   bool
	}
	var got []ruleView
	for _, r := range rs.Rules {
		var acts []string
		for _, a := range r.Actions {
			acts = append(acts, a.String())
		}
		got = append(got, ruleView{r.Name, r.When, r.Continue, acts, r.Pos, r.Program != nil})
	}
	checkEq(t, "Rules", got, []ruleView{
		{"ignore-dummies", "recipient.address in lists.ignored", false, []string{"drop", "log"}, rules.Pos{Line: 13, Col: 5}, true},
		{"tag", `event.type == "Bounce"`, true, []string{"log"}, rules.Pos{Line: 16, Col: 5}, true},
		{"last", "true", false, []string{"unsuppress", "suppress", "notify:ses-alerts", "notify:marketing"}, rules.Pos{Line: 21, Col: 5}, true},
	})
}

// TestActionString checks how actions are written in output and tests.
func TestActionString(t *testing.T) {
	for _, tt := range []struct {
		a    rules.Action
		want string
	}{
		{rules.Action{Kind: rules.ActionDrop}, "drop"},
		{rules.Action{Kind: rules.ActionUnsuppress}, "unsuppress"},
		{rules.Action{Kind: rules.ActionSuppress}, "suppress"},
		{rules.Action{Kind: rules.ActionLog}, "log"},
		{rules.Action{Kind: rules.ActionNotify, Destination: "ses-alerts"}, "notify:ses-alerts"},
		{rules.Action{Kind: 99}, "ActionKind(99)"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.a.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// mustLoad loads rules from src and fails the test on any problem.
func mustLoad(t testing.TB, src string) *rules.Rules {
	t.Helper()
	rules, err := rules.Load("rules.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	return rules
}

// rulesWith returns a rules file with one destination per name in dests
// and the given rules (YAML list items, indented by two spaces).
func rulesWith(dests []string, rules string) string {
	var b strings.Builder
	b.WriteString("version: 1\n")
	if len(dests) > 0 {
		b.WriteString("destinations:\n")
		for _, d := range dests {
			fmt.Fprintf(&b, "  %s: {slack: {channel: C-%s}}\n", d, d)
		}
	}
	b.WriteString("lists:\n  ignored: [ignore@example.com]\n  keep: [keep.example.jp]\nrules:\n")
	b.WriteString(rules)
	return b.String()
}

// bounceFor decodes a bare SES event-publishing bounce for the recipients.
func bounceFor(t testing.TB, recipients ...string) *ses.Notification {
	t.Helper()
	var rs, ds []string
	for _, r := range recipients {
		rs = append(rs, fmt.Sprintf(`{"emailAddress":%q,"status":"5.1.1","action":"failed"}`, r))
		ds = append(ds, fmt.Sprintf("%q", r))
	}
	doc := `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[` +
		strings.Join(rs, ",") + `],"timestamp":"2024-01-01T00:00:01.000Z","feedbackId":"fb"},` +
		`"mail":{"timestamp":"2024-01-01T00:00:00.000Z","source":"Shop <news@shop.example.org>","messageId":"m-1",` +
		`"destination":[` + strings.Join(ds, ",") + `],"tags":{"campaign":["spring"]},` +
		`"headers":[{"name":"X-Kind","value":"newsletter"}],"commonHeaders":{"subject":"Sale"}}}`
	items := ses.Decode("t", []byte(doc))
	if len(items) != 1 || items[0].Notification == nil {
		t.Fatalf("Decode: %+v", items)
	}
	return items[0].Notification
}

// decisionView is a Decision written as names, for comparing.
type decisionView struct {
	Address   string
	Tried     []string // rule names, "!" appended when matched, "?" when failed
	Matched   []string
	Decider   string
	Actions   []string
	Dropped   bool
	Unmatched bool
	Err       string
}

func viewDecision(d *Decision) decisionView {
	v := decisionView{Address: d.Recipient.Address, Dropped: d.Dropped, Unmatched: d.Unmatched}
	for _, tr := range d.Trials {
		s := tr.Rule.Name
		switch {
		case tr.Err != nil:
			s += "?"
		case tr.Matched:
			s += "!"
		}
		v.Tried = append(v.Tried, s)
	}
	for _, r := range d.Matched {
		v.Matched = append(v.Matched, r.Name)
	}
	if d.Decider != nil {
		v.Decider = d.Decider.Name
	}
	for _, a := range d.Actions {
		v.Actions = append(v.Actions, a.String())
	}
	if d.Err != nil {
		v.Err = d.Err.Error()
	}
	return v
}

// TestRouteSemantics checks how rules decide for one recipient.
func TestRouteSemantics(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		want  decisionView
	}{
		{
			name: "first match decides",
			rules: `  - {name: a, when: 'false', actions: [log]}
  - {name: b, when: 'recipient.domain == "example.com"', actions: [unsuppress]}
  - {name: c, when: 'true', actions: [suppress]}
`,
			want: decisionView{Tried: []string{"a", "b!"}, Matched: []string{"b"}, Decider: "b", Actions: []string{"unsuppress"}},
		},
		{
			name: "continue keeps actions and goes on",
			rules: `  - {name: a, when: 'true', continue: true, actions: [log]}
  - {name: b, when: 'false', actions: [suppress]}
  - {name: c, when: 'true', actions: [{notify: ops}]}
  - {name: d, when: 'true', actions: [unsuppress]}
`,
			want: decisionView{Tried: []string{"a!", "b", "c!"}, Matched: []string{"a", "c"}, Decider: "c", Actions: []string{"log", "notify:ops"}},
		},
		{
			name: "continue with nothing after",
			rules: `  - {name: a, when: 'true', continue: true, actions: [log]}
  - {name: b, when: 'false', actions: [suppress]}
`,
			want: decisionView{Tried: []string{"a!", "b"}, Matched: []string{"a"}, Actions: []string{"log"}},
		},
		{
			name: "drop stops, earlier continue actions stand",
			rules: `  - {name: a, when: 'true', continue: true, actions: [unsuppress, {notify: ops}]}
  - {name: b, when: 'true', actions: [drop]}
  - {name: c, when: 'true', actions: [suppress]}
`,
			want: decisionView{Tried: []string{"a!", "b!"}, Matched: []string{"a", "b"}, Decider: "b",
				Actions: []string{"unsuppress", "notify:ops", "drop"}, Dropped: true},
		},
		{
			name: "drop stops even with continue",
			rules: `  - {name: a, when: 'true', continue: true, actions: [drop, log]}
  - {name: b, when: 'true', actions: [suppress]}
`,
			want: decisionView{Tried: []string{"a!"}, Matched: []string{"a"}, Decider: "a", Actions: []string{"drop", "log"}, Dropped: true},
		},
		{
			name: "unmatched",
			rules: `  - {name: a, when: 'false', actions: [log]}
  - {name: b, when: 'recipient.domain == "other.example"', actions: [drop]}
`,
			want: decisionView{Tried: []string{"a", "b"}, Unmatched: true},
		},
		{
			name: "duplicate actions appear once",
			rules: `  - {name: a, when: 'true', continue: true, actions: [{notify: ops}, log]}
  - {name: b, when: 'true', continue: true, actions: [{notify: ops}, {notify: sales}]}
  - {name: c, when: 'true', actions: [log, unsuppress, {notify: sales}]}
`,
			want: decisionView{Tried: []string{"a!", "b!", "c!"}, Matched: []string{"a", "b", "c"}, Decider: "c",
				Actions: []string{"notify:ops", "log", "notify:sales", "unsuppress"}},
		},
		{
			name: "a runtime error ends the evaluation: no later rule decides",
			rules: `  - {name: a, when: 'mail.destination[5] == "x"', actions: [drop]}
  - {name: b, when: 'true', actions: [suppress]}
`,
			want: decisionView{Tried: []string{"a?"},
				Err: `rule "a": index out of range: 5 (array length is 1) (at "[5] == \"x\"", offset 16 of the expression)`},
		},
		{
			name: "a runtime error takes back what earlier continue rules kept",
			rules: `  - {name: a, when: 'true', continue: true, actions: [unsuppress, {notify: ops}]}
  - {name: b, when: 'mail.destination[5] == "x"', actions: [drop]}
  - {name: c, when: 'true', actions: [suppress]}
`,
			want: decisionView{Tried: []string{"a!", "b?"}, Matched: []string{"a"},
				Err: `rule "b": index out of range: 5 (array length is 1) (at "[5] == \"x\"", offset 16 of the expression)`},
		},
		{
			name: "expr's memory budget is a runtime error",
			rules: `  - {name: a, when: 'len(map(1..2000000, # * 2)) > 0', actions: [drop]}
  - {name: b, when: 'true', actions: [suppress]}
`,
			want: decisionView{Tried: []string{"a?"},
				Err: `rule "a": memory budget exceeded (at "..2000000, # * 2)) > 0", offset 9 of the expression)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := mustLoad(t, rulesWith([]string{"ops", "sales"}, tt.rules))
			n := bounceFor(t, "a@example.com")
			p := NewRouter(rules).Route(n)
			if p.Notification != n {
				t.Errorf("Plan.Notification is not the routed notification")
			}
			if len(p.Recipients) != 1 {
				t.Fatalf("%d decisions, want 1", len(p.Recipients))
			}
			d := &p.Recipients[0]
			if d.Recipient != &n.Recipients[0] {
				t.Errorf("Decision.Recipient does not point into Notification.Recipients")
			}
			tt.want.Address = "a@example.com"
			if got := viewDecision(d); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decision\n\t%+v\nwant\n\t%+v", got, tt.want)
			}
			if tt.want.Err != "" {
				for _, tr := range d.Trials {
					if tr.Err != nil && tr.Matched {
						t.Errorf("a failed trial is marked matched")
					}
				}
			}
		})
	}
}

// TestRouteNames checks that each name a rule may use is bound to the
// notification's value, one expression per name.
func TestRouteNames(t *testing.T) {
	n := bounceFor(t, "No-Suppress-1@Keep.Example.JP")
	for _, when := range []string{
		`event.type == "Bounce"`,
		`event.timestamp == "2024-01-01T00:00:01.000Z"`,
		`event.envelope == "file"`,
		`event.topicArn == ""`,
		`mail.messageId == "m-1"`,
		`mail.source == "Shop <news@shop.example.org>"`,
		`mail.sourceAddress == "news@shop.example.org"`,
		`mail.sourceDomain == "shop.example.org"`,
		`mail.subject == "Sale"`,
		`mail.destination == ["No-Suppress-1@Keep.Example.JP"]`,
		`"spring" in mail.tags["campaign"]`,
		`mail.headers["X-Kind"] == "newsletter"`,
		`bounce.type == "Permanent" && bounce.subType == "General" && bounce.feedbackId == "fb"`,
		`complaint.feedbackType == "" && delay.type == "" && reject.reason == "" && failure.errorMessage == ""`,
		`recipient.address == "No-Suppress-1@keep.example.jp"`,
		`recipient.raw == "No-Suppress-1@Keep.Example.JP"`,
		`recipient.local == "No-Suppress-1"`,
		`recipient.domain == "keep.example.jp"`,
		`recipient.status == "5.1.1" && recipient.action == "failed" && recipient.diagnosticCode == ""`,
		`recipient.domain in lists.keep`,
		`!(recipient.address in lists.ignored)`,
		`recipient.address contains "Suppress"`,
		`lower(recipient.address) startsWith "no-suppress"`,
		`recipient.address matches "(?i)^no-suppress-[0-9]+@"`,
		`glob("no-suppress-*@*.jp", recipient.address)`,
		`inDomain(recipient.address, "example.jp")`,
		`!inDomain(recipient.address, "ample.jp")`,
	} {
		t.Run(when, func(t *testing.T) {
			rules := mustLoad(t, rulesWith(nil, fmt.Sprintf("  - name: r\n    when: %q\n    actions: [log]\n", when)))
			d := NewRouter(rules).Route(n).Recipients[0]
			if d.Err != nil || d.Unmatched || d.Decider == nil {
				t.Errorf("%s did not match: err %v, unmatched %v", when, d.Err, d.Unmatched)
			}
		})
	}
}

// TestRouteSeesDecodedValues checks that rules see each decoded
// notification's own values, through every envelope, both in expressions
// the router runs as Go closures and in ones it hands to expr's VM (an
// index expression, which the closures do not cover).
func TestRouteSeesDecodedValues(t *testing.T) {
	entries, err := os.ReadDir(eventsDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		for _, it := range readItems(t, e.Name()) {
			n := it.Notification
			if n == nil {
				continue
			}
			seen++
			t.Run(it.Input, func(t *testing.T) {
				var addrs []string
				for _, r := range n.Recipients {
					addrs = append(addrs, strconv.Quote(r.Address))
				}
				common := fmt.Sprintf("event.envelope == %q && event.type == %q && event.topicArn == %q && mail.messageId == %q && recipient.address in [%s]",
					n.Event.Envelope, n.Event.Type, n.Event.TopicArn, n.Mail.MessageID, strings.Join(addrs, ", "))
				vm := common + " && (len(mail.destination) == 0 || mail.destination[0] == " + strconv.Quote(firstOr(n.Mail.Destination)) + ")"
				for _, when := range []string{common, vm} {
					rules := mustLoad(t, rulesWith(nil, "  - name: r\n    when: |\n      "+when+"\n    actions: [log]\n"))
					p := NewRouter(rules).Route(n)
					for _, d := range p.Recipients {
						if d.Decider == nil || d.Err != nil {
							t.Errorf("%s: rule did not match (err %v):\n%s", d.Recipient.Address, d.Err, when)
						}
					}
				}
			})
		}
	}
	if seen < 20 {
		t.Errorf("only %d notifications in %s", seen, eventsDir)
	}
}

func firstOr(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

// TestRouteRepeatedly checks that routing the same notification again
// and again, through one Router (whose evaluators are pooled and reused),
// gives the same decisions every time, for closures and VM rules alike.
func TestRouteRepeatedly(t *testing.T) {
	rules := mustLoad(t, rulesWith([]string{"ops"}, `  - name: vm
    when: mail.destination[0] != "" && glob("*@keep.*", recipient.address) && inDomain(recipient.address, "example.jp") && recipient.domain in lists.keep
    actions: [unsuppress]
  - name: closure
    when: glob("*@*", recipient.address) && recipient.address in lists.ignored
    actions: [drop]
  - name: rest
    when: 'true'
    actions: [{notify: ops}]
`))
	r := NewRouter(rules)
	n := bounceFor(t, "a@keep.example.jp", "ignore@example.com", "b@other.example")
	var first []decisionView
	var p Plan
	for round := range 5 {
		if round%2 == 0 {
			r.RouteInto(&p, n)
		} else {
			p = *r.Route(n)
		}
		var got []decisionView
		for i := range p.Recipients {
			got = append(got, viewDecision(&p.Recipients[i]))
		}
		if round == 0 {
			first = got
			checkEq(t, "deciders", []string{got[0].Decider, got[1].Decider, got[2].Decider}, []string{"vm", "closure", "rest"})
			continue
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("round %d:\n\t%+v\nround 0:\n\t%+v", round, got, first)
		}
	}
}

// TestRoutePerRecipient checks that each recipient is decided on its own,
// in recipient order, and that Plan.Steps orders the actions: every
// per-recipient action first, in recipient order, then one notify per
// destination, in order of first use, carrying every recipient routed
// there.
func TestRoutePerRecipient(t *testing.T) {
	rules := mustLoad(t, rulesWith([]string{"ops", "sales"}, `  - name: ignore
    when: recipient.address in lists.ignored
    actions: [drop, log]
  - name: keep
    when: recipient.domain in lists.keep
    continue: true
    actions: [unsuppress, {notify: sales}]
  - name: everything
    when: recipient.domain != "nowhere.example"
    actions: [{notify: ops}, suppress]
`))
	n := bounceFor(t, "x@keep.example.jp", "ignore@example.com", "y@other.example", "z@nowhere.example", "w@keep.example.jp")
	p := NewRouter(rules).Route(n)
	var got []decisionView
	for i := range p.Recipients {
		got = append(got, viewDecision(&p.Recipients[i]))
	}
	checkEq(t, "decisions", got, []decisionView{
		{Address: "x@keep.example.jp", Tried: []string{"ignore", "keep!", "everything!"}, Matched: []string{"keep", "everything"},
			Decider: "everything", Actions: []string{"unsuppress", "notify:sales", "notify:ops", "suppress"}},
		{Address: "ignore@example.com", Tried: []string{"ignore!"}, Matched: []string{"ignore"}, Decider: "ignore",
			Actions: []string{"drop", "log"}, Dropped: true},
		{Address: "y@other.example", Tried: []string{"ignore", "keep", "everything!"}, Matched: []string{"everything"},
			Decider: "everything", Actions: []string{"notify:ops", "suppress"}},
		{Address: "z@nowhere.example", Tried: []string{"ignore", "keep", "everything"}, Unmatched: true},
		{Address: "w@keep.example.jp", Tried: []string{"ignore", "keep!", "everything!"}, Matched: []string{"keep", "everything"},
			Decider: "everything", Actions: []string{"unsuppress", "notify:sales", "notify:ops", "suppress"}},
	})

	type stepView struct {
		Action     string
		Recipient  string
		Recipients []string
	}
	var steps []stepView
	for _, s := range p.Steps() {
		v := stepView{Action: s.Action.String()}
		if s.Recipient != nil {
			v.Recipient = s.Recipient.Address
		}
		for _, d := range s.Recipients {
			v.Recipients = append(v.Recipients, d.Recipient.Address)
		}
		steps = append(steps, v)
	}
	checkEq(t, "steps", steps, []stepView{
		{Action: "unsuppress", Recipient: "x@keep.example.jp"},
		{Action: "suppress", Recipient: "x@keep.example.jp"},
		{Action: "drop", Recipient: "ignore@example.com"},
		{Action: "log", Recipient: "ignore@example.com"},
		{Action: "suppress", Recipient: "y@other.example"},
		{Action: "unsuppress", Recipient: "w@keep.example.jp"},
		{Action: "suppress", Recipient: "w@keep.example.jp"},
		{Action: "notify:sales", Recipients: []string{"x@keep.example.jp", "w@keep.example.jp"}},
		{Action: "notify:ops", Recipients: []string{"x@keep.example.jp", "y@other.example", "w@keep.example.jp"}},
	})
}

// TestRouteIntoReuse checks that routing into a reused Plan leaves nothing
// of the previous notification behind, whether it had more recipients or
// fewer.
func TestRouteIntoReuse(t *testing.T) {
	rules := mustLoad(t, rulesWith([]string{"ops"}, `  - {name: a, when: 'recipient.domain == "a.example"', continue: true, actions: [log]}
  - {name: b, when: 'recipient.domain == "b.example"', actions: [drop]}
  - {name: c, when: 'true', actions: [{notify: ops}]}
`))
	r := NewRouter(rules)
	three := bounceFor(t, "x@a.example", "y@b.example", "z@c.example")
	one := bounceFor(t, "y@b.example")
	var reused Plan
	for i, n := range []*ses.Notification{three, one, three, one} {
		r.RouteInto(&reused, n)
		fresh := r.Route(n)
		if len(reused.Recipients) != len(n.Recipients) {
			t.Fatalf("round %d: %d decisions, want %d", i, len(reused.Recipients), len(n.Recipients))
		}
		for j := range fresh.Recipients {
			if got, want := viewDecision(&reused.Recipients[j]), viewDecision(&fresh.Recipients[j]); !reflect.DeepEqual(got, want) {
				t.Errorf("round %d, recipient %d: reused plan\n\t%+v\nfresh plan\n\t%+v", i, j, got, want)
			}
		}
	}
}

// TestRouteUnsealed checks that a Notification built by hand (not by
// Decode) routes like a decoded one.
func TestRouteUnsealed(t *testing.T) {
	rules := mustLoad(t, rulesWith([]string{"ops"}, `  - {name: keep, when: 'bounce.type == "Permanent" && recipient.domain in lists.keep', actions: [unsuppress]}
  - {name: rest, when: 'true', actions: [{notify: ops}]}
`))
	n := &ses.Notification{
		Event:      ses.Event{Type: ses.TypeBounce, Envelope: ses.EnvelopeFile},
		Bounce:     ses.Bounce{Type: "Permanent", SubType: "General"},
		Recipients: []ses.Recipient{ses.NewRecipient("a@Keep.Example.JP"), ses.NewRecipient("b@example.com")},
	}
	p := NewRouter(rules).Route(n)
	checkEq(t, "decider of a", p.Recipients[0].Decider.Name, "keep")
	checkEq(t, "decider of b", p.Recipients[1].Decider.Name, "rest")
	if p.Recipients[0].Recipient != &n.Recipients[0] {
		t.Error("Decision.Recipient does not point into the notification")
	}
}

// TestRouteNoRecipients checks a notification without recipients.
func TestRouteNoRecipients(t *testing.T) {
	rules := mustLoad(t, rulesWith(nil, "  - {name: a, when: 'true', actions: [log]}\n"))
	p := NewRouter(rules).Route(&ses.Notification{Event: ses.Event{Type: ses.TypeSend}})
	if len(p.Recipients) != 0 || len(p.Steps()) != 0 {
		t.Errorf("plan for no recipients: %+v, steps %+v", p.Recipients, p.Steps())
	}
}

// TestRouteConcurrent checks that one Router serves many goroutines (run
// with -race to see the point).
func TestRouteConcurrent(t *testing.T) {
	rules := mustLoad(t, rulesWith([]string{"ops"}, `  - {name: a, when: 'recipient.domain == "a.example"', actions: [log]}
  - {name: b, when: 'true', actions: [{notify: ops}]}
`))
	r := NewRouter(rules)
	na := bounceFor(t, "x@a.example")
	nb := bounceFor(t, "x@b.example")
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p Plan
			for i := range 500 {
				n, want := na, "a"
				if (g+i)%2 == 1 {
					n, want = nb, "b"
				}
				r.RouteInto(&p, n)
				if got := p.Recipients[0].Decider.Name; got != want {
					errs <- fmt.Sprintf("goroutine %d round %d: decided by %s, want %s", g, i, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestGlob checks the shell glob rule expressions use.
func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*@example.com", "a@EXAMPLE.com", true},
		{"*@EXAMPLE.COM", "a@example.com", true},
		{"A*", "abc", true},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"?", "", false},
		{"?", "é", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*.example.com", "mx.example.com", true},
		{"*.example.com", "example.com", false},
		{"no-suppress-*@*", "no-suppress-1@example.com", true},
		{"*a*b", "xaybzb", true},
		{"a*b*c", "abbbc", true},
		{"a*b", "ab c", false},
		{"a**b", "ab", true},
		{"[abc]x", "bx", true},
		{"[abc]x", "dx", false},
		{"[a-c]1", "B1", true},
		{"[A-C]1", "b1", true},
		{"[!a-c]1", "d1", true},
		{"[!a-c]1", "a1", false},
		{"[^a-c]1", "A1", false},
		{"[]]", "]", true},
		{"[a-]", "-", true},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{`\?`, "?", true},
		{`\?`, "x", false},
		{`[\]]`, "]", true},
		{`\A`, "a", true},
		{"ÉTÉ*", "été 2024", true},
		{"[abc", "a", false},
		{"*[", "anything", false},
		{"a[", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.s, func(t *testing.T) {
			if got := rules.Glob(tt.pattern, tt.s); got != tt.want {
				t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
			}
		})
	}
}

// TestInDomain checks the domain-or-subdomain test rule expressions use.
func TestInDomain(t *testing.T) {
	tests := []struct {
		address, domain string
		want            bool
	}{
		{"a@example.com", "example.com", true},
		{"a@mx.example.com", "example.com", true},
		{"a@deep.mx.example.com", "example.com", true},
		{"a@badexample.com", "example.com", false},
		{"a@example.com.evil.net", "example.com", false},
		{"a@example.org", "example.com", false},
		{"a@com", "example.com", false},
		{"A@Mx.Example.COM", "example.com", true},
		{"a@example.com", "EXAMPLE.COM", true},
		{"a@example.com.", "example.com", true},
		{"a@example.com", "example.com.", true},
		{"example.com", "example.com", true},
		{"mx.example.com", "example.com", true},
		{"badexample.com", "example.com", false},
		{"a@example.com", "@example.com", true},
		{"Name <a@mx.example.com>", "example.com", true},
		{"a@example.com", "", false},
		{"", "example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.address+" "+tt.domain, func(t *testing.T) {
			if got := rules.InDomain(tt.address, tt.domain); got != tt.want {
				t.Errorf("InDomain(%q, %q) = %v, want %v", tt.address, tt.domain, got, tt.want)
			}
		})
	}
}

// TestGlobInDomainAllocs checks that the functions rules call for every
// recipient allocate nothing, as their doc comments say.
func TestGlobInDomainAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		rules.Glob("*no-suppress-[0-9]*@*.EXAMPLE.com", "x-no-suppress-12@mx.example.com")
		rules.InDomain("A@Mx.Example.COM", "example.com")
	}); n != 0 {
		t.Errorf("Glob and InDomain allocate %v times, want 0", n)
	}
}

// checkEq fails the test when got is not deeply equal to want.
func checkEq[T any](t *testing.T, name string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

// eventsDir holds the hand-written events of the tests.
var eventsDir = filepath.Join("..", "..", "testdata", "events")

// readItems returns every item a Reader gives for a file of eventsDir.
func readItems(t *testing.T, name string) []ses.Item {
	t.Helper()
	f, err := os.Open(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var items []ses.Item
	rd := ses.NewReader(f, name)
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return items
		}
		if err != nil {
			t.Fatalf("Next after %d items: %v", len(items), err)
		}
		items = append(items, it)
	}
}
