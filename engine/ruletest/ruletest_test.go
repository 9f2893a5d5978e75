package ruletest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"go.yaml.in/yaml/v3"
)

// compact builds the compact event written in src (YAML).
func compact(t *testing.T, src string) (*ses.Notification, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	l := &loader{YAML: &rules.YAML{File: "c.yaml", Src: []byte(src)}}
	n := l.compactEvent(doc.Content[0], "test", "c.yaml:1")
	return n, l.Err()
}

func TestCompactEventEveryType(t *testing.T) {
	tests := []struct {
		typ, want string
	}{
		{"Bounce", ses.TypeBounce},
		{"Complaint", ses.TypeComplaint},
		{"Delivery", ses.TypeDelivery},
		{"Send", ses.TypeSend},
		{"Reject", ses.TypeReject},
		{"Open", ses.TypeOpen},
		{"Click", ses.TypeClick},
		{"RenderingFailure", ses.TypeRenderingFailure},
		{`"Rendering Failure"`, ses.TypeRenderingFailure},
		{"DeliveryDelay", ses.TypeDeliveryDelay},
		{"Subscription", ses.TypeSubscription},
	}
	for _, tt := range tests {
		for _, envelope := range []string{"file", "sns", "sqs", "eventbridge", "http", "sweep"} {
			t.Run(tt.typ+"/"+envelope, func(t *testing.T) {
				src := "{type: " + tt.typ + ", envelope: " + envelope + ", recipients: [a@x.com, B@Y.com], mail: {source: Shop <s@shop.example>, subject: Hi, tags: {team: [mail]}, headers: {X-Campaign: spring}}}"
				n, err := compact(t, src)
				if err != nil {
					t.Fatal(err)
				}
				if n.Event.Type != tt.want || n.Event.Envelope != envelope || n.Format != "event" {
					t.Errorf("type %q envelope %q format %q, want %q %q event", n.Event.Type, n.Event.Envelope, n.Format, tt.want, envelope)
				}
				var got []string
				for _, r := range n.Recipients {
					got = append(got, r.Raw+"|"+r.Address+"|"+r.Domain)
				}
				if want := []string{"a@x.com|a@x.com|x.com", "B@Y.com|B@y.com|y.com"}; !slices.Equal(got, want) {
					t.Errorf("recipients %q, want %q", got, want)
				}
				m := n.Mail
				if m.SourceDomain != "shop.example" || m.SourceAddress != "s@shop.example" || m.Subject != "Hi" || !slices.Equal(m.Tags["team"], []string{"mail"}) ||
					m.Headers["X-Campaign"] != "spring" || !slices.Equal(m.Destination, []string{"a@x.com", "B@Y.com"}) ||
					m.MessageID == "" || m.Timestamp == "" || n.Event.Timestamp == "" {
					t.Errorf("mail = %+v, event = %+v", m, n.Event)
				}
				if (envelope == "sns" || envelope == "sqs" || envelope == "http") != (n.Event.TopicArn == defaultTopic) {
					t.Errorf("topicArn %q with envelope %s", n.Event.TopicArn, envelope)
				}
			})
		}
	}
}

// TestCompactEventEveryName checks that every name a rule may read that
// is not derived from others can be set in the compact form.
func TestCompactEventEveryName(t *testing.T) {
	for _, n := range rules.Names() {
		sec, field, ok := strings.Cut(n.Path, ".")
		if !ok || n.Derived || sec == "recipient" {
			continue
		}
		t.Run(n.Path, func(t *testing.T) {
			typ := "Bounce"
			for _, s := range rules.Names() {
				if s.Path == sec && s.EventType != "" {
					typ = s.EventType
				}
			}
			var value, want string
			switch n.Type.String() {
			case "string":
				value, want = `"2024-02-02T00:00:00.000Z"`, "2024-02-02T00:00:00.000Z"
			case "int":
				value, want = "42", "42"
			case "bool":
				value, want = "true", "true"
			case "[]string":
				value, want = "[v1, v2]", "[v1 v2]"
			case "map[string][]string":
				value, want = "{k: [v]}", "map[k:[v]]"
			case "map[string]string":
				value, want = "{k: v}", "map[k:v]"
			default:
				t.Fatalf("no test value for %s", n.Type)
			}
			src := "{type: " + typ + ", recipients: [a@x.com], " + sec + ": {" + field + ": " + value + "}}"
			if sec == "event" {
				src = "{type: " + typ + ", recipients: [a@x.com], " + field + ": " + value + "}"
				if field == "type" {
					src, want = "{type: Complaint, recipients: [a@x.com]}", "Complaint"
				}
				if field == "envelope" {
					value, want = "sqs", "sqs"
					src = "{type: " + typ + ", recipients: [a@x.com], envelope: sqs}"
				}
				if field == "topicArn" {
					src = "{type: " + typ + ", recipients: [a@x.com], envelope: sns, topicArn: " + value + "}"
				}
			}
			if n.Path == "mail.destination" {
				src = "{type: Send, mail: {destination: [v1, v2]}}"
			}
			nt, err := compact(t, src)
			if err != nil {
				t.Fatal(err)
			}
			v := reflect.ValueOf(nt).Elem().FieldByName(sectionField(t, sec)).FieldByIndex(n.Field)
			if got := fmt.Sprint(v.Interface()); got != want {
				t.Errorf("%s = %s, want %s (from %s)", n.Path, got, want, src)
			}
		})
	}
}

