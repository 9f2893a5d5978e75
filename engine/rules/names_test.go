package rules

import (
	"math"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// TestNamesDeclared checks the one declaration of the names rules use:
// every name has a doc, names are unique, and every section's fields are
// listed after it.
func TestNamesDeclared(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range Names() {
		if n.Doc == "" {
			t.Errorf("%s has no doc tag", n.Path)
		}
		if seen[n.Path] {
			t.Errorf("%s is declared twice", n.Path)
		}
		seen[n.Path] = true
		if sec, _, ok := strings.Cut(n.Path, "."); ok && !seen[sec] {
			t.Errorf("%s comes before its section %s", n.Path, sec)
		}
	}
	for _, want := range []string{"event.type", "recipient.address", "recipient.raw", "mail.tags", "bounce.subType", "lists", "history", "glob", "inDomain"} {
		if !seen[want] {
			t.Errorf("%s is not among the names", want)
		}
	}
	if got := strings.Join(topNames(), ","); got != "event,mail,bounce,complaint,delivery,delay,reject,failure,open,click,subscription,recipient,lists,history,glob,inDomain" {
		t.Errorf("top names %s", got)
	}
}

// TestMailbox pins how an address as SES wrote it becomes the bare
// mailbox that rules see and SES actions use.
func TestMailbox(t *testing.T) {
	for _, tt := range []struct{ raw, want, err string }{
		{"a@example.com", "a@example.com", ""},
		{"Ann.Lee@Example.COM", "Ann.Lee@example.com", ""},
		{"  a@b.example  ", "a@b.example", ""},
		{`"no-suppress" <ceo@bank.example>`, "ceo@bank.example", ""},
		{"ceo2@bank.example (no-suppress)", "ceo2@bank.example", ""},
		{"Name <x@Y.Example>", "x@y.example", ""},
		{"=?utf-8?b?SsO2aG4=?= <j@x.example>", "j@x.example", ""},
		{"no-at-sign", "", "no @"},
		{"a@b@c.example", "", "more than one @"},
		{`"a@b"@c.example`, "", "more than one @"},
		{"@c.example", "", "empty local part or domain"},
		{"a@", "", "empty local part or domain"},
		{"a\n@b.example", "", "control character"},
		{"a\x00@b.example", "", "control character"},
		{"a\xff@b.example", "", "invalid UTF-8"},
		{strings.Repeat("x", 312) + "@b.example", "", "longer than 320 bytes"},
		{strings.Repeat("x", 310) + "@b.example", strings.Repeat("x", 310) + "@b.example", ""},
		{"", "", "no @"},
		{"<>", "", "not a mailbox"},
	} {
		got, err := ses.Mailbox(tt.raw)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("Mailbox(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Mailbox(%q) = %q, %v; want an error saying %q", tt.raw, got, err, tt.err)
		}
		r := ses.NewRecipient(tt.raw)
		if r.Raw != tt.raw || (tt.err == "") != (r.Invalid == "") {
			t.Errorf("NewRecipient(%q) = %+v", tt.raw, r)
		}
	}
}

// TestStrangeValues checks that comparing a name whose values SES sends
// from a closed set with a value SES never sends is caught: an error for
// event.type, a warning for the others, each with a did-you-mean.
func TestStrangeValues(t *testing.T) {
	rules, err := Load("r.yaml", []byte(`version: 1
rules:
  - name: a
    when: event.type == "bounce"
    actions: [drop]
`))
	if err == nil || err.Error() != `r.yaml:4:25: rule "a": event.type is never "bounce"; did you mean "Bounce"?` {
		t.Errorf("error %v, rules %v", err, rules)
	}
	rules = mustLoad(t, `version: 1
rules:
  - name: a
    when: 'event.type in ["Bounce", "Complaint"] && bounce.type in ["permanent", "Transient"] && complaint.feedbackType != "abuze"'
    actions: [drop]
  - name: b
    when: delay.type == "Mailboxfull" || bounce.subType == "General"
    actions: [drop]
`)
	var got []string
	for _, w := range rules.Warnings() {
		got = append(got, w.Error())
	}
	want := []string{
		`rules.yaml:4:69: rule "a": warning: bounce.type is never "permanent"; did you mean "Permanent"?`,
		`rules.yaml:4:124: rule "a": warning: complaint.feedbackType is never "abuze"; did you mean "abuse"?`,
		`rules.yaml:7:25: rule "b": warning: delay.type is never "Mailboxfull"; did you mean "MailboxFull"?`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestProbe checks that check's synthetic events find a rule that fails
// at run time on one of them, and a slow one.
func TestProbe(t *testing.T) {
	rules := mustLoad(t, `version: 1
rules:
  - name: safe
    when: '"spring" in (mail.tags["campaign"] ?? []) || recipient.domain == "x"'
    actions: [drop]
  - name: fragile
    when: mail.tags["campaign"][0] == "spring"
    actions: [drop]
  - name: second-label
    when: split(recipient.domain, ".")[1] == "example"
    actions: [drop]
`)
	errs, warns := rules.Probe(math.MaxUint64)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if len(got) != 2 || !strings.Contains(got[0], `rule "fragile": fails on a bare Bounce, recipient "someone@example.com"`) ||
		!strings.Contains(got[1], `rule "second-label": fails on a full Bounce, recipient "no-at-sign"`) {
		t.Errorf("errors:\n%s", strings.Join(got, "\n"))
	}
	if len(warns) != 0 {
		t.Errorf("warnings %v with every step to spare", warns)
	}
	_, warns = rules.Probe(0)
	if len(warns) != 3 || !strings.Contains(warns[0].Error(), "warning: slow:") {
		t.Errorf("with no step to spare, warnings %v; want all three rules slow", warns)
	}
}

// TestStrangeValuesEmpty checks that comparing with "" is a guard, not a
// misspelling: event.type != "" loads.
func TestStrangeValuesEmpty(t *testing.T) {
	rules := mustLoad(t, `version: 1
rules:
  - name: a
    when: event.type != "" && complaint.subType == ""
    actions: [drop]
`)
	if w := rules.Warnings(); len(w) != 0 {
		t.Errorf("warnings %v", w)
	}
}
