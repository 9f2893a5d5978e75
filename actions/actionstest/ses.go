package actionstest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The SES operations the fake serves, as recorded in [Call].Op.
const (
	// OpGetSuppressedDestination is GET /v2/email/suppression/addresses/{EmailAddress}.
	OpGetSuppressedDestination = "GetSuppressedDestination"
	// OpDeleteSuppressedDestination is DELETE /v2/email/suppression/addresses/{EmailAddress}.
	OpDeleteSuppressedDestination = "DeleteSuppressedDestination"
	// OpPutSuppressedDestination is PUT /v2/email/suppression/addresses.
	OpPutSuppressedDestination = "PutSuppressedDestination"
	// OpListSuppressedDestinations is GET /v2/email/suppression/addresses.
	OpListSuppressedDestinations = "ListSuppressedDestinations"
)

// The only credentials and region the SES fake accepts in a request's
// SigV4 Authorization header.
const (
	// SESAccessKeyID is the access key ID.
	SESAccessKeyID = "AKIDTEST"
	// SESSecretAccessKey is the secret access key (the fake does not verify
	// signatures, only their scope).
	SESSecretAccessKey = "SECRET"
	// SESRegion is the region the signature must be scoped to.
	SESRegion = "us-east-1"
)

// Call is one request the SES fake received, whatever its fate.
type Call struct {
	// Op is an Op* constant, or "" for a request to no known operation.
	Op string
	// Address is the email address, unescaped from the path (Get, Delete)
	// or read from the body (Put).
	Address string
	// Reason is the reason a Put asked for; Reasons, PageSize, NextToken,
	// StartDate and EndDate are a List's filters, as sent.
	Reason              string
	Reasons             []string
	PageSize, NextToken string
	StartDate, EndDate  string
	// Path is the request path as escaped on the wire.
	Path string
	// Status is the HTTP status answered, 0 when the connection was
	// dropped or the client went away.
	Status int
	// ErrorType is the X-Amzn-ErrorType answered, "" on success.
	ErrorType string
	// Time is when the fake received the request.
	Time time.Time
}

// suppression is one entry of the fake's suppression list.
type suppression struct {
	reason     string
	at         time.Time
	messageID  string
	feedbackID string
}

// SES is a loopback fake of the Amazon SES v2 account suppression list,
// speaking the REST JSON protocol the real aws-sdk-go-v2 sesv2 client
// uses: GetSuppressedDestination, DeleteSuppressedDestination,
// PutSuppressedDestination and ListSuppressedDestinations (in address
// order, filtered by Reason, StartDate and EndDate, PageSize at most 1,000
// (default 100), with a NextToken that is a cursor, so that deleting
// entries between pages skips none). Errors carry X-Amzn-ErrorType and a
// {"message":…} body, so the SDK returns its modeled types
// (*types.NotFoundException, *types.TooManyRequestsException,
// *types.BadRequestException) or a smithy.GenericAPIError for the rest
// (AccessDeniedException, InternalFailure). Requests must be SigV4-signed
// for SESAccessKeyID in SESRegion (service "ses"); TenantName is ignored.
//
// Get a client with [SES.Client], or through aws-sdk-go-v2/config as
// sesrouter does: call [SES.Setenv] (it sets AWS_ENDPOINT_URL_SESV2, the
// region and static credentials, and isolates the test from shared config
// files and IMDS), then config.LoadDefaultConfig and sesv2.NewFromConfig.
type SES struct {
	fake
	list  map[string]suppression
	calls []Call
	seq   int // suppression entries made, for their attribute IDs
	reqs  int // answers written, for request IDs
}

// NewSES starts an SES fake on 127.0.0.1, closed by t.Cleanup, with an
// empty suppression list.
func NewSES(t testing.TB) *SES {
	t.Helper()
	s := &SES{list: map[string]suppression{}}
	s.start(t, s.serveHTTP)
	return s
}

// NewSESInMemory is [NewSES] without a socket, as [NewSlackInMemory] is
// for Slack: the fake is served on in-memory connections, which only
// [SES.HTTPClient] makes (and [SES.Client] uses), at http://ses.invalid.
// Made inside a testing/synctest bubble, the fake, its clients and every
// connection between them belong to the bubble.
func NewSESInMemory(t testing.TB) *SES {
	t.Helper()
	s := &SES{list: map[string]suppression{}}
	s.startInMemory(t, s.serveHTTP, "ses.invalid")
	return s
}

// URL is the fake's endpoint, "http://127.0.0.1:PORT" (or
// "http://ses.invalid" for [NewSESInMemory]), for sesv2's BaseEndpoint or
// AWS_ENDPOINT_URL_SESV2.
func (s *SES) URL() string { return s.url }

