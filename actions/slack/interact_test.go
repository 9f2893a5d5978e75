package slack_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/engine/rules"
)

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// sign is Slack's v0 signature of body at ts with secret, computed here,
// by the test.
func sign(secret string, ts int64, body string) http.Header {
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, "v0:"+strconv.FormatInt(ts, 10)+":"+body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// pressBody is the form body of a press of the unsuppress button for
// address by user.
func pressBody(t *testing.T, user, address, responseURL string) string {
	value, _ := json.Marshal(actions.ButtonValue{Destination: "d", Address: address, MessageID: "m-1"})
	payload, err := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user}, "response_url": responseURL,
		"message": map[string]any{"ts": "1700000000.000100", "text": "Bounce", "blocks": []any{}},
		"actions": []any{map[string]any{"type": "button", "block_id": "b1", "action_ts": "1700000001.000200", "action_id": actions.UnsuppressActionID, "value": string(value)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"payload": {string(payload)}}.Encode()
}

// TestUnsuppressButton: an allowed user and a group member each take an
// address off the list once, and the message is edited; a user not
// allowed, a bad signature, an old timestamp and a replay change nothing.
func TestUnsuppressButton(t *testing.T) {
	sl := actionstest.NewSlack(t, "C0123456789")
	sl.AddUserGroup("S0GROUP", "U0MEMBER")
	sesFake := actionstest.NewSES(t)
	for _, a := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		sesFake.Suppress(a, "BOUNCE", time.Now().Add(-time.Hour))
	}
	ds, err := rules.Load("rules.yaml", []byte("version: 1\ndestinations:\n  d:\n    slack: {channel: C0123456789, buttons: [unsuppress], allow_users: [U0ALLOWED], allow_groups: [S0GROUP]}\nrules: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	dest := ds.DestinationList()[0]
	pressed := 0
	var logs strings.Builder
	h := &slack.Interactions{
		Secret:       slack.Secret(signingSecret),
		Destinations: func(name string) *rules.Destination { return map[string]*rules.Destination{"d": dest}[name] },
		SES:          &suppression.SuppressionList{Client: sesFake.Client(t)},
		Client:       slack.NewUserGroupClient(slack.Secret(sl.Token()), sl.APIURL(), sl.HTTPClient()),
		HTTP:         sl.HTTPClient(),
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
		Pressed:      func() { pressed++ },
	}
	now := time.Now().Unix()
	do := func(header http.Header, body string) (int, string) {
		status, answer := h.Handle(t.Context(), header, []byte(body))
		return status, string(answer)
	}
	listed := func(a string) bool { _, ok := sesFake.Suppressed(a); return ok }

	// Refused, changing nothing.
	forged := pressBody(t, "U0ALLOWED", "a@example.com", sl.ResponseURL("1"))
	if s, _ := do(sign("not the secret", now, forged), forged); s != http.StatusUnauthorized {
		t.Errorf("bad signature: %d, want 401", s)
	}
	if s, _ := do(sign(signingSecret, now-6*60, forged), forged); s != http.StatusUnauthorized {
		t.Errorf("old timestamp: %d, want 401", s)
	}
	other := pressBody(t, "U0OTHER", "a@example.com", sl.ResponseURL("1"))
	if s, a := do(sign(signingSecret, now, other), other); s != http.StatusOK || !strings.Contains(a, "ephemeral") || !strings.Contains(a, "not allowed") {
		t.Errorf("user not allowed: %d %s, want an ephemeral not allowed", s, a)
	}
	if !listed("a@example.com") || pressed != 0 || len(sl.Updates()) != 0 {
		t.Fatalf("a refused press changed something: listed %v, pressed %d, %d edits", listed("a@example.com"), pressed, len(sl.Updates()))
	}

	// Allowed: a user, then a group member.
	for i, tt := range []struct{ user, address string }{{"U0ALLOWED", "a@example.com"}, {"U0MEMBER", "b@example.com"}} {
		body := pressBody(t, tt.user, tt.address, sl.ResponseURL(tt.address))
		header := sign(signingSecret, now, body)
		if s, a := do(header, body); s != http.StatusOK || a != "" {
			t.Errorf("%s: %d %q", tt.user, s, a)
		}
		if listed(tt.address) {
			t.Errorf("%s pressed, %s still listed", tt.user, tt.address)
		}
		ups := sl.Updates()
		if len(ups) != i+1 || !ups[i].ReplaceOriginal || !strings.Contains(string(ups[i].Blocks), "taken off the suppression list by <@"+tt.user+">") {
			t.Errorf("%s: edits %+v", tt.user, ups)
		}
		// The replay changes nothing.
		sesFake.Suppress(tt.address, "BOUNCE", time.Now())
		if s, a := do(header, body); s != http.StatusOK || !strings.Contains(a, "Already done") {
			t.Errorf("%s replayed: %d %q", tt.user, s, a)
		}
		if !listed(tt.address) || len(sl.Updates()) != i+1 {
			t.Errorf("%s: the replay changed something", tt.user)
		}
	}
	if pressed != 2 || strings.Count(logs.String(), "button pressed") != 2 {
		t.Errorf("pressed %d, audit lines:\n%s", pressed, logs.String())
	}
	if !listed("c@example.com") {
		t.Error("an address nobody pressed for was taken off")
	}
}
