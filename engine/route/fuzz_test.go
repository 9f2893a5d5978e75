package route

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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

// FuzzDecode checks that Decode never panics and that every item it
// returns has exactly one of Notification, Skipped and Err.
func FuzzDecode(f *testing.F) {
	addEventSeeds(f)
	r := fuzzRouter(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		var p Plan
		items := ses.Decode("fuzz", doc)
		if len(items) == 0 {
			t.Fatal("Decode returned no item")
		}
		for i, it := range items {
			if it.Input != "fuzz" && it.Input != "fuzz#"+strconv.Itoa(i+1) {
				t.Fatalf("item %d has Input %q", i, it.Input)
			}
			checkDecodedItem(t, it, r, &p)
		}
	})
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

// sendDoc is a Send event on one line: the smallest notification.
const sendDoc = `{"eventType":"Send","mail":{"messageId":"m","destination":["a@b.example"]},"send":{}}`

// prettySend is sendDoc over 8 lines, the last without its line end.
const prettySend = "{\n  \"eventType\": \"Send\",\n  \"mail\": {\n    \"messageId\": \"m\",\n    \"destination\": [\"a@b.example\"]\n  },\n  \"send\": {}\n}"
