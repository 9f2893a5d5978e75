package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// smuggleRules unsuppress and notify every bounce: any recipient routed
// shows as an SES call and in a Slack post.
const smuggleRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      pace: 0s
rules:
  - name: every-bounce
    when: event.type == "Bounce"
    actions: [unsuppress, {notify: hook}]
`

// TestServeActsOnlyOnTheSignedMessage posts, end to end through serve,
// genuine signed Notifications of an allowed topic whose bodies also
// carry, under keys SNS does not sign, the envelopes another reader would
// take for the event: a Lambda SNS record, an SQS record, an EventBridge
// event, each naming other addresses. Only the signed Message is routed:
// the SES and Slack fakes see the signed recipient, never a smuggled
// one. A body that gives Message twice, in another letter case, is
// refused (400) before anything is done.
func TestServeActsOnlyOnTheSignedMessage(t *testing.T) {
	sg := intaketest.NewSigner(t)
	ts := startServe(t, smuggleRules, serveSetup{args: []string{"-topic", serveTopic, "-sns-cert-dir", sg.CertDir}})
	smuggled := func(id string) string {
		return strings.TrimSpace(liveBounce(t, "evil-"+id, "smuggled-"+id+"@evil.example"))
	}
	quoted := func(s string) string { return string(mustJSON(t, s)) }
	tests := []struct {
		name  string
		extra map[string]string // raw JSON values, by key
		code  int
	}{
		{"lambda sns records", map[string]string{
			"Records": `[{"EventSource":"aws:sns","Sns":{"Type":"Notification","MessageId":"x","TopicArn":"` + serveTopic + `","Message":` + quoted(smuggled("sns")) + `}}]`,
		}, http.StatusOK},
		{"sqs records", map[string]string{
			"Records": `[{"messageId":"q","eventSource":"aws:sqs","body":` + quoted(smuggled("sqs")) + `}]`,
		}, http.StatusOK},
		{"eventbridge event", map[string]string{
			"source": `"aws.ses"`, "detail-type": `"Email Bounced"`,
			"detail": strings.Replace(smuggled("eventbridge"), `"notificationType"`, `"eventType"`, 1),
		}, http.StatusOK},
		{"message in another case", map[string]string{"message": quoted(smuggled("message"))}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, posts := len(ts.fakes.ses.Calls()), len(ts.fakes.slack.Posts())
			id := strings.ReplaceAll(tt.name, " ", "-")
			m := sg.Notification(t, serveTopic, "n-"+id, liveBounce(t, "ses-"+id, "signed-"+id+"@example.com"))
			extra := map[string]jsontext.Value{}
			for k, v := range tt.extra {
				if !json.Valid([]byte(v)) {
					t.Fatalf("%s: not JSON: %s", k, v)
				}
				extra[k] = jsontext.Value(v)
			}
			if code := ts.post(t, nil, intaketest.BodyWith(m, extra)); code != tt.code {
				t.Fatalf("status %d, want %d\n%s", code, tt.code, ts.logs)
			}
			var addrs []string
			for _, c := range ts.fakes.ses.Calls()[before:] {
				addrs = append(addrs, c.Address)
			}
			var texts []string
			for _, p := range ts.fakes.slack.Posts()[posts:] {
				texts = append(texts, string(p.Body))
			}
			all := strings.Join(append(addrs, texts...), "\n")
			if strings.Contains(all, "evil.example") {
				t.Errorf("a smuggled address was acted on: SES %q, Slack:\n%s", addrs, strings.Join(texts, "\n"))
			}
			wantCalls, wantPosts := 1, 1
			if tt.code != http.StatusOK {
				wantCalls, wantPosts = 0, 0
			}
			if len(addrs) != wantCalls || len(texts) != wantPosts {
				t.Errorf("SES calls %q and %d posts, want %d and %d", addrs, len(texts), wantCalls, wantPosts)
			}
			if wantCalls == 1 && (addrs[0] != "signed-"+id+"@example.com" || !strings.Contains(texts[0], "signed-"+id+"@example.com")) {
				t.Errorf("SES call for %s and post:\n%s\nwant both for the signed recipient", addrs[0], texts[0])
			}
		})
	}
}
