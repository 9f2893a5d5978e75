package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// Defaults of [ServerOptions].
const (
	// defaultMaxBody is the largest body read: SNS messages are at most
	// 256 KB, and the HTTP envelope adds little.
	defaultMaxBody = 256 << 10
	// DefaultMaxConcurrent bounds the requests parsed, verified and
	// handled at once.
	DefaultMaxConcurrent = 128
	// DefaultQueueWait is how long a request waits for a free slot before
	// it gets 503.
	DefaultQueueWait = 5 * time.Second
	// DefaultConfirmTimeout bounds the GET of a SubscribeURL.
	DefaultConfirmTimeout = 15 * time.Second
	// defaultBodyTimeout bounds the reading of a request's body, which
	// happens before the request takes a slot.
	defaultBodyTimeout = 5 * time.Second
	// maxClockSkew is how far in the future of the server's clock a
	// Notification's Timestamp may be when MaxAge is set.
	maxClockSkew = 5 * time.Minute
)

// healthPath is the path of the health check: GET answers 200 "ok".
const healthPath = "/healthz"

// ErrUnprocessable marks an error of [ServerOptions.Handle] that a new
// delivery of the same message cannot fix (its content is unreadable): the
// server answers 422, which SNS does not retry, instead of 500.
var ErrUnprocessable = errors.New("unprocessable notification")

// MessageVerifier checks a message's signature; [*Verifier] is one.
type MessageVerifier interface {
	Verify(ctx context.Context, m *ses.SNSMessage) error
}

var _ MessageVerifier = (*Verifier)(nil)

// ServerOptions configure a [Server]. Verifier and Handle are required.
type ServerOptions struct {
	// Verifier checks every message's signature before anything in it is
	// acted on.
	Verifier MessageVerifier
	// Topics are the topic ARNs whose messages are accepted; a message of
	// another topic is refused. None accepts nothing.
	Topics []string
	// Handle is called with every verified Notification of an allowed
	// topic: only the message that was verified, never the request body
	// (which may hold keys that were not signed); it returns when the
	// notification's actions are done. An error makes the answer 500, so
	// that SNS delivers the message again, or 422 when it wraps
	// ErrUnprocessable; a panic is recovered, logged with its stack, and
	// answered 500.
	Handle func(ctx context.Context, m *ses.SNSMessage) error
	// HTTPClient confirms subscriptions (GET SubscribeURL); nil is a
	// client with no timeout of its own (ConfirmTimeout bounds the GET).
	// Redirects are never followed, whichever client is given.
	HTTPClient *http.Client
	// ConfirmTimeout bounds a confirmation GET (default
	// DefaultConfirmTimeout).
	ConfirmTimeout time.Duration
	// Logger gets one line per refused request, confirmation and error;
	// nil discards.
	Logger *slog.Logger
	// MaxBody is the largest body accepted (default defaultMaxBody); a
	// larger one gets 413.
	MaxBody int64
	// BodyTimeout bounds the reading of a request's body (default
	// defaultBodyTimeout); a body not sent in time gets 408. It is read
	// before the request takes a slot.
	BodyTimeout time.Duration
	// MaxConcurrent bounds the requests parsed, verified and handled at
	// once (default DefaultMaxConcurrent); QueueWait is how long a
	// request whose body has been read waits for a slot before it gets
	// 503 with Retry-After (default DefaultQueueWait).
	MaxConcurrent int
	QueueWait     time.Duration
	// MaxAge, when not 0, is the replay window: a Notification whose
	// signed Timestamp is older than MaxAge, or more than maxClockSkew
	// ahead of Now, is refused. 0 sets no limit.
	MaxAge time.Duration
	// Now is the clock of MaxAge; nil is time.Now.
	Now func() time.Time
	// Routes are handlers of other paths (such as Slack's interactivity
	// endpoint), by path: a request for one goes to it before any SNS
	// check, with its body limited to MaxBody and its panic recovered as
	// an SNS request's is.
	Routes map[string]http.Handler
}