// sectionField is the Notification field of a section.
func sectionField(t *testing.T, sec string) string {
	t.Helper()
	for _, n := range rules.Names() {
		if n.Path == sec {
			return n.Type.Name()
		}
	}
	t.Fatalf("no section %s", sec)
	return ""
}

func TestCompactEventFields(t *testing.T) {
	n, err := compact(t, `
type: Bounce
envelope: sns
topicArn: arn:aws:sns:eu-west-1:111122223333:bounces
bounce: {type: Transient, subType: MailboxFull}
recipients:
  - {address: "Ann <a@X.com>", status: 4.2.2, action: delayed, diagnosticCode: "smtp; 452 full"}
mail: {source: s@x.com, messageId: m-1, timestamp: "2024-05-01T10:00:00Z", destination: [a@x.com, c@x.com]}
`)
	if err != nil {
		t.Fatal(err)
	}
	if n.Bounce.Type != "Transient" || n.Bounce.SubType != "MailboxFull" || n.Event.TopicArn != "arn:aws:sns:eu-west-1:111122223333:bounces" ||
		n.Mail.MessageID != "m-1" || n.Event.Timestamp != "2024-05-01T10:00:02.000Z" || !slices.Equal(n.Mail.Destination, []string{"a@x.com", "c@x.com"}) {
		t.Errorf("notification = %+v", n)
	}
	want := ses.Recipient{Address: "a@x.com", Raw: "Ann <a@X.com>", Local: "a", Domain: "x.com", Status: "4.2.2", Action: "delayed", DiagnosticCode: "smtp; 452 full"}
	if len(n.Recipients) != 1 || n.Recipients[0] != want {
		t.Errorf("recipients = %+v, want [%+v]", n.Recipients, want)
	}

	for _, tt := range []struct{ src, field, want string }{
		{"{type: Complaint, complaint: {feedbackType: abuse, subType: OnAccountSuppressionList}, recipients: [a@x.com]}", "complaint", "abuse/OnAccountSuppressionList"},
		{"{type: DeliveryDelay, delay: {type: MailboxFull}, recipients: [a@x.com]}", "delay", "MailboxFull"},
		{"{type: DeliveryDelay, recipients: [a@x.com]}", "delay", "General"},
		{"{type: Reject, reject: {reason: Bad content}, recipients: [a@x.com]}", "reject", "Bad content"},
		{"{type: RenderingFailure, failure: {errorMessage: oops, templateName: t1}, mail: {destination: [a@x.com]}}", "failure", "oops/t1"},
		{"{type: Bounce, recipients: [a@x.com]}", "bounce", "Permanent/General"},
	} {
		n, err := compact(t, tt.src)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{
			"complaint": n.Complaint.FeedbackType + "/" + n.Complaint.SubType,
			"delay":     n.Delay.Type,
			"reject":    n.Reject.Reason,
			"failure":   n.Failure.ErrorMessage + "/" + n.Failure.TemplateName,
			"bounce":    n.Bounce.Type + "/" + n.Bounce.SubType,
		}[tt.field]
		if got != tt.want || len(n.Recipients) != 1 {
			t.Errorf("%s: %s = %q (%d recipients), want %q", tt.src, tt.field, got, len(n.Recipients), tt.want)
		}
	}
}

