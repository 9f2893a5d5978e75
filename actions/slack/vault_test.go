package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-json-experiment/json"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/internal/awstest"
)

// vaultRules have two webhook destinations and a channel destination.
const vaultRules = `version: 1
destinations:
  a: {slack: {webhook_env: SLACK_WEBHOOK_A}}
  b: {slack: {webhook_env: SLACK_WEBHOOK_B}}
  bot: {slack: {channel: C0123456789}}
rules:
  - {name: r, when: 'true', actions: [{notify: a}, {notify: b}, {notify: bot}]}
`

// variables is a secret's SecretString: a JSON object of variables.
func variables(t testing.TB, vars map[string]string) string {
	t.Helper()
	b, err := json.Marshal(vars, json.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// outside makes the calls of a synctest bubble to moto_server on a
// goroutine started outside the bubble, as awstest asks: the bubble waits
// for each as for any work outside it (its clock stands still meanwhile).
// It is the SecretsAPI of a vault in a bubble, and counts the reads.
type outside struct {
	client *secretsmanager.Client
	mu     sync.Mutex // one call at a time
	calls  chan func()
	done   chan struct{}
	reads  int // GetSecretValue calls; guarded by mu
}

// newOutside starts the goroutine; call it outside the bubble.
func newOutside(t *testing.T, srv *awstest.Server) *outside {
	o := &outside{client: srv.SecretsManager(), calls: make(chan func()), done: make(chan struct{})}
	go func() {
		for f := range o.calls {
			f()
			o.done <- struct{}{}
		}
	}()
	t.Cleanup(func() { close(o.calls) })
	return o
}

// do runs f outside the bubble and waits for it.
func (o *outside) do(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls <- f
	<-o.done
}

// GetSecretValue implements SecretsAPI. The bubble's context stays in the
// bubble: the call outside has one of its own.
func (o *outside) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (out *secretsmanager.GetSecretValueOutput, err error) {
	o.do(func() {
		o.reads++
		out, err = o.client.GetSecretValue(context.Background(), in)
	})
	return out, err
}

// put gives the secret id a new value, as a rotation does.
func (o *outside) put(t *testing.T, id string, vars map[string]string) {
	t.Helper()
	value := variables(t, vars)
	var err error
	o.do(func() {
		_, err = o.client.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readCount is how many times the secret was read.
func (o *outside) readCount() int {
	var n int
	o.do(func() { n = o.reads })
	return n
}

// secretsOf is a vault's client factory that hands out c.
func secretsOf(c SecretsAPI) func(context.Context) (SecretsAPI, error) {
	return func(context.Context) (SecretsAPI, error) { return c, nil }
}

// postTo posts the test message with the notifier of dest and returns the
// channel (or webhook name) the fake recorded it under, failing t unless
// it was posted.
func postTo(t *testing.T, ns map[string]actions.Notifier, fake *actionstest.Slack, dest string) string {
	t.Helper()
	before := len(fake.Posts())
	outcome, err := ns[dest].Post(context.Background(), testMessage(t))
	if err != nil || outcome != actions.OutcomePosted {
		t.Fatalf("posting to %s: %s, %v; want posted", dest, outcome, err)
	}
	posts := fake.Posts()
	if len(posts) != before+1 {
		t.Fatalf("posting to %s: %d posts recorded, want 1", dest, len(posts)-before)
	}
	return posts[before].Channel
}

// TestVaultTwoWebhooks: one secret holds two webhooks and the bot token;
// each destination posts to its own. A variable set in the environment
// wins over the secret's, and a refusal of it reads nothing again.
func TestVaultTwoWebhooks(t *testing.T) {
	srv := awstest.Moto(t)
	fake := actionstest.NewSlack(t, testChannel)
	hookA, hookB, hookEnv := fake.WebhookURL("a"), fake.WebhookURL("b"), fake.WebhookURL("a-from-env")
	id := srv.Secret(t, variables(t, map[string]string{"SLACK_WEBHOOK_A": hookA, "SLACK_WEBHOOK_B": hookB, "SLACK_BOT_TOKEN": fake.Token()}))
	counted := &countingSecrets{SecretsAPI: srv.SecretsManager()}
	vault := NewVault(id, secretsOf(counted))
	if err := vault.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	dests := mustParseDestinations(t, vaultRules)

	t.Run("from the secret", func(t *testing.T) {
		ns, err := Notifiers(dests, nil, SlackConfig{APIURL: fake.APIURL(), Getenv: func(string) string { return "" }, Vault: vault, HTTPClient: newHTTPClient(t), Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		for dest, want := range map[string]string{"a": "a", "b": "b", "bot": testChannel} {
			if got := postTo(t, ns, fake, dest); got != want {
				t.Errorf("%s posted to %q, want %q", dest, got, want)
			}
		}
	})

	t.Run("the environment wins", func(t *testing.T) {
		env := map[string]string{"SLACK_WEBHOOK_A": hookEnv}
		ns, err := Notifiers(dests, nil, SlackConfig{APIURL: fake.APIURL(), Getenv: func(k string) string { return env[k] }, Vault: vault, HTTPClient: newHTTPClient(t), Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		if got := postTo(t, ns, fake, "a"); got != "a-from-env" {
			t.Errorf("a posted to %q, want the environment's webhook", got)
		}
		if got := postTo(t, ns, fake, "b"); got != "b" {
			t.Errorf("b posted to %q, want the secret's webhook", got)
		}
		fake.RemoveWebhook(hookEnv)
		if _, err := ns["a"].Post(context.Background(), testMessage(t)); err == nil || !strings.Contains(err.Error(), "no_service") {
			t.Errorf("posting to a removed webhook of the environment: %v, want no_service", err)
		}
	})
	if counted.n != 1 {
		t.Errorf("the secret was read %d times, want once: nothing was refused that came from it", counted.n)
	}
}

// countingSecrets counts the reads of a SecretsAPI, used by one goroutine.
type countingSecrets struct {
	SecretsAPI
	n int
}

func (c *countingSecrets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.n++
	return c.SecretsAPI.GetSecretValue(ctx, in, optFns...)
}

// TestVaultRotation rotates credentials in the secret and at Slack, on a
// synctest bubble's clock: a webhook answered 404 no_service makes the
// notifier read the secret again and post to the new URL; the other
// notifiers use what was read without reading again; a second refusal
// within the minute reads nothing and fails with the hint; a minute on, a
// refusal reads again; a revoked bot token (invalid_auth) is renewed the
// same way. No error shows a value of the secret.
func TestVaultRotation(t *testing.T) {
	srv := awstest.Moto(t)
	id := srv.Secret(t, "{}")
	o := newOutside(t, srv)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		fake := actionstest.NewSlackInMemory(t, testChannel)
		vars := map[string]string{"SLACK_WEBHOOK_A": fake.WebhookURL("a"), "SLACK_WEBHOOK_B": fake.WebhookURL("b"), "SLACK_BOT_TOKEN": fake.Token()}
		o.put(t, id, vars)
		var seen []string // every value the secret held
		for _, v := range vars {
			seen = append(seen, v)
		}
		vault := NewVault(id, secretsOf(o))
		if err := vault.Load(ctx); err != nil {
			t.Fatal(err)
		}
		ns, err := Notifiers(mustParseDestinations(t, vaultRules), nil, SlackConfig{APIURL: fake.APIURL(), Vault: vault, HTTPClient: fake.HTTPClient(), Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		reads := func(want int, when string) {
			t.Helper()
			if n := o.readCount(); n != want {
				t.Errorf("%s: the secret was read %d times, want %d", when, n, want)
			}
		}
		rotate := func(name, value string) {
			t.Helper()
			vars[name] = value
			seen = append(seen, value)
			o.put(t, id, vars)
		}
		if got := postTo(t, ns, fake, "a"); got != "a" {
			t.Fatalf("a posted to %q", got)
		}
		reads(1, "at start")

		time.Sleep(RenewEvery)
		old := vars["SLACK_WEBHOOK_A"]
		rotate("SLACK_WEBHOOK_A", fake.WebhookURL("a-rotated"))
		rotate("SLACK_BOT_TOKEN", fake.RotateToken())
		fake.RemoveWebhook(old)
		if got := postTo(t, ns, fake, "a"); got != "a-rotated" {
			t.Errorf("after a rotation, a posted to %q, want the new webhook", got)
		}
		reads(2, "after the webhook was refused")
		postTo(t, ns, fake, "bot") // the token read with the webhook
		postTo(t, ns, fake, "b")
		reads(2, "after posts with what was read")

		time.Sleep(RenewEvery - time.Second)
		old = vars["SLACK_WEBHOOK_A"]
		rotate("SLACK_WEBHOOK_A", fake.WebhookURL("a-rotated-again"))
		fake.RemoveWebhook(old)
		outcome, err := ns["a"].Post(ctx, testMessage(t))
		var h *HintedError
		if outcome != actions.OutcomeFailed || !errors.As(err, &h) || h.Code != "no_service" {
			t.Errorf("a second refusal within the minute: %s, %v; want failed with no_service", outcome, err)
		}
		reads(2, "after a second refusal within the minute")
		text := fmt.Sprint(err)
		var logged strings.Builder
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("post", "err", err, "vault", vault, "notifier", ns["a"])
		text += fmt.Sprintf("%v %+v %#v %s", vault, vault, vault, logged.String())

		time.Sleep(time.Second)
		if got := postTo(t, ns, fake, "a"); got != "a-rotated-again" {
			t.Errorf("a minute after the last read, a posted to %q, want the newest webhook", got)
		}
		reads(3, "a minute after the last read")

		time.Sleep(RenewEvery)
		rotate("SLACK_BOT_TOKEN", fake.RotateToken())
		if got := postTo(t, ns, fake, "bot"); got != testChannel {
			t.Errorf("bot posted to %q", got)
		}
		reads(4, "after the bot token was refused")
		for _, v := range seen {
			checkNotRepeated(t, text, randomPart(v))
		}
	})
}

// randomPart is the part of a fake's webhook URL or token that is random
// (after the last / or -): what tells it from the fake's others.
func randomPart(v string) string {
	return v[strings.LastIndexAny(v, "/-")+1:]
}

// A secret that cannot be read, or is not a JSON object of strings, fails
// Load with one line that names the secret and shows no value.
func TestVaultLoadErrors(t *testing.T) {
	srv := awstest.Moto(t)
	const value = "xoxb-Q7ZK2P9WX4MV"
	for _, tt := range []struct {
		name, secret, want string
	}{
		{"not json", value, "its SecretString is not a JSON object of variable names to string values"},
		{"a string", `"` + value + `"`, "its SecretString is not a JSON object of variable names to string values"},
		{"null", `null`, "its SecretString is not a JSON object of variable names to string values"},
		{"a number", `{"SLACK_BOT_TOKEN":"` + value + `","SLACK_WEBHOOK_A":12345678}`, `"SLACK_WEBHOOK_A" is not a string`},
		{"an object", `{"SLACK_WEBHOOK_A":{"url":"` + value + `"}}`, `"SLACK_WEBHOOK_A" is not a string`},
		{"broken", `{"SLACK_BOT_TOKEN":"` + value, "not a JSON object"},
		{"a control character", "{\"SLACK_BOT_TOKEN\":\"" + value + "\n\"}", "not a JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := srv.Secret(t, tt.secret)
			err := NewVault(id, secretsOf(srv.SecretsManager())).Load(context.Background())
			if err == nil {
				t.Fatal("loaded")
			}
			msg := err.Error()
			if !strings.Contains(msg, "the secret "+id+" ($SESROUTER_SECRETS) cannot be read: ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line naming the secret and saying %q", msg, tt.want)
			}
			checkNotRepeated(t, msg, value)
		})
	}
	t.Run("missing", func(t *testing.T) {
		id := awstest.Name(t)
		err := NewVault(id, secretsOf(srv.SecretsManager())).Load(context.Background())
		if err == nil || !strings.Contains(err.Error(), "the secret "+id+" ($SESROUTER_SECRETS) cannot be read: ") || !strings.Contains(err.Error(), "ResourceNotFoundException") {
			t.Errorf("error %v, want one naming the secret and that it was not found", err)
		}
	})
	t.Run("binary", func(t *testing.T) {
		out, err := srv.SecretsManager().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(awstest.Name(t)), SecretBinary: []byte(value)})
		if err != nil {
			t.Fatal(err)
		}
		err = NewVault(*out.ARN, secretsOf(srv.SecretsManager())).Load(context.Background())
		if err == nil || !strings.Contains(err.Error(), "it has no SecretString") {
			t.Errorf("error %v, want one saying the secret has no SecretString", err)
		}
	})
}

// Without a vault, the notifiers are as before, and Load and Renew do
// nothing.
func TestNoVault(t *testing.T) {
	var v *Vault
	if err := v.Load(context.Background()); err != nil {
		t.Error(err)
	}
	if err := v.Renew(context.Background()); err != nil {
		t.Error(err)
	}
	if got := v.Value("SLACK_BOT_TOKEN"); got != "" {
		t.Errorf("Value = %q", got.Reveal())
	}
	_, err := Notifiers(mustParseDestinations(t, vaultRules), nil, SlackConfig{Getenv: func(string) string { return "" }})
	if err == nil || strings.Contains(err.Error(), "SESROUTER_SECRETS") {
		t.Errorf("Notifiers without credentials or vault: %v, want the missing variables named, and no secret", err)
	}
}

// A variable neither the environment nor the secret holds is named as
// missing from both.
func TestVaultMissingVariable(t *testing.T) {
	srv := awstest.Moto(t)
	id := srv.Secret(t, `{"SLACK_WEBHOOK_A":"https://hooks.slack.invalid/services/T/B/x"}`)
	vault := NewVault(id, secretsOf(srv.SecretsManager()))
	if err := vault.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := Notifiers(mustParseDestinations(t, vaultRules), nil, SlackConfig{Getenv: func(string) string { return "" }, Vault: vault})
	for _, want := range []string{
		`destination "b" posts to the incoming webhook in $SLACK_WEBHOOK_B, but SLACK_WEBHOOK_B is not set in the environment or in the secret ` + id + ` ($SESROUTER_SECRETS)`,
		`destination "bot" posts to channel C0123456789 with the bot token, but SLACK_BOT_TOKEN is not set in the environment or in the secret ` + id,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Notifiers: %v\nwant it to say %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), `destination "a"`) {
		t.Errorf("Notifiers: %v\nnames a, whose webhook the secret holds", err)
	}
}
