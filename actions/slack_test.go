package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine"
)

// testChannel is the channel the bot-token tests post to.
const testChannel = "C0123456789"

// fastRetry keeps the retry tests fast: 4 attempts, 5 ms of backoff
// doubling up to 20 ms.
var fastRetry = Retry{Attempts: 4, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// newHTTPClient is an HTTP client of the test's own, whose idle
// connections are closed when the test ends.
func newHTTPClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// testMessage is the message of a one-recipient bounce whose text needs
// escaping (<, >, &), as BuildMessages makes it.
func testMessage(t *testing.T) Message {
	t.Helper()
	nt := &engine.Notification{
		Event:  engine.Event{Type: engine.TypeBounce, Timestamp: "2024-05-02T10:00:05.123Z"},
		Mail:   engine.Mail{Source: "Shop <billing@shop.example.org>", MessageID: "0102018f-0000", Subject: "Invoice <#1042> & more"},
		Bounce: engine.Bounce{Type: "Permanent", SubType: "General"},
	}
	r := engine.NewRecipient("jane@example.com")
	r.Status, r.Action, r.DiagnosticCode = "5.1.1", "failed", "smtp; 550 5.1.1 <jane@example.com> <!channel> unknown"
	nt.Recipients = []engine.Recipient{r}
	msgs := BuildMessages(Notice{
		Notification: nt,
		Recipients:   []NoticeRecipient{{Recipient: &nt.Recipients[0], Rule: "hard-bounce"}},
	})
	if len(msgs) != 1 {
		t.Fatalf("BuildMessages made %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// notifierKind makes one kind of Notifier posting to a Slack fake.
type notifierKind struct {
	name string
	new  func(t *testing.T, fake *actionstest.Slack, r Retry) Notifier
}

// notifierKinds are the bot-token and webhook notifiers, each posting to
// a destination the fake knows.
var notifierKinds = []notifierKind{
	{"bot", func(t *testing.T, fake *actionstest.Slack, r Retry) Notifier {
		t.Helper()
		fake.AddChannel(testChannel)
		return NewSlackBot(Secret(fake.Token()), fake.APIURL(), testChannel, newHTTPClient(t), r)
	}},
	{"webhook", func(t *testing.T, fake *actionstest.Slack, r Retry) Notifier {
		t.Helper()
		return NewSlackWebhook(Secret(fake.WebhookURL("marketing")), "SLACK_WEBHOOK_MARKETING", newHTTPClient(t), r)
	}},
}

// checkPosted fails t unless fake accepted exactly m, once.
func checkPosted(t *testing.T, fake *actionstest.Slack, m Message) {
	t.Helper()
	posts := fake.Posts()
	if len(posts) != 1 {
		t.Fatalf("fake accepted %d posts, want 1", len(posts))
	}
	if posts[0].Text != m.Text {
		t.Errorf("posted text %q, want %q", posts[0].Text, m.Text)
	}
	want, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, posts[0].Blocks, want) {
		t.Errorf("posted blocks\n%s\nwant\n%s", posts[0].Blocks, want)
	}
}

// jsonEqual reports whether two JSON documents hold the same value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

func TestNotifierPost(t *testing.T) {
	tests := []struct {
		name     string
		faults   []actionstest.Fault
		wantErr  map[string]string // by notifier kind; nil: posted
		requests int
		minTime  time.Duration
	}{
		{name: "posted", requests: 1},
		{
			name:     "429 with Retry-After 0 then posted",
			faults:   []actionstest.Fault{actionstest.Fault429After(0)},
			requests: 2,
			minTime:  50 * time.Millisecond, // the least withRetry waits after a 429
		},
		{name: "500 then posted", faults: []actionstest.Fault{actionstest.Fault500()}, requests: 2},
		{name: "503 twice then posted", faults: []actionstest.Fault{actionstest.Fault503(), actionstest.Fault503()}, requests: 3},
		{name: "dropped connection then posted", faults: []actionstest.Fault{actionstest.FaultDrop()}, requests: 2},
		{name: "slow answer is waited for and posted", faults: []actionstest.Fault{actionstest.FaultSlow(20 * time.Millisecond)}, requests: 1},
		{
			name:   "channel_not_found is an error, not retried",
			faults: []actionstest.Fault{actionstest.FaultChannelNotFound()},
			wantErr: map[string]string{
				"bot":     "channel_not_found",
				"webhook": "slack server error: 404 Not Found: channel_not_found",
			},
			requests: 1,
		},
		{
			name:   "access denied is an error, not retried",
			faults: []actionstest.Fault{actionstest.FaultAccessDenied()},
			wantErr: map[string]string{
				"bot":     "invalid_auth",
				"webhook": "slack server error: 403 Forbidden: invalid_token",
			},
			requests: 1,
		},
		{
			name:   "5xx until the attempts are exhausted gives up after 4 attempts",
			faults: []actionstest.Fault{actionstest.Fault500(), actionstest.Fault503(), actionstest.Fault500(), actionstest.Fault503()},
			wantErr: map[string]string{
				"bot":     "slack server error: 503 Service Unavailable (gave up after 4 attempts)",
				"webhook": "slack server error: 503 Service Unavailable (gave up after 4 attempts)",
			},
			requests: 4,
		},
		{
			name:   "429 until the attempts are exhausted gives up after 4 attempts",
			faults: []actionstest.Fault{actionstest.Fault429After(0), actionstest.Fault429After(0), actionstest.Fault429After(0), actionstest.Fault429After(0)},
			wantErr: map[string]string{
				"bot":     "slack rate limit exceeded, retry after 0s (gave up after 4 attempts)",
				"webhook": "slack rate limit exceeded, retry after 0s (gave up after 4 attempts)",
			},
			requests: 4,
		},
	}
	for _, kind := range notifierKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				fake := actionstest.NewSlack(t)
				n := kind.new(t, fake, fastRetry)
				fake.Script(tt.faults...)
				m := testMessage(t)

				start := time.Now()
				err := n.Post(context.Background(), m)
				took := time.Since(start)

				if want := tt.wantErr[kind.name]; want != "" {
					if err == nil || err.Error() != want {
						t.Errorf("Post: %v, want %s", err, want)
					}
					if posts := fake.Posts(); len(posts) != 0 {
						t.Errorf("fake accepted %d posts, want none", len(posts))
					}
				} else {
					if err != nil {
						t.Fatalf("Post: %v", err)
					}
					checkPosted(t, fake, m)
				}
				if c := fake.Counts(); c.Requests != tt.requests {
					t.Errorf("fake saw %d requests, want %d (%+v)", c.Requests, tt.requests, c)
				}
				if took < tt.minTime {
					t.Errorf("Post took %s, want at least %s", took, tt.minTime)
				}
				if p := fake.Pending(); p != 0 {
					t.Errorf("%d scripted faults not served", p)
				}
			})
		}
	}
}