// Server is the http.Handler of an SNS HTTP(S) subscription endpoint. A
// POST goes through these steps in order, each before the costlier next:
//
//  1. the checks that need no body: the method, the Content-Length (at
//     most MaxBody), the x-amz-sns-message-type header (a Type, when
//     present) and the x-amz-sns-topic-arn header, which SNS always
//     sends and which must name one of Topics; a request refused here
//     has its body left unread;
//  2. its body is read (at most MaxBody, within BodyTimeout) before the
//     request takes a slot, so that a slow client holds none;
//  3. the request takes one of MaxConcurrent slots (waiting QueueWait at
//     most), so that at most MaxConcurrent bodies are parsed, verified
//     or handled at once;
//  4. the body is parsed by ses.ParseSNS and checked: CheckFields, both
//     headers against it (its TopicArn must equal x-amz-sns-topic-arn),
//     an RFC 3339 Timestamp, the replay window (MaxAge) of a
//     Notification;
//  5. its signature is verified (which may fetch the certificate: only
//     now, and a fetch that failed is not tried again for a minute);
//  6. only then is it acted on, by its Type: a Notification goes to
//     Handle and is answered once Handle returns; a
//     SubscriptionConfirmation is confirmed by a GET of its SubscribeURL
//     (on the SNS host of the topic's region, no redirects followed); an
//     UnsubscribeConfirmation is logged.
//
// GET /healthz answers 200 "ok". Status codes:
//
//   - 200: done.
//   - 400: no x-amz-sns-topic-arn header (or two); the body is not one SNS
//     message (not a JSON object, a key given twice in any letter case, a
//     control character in a one-line field, a required field missing, a
//     Timestamp that is not RFC 3339), or a header contradicts it.
//   - 403: topic not allowed; Notification outside the replay window;
//     signature or certificate refused (SignatureVersion 1 too, when the
//     Verifier wants 2); SubscribeURL not on the topic's SNS host.
//   - 405: not a POST.
//   - 408: the body was not sent within BodyTimeout.
//   - 413: the body is larger than MaxBody.
//   - 422: Handle's error wraps ErrUnprocessable.
//   - 500: Handle failed, or handling the request panicked.
//   - 502: the confirmation GET failed.
//   - 503: no slot free within QueueWait, or the signing certificate could
//     not be fetched (with Retry-After).
//
// SNS retries 5xx answers, not 4xx ones. Every refusal is logged, at warn
// (error for 5xx, but for a certificate that could not be fetched: anyone
// can name one), with why. A panic is logged with its stack and answered
// 500; the process goes on.
type Server struct {
	verifier       MessageVerifier
	topics         map[string]bool
	handle         func(ctx context.Context, m *ses.SNSMessage) error
	client         *http.Client
	confirmTimeout time.Duration
	logger         *slog.Logger
	maxBody        int64
	bodyTimeout    time.Duration
	queueWait      time.Duration
	slots          chan struct{}
	maxAge         time.Duration
	now            func() time.Time
	routes         map[string]http.Handler
}

// NewServer returns a Server with o's settings, defaults filled in. It
// panics when o.Verifier or o.Handle is nil: that is a programming error.
func NewServer(o ServerOptions) *Server {
	if o.Verifier == nil || o.Handle == nil {
		panic("intake.NewServer: Verifier and Handle are required")
	}
	s := &Server{
		verifier: o.Verifier, topics: map[string]bool{}, handle: o.Handle, client: o.HTTPClient,
		confirmTimeout: o.ConfirmTimeout, logger: o.Logger, maxBody: o.MaxBody, queueWait: o.QueueWait,
		bodyTimeout: o.BodyTimeout, maxAge: o.MaxAge, now: o.Now, routes: o.Routes,
	}
	for _, t := range o.Topics {
		s.topics[t] = true
	}
	// A copy of the client, so that the caller's keeps its own redirect
	// rule.
	c := http.Client{}
	if s.client != nil {
		c = *s.client
	}
	c.CheckRedirect = refuseRedirect
	s.client = &c
	if s.confirmTimeout <= 0 {
		s.confirmTimeout = DefaultConfirmTimeout
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = defaultMaxBody
	}
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = defaultBodyTimeout
	}
	if s.queueWait <= 0 {
		s.queueWait = DefaultQueueWait
	}
	if s.now == nil {
		s.now = time.Now
	}
	n := o.MaxConcurrent
	if n <= 0 {
		n = DefaultMaxConcurrent
	}
	s.slots = make(chan struct{}, n)
	return s
}

// Headers SNS sends with every message, which the cheap checks read
// before the body.
const (
	// TopicHeader names the message's topic: it must be one of
	// ServerOptions.Topics, and equal to the body's TopicArn.
	TopicHeader = "x-amz-sns-topic-arn"
	// typeHeader names the message's Type; when present it must equal
	// the body's.
	typeHeader = "x-amz-sns-message-type"
)