func TestCompactEventProblems(t *testing.T) {
	_, err := compact(t, `type: Bounse
recipients: [a@x.com]
`)
	want := `c.yaml:1:7: test: unknown event type "Bounse" (want Bounce, Complaint, Delivery, Send, Reject, Open, Click, RenderingFailure, DeliveryDelay or Subscription)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	_, err = compact(t, `type: Complaint
envelope: file
topicArn: arn:x
color: red
bounce: {type: Permanent}
recipients:
  - {address: a@x.com, status: 5.1.1}
  - {adress: b@x.com}
mail: {sender: s@x.com, timestamp: yesterday}
`)
	want = `c.yaml:1:1: test: mail.timestamp must be a time like 2024-01-01T00:00:00.000Z, not "yesterday"
c.yaml:3:11: test: topicArn needs envelope sns, sqs or http (SNS carries the topic), not file
c.yaml:4:1: test: unknown key "color" in event (want type, timestamp, envelope, topicArn, recipients, mail, bounce, complaint, delivery, delay, reject, failure, open, click, subscription)
c.yaml:5:1: test: bounce is for events of type Bounce, not Complaint
c.yaml:7:5: test: status, action or diagnosticCode are for recipients of Bounce and DeliveryDelay events, not Complaint
c.yaml:8:5: test: missing address in recipient
c.yaml:8:6: test: unknown key "adress" in recipient (want address, status, action or diagnosticCode)
c.yaml:9:8: test: unknown key "sender" in mail (want timestamp, messageId, source, sourceArn, sourceIp, sendingAccountId, callerIdentity, subject, destination, from, to, cc, replyTo, tags, headers or headersTruncated)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	_, err = compact(t, `{type: Send, recipients: [a@x.com], mail: {destination: [a@x.com]}}`)
	want = `c.yaml:1:26: test: give recipients or mail.destination, not both: a Send event's recipients are mail.destination`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	_, err = compact(t, `{type: Bounce}`)
	want = `c.yaml:1:1: test: missing recipients in event: a list of addresses`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// testRules routes bounces: dummies dropped, no-suppress addresses
// unsuppressed and notified, the rest notified.
const testRules = `version: 1
destinations:
  ses-alerts:
    slack: {channel: C0123456789}
rules:
  - name: ignore-dummies
    when: recipient.domain == "ignore.example"
    actions: [drop]
  - name: log-all
    when: "true"
    continue: true
    actions: [log]
  - name: keep-deliverable
    when: event.type == "Bounce" && recipient.local contains "no-suppress"
    actions: [unsuppress, {notify: ses-alerts}]
  - name: notify
    when: event.type in ["Bounce", "Complaint"]
    actions: [{notify: ses-alerts}]
`

func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTestsProblems(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir, "events/bounce.json", `{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"a@x.com"}]},"mail":{"timestamp":"2024-05-01T10:00:00.000Z","source":"s@x.com","messageId":"m-1","destination":["a@x.com"]}}`)
	writeTestFile(t, dir, "events/setup.json", `{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"ok"}`)
	src := `rules: rules.yaml
color: red
tests:
  - name: file
    event: events/bounce.json
    expect:
      a@x.com: [drop]
      b@x.com: []
  - name: missing file
    event: events/nope.json
    expect: {}
  - name: setup message
    event: events/setup.json
    expect: {}
  - name: no expectation
    event: {type: Bounce, recipients: [a@x.com, c@x.com]}
    expect:
      a@x.com: [unsupress, {notify: x}]
  - name: file
    event_json: '{"eventType":"Bounce"}'
    expect: {}
    extra: 1
  - event: events/bounce.json
    event_json: "{}"
`
	path := filepath.Join(dir, "t_test.yaml")
	_, err := Load(path, []byte(src))
	want := strings.ReplaceAll(`DIR/t_test.yaml:2:1: unknown key "color" (want rules or tests)
DIR/t_test.yaml:8:7: test "file": expect: b@x.com is not a recipient of the event (recipients: a@x.com)
DIR/t_test.yaml:10:12: test "missing file": event file DIR/events/nope.json does not exist (event files are relative to the test file)
DIR/t_test.yaml:13:12: test "setup message": event file DIR/events/setup.json is not an SES notification: SES set-up message AmazonSnsSubscriptionSucceeded
DIR/t_test.yaml:17:5: test "no expectation": expect: no expectation for recipient c@x.com: list every recipient ([] for no action)
DIR/t_test.yaml:18:17: test "no expectation": expect: unknown action "unsupress" (want drop, unsuppress, suppress, log or notify:DESTINATION)
DIR/t_test.yaml:18:28: test "no expectation": expect: write "notify:x", a string, as the JSON output does
DIR/t_test.yaml:19:11: test "file": duplicate test name (first used at line 4)
DIR/t_test.yaml:20:17: test "file": event_json cannot be read: SES Bounce notification has no mail object
DIR/t_test.yaml:22:5: test "file": unknown key "extra" (want name, event, event_json, history or expect)
DIR/t_test.yaml:23:5: test #6: missing name
DIR/t_test.yaml:23:5: test #6: missing expect: for every recipient of the event, the actions in order ([] for none)
DIR/t_test.yaml:24:5: test #6: give event or event_json, not both`, "DIR", dir)
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	for _, p := range unwrapAll(err) {
		if _, ok := p.(*rules.Problem); !ok {
			t.Errorf("%T is not a *Problem", p)
		}
	}

	for _, tt := range []struct{ name, src, want string }{
		{"empty", "", "t.yaml:1:1: empty test file: it needs tests"},
		{"no tests", "rules: r.yaml\n", "t.yaml:1:1: missing tests: a list of tests, each with name, event and expect"},
		{"tests not a list", "tests: {}\n", "t.yaml:1:8: tests must be a list of tests, each with name, event and expect"},
		{"syntax", "tests: [\n", "t.yaml:1:1: YAML: did not find expected node content"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("t.yaml", []byte(tt.src))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir, "events/bounce.json", `{"Type":"Notification","MessageId":"n-1","TopicArn":"arn:aws:sns:eu-west-1:1:t","Message":"{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":\"General\",\"bouncedRecipients\":[{\"emailAddress\":\"a@x.com\"},{\"emailAddress\":\"no-suppress@x.com\"}]},\"mail\":{\"timestamp\":\"2024-05-01T10:00:00.000Z\",\"source\":\"s@x.com\",\"messageId\":\"m-1\",\"destination\":[\"a@x.com\",\"no-suppress@x.com\"]}}"}`)
	tf, err := Load(filepath.Join(dir, "sub", "..", "t_test.yaml"), []byte(`rules: ../rules.yaml
tests:
  - name: file bounce
    event: events/bounce.json
    expect:
      a@X.com: [log, "notify:ses-alerts"]
      no-suppress@x.com: [log, unsuppress, "notify:ses-alerts"]
  - name: dummies are dropped
    event: {type: Bounce, recipients: [a@ignore.example]}
    expect:
      a@ignore.example: [drop]
  - name: wrong on purpose
    event: {type: Complaint, recipients: [a@ignore.example, b@x.com, c@x.com]}
    expect:
      a@ignore.example: [drop]
      b@x.com: [log, suppress]
      c@x.com: [log, "notify:ses-alerts"]
  - name: addresses that differ in the local part's case are two recipients
    event: {type: Complaint, recipients: [Ann@x.com, ann@X.com]}
    expect:
      Ann@x.com: [log, "notify:ses-alerts"]
      ann@x.com: [log, "notify:ses-alerts"]
  - name: sends get only logged
    event_json: '{"eventType":"Send","mail":{"source":"s@x.com","destination":["d@x.com"]},"send":{}}'
    expect:
      d@x.com: [log]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tf.RulesPath(), filepath.Join(filepath.Dir(dir), "rules.yaml"); got != want {
		t.Errorf("RulesPath() = %q, want %q", got, want)
	}
	rs, err := rules.Load("rules.yaml", []byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	router := route.NewRouter(rs)

	results := Run(router, tf, nil)
	var summary []string
	for _, r := range results {
		summary = append(summary, r.Test.Name+": "+map[bool]string{true: "ok", false: "FAIL"}[r.Passed()])
	}
	if want := []string{"file bounce: ok", "dummies are dropped: ok", "wrong on purpose: FAIL", "addresses that differ in the local part's case are two recipients: ok", "sends get only logged: ok"}; !slices.Equal(summary, want) {
		t.Errorf("results %q, want %q", summary, want)
	}
	f := results[2].Failures
	if len(f) != 1 || f[0].Recipient != "b@x.com" || !slices.Equal(f[0].Want, []string{"log", "suppress"}) ||
		!slices.Equal(f[0].Got, []string{"log", "notify:ses-alerts"}) || !slices.Equal(f[0].Matched, []string{"log-all", "notify"}) ||
		f[0].Decider != "notify" || f[0].Err != nil {
		t.Errorf("failures = %+v", f)
	}
	if results[2].Test.Pos != (rules.Pos{Line: 12, Col: 5}) {
		t.Errorf("test position %+v, want 12:5", results[2].Test.Pos)
	}

	selected := Run(router, tf, regexp.MustCompile("dropped|Send|sends"))
	if len(selected) != 2 || selected[0].Test.Name != "dummies are dropped" || selected[1].Test.Name != "sends get only logged" {
		t.Errorf("-run selected %+v", selected)
	}
}
