package actionstest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/slack-go/slack"
)

// newSlackClient is the real slack-go client pointed at fake.
func newSlackClient(fake *actionstest.Slack) *slack.Client {
	return slack.New(fake.Token(), slack.OptionAPIURL(fake.APIURL()))
}

func testBlocks() slack.MsgOption {
	return slack.MsgOptionBlocks(
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Bounce · Permanent/General", false, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*to* a&lt;b&gt;@example.com", false, false), nil, nil),
	)
}

func TestSlackPostMessage(t *testing.T) {
	fake := actionstest.NewSlack(t, "C0123456789", "#alerts")
	api := newSlackClient(fake)
	ctx := context.Background()

	channel, ts, err := api.PostMessageContext(ctx, "C0123456789",
		slack.MsgOptionText("Bounce for a<b>@example.com", false), testBlocks())
	if err != nil {
		t.Fatalf("PostMessageContext: %v", err)
	}
	if channel != "C0123456789" || ts != "1700000000.000100" {
		t.Errorf("got channel %q ts %q, want C0123456789 1700000000.000100", channel, ts)
	}
	// A name is accepted and answered with its ID.
	channel, ts, err = api.PostMessageContext(ctx, "alerts", slack.MsgOptionText("second", false))
	if err != nil {
		t.Fatalf("PostMessageContext(alerts): %v", err)
	}
	if id := fake.AddChannel("alerts"); channel != id || ts != "1700000000.000101" {
		t.Errorf("got channel %q ts %q, want %q 1700000000.000101", channel, ts, id)
	}

	posts := fake.Posts()
	if len(posts) != 2 {
		t.Fatalf("got %d posts, want 2", len(posts))
	}
	p := posts[0]
	if p.Kind != actionstest.KindAPI || p.Channel != "C0123456789" || p.Text != "Bounce for a<b>@example.com" || p.Path != "/api/chat.postMessage" {
		t.Errorf("post = %+v", p)
	}
	if p.Time.IsZero() {
		t.Error("post has no time")
	}
	var blocks []map[string]any
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil || len(blocks) != 2 || blocks[0]["type"] != "header" {
		t.Errorf("blocks = %s (%v)", p.Blocks, err)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(p.Body, &body); err != nil {
		t.Fatalf("body %s: %v", p.Body, err)
	}
	if _, ok := body["token"]; ok || strings.Contains(string(p.Body), fake.Token()) {
		t.Errorf("body holds the token: %s", p.Body)
	}
	if string(body["channel"]) != `"C0123456789"` || string(body["blocks"]) != string(p.Blocks) {
		t.Errorf("body = %s", p.Body)
	}
	if c := fake.Counts(); c.Requests != 2 || c.Succeeded != 2 {
		t.Errorf("counts = %+v", c)
	}
}

// slack-go sends the token as a form field; Slack also takes it as a bearer
// token, with a form or a JSON body.
func TestSlackTokenPlaces(t *testing.T) {
	fake := actionstest.NewSlack(t, "C0123456789")
	post := func(t *testing.T, auth, ctype, body string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, fake.APIURL()+"chat.postMessage", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	form := url.Values{"channel": {"C0123456789"}, "text": {"hi"}}.Encode()
	tests := []struct {
		name, auth, ctype, body, wantErr string
	}{
		{"bearer form", "Bearer " + fake.Token(), "application/x-www-form-urlencoded", form, ""},
		{"bearer json", "Bearer " + fake.Token(), "application/json; charset=utf-8", `{"channel":"C0123456789","text":"hi"}`, ""},
		{"form token", "", "application/x-www-form-urlencoded", form + "&token=" + url.QueryEscape(fake.Token()), ""},
		{"wrong bearer", "Bearer xoxb-wrong", "application/x-www-form-urlencoded", form, "invalid_auth"},
		{"no token", "", "application/x-www-form-urlencoded", form, "not_authed"},
		{"no text", "Bearer " + fake.Token(), "application/x-www-form-urlencoded", "channel=C0123456789", "no_text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := post(t, tt.auth, tt.ctype, tt.body)
			if tt.wantErr == "" {
				if out["ok"] != true {
					t.Errorf("got %v, want ok", out)
				}
				return
			}
			if out["ok"] != false || out["error"] != tt.wantErr {
				t.Errorf("got %v, want error %s", out, tt.wantErr)
			}
		})
	}
	if got := len(fake.Posts()); got != 3 {
		t.Errorf("got %d posts, want 3", got)
	}
}

func TestSlackAuthTest(t *testing.T) {
	fake := actionstest.NewSlack(t)
	resp, err := newSlackClient(fake).AuthTestContext(context.Background())
	if err != nil || resp.TeamID != "T000" {
		t.Fatalf("AuthTest = %+v, %v", resp, err)
	}
	_, err = slack.New("xoxb-1-2-wrong", slack.OptionAPIURL(fake.APIURL())).AuthTestContext(context.Background())
	if err == nil || err.Error() != "invalid_auth" {
		t.Fatalf("AuthTest with a wrong token: %v, want invalid_auth", err)
	}
}

func TestSlackAPIErrors(t *testing.T) {
	tests := []struct {
		name    string
		faults  []actionstest.Fault
		channel string
		opts    []slack.MsgOption
		check   func(t *testing.T, err error)
	}{
		{
			name: "unknown channel", channel: "C9999999999",
			check: wantSlackError("channel_not_found"),
		},
		{
			name: "channel_not_found fault", faults: []actionstest.Fault{actionstest.FaultChannelNotFound()},
			check: wantSlackError("channel_not_found"),
		},
		{
			name: "access denied fault", faults: []actionstest.Fault{actionstest.FaultAccessDenied()},
			check: wantSlackError("invalid_auth"),
		},
		{
			name: "429", faults: []actionstest.Fault{actionstest.Fault429()},
			check: wantRateLimited(time.Second),
		},
		{
			name: "429 retry after 0", faults: []actionstest.Fault{actionstest.Fault429After(0)},
			check: wantRateLimited(0),
		},
		{
			name: "429 retry after 3", faults: []actionstest.Fault{actionstest.Fault429After(3)},
			check: wantRateLimited(3 * time.Second),
		},
		{
			name: "500", faults: []actionstest.Fault{actionstest.Fault500()},
			check: wantStatusCode(500),
		},
		{
			name: "503", faults: []actionstest.Fault{actionstest.Fault503()},
			check: wantStatusCode(503),
		},
		{
			name: "too many blocks", opts: []slack.MsgOption{slack.MsgOptionBlocks(dividers(51)...)},
			check: func(t *testing.T, err error) {
				t.Helper()
				wantSlackError("invalid_blocks")(t, err)
				var se slack.SlackErrorResponse
				if errors.As(err, &se) && (len(se.ResponseMetadata.Messages) != 1 ||
					se.ResponseMetadata.Messages[0] != "[ERROR] must be less than 51 items [json-pointer:/blocks]") {
					t.Errorf("messages = %q", se.ResponseMetadata.Messages)
				}
			},
		},
		{
			name: "drop", faults: []actionstest.Fault{actionstest.FaultDrop()},
			check: func(t *testing.T, err error) {
				t.Helper()
				var ue *url.Error
				if !errors.As(err, &ue) {
					t.Errorf("got %T %v, want a *url.Error", err, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t, "C0123456789")
			fake.Script(tt.faults...)
			channel := tt.channel
			if channel == "" {
				channel = "C0123456789"
			}
			opts := append([]slack.MsgOption{slack.MsgOptionText("hello", false)}, tt.opts...)
			_, _, err := newSlackClient(fake).PostMessageContext(context.Background(), channel, opts...)
			if err == nil {
				t.Fatal("PostMessageContext succeeded, want an error")
			}
			tt.check(t, err)
			if n := len(fake.Posts()); n != 0 {
				t.Errorf("%d posts recorded, want 0", n)
			}
			// The fault was used up: the next post goes through.
			if _, _, err := newSlackClient(fake).PostMessageContext(context.Background(), "C0123456789", slack.MsgOptionText("again", false)); err != nil {
				t.Errorf("second post: %v", err)
			}
			c := fake.Counts()
			if c.Requests != 2 || c.Succeeded != 1 || c.Faults != len(tt.faults) || fake.Pending() != 0 {
				t.Errorf("counts = %+v, pending %d", c, fake.Pending())
			}
		})
	}
}

func dividers(n int) []slack.Block {
	bs := make([]slack.Block, n)
	for i := range bs {
		bs[i] = slack.NewDividerBlock()
	}
	return bs
}

func wantSlackError(code string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) || err.Error() != code {
			t.Errorf("got %T %q, want slack.SlackErrorResponse %q", err, err, code)
		}
	}
}

