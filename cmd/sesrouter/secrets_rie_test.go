//go:build linux

package main

import (
	"net/http"
	"testing"

	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/internal/awstest"
)

// rieSecrets runs a function whose environment names a secret of
// moto_server (SESROUTER_SECRETS, as the template sets it) and holds no
// webhook variable: the webhook comes from the secret, the bounce is
// posted, and nothing the function printed shows the webhook.
func rieSecrets(t *testing.T, rie, bootstrap, rules string) {
	srv := awstest.Moto(t)
	f := newLambdaFakes(t)
	hook := f.slack.WebhookURL("ses-alerts")
	id := srv.Secret(t, `{"SLACK_WEBHOOK_URL":"`+hook+`"}`)
	fn := startLambda(t, rie, bootstrap, f, lambdaSetup{rules: rules, vars: map[string]string{
		"SESROUTER_SECRETS":                id,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL,
		"SESROUTER_SNS_CERT_DIR":           f.sns.CertDir,
	}})

	status, body := fn.invoke(t, f.snsEvent(t, "sns-secret", liveBounce(t, "m-secret", "someone@example.org")))
	if status != http.StatusOK || string(body) != "null" {
		t.Errorf("invocation: %d %s, want 200 null", status, body)
	}
	if p := onePostOf(t, f.slack); p.Kind != actionstest.KindWebhook || p.Channel != "ses-alerts" {
		t.Errorf("posted %s to %q, want the ses-alerts webhook of the secret", p.Kind, p.Channel)
	}
	fn.checkNoSecrets(t, webhookSecrets(hook)...)
}