// TestNotifierPostUnknownDestination checks that a destination Slack does
// not know is an error at once, not retried.
func TestNotifierPostUnknownDestination(t *testing.T) {
	tests := []struct {
		name    string
		new     func(t *testing.T, fake *actionstest.Slack) Notifier
		wantErr string
	}{
		{
			name: "bot to a channel that does not exist",
			new: func(t *testing.T, fake *actionstest.Slack) Notifier {
				return NewSlackBot(Secret(fake.Token()), fake.APIURL(), "C0NOSUCHCHAN", newHTTPClient(t), fastRetry)
			},
			wantErr: "channel_not_found",
		},
		{
			name: "webhook 404 on an unknown webhook path",
			new: func(t *testing.T, fake *actionstest.Slack) Notifier {
				return NewSlackWebhook(Secret(fake.URL()+"/services/T000/B000/NOSUCHHOOK"), "SLACK_WEBHOOK_GONE", newHTTPClient(t), fastRetry)
			},
			wantErr: "slack server error: 404 Not Found: no_service",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t)
			err := tt.new(t, fake).Post(context.Background(), testMessage(t))
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Post: %v, want %s", err, tt.wantErr)
			}
			if c := fake.Counts(); c.Requests != 1 || len(fake.Posts()) != 0 {
				t.Errorf("fake saw %d requests and accepted %d posts, want 1 and 0", c.Requests, len(fake.Posts()))
			}
		})
	}
}

// TestNotifierPostHonoursRetryAfter is the one slow test: a 429 with
// Retry-After: 1 is retried no sooner than a second later.
func TestNotifierPostHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	fake := actionstest.NewSlack(t)
	n := notifierKinds[0].new(t, fake, fastRetry)
	fake.Script(actionstest.Fault429After(1))
	m := testMessage(t)

	start := time.Now()
	if err := n.Post(context.Background(), m); err != nil {
		t.Fatalf("Post: %v", err)
	}
	took := time.Since(start)

	checkPosted(t, fake, m)
	if c := fake.Counts(); c.Requests != 2 || c.Throttled != 1 {
		t.Errorf("fake counts %+v, want 2 requests, 1 throttled", c)
	}
	if took < time.Second {
		t.Errorf("Post took %s: the Retry-After of 1s was not honoured", took)
	}
	if posts := fake.Posts(); len(posts) == 1 && posts[0].Time.Sub(start) < time.Second {
		t.Errorf("posted %s after the start, before the Retry-After of 1s", posts[0].Time.Sub(start))
	}
}

