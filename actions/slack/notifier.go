package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/internal/words"
	"github.com/slack-go/slack"
)

// Retry says how a failed post is tried again: a 429 waits its
// Retry-After; a 5xx or a connection error waits Base, doubled each time
// up to Max; at most Attempts tries; never past the context's deadline.
type Retry struct {
	Attempts  int
	Base, Max time.Duration
}

// DefaultRetry is the retry of a destination that sets none.
func DefaultRetry() Retry {
	return Retry{Attempts: 6, Base: 250 * time.Millisecond, Max: 8 * time.Second}
}

// SlackBot posts with chat.postMessage and a bot token.
type SlackBot struct {
	token   credential
	opts    []slack.Option
	channel string
	retry   Retry
	pacer   *pace.Pacer
}

var _ actions.Notifier = (*SlackBot)(nil)

// NewSlackBot returns a Notifier for channel. apiURL is Slack's Web API
// base URL ("" for Slack's own; a missing final slash is added), and
// httpClient is shared by every destination so that connections are
// reused. Every post (every try of it) waits its turn on pacer, which the
// posts of every notifier to the same channel share, and a 429 pauses
// it; a nil pacer posts at once.
func NewSlackBot(token Secret, apiURL, channel string, httpClient *http.Client, retry Retry, pacer *pace.Pacer) *SlackBot {
	opts := []slack.Option{slack.OptionHTTPClient(httpClient)}
	if apiURL != "" {
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return &SlackBot{token: credential{fixed: token}, opts: opts, channel: channel, retry: retry, pacer: pacer}
}

var _ actions.Threader = (*SlackBot)(nil)

// Post implements Notifier.
func (b *SlackBot) Post(ctx context.Context, m actions.Message) (actions.Outcome, error) {
	if _, err := b.PostTS(ctx, m); err != nil {
		return actions.OutcomeFailed, err
	}
	return actions.OutcomePosted, nil
}

// PostTS implements actions.Threader: it posts m and returns its ts.
// When Slack refuses a token from a Vault as not valid, the vault is read
// again and the post tried once more with the new token.
func (b *SlackBot) PostTS(ctx context.Context, m actions.Message) (string, error) {
	var ts string
	err := b.withToken(ctx, func(client *slack.Client) error {
		_, t, err := client.PostMessageContext(ctx, b.channel, m.MsgOptions()...)
		ts = t
		return err
	})
	return ts, err
}

// Update implements actions.Threader: chat.update, paced and retried as
// a post is.
func (b *SlackBot) Update(ctx context.Context, ts string, m actions.Message) error {
	return b.withToken(ctx, func(client *slack.Client) error {
		opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
		_, _, _, err := client.UpdateMessageContext(ctx, b.channel, ts, opts...)
		return err
	})
}

// withToken runs call with a client of the current token, retried as
// b.retry says; when Slack refuses a token from a Vault, once more with
// the vault's new token.
func (b *SlackBot) withToken(ctx context.Context, call func(*slack.Client) error) error {
	try := func(token Secret) error {
		client := slack.New(token.Reveal(), b.opts...)
		return withRetry(ctx, b.retry, b.pacer, func(ctx context.Context) error {
			if err := call(client); err != nil {
				return hinted(redact(err, "Slack Web API", token), "SLACK_BOT_TOKEN", false)
			}
			return nil
		})
	}
	token := b.token.get()
	err := try(token)
	if fresh, rerr := b.token.renewed(ctx, token, err); rerr == nil && fresh != "" {
		err = try(fresh)
	} else {
		err = rerr
	}
	return err
}

// Payload implements Notifier.
func (b *SlackBot) Payload(m actions.Message) []byte { return actions.PostMessagePayload(b.channel, m) }

// SlackWebhook posts to an incoming webhook.
type SlackWebhook struct {
	url     credential
	envName string
	http    *http.Client
	retry   Retry
	pacer   *pace.Pacer
}

var _ actions.Notifier = (*SlackWebhook)(nil)

// NewSlackWebhook returns a Notifier for the incoming webhook at url,
// which was read from the environment variable envName (the name is what
// errors show, never the URL). pacer is as for NewSlackBot.
func NewSlackWebhook(url Secret, envName string, httpClient *http.Client, retry Retry, pacer *pace.Pacer) *SlackWebhook {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	hc := *httpClient
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = reasonTransport{base}
	return &SlackWebhook{url: credential{fixed: url}, envName: envName, http: &hc, retry: retry, pacer: pacer}
}

// reasonTransport keeps the reason Slack gives when a webhook post fails.
// Slack answers a failed webhook post with a status and a one-word body
// (no_service, invalid_token, channel_not_found, …); slack-go reports only
// the status, so the word is added to it: "404 Not Found: no_service".
type reasonTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t reasonTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 || resp.StatusCode >= 500 {
		return resp, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	resp.Body.Close()
	if reason := strings.TrimSpace(string(body)); slackReasonRE(reason) {
		resp.Status += ": " + reason
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// slackReasonRE reports whether s looks like one of Slack's error words.
func slackReasonRE(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Post implements Notifier. When Slack refuses a webhook URL from a
// Vault as removed or disabled, the vault is read again and the post
// tried once more at the new URL.
func (w *SlackWebhook) Post(ctx context.Context, m actions.Message) (actions.Outcome, error) {
	url := w.url.get()
	err := w.post(ctx, url, m)
	if fresh, rerr := w.url.renewed(ctx, url, err); rerr == nil && fresh != "" {
		err = w.post(ctx, fresh, m)
	} else {
		err = rerr
	}
	if err != nil {
		return actions.OutcomeFailed, err
	}
	return actions.OutcomePosted, nil
}

// post posts m to url, retried as w.retry says.
func (w *SlackWebhook) post(ctx context.Context, url Secret, m actions.Message) error {
	return withRetry(ctx, w.retry, w.pacer, func(ctx context.Context) error {
		err := slack.PostWebhookCustomHTTPContext(ctx, url.Reveal(), w.http, actions.WebhookPayload(m))
		if err != nil {
			return hinted(redact(err, "webhook $"+w.envName, url), w.envName, true)
		}
		return nil
	})
}

// Payload implements Notifier.
func (w *SlackWebhook) Payload(m actions.Message) []byte {
	return actions.WebhookJSON(m)
}

// withRetry calls post until it succeeds, fails for good, runs out of
// attempts, or the next try would start after ctx's deadline. Each try
// waits its turn on pacer (nil: none); a 429 pauses pacer for its
// Retry-After, so that every post to the destination waits it out.
func withRetry(ctx context.Context, r Retry, pacer *pace.Pacer, post func(context.Context) error) error {
	backoff := r.Base
	for attempt := 1; ; attempt++ {
		if err := pacer.Wait(ctx); err != nil {
			return err
		}
		err := post(ctx)
		if err == nil {
			return nil
		}
		wait, retryable := retryAfter(err, backoff)
		if !retryable {
			return err
		}
		if isRateLimit(err) {
			pacer.Pause(wait)
		}
		if attempt >= r.Attempts {
			return fmt.Errorf("%w (gave up after %s)", err, words.Plural(attempt, "attempt", "attempts"))
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			return fmt.Errorf("%w (gave up: retrying in %s would pass the deadline)", err, wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		if !isRateLimit(err) {
			backoff = min(2*backoff, r.Max)
		}
	}
}

// retryAfter says whether err is worth another try, and after how long: a
// 429 after its Retry-After, a 5xx or a connection error after backoff
// (with a little jitter, so that concurrent posts spread out).
func retryAfter(err error, backoff time.Duration) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, 50*time.Millisecond), true
	}
	jittered := backoff/2 + rand.N(backoff/2+1)
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return jittered, sc.Code >= 500 || sc.Code == http.StatusTooManyRequests
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	// A connection error: redact has already taken the *url.Error off,
	// leaving its cause.
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return jittered, true
	}
	return 0, false
}

func isRateLimit(err error) bool {
	var rl *slack.RateLimitedError
	return errors.As(err, &rl)
}

// String implements fmt.Stringer: a webhook notifier prints as the
// variable its URL came from. Without it, fmt (and slog's text handler)
// would print the unexported url field as it is, bypassing Secret's
// methods, and so the URL.
func (w *SlackWebhook) String() string { return "Slack webhook $" + w.envName }

// GoString implements fmt.GoStringer, for %#v, for the same reason.
func (w *SlackWebhook) GoString() string { return w.String() }

// String implements fmt.Stringer: a bot-token notifier prints as its
// channel. Without it, fmt's verbs that do not suit a pointer (%s, %q)
// would print its fields, the token's vault and all.
func (b *SlackBot) String() string { return "Slack channel " + b.channel }

// GoString implements fmt.GoStringer, for %#v, for the same reason.
func (b *SlackBot) GoString() string { return b.String() }