// HTTPClient returns an HTTP client that reaches the fake, as
// [Slack.HTTPClient] does: for [NewSESInMemory], the only one.
func (s *SES) HTTPClient() *http.Client { return s.client }

// Suppress puts address on the suppression list with reason (BOUNCE or
// COMPLAINT; not checked, so a test can store anything) as last updated
// at, replacing any entry. The entry gets made-up MessageId and FeedbackId
// attributes.
func (s *SES) Suppress(address, reason string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.suppressLocked(address, reason, at)
}

// suppressLocked is Suppress with s.mu held.
func (s *SES) suppressLocked(address, reason string, at time.Time) {
	s.seq++
	s.list[address] = suppression{
		reason:     reason,
		at:         at,
		messageID:  fmt.Sprintf("0100018c-fake-%06d-message", s.seq),
		feedbackID: fmt.Sprintf("0100018c-fake-%06d-feedback", s.seq),
	}
}

// Suppressed reports whether address is on the suppression list, and why.
func (s *SES) Suppressed(address string) (reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.list[address]
	return e.reason, ok
}

// Script queues faults for the next requests, in order, before any random
// fault. FaultSlow delays the answer; Fault429, Fault500, Fault503,
// FaultAccessDenied and FaultDrop replace it. It panics on
// FaultChannelNotFound, which SES has no use for.
func (s *SES) Script(faults ...Fault) {
	checkSESFaults(faults)
	s.faults.script(faults)
}

// FailRandomly fails each later request, once Script's queue is empty, with
// probability p, choosing uniformly among kinds (by default Fault429 and
// Fault500). The choices are a deterministic function of seed and the
// order requests arrive in. p <= 0 turns random failures off.
func (s *SES) FailRandomly(p float64, seed int64, kinds ...Fault) {
	if len(kinds) == 0 {
		kinds = []Fault{Fault429(), Fault500()}
	}
	checkSESFaults(kinds)
	s.faults.failRandomly(p, seed, kinds)
}

// checkSESFaults panics on a fault SES cannot serve.
func checkSESFaults(faults []Fault) {
	for _, f := range faults {
		if f.kind == faultChannelNotFound {
			panic("actionstest: SES cannot serve fault " + f.String())
		}
	}
}

// Calls returns a copy of the requests received so far, in arrival order.
func (s *SES) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// sesReply is one SES answer.
type sesReply struct {
	status  int
	errType string
	body    any
}

// sesError builds an error answer.
func sesError(status int, errType, format string, args ...any) sesReply {
	return sesReply{status: status, errType: errType, body: map[string]string{"message": fmt.Sprintf(format, args...)}}
}

// suppressionPath is the path of the suppression-list operations.
const suppressionPath = "/v2/email/suppression/addresses"