// TestNotifierPostWithinDeadline checks that a post gives up promptly,
// saying why, when Slack asks for a wait past the context's deadline or
// does not answer before it.
func TestNotifierPostWithinDeadline(t *testing.T) {
	tests := []struct {
		name     string
		fault    actionstest.Fault
		timeout  time.Duration // of the context
		wantErr  map[string]string
		deadline bool          // the error is context.DeadlineExceeded
		maxTime  time.Duration // Post gives up within this
	}{
		{
			name:    "Retry-After past the deadline",
			fault:   actionstest.Fault429After(5),
			timeout: 3 * time.Second,
			wantErr: map[string]string{
				"bot":     "slack rate limit exceeded, retry after 5s (gave up: retrying in 5s would pass the deadline)",
				"webhook": "slack rate limit exceeded, retry after 5s (gave up: retrying in 5s would pass the deadline)",
			},
			maxTime: time.Second, // at once: it waits neither the 5 s nor the 3 s to the deadline
		},
		{
			name:    "no answer before the deadline",
			fault:   actionstest.FaultSlow(5 * time.Second),
			timeout: 300 * time.Millisecond,
			wantErr: map[string]string{
				"bot":     `Post "Slack Web API": context deadline exceeded`,
				"webhook": `failed to post webhook: Post "webhook $SLACK_WEBHOOK_MARKETING": context deadline exceeded`,
			},
			deadline: true,
			maxTime:  1300 * time.Millisecond, // the deadline, and some slack
		},
	}
	for _, kind := range notifierKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				fake := actionstest.NewSlack(t)
				n := kind.new(t, fake, fastRetry)
				fake.Script(tt.fault)
				ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
				defer cancel()

				start := time.Now()
				err := n.Post(ctx, testMessage(t))
				took := time.Since(start)

				if err == nil || err.Error() != tt.wantErr[kind.name] {
					t.Errorf("Post: %v\nwant %s", err, tt.wantErr[kind.name])
				}
				if got := errors.Is(err, context.DeadlineExceeded); got != tt.deadline {
					t.Errorf("errors.Is(err, context.DeadlineExceeded) = %v, want %v", got, tt.deadline)
				}
				if took > tt.maxTime {
					t.Errorf("Post took %s, want it to give up within %s (deadline in %s)", took, tt.maxTime, tt.timeout)
				}
				if c := fake.Counts(); c.Requests != 1 || len(fake.Posts()) != 0 {
					t.Errorf("fake saw %d requests and accepted %d posts, want 1 and 0", c.Requests, len(fake.Posts()))
				}
			})
		}
	}
}

// TestNotifierPayloadIsWhatIsSent checks that Payload, the dry run's
// payload, is valid JSON and the message the fake receives.
func TestNotifierPayloadIsWhatIsSent(t *testing.T) {
	for _, kind := range notifierKinds {
		t.Run(kind.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t)
			n := kind.new(t, fake, fastRetry)
			m := testMessage(t)
			payload := n.Payload(m)
			if !json.Valid(payload) {
				t.Fatalf("Payload is not JSON: %s", payload)
			}
			if err := n.Post(context.Background(), m); err != nil {
				t.Fatalf("Post: %v", err)
			}
			posts := fake.Posts()
			if len(posts) != 1 {
				t.Fatalf("fake accepted %d posts, want 1", len(posts))
			}
			got := posts[0]
			var want map[string]json.RawMessage
			if err := json.Unmarshal(payload, &want); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got.Blocks, want["blocks"]) {
				t.Errorf("fake received blocks\n%s\nPayload has\n%s", got.Blocks, want["blocks"])
			}
			switch kind.name {
			case "webhook":
				// The body as sent, whole.
				if !jsonEqual(t, got.Body, payload) {
					t.Errorf("fake received\n%s\nPayload is\n%s", got.Body, payload)
				}
			case "bot":
				// chat.postMessage goes as a form: every parameter is a
				// string, blocks aside. Payload must name the same
				// parameters with the same values.
				var body map[string]json.RawMessage
				if err := json.Unmarshal(got.Body, &body); err != nil {
					t.Fatal(err)
				}
				if len(body) != len(want) {
					t.Errorf("fake received parameters %s, Payload has %s", got.Body, payload)
				}
				for k, w := range want {
					b, ok := body[k]
					switch {
					case !ok:
						t.Errorf("fake received no %s; Payload has %s", k, w)
					case k == "blocks":
					case !jsonEqual(t, b, w) && string(b) != fmt.Sprintf("%q", w):
						t.Errorf("fake received %s = %s; Payload has %s", k, b, w)
					}
				}
			}
		})
	}
}
