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
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine"
	"github.com/sesrouter/sesrouter/intake"
)

const serveText = `Serves an SNS HTTP(S) subscription endpoint: SNS POSTs each message to it,
and a Notification goes through the same decode, route and dispatch as
everything else. Nothing in a message is acted on before its signature
(SignatureVersion 1 or 2) has been verified with a certificate from an SNS
host, and its topic is one named by -topic: with no -topic, every message
is refused. A verified SubscriptionConfirmation of an allowed topic is
confirmed by fetching its SubscribeURL. GET /healthz answers 200 "ok".

The answer is 200 only once the actions are done; 500 when one failed, so
that SNS delivers the message again; 4xx for what must not be retried (400
unreadable body, 403 topic not allowed or signature refused, 413 body over
256 KiB, 422 verified notification whose content cannot be read); 502 when
the subscription could not be confirmed; 503 when too busy or the signing
certificate could not be fetched.

It speaks plain HTTP: put a TLS-terminating proxy in front. SIGHUP reloads
the rules (a file that does not load keeps the old rules and logs why);
SIGTERM or SIGINT stops it once the requests in flight are done.

Posts are paced at about one message per second per channel or webhook. A
batch is a 10-second window from its first notification: once a destination
has taken its digest_after messages (default 10) in the window, its later
notifications are folded (outcome digested) into one digest message, posted
and logged when the window ends.`

// Settings of serve's HTTP server.
const (
	// defaultAddr listens on loopback only: serve speaks plain HTTP and is
	// meant to sit behind a TLS proxy on the same host. In a container,
	// give -addr :8080.
	defaultAddr = "127.0.0.1:8080"
	// serveConcurrency bounds the requests handled at once, and sizes the
	// Slack client's connection pool.
	serveConcurrency = intake.DefaultMaxConcurrent
	// serveWriteTimeout covers a notification's actions with their retries
	// (defaultTimeout) and a margin to answer.
	serveWriteTimeout = defaultTimeout + 30*time.Second
	// serveShutdownTimeout is how long a shutdown waits for the requests
	// in flight.
	serveShutdownTimeout = serveWriteTimeout
	// serveBatchWindow is how long a batch of serve lasts: the
	// notifications of a window share each destination's digest_after
	// messages, and the rest of them one digest per destination.
	serveBatchWindow = 10 * time.Second
)

