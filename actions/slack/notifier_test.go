package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/slack-go/slack"
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
func testMessage(t *testing.T) actions.Message {
	t.Helper()
	nt := &ses.Notification{
		Event:  ses.Event{Type: ses.TypeBounce, Timestamp: "2024-05-02T10:00:05.123Z"},
		Mail:   ses.Mail{Source: "Shop <billing@shop.example.org>", MessageID: "0102018f-0000", Subject: "Invoice <#1042> & more"},
		Bounce: ses.Bounce{Type: "Permanent", SubType: "General"},
	}
	r := ses.NewRecipient("jane@example.com")
	r.Status, r.Action, r.DiagnosticCode = "5.1.1", "failed", "smtp; 550 5.1.1 <jane@example.com> <!channel> unknown"
	nt.Recipients = []ses.Recipient{r}
	msgs := actions.BuildMessages(actions.Notice{
		Notification: nt,
		Recipients:   []actions.NoticeRecipient{{Recipient: &nt.Recipients[0], Rule: "hard-bounce"}},
	})
	if len(msgs) != 1 {
		t.Fatalf("BuildMessages made %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// notifierKind makes one kind of Notifier posting to a Slack fake.
type notifierKind struct {
	name string
	new  func(t *testing.T, fake *actionstest.Slack, r Retry) actions.Notifier
}

// notifierKinds are the bot-token and webhook notifiers, each posting to
// a destination the fake knows.
var notifierKinds = []notifierKind{
	{"bot", func(t *testing.T, fake *actionstest.Slack, r Retry) actions.Notifier {
		t.Helper()
		fake.AddChannel(testChannel)
		return NewSlackBot(Secret(fake.Token()), fake.APIURL(), testChannel, newHTTPClient(t), r, nil)
	}},
	{"webhook", func(t *testing.T, fake *actionstest.Slack, r Retry) actions.Notifier {
		t.Helper()
		return NewSlackWebhook(Secret(fake.WebhookURL("marketing")), "SLACK_WEBHOOK_MARKETING", newHTTPClient(t), r, nil)
	}},
}

// checkPosted fails t unless fake accepted exactly m, once.
func checkPosted(t *testing.T, fake *actionstest.Slack, m actions.Message) {
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

// Hints Slack errors carry, as SlackHint gives them.
const (
	hintChannel  = "invite the app to the channel (/invite @app) and give the channel's ID (C…) in channel:, not its name"
	hintBotToken = "the bot token in SLACK_BOT_TOKEN is not valid: reinstall the app and set SLACK_BOT_TOKEN to its bot token (xoxb-…)"
)

// hintWebhookGone is the hint of a webhook Slack no longer knows, read
// from the variable env.
func hintWebhookGone(env string) string {
	return "the incoming webhook in " + env + " was removed or disabled: create a new one and put its URL in " + env
}

// TestNotifierPost posts through the real clients to the Slack fake,
// which fails on purpose. How long the retries wait is tested on a fake
// clock (TestRetryWaits); here, what is retried and what is not.
func TestNotifierPost(t *testing.T) {
	tests := []struct {
		name     string
		faults   []actionstest.Fault
		wantErr  map[string]string // by notifier kind; nil: posted
		requests int
	}{
		{name: "posted", requests: 1},
		{name: "429 with Retry-After 0 then posted", faults: []actionstest.Fault{actionstest.Fault429After(0)}, requests: 2},
		{name: "500 then posted", faults: []actionstest.Fault{actionstest.Fault500()}, requests: 2},
		{name: "503 twice then posted", faults: []actionstest.Fault{actionstest.Fault503(), actionstest.Fault503()}, requests: 3},
		{name: "dropped connection then posted", faults: []actionstest.Fault{actionstest.FaultDrop()}, requests: 2},
		{name: "slow answer is waited for and posted", faults: []actionstest.Fault{actionstest.FaultSlow(20 * time.Millisecond)}, requests: 1},
		{
			name:   "channel_not_found is an error, not retried",
			faults: []actionstest.Fault{actionstest.FaultChannelNotFound()},
			wantErr: map[string]string{
				"bot":     "channel_not_found (" + hintChannel + ")",
				"webhook": "slack server error: 404 Not Found: channel_not_found (" + hintChannel + ")",
			},
			requests: 1,
		},
		{
			name:   "access denied is an error, not retried",
			faults: []actionstest.Fault{actionstest.FaultAccessDenied()},
			wantErr: map[string]string{
				"bot":     "invalid_auth (" + hintBotToken + ")",
				"webhook": "slack server error: 403 Forbidden: invalid_token (" + hintWebhookGone("SLACK_WEBHOOK_MARKETING") + ")",
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

				outcome, err := n.Post(context.Background(), m)

				if want := tt.wantErr[kind.name]; want != "" {
					if err == nil || err.Error() != want {
						t.Errorf("Post: %v, want %s", err, want)
					}
					if outcome != actions.OutcomeFailed {
						t.Errorf("Post: outcome %s, want failed", outcome)
					}
					if posts := fake.Posts(); len(posts) != 0 {
						t.Errorf("fake accepted %d posts, want none", len(posts))
					}
				} else {
					if err != nil || outcome != actions.OutcomePosted {
						t.Fatalf("Post: %s, %v; want posted", outcome, err)
					}
					checkPosted(t, fake, m)
				}
				if c := fake.Counts(); c.Requests != tt.requests {
					t.Errorf("fake saw %d requests, want %d (%+v)", c.Requests, tt.requests, c)
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
		new     func(t *testing.T, fake *actionstest.Slack) actions.Notifier
		wantErr string
	}{
		{
			name: "bot to a channel that does not exist",
			new: func(t *testing.T, fake *actionstest.Slack) actions.Notifier {
				return NewSlackBot(Secret(fake.Token()), fake.APIURL(), "C0NOSUCHCHAN", newHTTPClient(t), fastRetry, nil)
			},
			wantErr: "channel_not_found (" + hintChannel + ")",
		},
		{
			name: "webhook 404 on an unknown webhook path",
			new: func(t *testing.T, fake *actionstest.Slack) actions.Notifier {
				return NewSlackWebhook(Secret(fake.URL()+"/services/T000/B000/NOSUCHHOOK"), "SLACK_WEBHOOK_GONE", newHTTPClient(t), fastRetry, nil)
			},
			wantErr: "slack server error: 404 Not Found: no_service (" + hintWebhookGone("SLACK_WEBHOOK_GONE") + ")",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t)
			_, err := tt.new(t, fake).Post(context.Background(), testMessage(t))
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Post: %v, want %s", err, tt.wantErr)
			}
			if c := fake.Counts(); c.Requests != 1 || len(fake.Posts()) != 0 {
				t.Errorf("fake saw %d requests and accepted %d posts, want 1 and 0", c.Requests, len(fake.Posts()))
			}
		})
	}
}

// TestNotifierPostHonoursRetryAfter checks, on the wire, that a 429's
// Retry-After: 1 reaches the retry as a wait of a second and pauses the
// destination's pacer for that second, so that every post to it waits.
// The notifier may try once only, so nothing waits for real; that the
// retry then waits exactly that long is TestRetryWaits' part, and that
// the pause holds every poster TestRetry429PausesEveryPoster's, both on
// a fake clock.
func TestNotifierPostHonoursRetryAfter(t *testing.T) {
	once := Retry{Attempts: 1}
	for _, kind := range notifierKinds {
		t.Run(kind.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t, testChannel)
			pacer := pace.NewPacer(time.Millisecond, 1)
			var n actions.Notifier
			if kind.name == "bot" {
				n = NewSlackBot(Secret(fake.Token()), fake.APIURL(), testChannel, newHTTPClient(t), once, pacer)
			} else {
				n = NewSlackWebhook(Secret(fake.WebhookURL("marketing")), "SLACK_WEBHOOK_MARKETING", newHTTPClient(t), once, pacer)
			}
			fake.Script(actionstest.Fault429After(1))

			before := time.Now()
			_, err := n.Post(context.Background(), testMessage(t))

			const want = "slack rate limit exceeded, retry after 1s (gave up after 1 attempt)"
			if err == nil || err.Error() != want {
				t.Fatalf("Post: %v\nwant %s", err, want)
			}
			var rl *slack.RateLimitedError
			if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
				t.Errorf("errors.As(err, *slack.RateLimitedError) = %v, %+v; want Retry-After 1s", errors.As(err, &rl), rl)
			}
			paused := pacer.PausedUntil().Sub(before)
			if paused < time.Second {
				t.Errorf("the pacer is paused until %s after the post began, want a second at least", paused)
			}
			if c := fake.Counts(); c.Requests != 1 || c.Throttled != 1 {
				t.Errorf("fake counts %+v, want 1 request, throttled", c)
			}
		})
	}
}

// TestNotifierPostWithinDeadline checks that a post gives up, saying why,
// when Slack asks for a wait past the context's deadline (without waiting
// for it) or does not answer before it: on a synctest bubble's clock,
// with the fake in memory, so that the request surely reaches the fake
// before the deadline and the give-up comes exactly when it should.
func TestNotifierPostWithinDeadline(t *testing.T) {
	tests := []struct {
		name     string
		fault    actionstest.Fault
		timeout  time.Duration // of the context
		wantErr  map[string]string
		deadline bool          // the error is context.DeadlineExceeded
		took     time.Duration // until Post returns
	}{
		{
			name:    "Retry-After past the deadline",
			fault:   actionstest.Fault429After(5),
			timeout: 3 * time.Second,
			wantErr: map[string]string{
				"bot":     "slack rate limit exceeded, retry after 5s (gave up: retrying in 5s would pass the deadline)",
				"webhook": "slack rate limit exceeded, retry after 5s (gave up: retrying in 5s would pass the deadline)",
			},
			took: 0,
		},
		{
			// The fake would answer in an hour: only the deadline ends
			// the wait.
			name:    "no answer before the deadline",
			fault:   actionstest.FaultSlow(time.Hour),
			timeout: 100 * time.Millisecond,
			wantErr: map[string]string{
				"bot":     `Post "Slack Web API": context deadline exceeded`,
				"webhook": `failed to post webhook: Post "webhook $SLACK_WEBHOOK_MARKETING": context deadline exceeded`,
			},
			deadline: true,
			took:     100 * time.Millisecond,
		},
	}
	kinds := map[string]func(fake *actionstest.Slack) actions.Notifier{
		"bot": func(fake *actionstest.Slack) actions.Notifier {
			fake.AddChannel(testChannel)
			return NewSlackBot(Secret(fake.Token()), fake.APIURL(), testChannel, fake.HTTPClient(), fastRetry, nil)
		},
		"webhook": func(fake *actionstest.Slack) actions.Notifier {
			return NewSlackWebhook(Secret(fake.WebhookURL("marketing")), "SLACK_WEBHOOK_MARKETING", fake.HTTPClient(), fastRetry, nil)
		},
	}
	for _, kind := range []string{"bot", "webhook"} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					fake := actionstest.NewSlackInMemory(t)
					n := kinds[kind](fake)
					fake.Script(tt.fault)
					ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
					defer cancel()
					start := time.Now()

					outcome, err := n.Post(ctx, testMessage(t))

					if err == nil || err.Error() != tt.wantErr[kind] || outcome != actions.OutcomeFailed {
						t.Errorf("Post: %s, %v\nwant failed, %s", outcome, err, tt.wantErr[kind])
					}
					if got := errors.Is(err, context.DeadlineExceeded); got != tt.deadline {
						t.Errorf("errors.Is(err, context.DeadlineExceeded) = %v, want %v", got, tt.deadline)
					}
					if took := time.Since(start); took != tt.took {
						t.Errorf("Post returned after %s, want %s", took, tt.took)
					}
					synctest.Wait() // the fake sees the client go
					if c := fake.Counts(); c.Requests != 1 || len(fake.Posts()) != 0 {
						t.Errorf("fake saw %d requests and accepted %d posts, want 1 and 0", c.Requests, len(fake.Posts()))
					}
				})
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
			if _, err := n.Post(context.Background(), m); err != nil {
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

// Errors a post gets from slack-go, as withRetry sees them.
var (
	errUnavailable     = slack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}
	errChannelNotFound = slack.SlackErrorResponse{Err: "channel_not_found"}
)

