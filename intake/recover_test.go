package intake_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// panickingVerifier panics on every message.
type panickingVerifier struct{}

func (panickingVerifier) Verify(context.Context, *ses.SNSMessage) error {
	panic("a bug of the verifier")
}

func TestServerRecoversPanics(t *testing.T) {
	// A panic anywhere in handling a request, not only in Handle, is
	// answered 500 and logged with its stack; the server goes on.
	sg := intaketest.NewSigner(t)
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		srv := intake.NewServer(intake.ServerOptions{
			Verifier: panickingVerifier{}, Topics: []string{testTopic},
			Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, nil)),
			Handle: func(context.Context, *ses.SNSMessage) error { return nil },
		})
		ln := serveInMemory(t, srv)
		for i := range 2 {
			c := ln.dial()
			req, _ := http.NewRequest(http.MethodPost, "http://sesrouter/", bytes.NewReader(intaketest.Body(sg.Notification(t, testTopic, "n", "{}"))))
			req.Header.Set(intake.TopicHeader, testTopic)
			go req.Write(c)
			resp, err := http.ReadResponse(bufio.NewReader(c), req)
			if err != nil {
				t.Fatalf("request %d: no answer: %v", i, err)
			}
			resp.Body.Close()
			c.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("request %d: status %d, want 500", i, resp.StatusCode)
			}
		}
		var line struct{ Level, Msg, Panic, Stack string }
		first, _, _ := strings.Cut(logs.String(), "\n")
		if err := json.Unmarshal([]byte(first), &line); err != nil {
			t.Fatalf("%v: %s", err, &logs)
		}
		if line.Level != "ERROR" || line.Msg != "request failed" || line.Panic != "a bug of the verifier" || !strings.Contains(line.Stack, "panickingVerifier") {
			t.Errorf("log line %s\nwant an error with the panic and its stack", first)
		}
	})
}
