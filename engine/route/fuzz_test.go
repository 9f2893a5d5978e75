package route

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// addEventSeeds adds every file of testdata/events, and each line of the
// NDJSON ones, to a fuzz corpus.
func addEventSeeds(f *testing.F) {
	f.Helper()
	entries, err := os.ReadDir(eventsDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(eventsDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if strings.HasSuffix(e.Name(), ".ndjson") {
			for line := range bytes.SplitSeq(b, []byte("\n")) {
				f.Add(line)
			}
		}
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"Records":[]}`, `{"Records":[null,1,{}]}`,
		`{"Type":"Notification","Message":{}}`, `{"Type":"Notification","Message":"{\"eventType\":\"Send\",\"mail\":{}}"}`,
		`{"source":"aws.ses","detail-type":"Email Sent","detail":{"eventType":"Send","mail":{"destination":["a@b"]}}}`,
		`{"eventType":"Rendering Failure","mail":{"destination":["a@b","","@",">"]}}`,
	} {
		f.Add([]byte(s))
	}
}

// fuzzRouter routes decoded notifications with rules that read every part
// of the model, on the fast path and on expr's VM.
func fuzzRouter(f *testing.F) *Router {
	f.Helper()
	rules, err := rules.Load("fuzz.yaml", []byte(`version: 1
destinations:
  ops: {slack: {channel: C1}}
lists:
  l: [a@b.example, b.example]
rules:
  - name: recipient
    when: recipient.address in lists.l || recipient.domain in lists.l || glob("*@*.example", recipient.address) || inDomain(recipient.address, "example")
    continue: true
    actions: [log]
  - name: mail
    when: mail.sourceDomain endsWith "x" || "k" in mail.tags || mail.headers["Subject"] contains "x" || len(mail.destination) > 3 || lower(mail.subject) == "x"
    continue: true
    actions: [{notify: ops}]
  - name: types
    when: bounce.subType == "General" || complaint.feedbackType == "abuse" || delay.type != "" || click.link != "" || len(click.linkTags) > 0 || subscription.unsubscribeAll
    continue: true
    actions: [unsuppress]
  - name: vm
    when: any(mail.destination, {# == recipient.address}) && event.type matches "^[A-Z]" && string(delivery.processingTimeMillis) != "x"
    actions: [suppress]
`))
	if err != nil {
		f.Fatal(err)
	}
	return NewRouter(rules)
}

// checkDecodedItem checks the invariants every decoded item keeps: exactly
// one of Notification, Skipped and Err; a notification that agrees with
// its item and that routes without panicking.
func checkDecodedItem(t *testing.T, it ses.Item, r *Router, p *Plan) {
	t.Helper()
	set := 0
	for _, b := range []bool{it.Notification != nil, it.Skipped != "", it.Err != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		t.Fatalf("%s: %d of Notification, Skipped and Err set: %+v", it.Input, set, it)
	}
	n := it.Notification
	if n == nil {
		return
	}
	if n.Input != it.Input || n.EnvelopeID != it.EnvelopeID || n.Event.Envelope != it.Envelope || n.Event.TopicArn != it.TopicArn {
		t.Fatalf("notification disagrees with its item: %q %q %q %q vs %+v", n.Input, n.EnvelopeID, n.Event.Envelope, n.Event.TopicArn, it)
	}
	if n.Event.Type == "" || n.Mail.Destination == nil {
		t.Fatalf("%s: notification without type or destination: %+v", it.Input, n)
	}
	r.RouteInto(p, n)
	if len(p.Recipients) != len(n.Recipients) {
		t.Fatalf("%s: %d decisions for %d recipients", it.Input, len(p.Recipients), len(n.Recipients))
	}
	p.Steps()
}

// FuzzDecode checks that Decode never panics, that its items are named
// as Decode names them, and that every item has exactly one of
// Notification, Skipped and Err.
func FuzzDecode(f *testing.F) {
	addEventSeeds(f)
	for _, s := range []string{`[]`, `[1]`, `[{"Records":[{},{}]},{},[]]`, `[{"Records":[]}]`} {
		f.Add([]byte(s))
	}
	r := fuzzRouter(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		var p Plan
		items := ses.Decode("fuzz", doc)
		if len(items) == 0 {
			t.Fatal("Decode returned no item")
		}
		if err := checkInputs("fuzz", items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			checkDecodedItem(t, it, r, &p)
		}
		// The same bytes decode the same way, whatever state the JSON
		// library's pooled decoders are in.
		if again := ses.Decode("fuzz", bytes.Clone(doc)); !sameItems(items, again) {
			t.Fatalf("decoded twice, differently:\n%+v\n%+v", items, again)
		}
	})
}

// sameItems reports whether two lists of items are the same, errors
// compared by their text.
func sameItems(a, b []ses.Item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if (x.Err == nil) != (y.Err == nil) || (x.Err != nil && x.Err.Error() != y.Err.Error()) {
			return false
		}
		x.Err, y.Err = nil, nil
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// checkInputs checks that items are named as Decode names the items of
// one document called in: in alone, or in#1, in#2, ... for the records
// of a Lambda event; in[0], in[1], ... (each alone or with its records
// numbered from #1) for the elements of a top-level array, in order.
func checkInputs(in string, items []ses.Item) error {
	type name struct{ elem, rec int } // -1: no [INDEX]; 0: no #RECORD
	parse := func(input string) (name, bool) {
		n := name{elem: -1}
		rest, ok := strings.CutPrefix(input, in)
		if !ok {
			return n, false
		}
		if index, after, ok := strings.Cut(strings.TrimPrefix(rest, "["), "]"); ok && strings.HasPrefix(rest, "[") {
			e, err := strconv.Atoi(index)
			if err != nil || e < 0 || strconv.Itoa(e) != index {
				return n, false
			}
			n.elem, rest = e, after
		}
		if rec, ok := strings.CutPrefix(rest, "#"); ok {
			r, err := strconv.Atoi(rec)
			if err != nil || r < 1 || strconv.Itoa(r) != rec {
				return n, false
			}
			n.rec, rest = r, ""
		}
		return n, rest == ""
	}
	var prev name
	for i, it := range items {
		n, ok := parse(it.Input)
		if !ok {
			return fmt.Errorf("item %d has Input %q, not one of %s, %s#N, %s[I] or %s[I]#N", i, it.Input, in, in, in, in)
		}
		first := n.rec <= 1 // the first item of a document
		switch {
		case i == 0 && (n.elem > 0 || !first):
			return fmt.Errorf("the first item has Input %q", it.Input)
		case i > 0 && (n.elem < 0) != (prev.elem < 0):
			return fmt.Errorf("item %d has Input %q after %q: a document is an array or not", i, it.Input, items[i-1].Input)
		case i > 0 && n.elem == prev.elem && (prev.rec == 0 || n.rec != prev.rec+1):
			return fmt.Errorf("item %d has Input %q after %q: records are numbered from 1, each once", i, it.Input, items[i-1].Input)
		case i > 0 && n.elem != prev.elem && (n.elem != prev.elem+1 || !first):
			return fmt.Errorf("item %d has Input %q after %q: elements come in order, each from its first record", i, it.Input, items[i-1].Input)
		}
		prev = n
	}
	return nil
}

// TestCheckInputs checks the check of FuzzDecode on the names Decode
// gives, and on names it never gives.
func TestCheckInputs(t *testing.T) {
	for _, doc := range []string{`{}`, `{"Records":[{},{}]}`, `[1]`, `[{"Records":[{},{}]},{},{"Records":[{}]}]`} {
		if err := checkInputs("in", ses.Decode("in", []byte(doc))); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
	for _, names := range [][]string{
		{"out"}, {"in#0"}, {"in#2"}, {"in#1", "in#3"}, {"in", "in"}, {"in[1]"}, {"in[0]", "in[2]"}, {"in[0]", "in#1"},
		{"in[0]#1", "in[1]#2"}, {"in[0]", "in[0]#1"}, {"in[00]"}, {"in[0]x"}, {"in[-1]"}, {"in#01"},
	} {
		items := make([]ses.Item, len(names))
		for i, n := range names {
			items[i].Input = n
		}
		if err := checkInputs("in", items); err == nil {
			t.Errorf("%q: accepted", names)
		}
	}
}

// FuzzLoad checks that Load never panics on any YAML; that on success
// every rule is compiled (routing a notification through the rules does
// not panic), and that on failure every problem has a position.
func FuzzLoad(f *testing.F) {
	if b, err := os.ReadFile(shippedRules); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`version: 1
destinations:
  ses-alerts:
    slack:
      webhook_env: SLACK_WEBHOOK_URL
lists:
  ignored: [ignore@example.com]
  keep_deliverable_domains: [no.suppress.domain.jp]
rules:
  - name: ignore-dummies
    when: recipient.address in lists.ignored || recipient.domain == "ignore.domain.jp"
    actions: [drop]
  - name: keep-deliverable
    when: event.type == "Bounce" && (recipient.address contains "no-suppress" || recipient.domain in lists.keep_deliverable_domains)
    actions: [unsuppress, {notify: ses-alerts}]
  - name: notify-bounces-and-complaints
    when: event.type in ["Bounce", "Complaint"]
    actions: [{notify: ses-alerts}]
`,
		"version: 1\nrules:\n  - name: a\n    when: |\n      bounce.type == \"Permanent\" &&\n        glob(\"*@x\", recipient.address)\n    continue: true\n    actions: [log]\n  - name: b\n    when: >\n      mail.destination[3] == \"x\"\n    actions: [suppress]\n",
		"version: 1\nrules:\n  - {name: a, when: 'recipent.address == 1', actions: [drop, {notify: x}]}\n  - {name: a, when: \"lists.x\", actions: []}\n",
		"version: 1\ndestinations: {d: {slack: {channel: C, webhook_env: X}}}\nlists: {l: [a, ~]}\nrules: [{name: r, when: 'true', actions: [{notify: d}]}]\n",
		"version: 1\nrules:\n  - &a {name: a, when: 'true', actions: [log]}\n  - *a\n",
		"version: 2\nrules: [\n", "", "---\n---\n", "rules: x\n",
	} {
		f.Add([]byte(s))
	}
	n := bounceFor(f, "a@example.com", "no-suppress-1@no.suppress.domain.jp", "ignore@example.com")
	f.Fuzz(func(t *testing.T, src []byte) {
		rs, err := rules.Load("rules.yaml", src)
		if err != nil {
			if rs != nil {
				t.Fatal("Load returned rules and an error")
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not a list of problems: %v", err, err)
			}
			for _, e := range joined.Unwrap() {
				var p *rules.Problem
				if !errors.As(e, &p) {
					t.Fatalf("%T is not a *Problem: %v", e, e)
				}
				if p.Pos.Line < 1 || p.Pos.Col < 1 || p.Message == "" {
					t.Fatalf("problem without a position or message: %q", p.Error())
				}
			}
			return
		}
		for _, rule := range rs.Rules {
			if rule.Program == nil {
				t.Fatalf("rule %q has no Program", rule.Name)
			}
			if len(rule.Actions) == 0 {
				t.Fatalf("rule %q has no actions", rule.Name)
			}
			for _, a := range rule.Actions {
				if a.Kind == rules.ActionNotify && rs.Destinations[a.Destination] == nil {
					t.Fatalf("rule %q notifies the unknown destination %q", rule.Name, a.Destination)
				}
			}
		}
		p := NewRouter(rs).Route(n)
		if len(p.Recipients) != len(n.Recipients) {
			t.Fatalf("%d decisions for %d recipients", len(p.Recipients), len(n.Recipients))
		}
		p.Steps()
	})
}