func rateLimited(retryAfter time.Duration) error {
	return &slack.RateLimitedError{RetryAfter: retryAfter}
}

// scriptedPost is a post function for withRetry that returns errs[i] on
// its i-th call (nil past the end) and records, on the bubble's clock,
// how long after start each call came.
type scriptedPost struct {
	start time.Time
	errs  []error

	mu    sync.Mutex
	tries []time.Duration
}

func (p *scriptedPost) post(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := len(p.tries)
	p.tries = append(p.tries, time.Since(p.start))
	if i < len(p.errs) {
		return p.errs[i]
	}
	return nil
}

// TestRetryWaits runs withRetry, what both notifiers post through, on a
// synctest bubble's fake clock: each try is made exactly when it is due,
// and a give-up comes exactly when it should, never later.
func TestRetryWaits(t *testing.T) {
	tests := []struct {
		name    string
		retry   Retry
		timeout time.Duration // of the context; 0 for none
		errs    []error       // what each try gets
		tries   []time.Duration
		wantErr string
		done    time.Duration // when withRetry returns
	}{
		{
			name:  "a 429 with Retry-After 0 waits 50 ms, the least it waits",
			retry: fastRetry, errs: []error{rateLimited(0)},
			tries: []time.Duration{0, 50 * time.Millisecond}, done: 50 * time.Millisecond,
		},
		{
			name:  "a 429's Retry-After: 1 is waited out, to the nanosecond",
			retry: DefaultRetry(), errs: []error{rateLimited(time.Second)},
			tries: []time.Duration{0, time.Second}, done: time.Second,
		},
		{
			name:  "429s do not back off: each waits its own Retry-After",
			retry: DefaultRetry(), errs: []error{rateLimited(2 * time.Second), rateLimited(time.Second), rateLimited(time.Second)},
			tries: []time.Duration{0, 2 * time.Second, 3 * time.Second, 4 * time.Second}, done: 4 * time.Second,
		},
		{
			name:  "Retry-After past the deadline gives up at once",
			retry: DefaultRetry(), timeout: 3 * time.Second, errs: []error{rateLimited(5 * time.Second)},
			tries:   []time.Duration{0},
			wantErr: "slack rate limit exceeded, retry after 5s (gave up: retrying in 5s would pass the deadline)",
		},
		{
			name:  "Retry-After within the deadline is waited",
			retry: DefaultRetry(), timeout: 3 * time.Second, errs: []error{rateLimited(2 * time.Second)},
			tries: []time.Duration{0, 2 * time.Second}, done: 2 * time.Second,
		},
		{
			name:  "attempts run out",
			retry: Retry{Attempts: 3, Base: 100 * time.Millisecond, Max: 100 * time.Millisecond},
			errs:  []error{rateLimited(time.Second), rateLimited(time.Second), rateLimited(time.Second)},
			tries: []time.Duration{0, time.Second, 2 * time.Second}, done: 2 * time.Second,
			wantErr: "slack rate limit exceeded, retry after 1s (gave up after 3 attempts)",
		},
		{
			name:  "an error Slack will repeat is not retried",
			retry: DefaultRetry(), errs: []error{errChannelNotFound},
			tries: []time.Duration{0}, wantErr: "channel_not_found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				p := &scriptedPost{start: time.Now(), errs: tt.errs}

				err := withRetry(ctx, tt.retry, nil, p.post)

				if done := time.Since(p.start); done != tt.done {
					t.Errorf("withRetry returned after %s, want %s", done, tt.done)
				}
				if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
					t.Errorf("withRetry: %v, want %q", err, tt.wantErr)
				}
				if !slices.Equal(p.tries, tt.tries) {
					t.Errorf("tries at %v, want %v", p.tries, tt.tries)
				}
			})
		})
	}
}

