package actionstest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// faultKind says what a Fault does.
type faultKind int

const (
	faultNone faultKind = iota
	fault429
	fault500
	fault503
	faultChannelNotFound
	faultAccessDenied
	faultDrop
	faultSlow
)

// Fault is a failure a fake serves instead of its normal answer (or, for
// [FaultSlow], before it). Build one with the Fault* functions; the zero
// Fault means "no fault". Each fake documents what a kind looks like on its
// wire; a kind a fake cannot serve makes its Script and FailRandomly panic.
type Fault struct {
	kind       faultKind
	retryAfter int
	delay      time.Duration
}

// Fault429 is a rate limit: Slack answers 429 with "Retry-After: 1"; SES
// answers 429 TooManyRequestsException.
func Fault429() Fault { return Fault{kind: fault429, retryAfter: 1} }

// Fault429After is [Fault429] with a Retry-After of the given whole seconds
// (0 is allowed; Slack sends integer seconds). SES sends no Retry-After and
// ignores seconds.
func Fault429After(seconds int) Fault {
	return Fault{kind: fault429, retryAfter: max(seconds, 0)}
}

// Fault500 is an internal error: Slack answers 500 with an HTML body; SES
// answers 500 InternalFailure.
func Fault500() Fault { return Fault{kind: fault500} }

// Fault503 is an unavailable service: Slack answers 503 with an HTML body;
// SES answers 503 ServiceUnavailable.
func Fault503() Fault { return Fault{kind: fault503} }

// FaultChannelNotFound is Slack only: the Web API answers 200
// {"ok":false,"error":"channel_not_found"} and a webhook answers 404
// "channel_not_found", whatever channel the request names.
func FaultChannelNotFound() Fault { return Fault{kind: faultChannelNotFound} }

// FaultAccessDenied is a refusal: SES answers 403 AccessDeniedException;
// Slack's Web API answers 200 {"ok":false,"error":"invalid_auth"} and a
// webhook answers 403 "invalid_token".
func FaultAccessDenied() Fault { return Fault{kind: faultAccessDenied} }

// FaultDrop reads the request, then closes the connection without any
// response, so the client sees an EOF or connection reset.
//
// Beware: net/http's Transport silently retries an idempotent request (GET,
// HEAD) that was sent on a reused connection and got no response, so a
// dropped SES GetSuppressedDestination may arrive twice and only the
// second arrival is visible to the SDK.
func FaultDrop() Fault { return Fault{kind: faultDrop} }

// FaultSlow waits d before answering normally; it stops waiting, without
// answering, when the client gives up (the request's context ends) or the
// fake closes.
func FaultSlow(d time.Duration) Fault { return Fault{kind: faultSlow, delay: d} }

// String names the fault, as in "429 (Retry-After: 1)" or "slow 2s".
func (f Fault) String() string {
	switch f.kind {
	case faultNone:
		return "none"
	case fault429:
		return fmt.Sprintf("429 (Retry-After: %d)", f.retryAfter)
	case fault500:
		return "500"
	case fault503:
		return "503"
	case faultChannelNotFound:
		return "channel_not_found"
	case faultAccessDenied:
		return "access denied"
	case faultDrop:
		return "drop"
	case faultSlow:
		return "slow " + f.delay.String()
	}
	return fmt.Sprintf("fault(%d)", int(f.kind))
}

// faultPlan decides the fault for each request: scripted faults first, in
// order, then random ones.
type faultPlan struct {
	mu    sync.Mutex
	queue []Fault
	p     float64
	rng   *rand.Rand
	kinds []Fault
}

// script queues fs for the next requests.
func (fp *faultPlan) script(fs []Fault) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.queue = append(fp.queue, fs...)
}

// failRandomly sets the random failure rate and kinds; p <= 0 turns random
// failures off.
func (fp *faultPlan) failRandomly(p float64, seed int64, kinds []Fault) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.p = p
	fp.rng = rand.New(rand.NewPCG(uint64(seed), 0x5e5_5e5))
	fp.kinds = append([]Fault(nil), kinds...)
}

// next returns the fault for the next request, or the zero Fault.
func (fp *faultPlan) next() Fault {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if len(fp.queue) > 0 {
		f := fp.queue[0]
		fp.queue = fp.queue[1:]
		return f
	}
	if fp.p <= 0 || fp.rng == nil || len(fp.kinds) == 0 {
		return Fault{}
	}
	if fp.rng.Float64() >= fp.p {
		return Fault{}
	}
	return fp.kinds[fp.rng.IntN(len(fp.kinds))]
}

// pending reports how many scripted faults are still queued.
func (fp *faultPlan) pending() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return len(fp.queue)
}

// Counts are a fake's request counters, by how each request was answered.
// Requests = Succeeded + Throttled + ServerErrors + ClientErrors + Dropped +
// Abandoned once every request has been answered.
type Counts struct {
	// Requests is every request received, whatever its fate.
	Requests int
	// Succeeded is the requests answered with success (Slack ok:true or
	// "ok"; SES 200).
	Succeeded int
	// Throttled is the 429 answers.
	Throttled int
	// RateLimited is the 429 answers of Slack.LimitPerSecond (counted in
	// Throttled too).
	RateLimited int
	// ServerErrors is the 5xx answers.
	ServerErrors int
	// ClientErrors is every other error: Slack ok:false or a 4xx webhook
	// answer, SES 4xx (NotFoundException included).
	ClientErrors int
	// Dropped is the connections closed without a response ([FaultDrop]).
	Dropped int
	// Abandoned is the requests whose client went away during [FaultSlow].
	Abandoned int
	// Faults is the faults served, scripted or random.
	Faults int
}

// countStatus adds one answer with HTTP status code to c; ok says whether
// it was a success (Slack answers API errors with 200).
func (c *Counts) countStatus(code int, ok bool) {
	switch {
	case code == 429:
		c.Throttled++
	case code >= 500:
		c.ServerErrors++
	case ok && code < 300:
		c.Succeeded++
	default:
		c.ClientErrors++
	}
}

// sleep waits d, or until ctx or done ends; it reports whether d passed.
func sleep(d time.Duration, ctxDone, done <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctxDone:
		return false
	case <-done:
		return false
	}
}

// connectionFault carries out the faults that act on the connection, not
// on the answer, for either fake: a drop (the connection closed with no
// answer), or a slow answer (a wait, given up when the client or the fake
// goes away). It counts them in c, under mu, and reports whether the
// request is finished.
func connectionFault(f Fault, w http.ResponseWriter, r *http.Request, mu *sync.Mutex, c *Counts, done <-chan struct{}) bool {
	switch f.kind {
	case faultDrop:
		mu.Lock()
		c.Dropped++
		mu.Unlock()
		drop(w)
		return true
	case faultSlow:
		if !sleep(f.delay, r.Context().Done(), done) {
			mu.Lock()
			c.Abandoned++
			mu.Unlock()
			return true
		}
	}
	return false
}
