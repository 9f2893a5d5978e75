package pipeline

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
	"github.com/sesrouter/sesrouter/rulestore"
)

// TestButtonOnceAcrossTheFleet: with the fleet state, a press acted on
// by one container is not acted on again by another (nor a press of the
// same button by someone else), though each has its own memory.
func TestButtonOnceAcrossTheFleet(t *testing.T) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	const src = "version: 1\ndestinations:\n  ops:\n    slack: {channel: C0123456789, buttons: [unsuppress], allow_users: [U0ONE, U0TWO]}\nrules: []\n"
	f := newFakes(t)
	f.parts.Slack.Token = slack.Secret(f.slack.Token())
	f.parts.Slack.APIURL = f.slack.APIURL()
	st := state.NewMemory()
	container := func() (*slack.Interactions, *strings.Builder) {
		p := &Parts{Slack: f.parts.Slack, NewSES: f.parts.NewSES, Seen: dedup.NewSeen(10), Storm: storm.New(),
			State: st, Logger: f.parts.Logger, Timeout: f.parts.Timeout}
		live, err := NewLive(context.Background(), p, Source{Name: "rules.yaml", Store: rulestore.NewStore()}, loadConfig(t, src), &rulestore.Object{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		metrics := &strings.Builder{}
		h, err := live.Interactions(context.Background(), slack.Secret(secret), metrics)
		if err != nil {
			t.Fatal(err)
		}
		return h, metrics
	}
	a, ma := container()
	b, mb := container()
	const addr = "kept@example.com"
	f.ses.Suppress(addr, "BOUNCE", time.Now().Add(-time.Hour))
	do := func(h *slack.Interactions, user string) string {
		value, _ := json.Marshal(actions.ButtonValue{Destination: "ops", Address: addr, MessageID: "m-1"})
		payload, _ := json.Marshal(map[string]any{
			"type": "block_actions", "user": map[string]any{"id": user},
			"actions": []any{map[string]any{"type": "button", "block_id": "b1", "action_ts": "1700000001.000200", "action_id": actions.UnsuppressActionID, "value": string(value)}},
		})
		body := url.Values{"payload": {string(payload)}}.Encode()
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		io.WriteString(mac, "v0:"+ts+":"+body)
		header := http.Header{}
		header.Set("X-Slack-Request-Timestamp", ts)
		header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		status, answer := h.Handle(t.Context(), header, []byte(body))
		if status != http.StatusOK {
			t.Errorf("%s: status %d", user, status)
		}
		return string(answer)
	}
	if got := do(a, "U0ONE"); got != "" {
		t.Fatalf("first press: %q", got)
	}
	if _, listed := f.ses.Suppressed(addr); listed {
		t.Fatalf("first press: still listed\n%s", f.log)
	}
	f.ses.Suppress(addr, "BOUNCE", time.Now())
	if got := do(b, "U0TWO"); !strings.Contains(got, "Already done") {
		t.Errorf("press on the other container: %q, want already done", got)
	}
	if _, listed := f.ses.Suppressed(addr); !listed {
		t.Error("the press on the other container took the address off again")
	}
	if !strings.Contains(ma.String(), `"ButtonsPressed":1`) || mb.Len() != 0 {
		t.Errorf("metrics: first %q, second %q", ma.String(), mb.String())
	}
}
