package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
)

// printed is every way a program might print v: fmt's verbs, slog's JSON
// and text handlers, and, for an error, the text of every error it wraps.
func printed(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q"} {
		out["fmt "+verb] = fmt.Sprintf(verb, v)
	}
	var js, txt bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Error("post failed", "err", v, slog.Any("value", v))
	slog.New(slog.NewTextHandler(&txt, nil)).Error("post failed", "err", v, slog.Any("value", v))
	out["slog JSON"], out["slog text"] = js.String(), txt.String()
	if err, ok := v.(error); ok {
		out["Error()"] = err.Error()
		for i, e := 0, errors.Unwrap(err); e != nil; i, e = i+1, errors.Unwrap(e) {
			out[fmt.Sprintf("wrapped %d Error()", i)] = e.Error()
			out[fmt.Sprintf("wrapped %d %%#v", i)] = fmt.Sprintf("%#v", e)
		}
	}
	return out
}

// checkHidden fails t for every text of printed that holds secret or any
// run of 8 of its characters.
func checkHidden(t *testing.T, printed map[string]string, secret string) {
	t.Helper()
	const window = 8
	for how, text := range printed {
		for i := 0; i+window <= len(secret); i++ {
			if part := secret[i : i+window]; strings.Contains(text, part) {
				t.Errorf("%s shows %q of the secret %q:\n%s", how, part, secret, text)
				break
			}
		}
	}
}

func TestSecretPrintsRedacted(t *testing.T) {
	const value = "xoxb-1234-5678-TOPSECRETVALUE"
	s := Secret(value)
	type config struct {
		Name  string
		Token Secret
	}
	c := config{Name: "ses-alerts", Token: s}

	for name, v := range map[string]any{"Secret": s, "struct holding it": c, "pointer to the struct": &c} {
		t.Run(name, func(t *testing.T) {
			out := printed(t, v)
			checkHidden(t, out, value)
			for how, text := range out {
				if !strings.Contains(text, "<secret>") {
					t.Errorf("%s does not say <secret>: %s", how, text)
				}
			}
		})
	}
	t.Run("json.Marshal", func(t *testing.T) {
		for _, tc := range []struct {
			v    any
			want string
		}{
			{s, `"\u003csecret\u003e"`},
			{c, `{"Name":"ses-alerts","Token":"\u003csecret\u003e"}`},
		} {
			b, err := json.Marshal(tc.v)
			if err != nil || string(b) != tc.want {
				t.Errorf("json.Marshal(%T) = %s, %v; want %s", tc.v, b, err, tc.want)
			}
		}
	})
	t.Run("Reveal", func(t *testing.T) {
		if got := s.Reveal(); got != value {
			t.Errorf("Reveal() = %q, want the secret", got)
		}
	})
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// secretPath is the part of a webhook URL that is the credential: the
// path from /services/ on. (Not url.Parse: some test URLs do not parse.)
func secretPath(t *testing.T, rawURL string) string {
	t.Helper()
	i := strings.Index(rawURL, "/services/")
	if i < 0 {
		t.Fatalf("no /services/ in the webhook URL %q", rawURL)
	}
	return rawURL[i:]
}

// TestWebhookErrorsHideTheURL makes webhook calls fail in every way that
// puts the URL in Go's errors, and checks that no printing of the error
// Post returns shows any part of the URL's secret path.
func TestWebhookErrorsHideTheURL(t *testing.T) {
	const env = "SLACK_WEBHOOK_MARKETING"
	retry := Retry{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond}
	tests := []struct {
		name    string
		setup   func(t *testing.T, fake *actionstest.Slack) (hookURL string, ctx context.Context)
		wantErr string
	}{
		{
			name: "connection dropped on every attempt",
			setup: func(t *testing.T, fake *actionstest.Slack) (string, context.Context) {
				fake.Script(actionstest.FaultDrop(), actionstest.FaultDrop(), actionstest.FaultDrop())
				return fake.WebhookURL("marketing"), context.Background()
			},
			wantErr: `failed to post webhook: Post "webhook $` + env + `": EOF (gave up after 3 attempts)`,
		},
		{
			name: "connection refused",
			setup: func(t *testing.T, fake *actionstest.Slack) (string, context.Context) {
				return "http://" + closedPort(t) + "/services/T0SECRET/B0SECRET/TOPSECRETWEBHOOKTOKEN1234", context.Background()
			},
			wantErr: `failed to post webhook: Post "webhook $` + env + `": dial tcp `,
		},
		{
			name: "no answer before the deadline",
			setup: func(t *testing.T, fake *actionstest.Slack) (string, context.Context) {
				fake.Script(actionstest.FaultSlow(time.Hour)) // only the deadline ends the wait
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				t.Cleanup(cancel)
				return fake.WebhookURL("marketing"), ctx
			},
			wantErr: `failed to post webhook: Post "webhook $` + env + `": context deadline exceeded`,
		},
		{
			name: "URL that does not parse (a newline pasted with it)",
			setup: func(t *testing.T, fake *actionstest.Slack) (string, context.Context) {
				return fake.URL() + "/services/T0SECRET/B0SECRET/TOPSECRETWEBHOOKTOKEN1234\n", context.Background()
			},
			wantErr: `failed new request: parse "webhook $` + env + `": net/url: invalid control character in URL`,
		},
		{
			name: "unknown webhook",
			setup: func(t *testing.T, fake *actionstest.Slack) (string, context.Context) {
				return fake.URL() + "/services/T0SECRET/B0SECRET/TOPSECRETWEBHOOKTOKEN1234", context.Background()
			},
			wantErr: "slack server error: 404 Not Found: no_service",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t)
			hookURL, ctx := tt.setup(t, fake)
			w := NewSlackWebhook(Secret(hookURL), env, newHTTPClient(t), retry, nil)

			_, err := w.Post(ctx, testMessage(t))
			if err == nil {
				t.Fatal("Post succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Post: %v\nwant %s…", err, tt.wantErr)
			}
			checkHidden(t, printed(t, err), secretPath(t, hookURL))
			var ue *url.Error
			if errors.As(err, &ue) {
				t.Errorf("the error still holds a *url.Error, for %s", ue.URL)
			}
		})
	}
}