// ServeHTTP handles one request; see [Server].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.recoverRequest(w, r)
	if r.URL.Path == healthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
		return
	}
	if h, ok := s.routes[r.URL.Path]; ok {
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		h.ServeHTTP(w, r)
		return
	}
	topic, ok := s.checkHeaders(w, r)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	// The request takes one of the slots before anything costlier than
	// reading: parsing the body, verifying, handling. A client cannot
	// hold a slot by being slow to send its body.
	if !s.acquire(r.Context()) {
		w.Header().Set("Retry-After", "1")
		s.refuse(r, w, http.StatusServiceUnavailable, "too many requests in progress", nil, slog.String("topicArn", topic))
		return
	}
	defer func() { <-s.slots }()
	m, err := ses.ParseSNS(body)
	if err == nil {
		err = CheckFields(m)
	}
	if err != nil {
		s.refuse(r, w, http.StatusBadRequest, "not an SNS message", err, slog.String("topicArn", topic))
		return
	}
	if h := r.Header.Get(typeHeader); h != "" && h != m.Type {
		s.refuse(r, w, http.StatusBadRequest, typeHeader+" contradicts the body", nil,
			msgAttrs(m, slog.String("header", h))...)
		return
	}
	if m.TopicArn != topic {
		s.refuse(r, w, http.StatusBadRequest, TopicHeader+" contradicts the body", nil,
			msgAttrs(m, slog.String("header", topic))...)
		return
	}
	sent, err := time.Parse(time.RFC3339, m.Timestamp)
	if err != nil {
		err = fmt.Errorf("sns message: Timestamp %q is not an RFC 3339 time", m.Timestamp)
		s.refuse(r, w, http.StatusBadRequest, "not an SNS message", err, msgAttrs(m)...)
		return
	}
	if err := s.checkAge(m, sent); err != nil {
		s.refuse(r, w, http.StatusForbidden, "notification outside the replay window", err, msgAttrs(m)...)
		return
	}
	if err := s.verifier.Verify(r.Context(), m); err != nil {
		if errors.Is(err, ErrCertUnavailable) {
			// The certificate could not be fetched, maybe for a
			// passing reason: SNS retries a 5xx. Anyone can name a
			// certificate URL that fails, so it is a warning.
			w.Header().Set("Retry-After", "10")
			s.refuseAt(slog.LevelWarn, r, w, http.StatusServiceUnavailable, "signing certificate unavailable", err, msgAttrs(m)...)
			return
		}
		s.refuse(r, w, http.StatusForbidden, "signature refused", err, msgAttrs(m)...)
		return
	}

	switch m.Type {
	case ses.SNSNotification:
		s.notification(w, r, m)
	case ses.SNSSubscriptionConfirmation:
		s.confirm(w, r, m)
	case ses.SNSUnsubscribeConfirmation:
		s.logger.LogAttrs(r.Context(), slog.LevelWarn, "unsubscribed", msgAttrs(m)...)
		io.WriteString(w, "ok\n")
	default:
		// Verify accepts only types it can build the string to sign of.
		s.refuse(r, w, http.StatusBadRequest, "unknown message type", nil, msgAttrs(m)...)
	}
}

// checkHeaders makes the checks that need no body: the method, the
// Content-Length, the message type header, and the topic header against
// Topics. It returns the topic header, or answers why the request is
// refused (405, 413, 400, 403) and reports false; the body is then not
// read, and the connection closes after the answer.
func (s *Server) checkHeaders(w http.ResponseWriter, r *http.Request) (string, bool) {
	refuse := func(code int, msg string, attrs ...slog.Attr) (string, bool) {
		// The body is not read: the connection closes after the
		// answer, and the read deadline is now, so that the
		// http.Server does not read the body after the answer either
		// (it would, to reuse the connection). Errors are ignored: a
		// ResponseWriter that cannot set deadlines (a test's
		// recorder) has no connection.
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		s.refuse(r, w, code, msg, nil, attrs...)
		return "", false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return refuse(http.StatusMethodNotAllowed, "method not allowed")
	}
	if r.ContentLength > s.maxBody {
		return refuse(http.StatusRequestEntityTooLarge, "body too large",
			slog.Int64("contentLength", r.ContentLength), slog.Int64("maxBody", s.maxBody))
	}
	switch typ := r.Header.Get(typeHeader); typ {
	case "", ses.SNSNotification, ses.SNSSubscriptionConfirmation, ses.SNSUnsubscribeConfirmation:
	default:
		return refuse(http.StatusBadRequest, "unknown "+typeHeader, slog.String("header", typ))
	}
	topics := r.Header.Values(TopicHeader)
	switch {
	case len(topics) == 0:
		return refuse(http.StatusBadRequest, "no "+TopicHeader+" header")
	case len(topics) > 1:
		return refuse(http.StatusBadRequest, TopicHeader+" header given twice")
	case !s.topics[topics[0]]:
		return refuse(http.StatusForbidden, "topic not allowed", slog.String("topicArn", topics[0]))
	}
	return topics[0], true
}

