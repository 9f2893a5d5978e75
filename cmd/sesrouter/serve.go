package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/pipeline"
)

const serveText = `Serves an SNS HTTP(S) subscription endpoint (plain HTTP: put a TLS proxy in
front). A message is acted on only once its signature is verified with a
certificate from the SNS host of its topic's region, its topic is one of
-topic (none: all are refused) and its signed Timestamp is within -max-age,
which must cover the topic's delivery retries (SNS's default HTTP policy
retries 3 times, 20 s apart; a custom one, up to an hour; 0: no limit).
Only the verified Message is routed. A SubscriptionConfirmation of an
allowed topic is confirmed.
GET /healthz answers 200 "ok". POST /slack/interactions takes the
presses of Slack buttons, signed with $SLACK_SIGNING_SECRET.

The answer is 200 once the actions are done, 500 when one failed (SNS
delivers again), 4xx for what must not be retried. Notifications are
batched in 10-second windows for digests. SIGHUP reloads the rules;
rules in S3 (s3://BUCKET/KEY) are also looked at again before a request
once $SESROUTER_RULES_REFRESH (default 1m) has passed. New rules that do
not load are refused: the rules in force stay. SIGTERM or SIGINT stops
once the requests in flight are done and the digests posted.`

// Settings of serve.
const (
	// defaultAddr listens on loopback only: serve speaks plain HTTP and is
	// meant to sit behind a TLS proxy on the same host.
	defaultAddr = "127.0.0.1:8080"
	// serveWindow is how long a batch of serve lasts.
	serveWindow = 10 * time.Second
	// serveWriteTimeout covers a notification's actions with their retries.
	serveWriteTimeout = defaultTimeout + 30*time.Second
)

func cmdServe(sig *signals, args []string, _ io.Reader, stdout, stderr io.Writer, e env) int {
	fs := newFlags("serve", "serve [-rules FILE] [-addr HOST:PORT] [-topic ARN]... [-sns-cert-dir DIR] [-max-age DURATION] [-signature-version 1|2]", serveText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	addr := fs.String("addr", defaultAddr, "listen on `HOST:PORT` (plain HTTP; loopback by default, for a TLS proxy in front)")
	var topics []string
	fs.Func("topic", "accept messages of the SNS topic `ARN` (repeatable; none: every message is refused)", func(s string) error {
		if err := intake.CheckTopicArn(s); err != nil {
			return err
		}
		topics = append(topics, s)
		return nil
	})
	certDir := fs.String("sns-cert-dir", "", "read signing certificates from `DIR` (file name = last element of SigningCertURL) instead of fetching them")
	maxAge := fs.Duration("max-age", time.Hour, "refuse notifications whose signed Timestamp is older than `DURATION` (0: no limit)")
	sigVersion := fs.Int("signature-version", 1, "the lowest SignatureVersion accepted: 1 (SHA1 and SHA256) or 2 (SHA256 only)")
	if code := parseNoArgs(fs, args); code >= 0 {
		return code
	}
	if *sigVersion != 1 && *sigVersion != 2 {
		fmt.Fprintf(stderr, "sesrouter serve: -signature-version is 1 or 2, not %d\n", *sigVersion)
		return exitUsage
	}
	if *certDir != "" {
		if fi, err := os.Stat(*certDir); err != nil || !fi.IsDir() {
			fmt.Fprintf(stderr, "sesrouter serve: -sns-cert-dir %s is not a folder\n", *certDir)
			return exitUsage
		}
	}
	path := pipeline.RulesPath(*rulesFlag, e.getenv, e.executable)
	live, parts, ok := setupLive("serve", path, e, stdout, stderr, intake.DefaultMaxConcurrent, nil)
	if !ok {
		return exitUsage
	}
	presses, ok := interactions("serve", live, parts, e, stdout, stderr)
	if !ok {
		return exitUsage
	}
	svc := pipeline.NewService(live, serveWindow)
	logger := parts.Logger
	confirm := slack.NewHTTPClient(1)
	confirm.Timeout = intake.DefaultConfirmTimeout
	var certs *http.Client // nil: intake's own
	if e.outbound != nil {
		confirm.Transport = e.outbound
		certs = &http.Client{Transport: e.outbound, Timeout: intake.DefaultFetchTimeout}
	}
	handler := intake.NewServer(intake.ServerOptions{
		Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: *certDir, MinSignatureVersion: *sigVersion, HTTPClient: certs}),
		Topics:   topics, Handle: answer(svc), HTTPClient: confirm, Logger: logger, MaxAge: *maxAge,
		Routes: map[string]http.Handler{interactionsPath: presses},
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: %v\n", err)
		return exitFailed
	}
	ln = intake.LimitListener(ln, intake.DefaultMaxConnections)
	if len(topics) == 0 {
		logger.Warn("no -topic given: every message will be refused")
	}
	logger.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("rules", path),
		slog.Any("topics", topics), slog.String("certDir", *certDir), slog.Duration("maxAge", *maxAge))
	if err := serveHTTP(sig, ln, handler, svc, logger); err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// interactionsPath is where serve takes Slack's button presses.
const interactionsPath = "/slack/interactions"

// interactions builds the handler of Slack's button presses, with
// SLACK_SIGNING_SECRET from the environment, else from the vault;
// metrics gets ButtonsPressed. Rules with buttons and no signing secret
// are a start-up error: it prints why, in one line, and reports false.
func interactions(name string, live *pipeline.Live, parts *pipeline.Parts, e env, metrics, stderr io.Writer) (*slack.Interactions, bool) {
	secret := slack.Secret(e.getenv(pipeline.SigningSecretName))
	if secret == "" {
		secret = parts.Slack.Vault.Value(pipeline.SigningSecretName)
	}
	h, err := live.Interactions(context.Background(), secret, metrics)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter %s: %v\n", name, err)
		return nil, false
	}
	return h, true
}

// answer is intake's callback for a verified notification: it handles
// it and says how SNS is answered. A rule that failed is logged, not
// retried: a new delivery would fail the same way.
func answer(svc *pipeline.Service) func(context.Context, *ses.SNSMessage) error {
	return func(ctx context.Context, m *ses.SNSMessage) error {
		for _, f := range svc.Handle(ctx, m).Failures() {
			switch f.Kind {
			case pipeline.FailUnreadable:
				return fmt.Errorf("%w: %w", intake.ErrUnprocessable, f.Err)
			case pipeline.FailAction:
				return f.Err
			}
		}
		return nil
	}
}

// serveHTTP answers on ln until sig.ctx ends (SIGTERM or SIGINT), then
// shuts down, letting the requests in flight finish (until sig.now ends:
// a second signal; the connections still open once serveWriteTimeout has
// passed are closed) and the windows post their digests. A SIGHUP reloads
// the rules.
func serveHTTP(sig *signals, ln net.Listener, h http.Handler, svc *pipeline.Service, logger *slog.Logger) error {
	hs := intake.HTTPServer(h, logger, serveWriteTimeout)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	for {
		select {
		case err := <-errc:
			return err
		case <-sig.reload:
			svc.Reload(sig.ctx)
			continue
		case <-sig.ctx.Done():
		}
		logger.Info("shutting down: finishing the requests in flight", slog.Duration("timeout", serveWriteTimeout))
		ctx, cancel := context.WithTimeout(sig.now, serveWriteTimeout)
		defer cancel()
		err := intake.Shutdown(ctx, hs)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		svc.Close()
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		logger.Info("stopped")
		return nil
	}
}