func wantRateLimited(after time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != after {
			t.Errorf("got %T %v, want *slack.RateLimitedError after %v", err, err, after)
		}
	}
}

func wantStatusCode(code int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var sc slack.StatusCodeError
		if !errors.As(err, &sc) || sc.Code != code {
			t.Errorf("got %T %v, want slack.StatusCodeError %d", err, err, code)
		}
	}
}

func TestSlackWebhook(t *testing.T) {
	fake := actionstest.NewSlack(t)
	hook := fake.WebhookURL("marketing")
	other := fake.WebhookURL("ops")
	if hook == other || !strings.HasPrefix(hook, fake.URL()+"/services/T000/B000/") {
		t.Fatalf("webhook URLs %q and %q", hook, other)
	}
	ctx := context.Background()
	blocks := slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "hello", false, false), nil, nil),
	}}
	if err := slack.PostWebhookContext(ctx, hook, &slack.WebhookMessage{Text: "fallback", Blocks: &blocks}); err != nil {
		t.Fatalf("PostWebhookContext: %v", err)
	}
	posts := fake.Posts()
	if len(posts) != 1 {
		t.Fatalf("got %d posts, want 1", len(posts))
	}
	p := posts[0]
	if p.Kind != actionstest.KindWebhook || p.Channel != "marketing" || p.Text != "fallback" ||
		p.Path != strings.TrimPrefix(hook, fake.URL()) ||
		string(p.Blocks) != `[{"type":"section","text":{"type":"mrkdwn","text":"hello"}}]` {
		t.Errorf("post = %+v, blocks %s", p, p.Blocks)
	}
	if !strings.Contains(string(p.Body), `"text":"fallback"`) {
		t.Errorf("body = %s", p.Body)
	}

	t.Run("unknown path", func(t *testing.T) {
		bad := strings.TrimSuffix(hook, hook[len(hook)-4:]) + "XXXX"
		err := slack.PostWebhookContext(ctx, bad, &slack.WebhookMessage{Text: "x"})
		wantStatusCode(404)(t, err)
		resp, err := http.Post(bad, "application/json", strings.NewReader(`{"text":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 404 || string(b) != "no_service" {
			t.Errorf("got %d %q, want 404 no_service", resp.StatusCode, b)
		}
	})
	t.Run("faults", func(t *testing.T) {
		fake.Script(actionstest.Fault429(), actionstest.Fault500(), actionstest.FaultChannelNotFound(), actionstest.FaultAccessDenied())
		msg := &slack.WebhookMessage{Text: "x"}
		wantRateLimited(time.Second)(t, slack.PostWebhookContext(ctx, hook, msg))
		wantStatusCode(500)(t, slack.PostWebhookContext(ctx, hook, msg))
		wantStatusCode(404)(t, slack.PostWebhookContext(ctx, hook, msg))
		wantStatusCode(403)(t, slack.PostWebhookContext(ctx, hook, msg))
	})
	t.Run("invalid blocks", func(t *testing.T) {
		bs := slack.Blocks{BlockSet: dividers(51)}
		wantStatusCode(400)(t, slack.PostWebhookContext(ctx, hook, &slack.WebhookMessage{Blocks: &bs}))
	})
	t.Run("a dropped connection's error holds the URL", func(t *testing.T) {
		// What actions must strip, as no error may show a secret: net/http's
		// *url.Error carries the webhook URL, secret included.
		fake.Script(actionstest.FaultDrop())
		err := slack.PostWebhookContext(ctx, hook, &slack.WebhookMessage{Text: "x"})
		var ue *url.Error
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), hook) {
			t.Errorf("got %v, want a *url.Error naming the webhook URL", err)
		}
	})
	if n := len(fake.Posts()); n != 1 {
		t.Errorf("got %d posts, want 1", n)
	}
}

// TestSlackSlow checks FaultSlow on a synctest bubble's clock, with the
// fake in memory: a slow answer comes exactly when it is due, and a
// client that gives up first is counted as gone.
func TestSlackSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := actionstest.NewSlackInMemory(t, "C0123456789")
		api := slack.New(fake.Token(), slack.OptionAPIURL(fake.APIURL()), slack.OptionHTTPClient(fake.HTTPClient()))

		fake.Script(actionstest.FaultSlow(20 * time.Millisecond))
		start := time.Now()
		if _, _, err := api.PostMessageContext(context.Background(), "C0123456789", slack.MsgOptionText("x", false)); err != nil {
			t.Fatalf("slow post: %v", err)
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Errorf("slow post took %v, want 20ms", d)
		}

		fake.Script(actionstest.FaultSlow(time.Hour))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, _, err := api.PostMessageContext(ctx, "C0123456789", slack.MsgOptionText("x", false))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("got %v after %v, want context.DeadlineExceeded after 50ms", err, time.Since(start))
		}
		synctest.Wait() // the fake sees the client go
		if c := fake.Counts(); c.Requests != 2 || c.Succeeded != 1 || c.Abandoned != 1 || len(fake.Posts()) != 1 {
			t.Errorf("counts = %+v, %d posts", c, len(fake.Posts()))
		}
	})
}

// outcomes posts n messages one after another and returns each outcome.
func outcomes(t *testing.T, fake *actionstest.Slack, n int) []string {
	t.Helper()
	api := newSlackClient(fake)
	var got []string
	for i := range n {
		_, _, err := api.PostMessageContext(context.Background(), "C0123456789", slack.MsgOptionText(fmt.Sprint(i), false))
		var rl *slack.RateLimitedError
		var sc slack.StatusCodeError
		switch {
		case err == nil:
			got = append(got, "ok")
		case errors.As(err, &rl):
			got = append(got, "429")
		case errors.As(err, &sc):
			got = append(got, fmt.Sprint(sc.Code))
		default:
			t.Fatalf("post %d: %v", i, err)
		}
	}
	return got
}

func TestSlackFailRandomly(t *testing.T) {
	const n = 300
	a := actionstest.NewSlack(t, "C0123456789")
	b := actionstest.NewSlack(t, "C0123456789")
	a.FailRandomly(0.3, 42)
	b.FailRandomly(0.3, 42)
	// A script goes first.
	a.Script(actionstest.Fault500())
	b.Script(actionstest.Fault500())
	got, again := outcomes(t, a, n), outcomes(t, b, n)
	if strings.Join(got, ",") != strings.Join(again, ",") {
		t.Errorf("same seed, different outcomes:\n%v\n%v", got, again)
	}
	if got[0] != "500" {
		t.Errorf("first outcome %s, want the scripted 500", got[0])
	}
	c := a.Counts()
	failed := c.Throttled + c.ServerErrors
	if failed < n*2/10 || failed > n*4/10 {
		t.Errorf("%d of %d failed at p=0.3: %+v", failed, n, c)
	}
	if c.Succeeded+failed != n || c.Succeeded != len(a.Posts()) || c.Faults != failed {
		t.Errorf("counts = %+v, %d posts", c, len(a.Posts()))
	}

	a.FailRandomly(0, 0)
	if got := outcomes(t, a, 10); strings.Count(strings.Join(got, ","), "ok") != 10 {
		t.Errorf("with p=0: %v", got)
	}
}

func TestSlackConcurrent(t *testing.T) {
	fake := actionstest.NewSlack(t, "C0123456789")
	hook := fake.WebhookURL("hook")
	fake.FailRandomly(0.2, 7, actionstest.Fault429After(0), actionstest.Fault503(), actionstest.FaultDrop())
	api := newSlackClient(fake)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 100 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, _, err = api.PostMessageContext(context.Background(), "C0123456789", slack.MsgOptionText(fmt.Sprint(i), false))
			} else {
				err = slack.PostWebhookContext(context.Background(), hook, &slack.WebhookMessage{Text: fmt.Sprint(i)})
			}
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	c := fake.Counts()
	if c.Requests != 100 || c.Succeeded != ok || len(fake.Posts()) != ok ||
		c.Succeeded+c.Throttled+c.ServerErrors+c.Dropped != 100 {
		t.Errorf("counts = %+v, %d ok, %d posts", c, ok, len(fake.Posts()))
	}
}

func TestSlackSetenv(t *testing.T) {
	fake := actionstest.NewSlack(t)
	fake.Setenv(t)
	if v := os.Getenv("SLACK_BOT_TOKEN"); v != fake.Token() {
		t.Errorf("SLACK_BOT_TOKEN = %q", v)
	}
	if v := os.Getenv("SLACK_API_URL"); v != fake.APIURL() || !strings.HasSuffix(v, "/api/") || !strings.HasPrefix(v, "http://127.0.0.1:") {
		t.Errorf("SLACK_API_URL = %q", v)
	}
}

// TestSlackLimitPerSecond checks the limit on a synctest bubble's clock,
// with the fake in memory: n messages per channel or webhook within a
// second, a 429 with Retry-After: 1 beyond, until a second has passed
// since the oldest of them.
func TestSlackLimitPerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := actionstest.NewSlackInMemory(t)
		s.LimitPerSecond(2)
		a, b := s.WebhookURL("a"), s.WebhookURL("b")
		if !strings.HasPrefix(a, "http://slack.invalid/services/") {
			t.Errorf("webhook URL %q, want it on slack.invalid", a)
		}
		post := func(url string) *http.Response {
			t.Helper()
			resp, err := s.HTTPClient().Post(url, "application/json", strings.NewReader(`{"text":"hi"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		for _, url := range []string{a, a, b} {
			if resp := post(url); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d within the limit", resp.StatusCode)
			}
		}
		time.Sleep(999 * time.Millisecond)
		resp := post(a)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("third post to a within a second: status %d, Retry-After %q; want 429, 1", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		time.Sleep(time.Millisecond)
		if resp := post(a); resp.StatusCode != http.StatusOK {
			t.Errorf("a post to a a second after its first two: status %d, want 200", resp.StatusCode)
		}
		if c := s.Counts(); c.RateLimited != 1 || c.Throttled != 1 || c.Succeeded != 4 {
			t.Errorf("counts %+v", c)
		}
	})
}