// readBody reads the body of r, at most maxBody bytes within bodyTimeout,
// or answers why it cannot (413, 408, 400) and reports false. It takes no
// slot: a client that sends its headers and stalls holds only its own
// connection, for bodyTimeout at most.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	rc := http.NewResponseController(w)
	// Errors are ignored: a ResponseWriter that cannot set deadlines (a
	// test's recorder) reads without one.
	_ = rc.SetReadDeadline(time.Now().Add(s.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err == nil {
		// The deadline ends with the body: once a body is read to its
		// end, the http.Server clears the read deadline to wait for the
		// next request, so Handle may run longer than bodyTimeout.
		return body, true
	}
	// The rest of the body is not read: the connection closes after the
	// answer.
	w.Header().Set("Connection", "close")
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		s.refuse(r, w, http.StatusRequestEntityTooLarge, "body too large", nil, slog.Int64("maxBody", s.maxBody))
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.refuse(r, w, http.StatusRequestTimeout, "body not sent in time", err, slog.Duration("bodyTimeout", s.bodyTimeout))
	default:
		s.refuse(r, w, http.StatusBadRequest, "cannot read the body", err)
	}
	return nil, false
}

// checkAge refuses a Notification sent (its Timestamp) outside the
// replay window. A confirmation is not refused: confirming it twice
// does no harm, and SNS's token expires by itself.
func (s *Server) checkAge(m *ses.SNSMessage, sent time.Time) error {
	if s.maxAge <= 0 || m.Type != ses.SNSNotification {
		return nil
	}
	now := s.now()
	switch age := now.Sub(sent); {
	case age > s.maxAge:
		return fmt.Errorf("timestamp %s is %s old, more than MaxAge %s", m.Timestamp, age.Round(time.Millisecond), s.maxAge)
	case -age > maxClockSkew:
		return fmt.Errorf("timestamp %s is %s ahead of this clock, more than %s", m.Timestamp, (-age).Round(time.Millisecond), maxClockSkew)
	}
	return nil
}

// acquire waits for a free slot, at most queueWait; it reports whether it
// got one.
func (s *Server) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(s.queueWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// notification hands a verified notification to Handle and answers by its
// result.
func (s *Server) notification(w http.ResponseWriter, r *http.Request, m *ses.SNSMessage) {
	err := s.callHandle(r.Context(), m)
	switch {
	case err == nil:
		io.WriteString(w, "ok\n")
	case errors.Is(err, ErrUnprocessable):
		s.refuse(r, w, http.StatusUnprocessableEntity, "notification not processed", err, msgAttrs(m)...)
	default:
		s.refuse(r, w, http.StatusInternalServerError, "notification failed", err, msgAttrs(m)...)
	}
}

// panicError is a recovered panic, with the stack where it happened.
type panicError struct {
	what  string // what panicked
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("%s panicked: %v", p.what, p.value) }

// recovered turns the value of recover into a *panicError.
func recovered(what string, v any) *panicError {
	return &panicError{what: what, value: v, stack: debug.Stack()}
}

// callHandle calls Handle, turning a panic into a *panicError: one
// notification's bug must not take the connection down unanswered, nor
// look like a success.
func (s *Server) callHandle(ctx context.Context, m *ses.SNSMessage) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered("Handle", v)
		}
	}()
	return s.handle(ctx, m)
}

// recoverRequest, deferred by ServeHTTP, answers 500 to a request whose
// handling panicked and logs the panic with its stack: a bug met by one
// request must neither crash the process nor leave the request
// unanswered. http.ErrAbortHandler goes on up, as net/http wants.
func (s *Server) recoverRequest(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	w.Header().Set("Connection", "close")
	s.refuse(r, w, http.StatusInternalServerError, "request failed", recovered("request", v))
}

// refuse answers code with its status text and logs why at warn (error
// for 5xx).
func (s *Server) refuse(r *http.Request, w http.ResponseWriter, code int, msg string, err error, attrs ...slog.Attr) {
	level := slog.LevelWarn
	if code >= 500 {
		level = slog.LevelError
	}
	s.refuseAt(level, r, w, code, msg, err, attrs...)
}

// refuseAt answers code with its status text and logs why at level; a
// panic's value and stack are logged when err holds one.
func (s *Server) refuseAt(level slog.Level, r *http.Request, w http.ResponseWriter, code int, msg string, err error, attrs ...slog.Attr) {
	attrs = append(attrs, slog.Int("status", code), slog.String("remote", r.RemoteAddr))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		if p, ok := errors.AsType[*panicError](err); ok {
			attrs = append(attrs, slog.String("panic", fmt.Sprint(p.value)), slog.String("stack", string(p.stack)))
		}
	}
	s.logger.LogAttrs(r.Context(), level, msg, attrs...)
	http.Error(w, strconv.Itoa(code)+" "+http.StatusText(code), code)
}

// msgAttrs are the log attributes naming m.
func msgAttrs(m *ses.SNSMessage, more ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{slog.String("snsType", m.Type), slog.String("snsMessageId", m.MessageID), slog.String("topicArn", m.TopicArn)}, more...)
}