// TestRetryBacksOff checks the waits after 5xx answers: Base, doubled
// each time up to Max, each with jitter taking it down to half at most.
func TestRetryBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := Retry{Attempts: 5, Base: 200 * time.Millisecond, Max: 500 * time.Millisecond}
		p := &scriptedPost{start: time.Now(), errs: []error{errUnavailable, errUnavailable, errUnavailable, errUnavailable, errUnavailable}}

		err := withRetry(context.Background(), r, nil, p.post)

		if want := "slack server error: 503 Service Unavailable (gave up after 5 attempts)"; fmt.Sprint(err) != want {
			t.Errorf("withRetry: %v, want %s", err, want)
		}
		if len(p.tries) != 5 {
			t.Fatalf("%d tries, want 5", len(p.tries))
		}
		backoff := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}
		for i, b := range backoff {
			if wait := p.tries[i+1] - p.tries[i]; wait < b/2 || wait > b {
				t.Errorf("wait %d is %s, want %s to %s", i+1, wait, b/2, b)
			}
		}
	})
}

// TestRetryGivesUpWhenTheContextEnds cancels the context while a retry
// waits: the wait ends then, and the error says why.
func TestRetryGivesUpWhenTheContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := &scriptedPost{start: time.Now(), errs: []error{rateLimited(10 * time.Second)}}
		time.AfterFunc(2*time.Second, cancel) // on the bubble's clock

		err := withRetry(ctx, DefaultRetry(), nil, p.post)

		if want := "slack rate limit exceeded, retry after 10s (gave up: context canceled)"; fmt.Sprint(err) != want {
			t.Errorf("withRetry: %v, want %s", err, want)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("errors.Is(err, context.Canceled) is false for %v", err)
		}
		if done := time.Since(p.start); done != 2*time.Second {
			t.Errorf("gave up after %s, want 2s, when the context ended", done)
		}
	})
}