func cmdServe(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("serve", "serve [-rules FILE] [-addr HOST:PORT] [-topic ARN]... [-sns-cert-dir DIR]", serveText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	addr := fs.String("addr", defaultAddr, "listen on `HOST:PORT` (plain HTTP; loopback by default, for a TLS proxy in front)")
	var topics []string
	fs.Func("topic", "accept messages of the SNS topic `ARN` (repeatable; none: every message is refused)", func(s string) error {
		if !strings.HasPrefix(s, "arn:") || !strings.Contains(s, ":sns:") {
			return fmt.Errorf("%q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", s)
		}
		topics = append(topics, s)
		return nil
	})
	certDir := fs.String("sns-cert-dir", "", "read signing certificates from `DIR` (file name = last element of SigningCertURL) instead of fetching them")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sesrouter serve: unexpected argument %q\n", fs.Arg(0))
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
	path := rulesPath(*rulesFlag, e)
	rules, ok := loadRules(path, stderr)
	if !ok {
		return exitUsage
	}
	s, err := newServer(context.Background(), serveConfig{rulesPath: path, topics: topics, certDir: *certDir, env: e, logger: logger}, rules)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: cannot carry out the actions:\n  %s\n", joinedLines(err))
		return exitUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: %v\n", err)
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := s.serve(ctx, ln, reload); err != nil {
		fmt.Fprintf(stderr, "sesrouter serve: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// serveConfig is what a server is built from.
type serveConfig struct {
	rulesPath string
	topics    []string
	certDir   string
	env       env
	logger    *slog.Logger
	// confirmClient confirms subscriptions and certClient fetches signing
	// certificates; nil builds clients that go to the network. Tests
	// inject clients that never leave the process.
	confirmClient, certClient *http.Client
	// shutdownTimeout bounds the wait for requests in flight at shutdown
	// (default serveShutdownTimeout).
	shutdownTimeout time.Duration
}

// server is a running serve: the SNS endpoint, and the rules it routes by,
// which SIGHUP replaces.
type server struct {
	cfg serveConfig
	// cur is the router and dispatcher of the current rules; a request
	// uses the one it loaded first, whatever reloads happen meanwhile.
	cur     atomic.Pointer[lambdaHandler]
	handler *intake.Server

	// window is the batch of the current window (nil between windows).
	mu     sync.Mutex
	window *serveWindow
}

// serveWindow is one batch of serve: it starts with a notification, and
// its digests are posted serveBatchWindow later, once the notifications
// of the window are done.
type serveWindow struct {
	batch *actions.Batch
	busy  sync.WaitGroup // the notifications of the window in flight
	timer *time.Timer
}

// newServer builds the endpoint for rules, already loaded from
// cfg.rulesPath. The error is the dispatcher's: a secret not set, no AWS
// region.
func newServer(ctx context.Context, cfg serveConfig, rules *engine.Rules) (*server, error) {
	if cfg.shutdownTimeout <= 0 {
		cfg.shutdownTimeout = serveShutdownTimeout
	}
	s := &server{cfg: cfg}
	h, err := s.build(ctx, rules)
	if err != nil {
		return nil, err
	}
	s.cur.Store(h)
	confirm := cfg.confirmClient
	if confirm == nil {
		confirm = newHTTPClient(1)
		confirm.Timeout = intake.DefaultConfirmTimeout
	}
	s.handler = intake.NewServer(intake.ServerOptions{
		Verifier:      intake.NewVerifier(intake.VerifierOptions{CertDir: cfg.certDir, HTTPClient: cfg.certClient}),
		Topics:        cfg.topics,
		Handle:        s.handle,
		HTTPClient:    confirm,
		Logger:        cfg.logger,
		MaxConcurrent: serveConcurrency,
	})
	return s, nil
}

// build makes the router and dispatcher of rules. Only handle and
// logHandled of the lambdaHandler are used: serve logs the same line per
// notification as lambda.
func (s *server) build(ctx context.Context, rules *engine.Rules) (*lambdaHandler, error) {
	disp, err := newDispatcher(ctx, rules, s.cfg.env, s.cfg.logger, false, serveConcurrency)
	if err != nil {
		return nil, err
	}
	return &lambdaHandler{router: engine.NewRouter(rules), disp: disp, logger: s.cfg.logger, metrics: io.Discard}, nil
}

// reload loads the rules file again; when it does not load, or its
// actions cannot be built, the old rules stay and the log says why.
func (s *server) reload(ctx context.Context) {
	log := s.cfg.logger.With(slog.String("rules", s.cfg.rulesPath))
	rules, err := engine.LoadFile(s.cfg.rulesPath)
	if err == nil {
		var h *lambdaHandler
		if h, err = s.build(ctx, rules); err == nil {
			s.cur.Store(h)
			log.Info("rules reloaded", slog.Int("count", len(rules.Rules)))
			return
		}
	}
	log.Error("rules not reloaded; the previous rules stay", slog.String("error", err.Error()))
}

// handle is intake's callback for a verified notification: decode, route,
// dispatch, log one line. The actions run to their end (or
// defaultTimeout) even when SNS hangs up meanwhile, so that a notification
// is never left half done.
func (s *server) handle(ctx context.Context, body []byte, m *intake.Message) error {
	h := s.cur.Load()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultTimeout)
	defer cancel()
	w := s.joinWindow(h)
	defer w.busy.Done()
	actx = actions.WithBatch(actx, w.batch)
	var failures []string
	unreadable := false
	for _, it := range engine.Decode("http", body) {
		d := h.handle(actx, it)
		if d.failure != "" {
			failures = append(failures, d.failure)
			unreadable = unreadable || it.Err != nil
		}
	}
	switch {
	case len(failures) == 0:
		return nil
	case unreadable:
		return fmt.Errorf("%w: %s", intake.ErrUnprocessable, strings.Join(failures, "; "))
	}
	return errors.New(strings.Join(failures, "; "))
}

// joinWindow returns the current window, starting one when there is
// none, with the caller counted in it (busy.Done when done).
func (s *server) joinWindow(h *lambdaHandler) *serveWindow {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.window == nil {
		w := &serveWindow{batch: h.disp.NewBatch()}
		w.timer = time.AfterFunc(serveBatchWindow, func() { s.closeWindow(w) })
		s.window = w
	}
	s.window.busy.Add(1)
	return s.window
}

// closeWindow ends w: later notifications start a new window; once the
// notifications of w are done, its digests are posted and logged.
func (s *server) closeWindow(w *serveWindow) {
	s.mu.Lock()
	if s.window == w {
		s.window = nil
	}
	s.mu.Unlock()
	w.busy.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	for _, r := range w.batch.Flush(ctx) {
		attrs := []slog.Attr{slog.String("destination", strings.TrimPrefix(r.Action, "digest:")),
			slog.String("outcome", r.Outcome), slog.String("digest", r.Messages[0].Text)}
		if r.Error != "" {
			s.cfg.logger.LogAttrs(ctx, slog.LevelError, "digest", append(attrs, slog.String("error", r.Error))...)
			continue
		}
		s.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "digest", attrs...)
	}
}

// flushWindow ends the current window now, posting its digests: at
// shutdown, once the requests in flight are done.
func (s *server) flushWindow() {
	s.mu.Lock()
	w := s.window
	s.mu.Unlock()
	if w != nil && w.timer.Stop() {
		s.closeWindow(w)
	}
}

// serve answers on ln until ctx ends, then shuts down, letting the
// requests in flight finish (at most cfg.shutdownTimeout). A value on
// reload reloads the rules.
func (s *server) serve(ctx context.Context, ln net.Listener, reload <-chan struct{}) error {
	log := s.cfg.logger
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      serveWriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if len(s.cfg.topics) == 0 {
		log.Warn("no -topic given: every message will be refused")
	}
	log.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("rules", s.cfg.rulesPath),
		slog.Any("topics", s.cfg.topics), slog.String("certDir", s.cfg.certDir))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	for {
		select {
		case <-reload:
			s.reload(ctx)
		case err := <-errc:
			return err
		case <-ctx.Done():
			log.Info("shutting down: finishing the requests in flight", slog.Duration("timeout", s.cfg.shutdownTimeout))
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
			defer cancel()
			err := hs.Shutdown(sctx)
			if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = serr
			}
			s.flushWindow()
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			log.Info("stopped")
			return nil
		}
	}
}