// TestBotTokenNeverInErrors checks that no error of a bot-token post shows
// the token, whether Slack refuses it or the call never gets an answer.
func TestBotTokenNeverInErrors(t *testing.T) {
	const wrongToken = "xoxb-999-999-WRONGTOKENWRONGTOKEN"
	retry := Retry{Attempts: 2, Base: time.Millisecond, Max: 2 * time.Millisecond}
	tests := []struct {
		name    string
		token   func(fake *actionstest.Slack) string
		apiURL  func(t *testing.T, fake *actionstest.Slack) string
		fault   actionstest.Fault
		wantErr string
	}{
		{
			name:    "invalid_auth for a token Slack does not know",
			token:   func(*actionstest.Slack) string { return wrongToken },
			wantErr: "invalid_auth",
		},
		{
			name:    "invalid_auth for a revoked token",
			fault:   actionstest.FaultAccessDenied(),
			wantErr: "invalid_auth",
		},
		{
			name: "connection refused",
			apiURL: func(t *testing.T, _ *actionstest.Slack) string {
				return "http://" + closedPort(t) + "/api/"
			},
			wantErr: `Post "Slack Web API": dial tcp `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSlack(t, testChannel)
			token, apiURL := fake.Token(), fake.APIURL()
			if tt.token != nil {
				token = tt.token(fake)
			}
			if tt.apiURL != nil {
				apiURL = tt.apiURL(t, fake)
			}
			fake.Script(tt.fault)
			b := NewSlackBot(Secret(token), apiURL, testChannel, newHTTPClient(t), retry, nil)

			_, err := b.Post(context.Background(), testMessage(t))
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Post: %v, want %s…", err, tt.wantErr)
			}
			out := printed(t, err)
			checkHidden(t, out, token)
			checkHidden(t, out, fake.Token())
		})
	}
}

// TestNotifiersPrintWithoutSecrets checks that printing a notifier, as a
// careless log line might, shows neither the webhook URL nor the token.
func TestNotifiersPrintWithoutSecrets(t *testing.T) {
	const (
		token   = "xoxb-1234-5678-TOPSECRETTOKEN"
		hookURL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/TOPSECRETWEBHOOKTOKEN1234"
	)
	tests := []struct {
		name   string
		n      actions.Notifier
		secret string
		want   string // what %v shows
	}{
		{"bot", NewSlackBot(Secret(token), "", testChannel, newHTTPClient(t), fastRetry, nil), token, "Slack channel C0123456789"},
		{"webhook", NewSlackWebhook(Secret(hookURL), "SLACK_WEBHOOK_MARKETING", newHTTPClient(t), fastRetry, nil), secretPath(t, hookURL), "Slack webhook $SLACK_WEBHOOK_MARKETING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := printed(t, tt.n)
			out["in a Dispatcher, %+v"] = fmt.Sprintf("%+v", &actions.Dispatcher{Notifiers: map[string]actions.Notifier{"d": tt.n}})
			checkHidden(t, out, tt.secret)
			if got := fmt.Sprint(tt.n); got != tt.want {
				t.Errorf("fmt.Sprint = %q, want %q", got, tt.want)
			}
		})
	}
}