// TestSlackErrorsCarryAHint: an error a user can act on (Slack's
// channel_not_found here, as the fake answers it) carries what to do: its
// text ends with the hint, errors.As finds the *HintedError with Slack's
// code, and Slack's own error is still found through it.
func TestSlackErrorsCarryAHint(t *testing.T) {
	for _, kind := range notifierKinds {
		t.Run(kind.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t)
			n := kind.new(t, fake, fastRetry)
			fake.Script(actionstest.FaultChannelNotFound())

			_, err := n.Post(context.Background(), testMessage(t))

			if err == nil || !strings.HasSuffix(err.Error(), " ("+hintChannel+")") {
				t.Fatalf("Post: %v\nwant the hint: %s", err, hintChannel)
			}
			var he *HintedError
			if !errors.As(err, &he) {
				t.Fatalf("errors.As(%T, *HintedError) is false", err)
			}
			if he.Code != "channel_not_found" || he.Hint != hintChannel || he.Hint != SlackHint("channel_not_found", "") {
				t.Errorf("HintedError code %q hint %q", he.Code, he.Hint)
			}
			switch kind.name {
			case "bot":
				var api slack.SlackErrorResponse
				if !errors.As(err, &api) || api.Err != "channel_not_found" {
					t.Errorf("errors.As does not find slack.SlackErrorResponse through %v", err)
				}
			case "webhook":
				var sc slack.StatusCodeError
				if !errors.As(err, &sc) || sc.Code != 404 {
					t.Errorf("errors.As does not find slack.StatusCodeError through %v", err)
				}
			}
		})
	}
	t.Run("no hint for what retrying may cure", func(t *testing.T) {
		fake := actionstest.NewSlack(t)
		n := notifierKinds[1].new(t, fake, Retry{Attempts: 1})
		fake.Script(actionstest.Fault503())
		_, err := n.Post(context.Background(), testMessage(t))
		var he *HintedError
		if err == nil || errors.As(err, &he) {
			t.Errorf("Post: %v, want an error without a hint", err)
		}
	})
}

