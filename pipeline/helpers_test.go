package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// rulesHook is a rules file with one webhook destination, paced at once,
// that notifies every bounce; a recipient at fail.example makes its rule
// fail at run time, one at keep.example is unsuppressed.
const rulesHook = `version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: 0s, digest_after: 3}
rules:
  - name: fragile
    when: 'recipient.domain == "fail.example" && mail.destination[99] == "x"'
    actions: [drop]
  - name: keep
    when: recipient.domain == "keep.example"
    actions: [unsuppress, {notify: hook}]
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`

// loadConfig loads src as a rules file.
func loadConfig(t testing.TB, src string) *Config {
	t.Helper()
	cfg, err := LoadBytes("rules.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fakes are the loopback Slack and SES fakes, and the parts that post to
// them through the real clients.
type fakes struct {
	slack *actionstest.Slack
	ses   *actionstest.SES
	parts *Parts
	log   *bytes.Buffer
}

// newFakes starts the fakes and builds Parts pointed at them: the
// webhook HOOK posts to the Slack fake.
func newFakes(t testing.TB) *fakes {
	t.Helper()
	f := &fakes{slack: actionstest.NewSlack(t), ses: actionstest.NewSES(t), log: &bytes.Buffer{}}
	env := map[string]string{"HOOK": f.slack.WebhookURL("hook")}
	logger := slog.New(slog.NewJSONHandler(&syncWriter{w: f.log}, nil))
	client := f.ses.Client(t)
	f.parts = &Parts{
		Slack: slack.SlackConfig{Getenv: func(k string) string { return env[k] }, HTTPClient: &http.Client{},
			Pacers: pace.NewPacers(1), Retry: slack.Retry{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond}},
		NewSES: func(context.Context) (SESAPI, error) { return client, nil },
		Seen:   dedup.NewSeen(1000), Storm: storm.New(), Logger: logger, Timeout: 10 * time.Second,
	}
	return f
}

// syncWriter makes a writer safe for concurrent log lines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// bounce is an SES event-publishing bounce with id to addrs, one line.
func bounce(id string, addrs ...string) string {
	var rs, ds []string
	for _, a := range addrs {
		q, _ := json.Marshal(a)
		rs = append(rs, `{"emailAddress":`+string(q)+`,"status":"5.1.1","action":"failed"}`)
		ds = append(ds, string(q))
	}
	return `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[` +
		strings.Join(rs, ",") + `],"timestamp":"2024-05-01T10:00:02.000Z","feedbackId":"fb-` + id + `"},` +
		`"mail":{"timestamp":"2024-05-01T10:00:00.000Z","source":"shop@example.net","messageId":"m-` + id + `","destination":[` +
		strings.Join(ds, ",") + `]}}`
}

// snsBody wraps ses in an SNS message with id.
func snsBody(id, ses string) string {
	b, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": id,
		"TopicArn": "arn:aws:sns:us-east-1:123456789012:ses", "Message": ses})
	return string(b)
}

// items decodes lines of input into items.
func items(t testing.TB, lines ...string) func() (ses.Item, bool) {
	t.Helper()
	var all []ses.Item
	for i, l := range lines {
		all = append(all, ses.Decode(fmt.Sprintf("in:%d", i+1), []byte(l))...)
	}
	return func() (ses.Item, bool) {
		if len(all) == 0 {
			return ses.Item{}, false
		}
		it := all[0]
		all = all[1:]
		return it, true
	}
}

// writeFile writes a file in a temporary folder and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
