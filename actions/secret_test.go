package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/actions"
)

// TestDispatchHidesWebhookURL checks the results and log of a dispatch
// whose webhook fails: what route prints.
func TestDispatchHidesWebhookURL(t *testing.T) {
	hookURL := "http://" + closedPort(t) + "/services/T0SECRET/B0SECRET/TOPSECRETWEBHOOKTOKEN1234"
	var log bytes.Buffer
	d, _, _ := newTestDispatcher(t, dispatcherOpts{webhookURL: hookURL, logTo: &log})
	results := d.Dispatch(context.Background(), planFor(t, bounce(t, "reader@news.example.com", "log-me@example.com")), nil)

	var failed bool
	for _, r := range results {
		if r.Action() == "notify:marketing" && r.Outcome == actions.OutcomeFailed && r.Err != nil && strings.Contains(r.Err.Error(), "webhook $SLACK_WEBHOOK_MARKETING") {
			failed = true
		}
	}
	if !failed {
		t.Fatalf("no failed notify:marketing naming its variable: %+v", results)
	}
	out, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	all := printed(t, results)
	all["results JSON"] = string(out)
	all["log"] = log.String()
	checkHidden(t, all, secretPath(t, hookURL))
}

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