// TestSlackWebAPIStatusHasNoWebhookHint: an HTTP error status from the
// Web API (a 404 when SLACK_API_URL leads somewhere else) is not a
// webhook's: it gets no hint telling to make a new webhook and put its
// URL in SLACK_BOT_TOKEN.
func TestSlackWebAPIStatusHasNoWebhookHint(t *testing.T) {
	fake := actionstest.NewSlack(t, testChannel)
	n := NewSlackBot(Secret(fake.Token()), fake.URL()+"/elsewhere/", testChannel, newHTTPClient(t), fastRetry, nil)
	_, err := n.Post(context.Background(), testMessage(t))
	if err == nil || err.Error() != "slack server error: 404 Not Found" {
		t.Errorf("Post: %v, want slack server error: 404 Not Found", err)
	}
	var he *HintedError
	if errors.As(err, &he) {
		t.Errorf("a Web API 404 has the hint %q", he.Hint)
	}
}

// TestSlackHints: every error SlackHints lists has a hint that names
// where the credential comes from when it is about the credential.
func TestSlackHints(t *testing.T) {
	hints := SlackHints("$SLACK_WEBHOOK_MARKETING")
	if len(hints) == 0 {
		t.Fatal("no hints")
	}
	for code, hint := range hints {
		if hint == "" {
			t.Errorf("%s has no hint", code)
		}
	}
	for _, code := range []string{"invalid_token", "no_service", "404", "invalid_auth"} {
		if !strings.Contains(hints[code], "$SLACK_WEBHOOK_MARKETING") {
			t.Errorf("%s: %q does not name the variable", code, hints[code])
		}
	}
	if h := SlackHint("ratelimited", "X"); h != "" {
		t.Errorf("a hint for ratelimited: %q", h)
	}
}