// serveHTTP routes, authenticates, applies the next fault, then serves.
func (s *SES) serveHTTP(w http.ResponseWriter, r *http.Request) {
	call := Call{Path: r.URL.EscapedPath(), Time: time.Now()}
	body, readErr := readBody(r)
	s.mu.Lock()
	s.counts.Requests++
	s.mu.Unlock()

	var rep sesReply
	defer func() {
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()
	}()

	switch rest, found := strings.CutPrefix(call.Path, suppressionPath); {
	case found && rest == "" && r.Method == http.MethodPut:
		call.Op = OpPutSuppressedDestination
	case found && rest == "" && r.Method == http.MethodGet:
		call.Op = OpListSuppressedDestinations
		q := r.URL.Query()
		call.Reasons, call.PageSize, call.NextToken = q["Reason"], q.Get("PageSize"), q.Get("NextToken")
		call.StartDate, call.EndDate = q.Get("StartDate"), q.Get("EndDate")
	case found && len(rest) > 1 && rest[0] == '/' && !strings.Contains(rest[1:], "/"):
		addr, err := url.PathUnescape(rest[1:])
		if err != nil {
			break
		}
		call.Address = addr
		switch r.Method {
		case http.MethodGet:
			call.Op = OpGetSuppressedDestination
		case http.MethodDelete:
			call.Op = OpDeleteSuppressedDestination
		}
	}

	f := Fault{}
	switch {
	case call.Op == "":
		rep = sesError(http.StatusNotFound, "UnknownOperationException", "")
	case readErr != nil:
		rep = sesError(http.StatusBadRequest, "SerializationException", "%v", readErr)
	default:
		if rep = s.authenticate(r); rep.status == 0 {
			f = s.faults.next()
		}
	}
	if f.kind != faultNone {
		s.mu.Lock()
		s.counts.Faults++
		s.mu.Unlock()
	}
	if rep.status == 0 {
		if connectionFault(f, w, r, &s.mu, &s.counts, s.done) {
			return
		}
		switch f.kind {
		case fault429:
			rep = sesError(http.StatusTooManyRequests, "TooManyRequestsException", "Too many requests have been made to the operation.")
		case fault500:
			rep = sesError(http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure.")
		case fault503:
			rep = sesError(http.StatusServiceUnavailable, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
		case faultAccessDenied:
			rep = sesError(http.StatusForbidden, "AccessDeniedException",
				"User: arn:aws:iam::000000000000:user/sesrouter-test is not authorized to perform: ses:%s", call.Op)
		}
	}
	if rep.status == 0 {
		rep = s.serveOp(&call, body)
	}
	call.Status, call.ErrorType = rep.status, rep.errType
	s.write(w, rep)
}

// authenticate checks the SigV4 Authorization header's scope; it returns
// the zero sesReply when the request may proceed.
func (s *SES) authenticate(r *http.Request) sesReply {
	auth := r.Header.Get("Authorization")
	cred, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 Credential=")
	if !ok || r.Header.Get("X-Amz-Date") == "" {
		return sesError(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	cred, _, _ = strings.Cut(cred, ",")
	scope := strings.Split(cred, "/") // AKID/DATE/REGION/SERVICE/aws4_request
	switch {
	case len(scope) != 5 || scope[4] != "aws4_request":
		return sesError(http.StatusForbidden, "IncompleteSignatureException", "Authorization header requires a valid Credential.")
	case scope[0] != SESAccessKeyID:
		return sesError(http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
	case scope[2] != SESRegion:
		return sesError(http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to a valid region.")
	case scope[3] != "ses":
		return sesError(http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to correct service: 'ses'.")
	}
	return sesReply{}
}

// serveOp performs call.Op on the suppression list.
func (s *SES) serveOp(call *Call, body []byte) sesReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	notFound := func() sesReply {
		return sesError(http.StatusNotFound, "NotFoundException",
			"Email address %s does not exist on your suppression list.", call.Address)
	}
	switch call.Op {
	case OpGetSuppressedDestination:
		e, ok := s.list[call.Address]
		if !ok {
			return notFound()
		}
		return sesReply{status: http.StatusOK, body: map[string]any{
			"SuppressedDestination": map[string]any{
				"EmailAddress":   call.Address,
				"Reason":         e.reason,
				"LastUpdateTime": epochSeconds(e.at),
				"Attributes":     map[string]string{"MessageId": e.messageID, "FeedbackId": e.feedbackID},
			},
		}}
	case OpDeleteSuppressedDestination:
		if _, ok := s.list[call.Address]; !ok {
			return notFound()
		}
		delete(s.list, call.Address)
		return sesReply{status: http.StatusOK, body: map[string]any{}}
	case OpListSuppressedDestinations:
		return s.listLocked(call)
	case OpPutSuppressedDestination:
		var in struct {
			EmailAddress *string
			Reason       *string
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return sesError(http.StatusBadRequest, "SerializationException", "Unable to parse the request body.")
		}
		if in.EmailAddress != nil {
			call.Address = *in.EmailAddress
		}
		if in.Reason != nil {
			call.Reason = *in.Reason
		}
		switch {
		case in.EmailAddress == nil || in.Reason == nil:
			return sesError(http.StatusBadRequest, "BadRequestException", "EmailAddress and Reason are required.")
		case !strings.Contains(call.Address, "@"):
			return sesError(http.StatusBadRequest, "BadRequestException", "Invalid email address: %s.", call.Address)
		case call.Reason != "BOUNCE" && call.Reason != "COMPLAINT":
			return sesError(http.StatusBadRequest, "BadRequestException",
				"1 validation error detected: Value '%s' at 'reason' failed to satisfy constraint: Member must satisfy enum value set: [BOUNCE, COMPLAINT]", call.Reason)
		}
		s.suppressLocked(call.Address, call.Reason, time.Now())
		return sesReply{status: http.StatusOK, body: map[string]any{}}
	}
	return sesError(http.StatusNotFound, "UnknownOperationException", "")
}

// epochSeconds is t as a JSON number of seconds since the epoch, with
// millisecond precision, the default timestamp format of REST JSON bodies.
func epochSeconds(t time.Time) jsontext.Value {
	return jsontext.Value(strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', -1, 64))
}

// write sends rep as an SES REST JSON answer and counts it.
func (s *SES) write(w http.ResponseWriter, rep sesReply) {
	s.mu.Lock()
	s.counts.countStatus(rep.status, rep.errType == "")
	s.reqs++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.reqs)
	s.mu.Unlock()
	b, err := json.Marshal(rep.body)
	if err != nil {
		panic(err) // maps of strings, numbers and maps only
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-RequestId", id)
	if rep.errType != "" {
		h.Set("X-Amzn-ErrorType", rep.errType)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
}
