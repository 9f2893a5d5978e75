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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/pipeline"
)

const serveText = `Serves an SNS HTTP(S) subscription endpoint: SNS POSTs each message to it,
and a Notification goes through the same route and dispatch as everything
else. Nothing in a message is acted on before its signature (SignatureVersion
1 or 2) has been verified with a certificate from the SNS host of the topic's
region, its topic is one named by -topic (with no -topic, every message is
refused), and its signed Timestamp is within -max-age. Only the verified
Message is routed: no other key of the body is read. A verified
SubscriptionConfirmation of an allowed topic is confirmed by fetching its
SubscribeURL. GET /healthz answers 200 "ok".

The answer is 200 once the actions are done (a rule that fails is logged,
not retried); 500 when an action failed, so that SNS delivers the message
again; 4xx for what must not be retried (400 unreadable body, a key given
twice or a control character in a signed field; 403 topic not allowed,
signature refused or message too old; 413 body over 256 KiB; 422 verified
notification whose content cannot be read); 502 when the subscription
could not be confirmed; 503 when too busy or the signing certificate could
not be fetched.

-max-age must cover SNS's delivery retries: its default HTTP policy retries
for about an hour (the 1h default); a topic with a longer delivery policy
needs a longer -max-age, and 0 turns the check off.

It speaks plain HTTP: put a TLS-terminating proxy in front. SIGHUP reloads
the rules (a file that does not load keeps the old rules and logs why; the
pace, storm state and de-duplication carry on); SIGTERM or SIGINT stops it
once the requests in flight are done and the digests posted.

Notifications are batched in 10-second windows: once a destination has had
digest_after messages within its digest_window, its later notifications are
folded (outcome digested) into one digest per window.`

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

func cmdServe(args []string, stdout, stderr io.Writer, e env) int {
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
	args, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	if !noArgs("serve", args, stderr) {
		return exitUsage
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
	logger, err := newLogger(stderr, e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: %v\n", err)
		return exitUsage
	}
	s := &server{rulesPath: rulesPath(*rulesFlag, e), logger: logger}
	cfg, ok := loadRules(s.rulesPath, stderr)
	if !ok {
		return exitUsage
	}
	if s.live, err = newLive(e, logger, intake.DefaultMaxConcurrent); err == nil {
		err = s.use(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: cannot carry out the actions:\n  %s\n", joinedLines(err))
		return exitUsage
	}
	s.windows = &pipeline.Windows{Length: serveWindow,
		NewBatch: func() *actions.Batch { return s.cur.Load().NewBatch(true) },
		Flush: func(b *actions.Batch) {
			ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
			defer cancel()
			s.cur.Load().FlushDigests(ctx, b, pipeline.NewTally())
		}}
	confirm := newHTTPClient(1)
	confirm.Timeout = intake.DefaultConfirmTimeout
	handler := intake.NewServer(intake.ServerOptions{
		Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: *certDir, MinSignatureVersion: *sigVersion}),
		Topics:   topics, Handle: s.handle, HTTPClient: confirm, Logger: logger, MaxAge: *maxAge,
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: %v\n", err)
		return exitFailed
	}
	if len(topics) == 0 {
		logger.Warn("no -topic given: every message will be refused")
	}
	logger.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("rules", s.rulesPath),
		slog.Any("topics", topics), slog.String("certDir", *certDir), slog.Duration("maxAge", *maxAge))
	if err := s.serve(ln, handler, e); err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// server is a running serve: the handler of the current rules, which
// SIGHUP replaces, and the windows, which outlive it.
type server struct {
	rulesPath string
	logger    *slog.Logger
	live      *live
	cur       atomic.Pointer[pipeline.Handler]
	windows   *pipeline.Windows
}

// use makes cfg the rules in force.
func (s *server) use(cfg *pipeline.Config) error {
	h, err := s.live.handler(context.Background(), cfg)
	if err != nil {
		return err
	}
	s.cur.Store(h)
	return nil
}

// reload loads the rules file again; when it does not load, or its
// actions cannot be built, the old rules stay and the log says why.
func (s *server) reload() {
	log := s.logger.With(slog.String("rules", s.rulesPath))
	cfg, err := pipeline.Load(s.rulesPath)
	if err == nil {
		if err = s.use(cfg); err == nil {
			log.Info("rules reloaded", slog.Int("count", len(cfg.Rules.Rules)))
			return
		}
	}
	log.Error("rules not reloaded; the previous rules stay", slog.String("error", err.Error()))
}

// handle is intake's callback for a verified notification: its Message
// is routed and acted on in the current window. The actions run to their
// end (or defaultTimeout) even when SNS hangs up meanwhile, so that a
// notification is never left half done.
func (s *server) handle(ctx context.Context, m *engine.SNSMessage) error {
	h := s.cur.Load()
	it := engine.DecodeSNS("sns:"+m.MessageID, engine.EnvelopeHTTP, "", m)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultTimeout)
	defer cancel()
	batch, done := s.windows.Join()
	defer done()
	j := h.Prepare(it)
	h.Act(actx, j, batch)
	h.Log(ctx, j)
	for _, f := range j.Failures() {
		switch f.Kind {
		case pipeline.FailUnreadable:
			return fmt.Errorf("%w: %w", intake.ErrUnprocessable, f.Err)
		case pipeline.FailAction:
			return f.Err
		}
	}
	return nil // a rule that failed is logged: a new delivery would fail the same way
}

// serve answers on ln until SIGTERM or SIGINT, then shuts down, letting
// the requests in flight finish and the windows post their digests.
// SIGHUP reloads the rules.
func (s *server) serve(ln net.Listener, h http.Handler, e env) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      serveWriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	sigs := make(chan os.Signal, 4)
	e.notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer e.stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	for {
		select {
		case err := <-errc:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.reload()
				continue
			}
			s.logger.Info("shutting down: finishing the requests in flight", slog.Duration("timeout", serveWriteTimeout))
			ctx, cancel := context.WithTimeout(context.Background(), serveWriteTimeout)
			defer cancel()
			err := hs.Shutdown(ctx)
			if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = serr
			}
			s.windows.Close()
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			s.logger.Info("stopped")
			return nil
		}
	}
}