// TestSlackAPIURLWithoutSlash: SLACK_API_URL given without its final
// slash works: slack-go appends the method to the URL as it is, so
// without the slash it would call .../apichat.postMessage.
func TestSlackAPIURLWithoutSlash(t *testing.T) {
	fake := actionstest.NewSlack(t, testChannel)
	apiURL := strings.TrimSuffix(fake.APIURL(), "/")
	if strings.HasSuffix(apiURL, "/") {
		t.Fatalf("API URL %s", apiURL)
	}
	direct := NewSlackBot(Secret(fake.Token()), apiURL, testChannel, newHTTPClient(t), fastRetry, nil)
	built, err := Notifiers(mustParseDestinations(t, slackDestination("channel: "+testChannel)), func(string) bool { return true },
		SlackConfig{Token: Secret(fake.Token()), APIURL: apiURL, HTTPClient: newHTTPClient(t), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]actions.Notifier{"NewSlackBot": direct, "Notifiers": built["d"]} {
		if outcome, err := n.Post(context.Background(), testMessage(t)); outcome != actions.OutcomePosted || err != nil {
			t.Errorf("%s: Post to %s: %s, %v", name, apiURL, outcome, err)
		}
	}
	if posts := fake.Posts(); len(posts) != 2 || posts[0].Path != "/api/chat.postMessage" {
		t.Errorf("fake accepted %+v, want two posts to /api/chat.postMessage", posts)
	}
}
