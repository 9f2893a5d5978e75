package main

import (
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/internal/awstest"
)

// Slack credentials from a Secrets Manager secret ($SESROUTER_SECRETS), in
// process, with the AWS SDK pointed at moto_server (awstest) through the
// environment. These tests set the process environment, so none runs in
// parallel.

// secretsRules post a recipient of a.example to one webhook and any
// other to another.
const secretsRules = `version: 1
destinations:
  alerts: {slack: {webhook_env: SLACK_WEBHOOK_ALERTS}}
  marketing: {slack: {webhook_env: SLACK_WEBHOOK_MARKETING}}
rules:
  - name: a
    when: recipient.domain == "a.example"
    actions: [{notify: alerts}]
  - name: others
    when: "true"
    actions: [{notify: marketing}]
`

// secretsFixture is moto with a secret of two webhooks of a Slack fake,
// and rules that use them.
type secretsFixture struct {
	srv    *awstest.Server
	slack  *actionstest.Slack
	id     string // the secret's ARN
	values map[string]string
	rules  string // the rules file
}

func newSecretsFixture(t *testing.T) *secretsFixture {
	t.Helper()
	srv := awstest.Moto(t)
	srv.Setenv(t)
	f := &secretsFixture{srv: srv, slack: actionstest.NewSlack(t), rules: writeFile(t, t.TempDir(), "rules.yaml", secretsRules)}
	f.values = map[string]string{"SLACK_WEBHOOK_ALERTS": f.slack.WebhookURL("alerts"), "SLACK_WEBHOOK_MARKETING": f.slack.WebhookURL("marketing")}
	f.id = srv.Secret(t, secretJSON(t, f.values))
	return f
}

// secretJSON is a SecretString of vars.
func secretJSON(t *testing.T, vars map[string]string) string {
	t.Helper()
	b, err := json.Marshal(vars, json.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// route runs sesrouter route with vars, a bounce for a@a.example and
// b@b.example on standard input.
func (f *secretsFixture) route(t *testing.T, vars map[string]string, args ...string) cliResult {
	t.Helper()
	all := map[string]string{"SESROUTER_RULES": f.rules}
	for k, v := range vars {
		all[k] = v
	}
	return runCLI(t, testEnv(all), liveBounce(t, "m-secrets", "a@a.example", "b@b.example"), append([]string{"route", "-format", "json"}, args...)...)
}

// secrets are the fixture's webhook URLs and their secret parts.
func (f *secretsFixture) secrets() []string {
	var s []string
	for _, v := range f.values {
		s = append(s, webhookSecrets(v)...)
	}
	return s
}

// channels are the channels the fake got posts for, in order.
func (f *secretsFixture) channels() []string {
	var c []string
	for _, p := range f.slack.Posts() {
		c = append(c, p.Channel)
	}
	return c
}

// TestSecretsTwoWebhooks: with SESROUTER_SECRETS and no webhook variable
// in the environment, each destination posts to its own webhook from the
// secret; nothing printed shows a value of it.
func TestSecretsTwoWebhooks(t *testing.T) {
	f := newSecretsFixture(t)
	r := f.route(t, map[string]string{"SESROUTER_SECRETS": f.id})
	if r.code != exitOK {
		t.Fatalf("route: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := strings.Join(f.channels(), " "); got != "alerts marketing" && got != "marketing alerts" {
		t.Errorf("posted to %q, want alerts and marketing once each", got)
	}
	checkNoSecrets(t, r, f.secrets()...)
}

// TestSecretsEnvironmentWins: a webhook variable set in the environment
// is used, not the secret's.
func TestSecretsEnvironmentWins(t *testing.T) {
	f := newSecretsFixture(t)
	env := f.slack.WebhookURL("alerts-from-env")
	r := f.route(t, map[string]string{"SESROUTER_SECRETS": f.id, "SLACK_WEBHOOK_ALERTS": env})
	if r.code != exitOK {
		t.Fatalf("route: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := strings.Join(f.channels(), " "); got != "alerts-from-env marketing" && got != "marketing alerts-from-env" {
		t.Errorf("posted to %q, want alerts-from-env and marketing", got)
	}
	checkNoSecrets(t, r, append(f.secrets(), webhookSecrets(env)...)...)
}

// TestSecretsStartErrors: a secret that cannot be read, or is not a JSON
// object of strings, stops the run before any input (exit 2) with one
// line naming the secret and no value; a dry run reads no secret.
func TestSecretsStartErrors(t *testing.T) {
	f := newSecretsFixture(t)
	missing := awstest.Name(t)
	const value = "https://hooks.slack.invalid/services/T0/B0/Z4QJ7XK2MWP9"
	notObject := f.srv.Secret(t, `["`+value+`"]`)
	notString := f.srv.Secret(t, `{"SLACK_WEBHOOK_ALERTS":"`+value+`","SLACK_WEBHOOK_MARKETING":{"url":"`+value+`"}}`)
	for _, tt := range []struct{ id, want string }{
		{missing, "ResourceNotFoundException"},
		{notObject, "its SecretString is not a JSON object of variable names to string values"},
		{notString, `its SecretString is not a JSON object of variable names to string values: "SLACK_WEBHOOK_MARKETING" is not a string`},
	} {
		r := f.route(t, map[string]string{"SESROUTER_SECRETS": tt.id})
		want := "sesrouter route: cannot carry out the actions: the secret " + tt.id + " ($SESROUTER_SECRETS) cannot be read: "
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
			t.Errorf("route with the secret %s: exit %d\n%s%s\nwant exit 2 and one line: %s… %s", tt.id, r.code, r.stdout, r.stderr, want, tt.want)
		}
		checkNoSecrets(t, r, append(webhookSecrets(value), "Z4QJ7")...)
	}
	if len(f.slack.Posts()) != 0 {
		t.Errorf("Slack got %d posts, want none", len(f.slack.Posts()))
	}

	r := f.route(t, map[string]string{"SESROUTER_SECRETS": missing}, "-dry-run")
	if r.code != exitOK {
		t.Errorf("a dry run with a secret that cannot be read: exit %d, want 0: it reads no secret\n%s", r.code, r.stderr)
	}
}
