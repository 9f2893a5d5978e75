package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// The storm simulation: the real Lambda handler run as
// several concurrent "containers", each with its own process state (its
// own Parts: pacers scaled by SESROUTER_CONCURRENCY, storm state,
// de-duplication), fed by a model of SQS and Lambda's event source
// mapping (batch size, batching window, maximum concurrency, visibility
// timeout, redelivery of what batchItemFailures names, dead-letter
// queue) or of SNS invoking the function directly (one invocation per
// notification, Lambda's two asynchronous retries), all posting to one
// webhook of the Slack fake, which answers 429 beyond one
// message a second, counted across every container.
//
// The test runs inside a testing/synctest bubble, on its fake clock:
// every duration of the model (pace, digest_window, the batching window,
// the function's timeout, the visibility timeout, the arrival of the
// storm, the fake's one-second window, the Retry-After of its 429s) is
// kept exactly, and the real work (decoding, routing, the HTTP calls)
// takes no model time at all, however busy the machine. For that the
// Slack fake is served in memory (actionstest.NewSlackInMemory): a post
// waiting for its answer waits on a pipe of the bubble, not on a socket.
// The benchmark runs the same simulation on the real clock, at real
// speed, where the real work does take time:
//
//	go test ./pipeline -run '^$' -bench StormSimulation -benchtime 1x -timeout 60m
//
// The simulation's clock is the time package's: the arrivals follow a
// ticker, the batcher's window and the visibility timeouts are timers,
// and everything else (when a container is done, when the run is over)
// is told over channels. Nothing sleeps to wait for something else.

// Settings of an invocation, as cmd/sesrouter's lambda sets them
// (lambdaConcurrency, lambdaWindow).
const (
	simInvokeConcurrency = 8
	simInvokeWindow      = 256
)

// simConfig is one deployment shape, in model (real-world) time.
type simConfig struct {
	Name string
	// Notifications arrive evenly over Arrival, one bounce with one
	// recipient each, SNS-wrapped.
	Notifications int
	Arrival       time.Duration
	// Direct: SNS invokes the function once per notification (no queue);
	// a failed invocation is retried after each of AsyncRetries, then
	// goes to the failure queue. Otherwise the queue: batches of at most
	// BatchSize records, gathered for at most BatchingWindow; a record
	// named in batchItemFailures comes back Visibility after it was
	// received, and goes to the dead-letter queue after MaxReceive tries.
	Direct         bool
	AsyncRetries   []time.Duration
	BatchSize      int
	BatchingWindow time.Duration
	Visibility     time.Duration
	MaxReceive     int
	// MaxConcurrency is how many invocations may run at once: the event
	// source's maximum concurrency, or, without one, the containers
	// Lambda would run.
	MaxConcurrency int
	// Concurrency is SESROUTER_CONCURRENCY: each container paces at
	// pace × (Concurrency+1) when it is over 1 (actions.NewPacers).
	Concurrency int
	// FreshStorm gives each invocation a new storm state, as the code
	// before storms were folded across invocations: digests per
	// invocation only.
	FreshStorm bool
	// Fleet gives the containers one fleet state (state.Memory, as the
	// state table would be): notifications claimed once across them,
	// and digest_after counted across them.
	Fleet bool
	// Timeout is the function's.
	Timeout time.Duration
	// Pace and DigestWindow are the destination's (digest_after is 10).
	Pace, DigestWindow time.Duration
	// Lone are the times (from the start of the storm) at which one more
	// notification arrives, alone: quiet times.
	Lone []time.Duration
	// Horizon ends the run there, whatever is left (0: when all is done).
	Horizon time.Duration
}

// The deployment shapes compared.
func simAfter() simConfig {
	return simConfig{Name: "queue, template defaults (after)", Notifications: 10_000, Arrival: time.Minute,
		BatchSize: 1000, BatchingWindow: 10 * time.Second, Visibility: 730 * time.Second, MaxReceive: 5,
		MaxConcurrency: 2, Concurrency: 2, Timeout: 120 * time.Second,
		Pace: 1100 * time.Millisecond, DigestWindow: 5 * time.Minute, Horizon: time.Hour}
}

// simBefore is the queue with the template's former defaults (batch 10,
// window 5 s, no maximum concurrency: 10 containers here, where Lambda
// would scale further; timeout 30 s, visibility 180 s), each container
// paced at the bare pace, with digests per invocation only. It is cut
// off after ten minutes: it would take hours to drain.
func simBefore() simConfig {
	return simConfig{Name: "queue, former defaults (before)", Notifications: 10_000, Arrival: time.Minute,
		BatchSize: 10, BatchingWindow: 5 * time.Second, Visibility: 180 * time.Second, MaxReceive: 5,
		MaxConcurrency: 10, Concurrency: 1, FreshStorm: true, Timeout: 30 * time.Second,
		Pace: 1100 * time.Millisecond, DigestWindow: 5 * time.Minute, Horizon: 10 * time.Minute}
}

// simDirect is SNS invoking the function directly, as many containers
// at once as notifications need (up to 1,000, an account's default
// concurrency), each paced at the bare pace.
func simDirect() simConfig {
	return simConfig{Name: "direct SNS", Notifications: 10_000, Arrival: time.Minute,
		Direct: true, AsyncRetries: []time.Duration{time.Minute, 2 * time.Minute}, BatchSize: 1,
		MaxConcurrency: 1000, Concurrency: 1, Timeout: 120 * time.Second,
		Pace: 1100 * time.Millisecond, DigestWindow: 5 * time.Minute, Horizon: time.Hour}
}

// simRules sends every bounce to one webhook, with the pace and the
// storm window of the model.
func simRules(pace, window time.Duration) string {
	return fmt.Sprintf(`version: 1
destinations:
  hook:
    slack: {webhook_env: HOOK, pace: %s, burst: 1, digest_after: %d, digest_window: %s}
rules:
  - name: bounces
    when: event.type == "Bounce"
    actions: [{notify: hook}]
`, pace, simDigestAfter, window)
}

// simDigestAfter is the rules' digest_after.
const simDigestAfter = 10

// simAddress is the one recipient of notification i.
func simAddress(i int) string { return fmt.Sprintf("r%05d@d%d.example", i, i%7) }

// simAddressRE finds the notifications a message names.
var simAddressRE = regexp.MustCompile("`r(\\d{5})@d\\d\\.example`")

// simDigestRE reads a digest's fallback text.
var simDigestRE = regexp.MustCompile(`^Digest · ([\d,]+) notifications? folded \(([\d,]+) recipients\)$`)

// simRecord is one notification on its way: a queue record, or an SNS
// delivery.
type simRecord struct {
	i        int
	visible  time.Time // when it became visible (arrived, or came back)
	receives int
}

// container is one warm Lambda container: its process state and its
// handler, built from the rules as cmd/sesrouter builds them.
type container struct {
	id    int
	parts *Parts
	h     *Handler
}

// simInvocation is what one invocation was given and reported.
type simInvocation struct {
	container  int
	start, end time.Time
	records    []int
	failed     []int // named in batchItemFailures, or the whole event when it failed
	tally      *Tally
	timedOut   bool
	cut        bool // by the horizon: what it did is not counted as done

	c     *container
	batch []*simRecord
}

// sim is one run of a simulation.
type sim struct {
	tb    testing.TB
	cfg   simConfig
	epoch time.Time // when the run began
	slack *actionstest.Slack
	rules *Config
	hook  string
	// transport is the fake's, shared by the containers (its
	// connections are not what the model is about); each has its client,
	// which tells calls.
	transport http.RoundTripper
	ses       []string // the SES notification of each record
	// fleet is the containers' shared state, with cfg.Fleet.
	fleet *state.Memory

	callsMu sync.Mutex
	calls   []simCall

	// Owned by the batcher (poll) until the run ends.
	visible    []*simRecord
	invisible  []*simRecord // by when they come back
	idle       []*container
	containers int
	running    int
	done       chan simInvocation

	invocations []simInvocation
	arrived     []time.Time // by record: when it first arrived
	deadLetters []int
	unfinished  int
}

// simResult is what a run gave.
type simResult struct {
	cfg         simConfig
	posts       []actionstest.Post
	counts      actionstest.Counts
	invocations []simInvocation
	calls       []simCall
	arrived     []time.Time
	start       time.Time
	deadLetters []int
	unfinished  int
	containers  int
	took        time.Duration
}

// runSim runs cfg against a fresh Slack fake, on the clock of the
// goroutine it is called on: a synctest bubble's fake one, or the real
// one.
func runSim(tb testing.TB, cfg simConfig) *simResult {
	tb.Helper()
	fake := actionstest.NewSlackInMemory(tb)
	fake.LimitPerSecond(1)
	s := &sim{tb: tb, cfg: cfg, slack: fake, hook: fake.WebhookURL("hook"), transport: fake.HTTPClient().Transport,
		rules: loadConfig(tb, simRules(cfg.Pace, cfg.DigestWindow)), done: make(chan simInvocation)}
	if cfg.Fleet {
		s.fleet = state.NewMemory()
	}
	total := cfg.Notifications + len(cfg.Lone)
	s.ses = make([]string, total)
	for i := range total {
		s.ses[i] = bounce(strconv.Itoa(i), simAddress(i))
	}
	s.arrived = make([]time.Time, total)
	if _, err := s.newContainer(); err != nil { // fail early, on the test's goroutine
		tb.Fatal(err)
	}
	s.containers = 0

	s.epoch = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.Horizon > 0 {
		ctx, cancel = context.WithDeadline(context.Background(), s.epoch.Add(cfg.Horizon))
	}
	defer cancel()
	arrivals := make(chan []*simRecord)
	go s.arrive(ctx, arrivals)
	s.poll(ctx, arrivals)
	return &simResult{cfg: cfg, posts: fake.Posts(), counts: fake.Counts(), invocations: s.invocations, calls: s.calls,
		arrived: s.arrived, start: s.epoch, deadLetters: s.deadLetters, unfinished: s.unfinished,
		containers: s.containers, took: time.Since(s.epoch)}
}

// simCall is one call to Slack: by which container, when it was
// answered, with what status (0: no answer).
type simCall struct {
	container int
	at        time.Time
	status    int
}

// simCalls is a container's RoundTripper: it notes every call.
type simCalls struct {
	s         *sim
	container int
}

func (c simCalls) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.s.transport.RoundTrip(r)
	call := simCall{container: c.container, at: time.Now()}
	if err == nil {
		call.status = resp.StatusCode
	}
	c.s.callsMu.Lock()
	c.s.calls = append(c.s.calls, call)
	c.s.callsMu.Unlock()
	return resp, err
}

// newContainer starts a container: its own Parts, its handler.
func (s *sim) newContainer() (*container, error) {
	s.containers++
	client := &http.Client{Transport: simCalls{s, s.containers}, Timeout: 30 * time.Second}
	parts := &Parts{
		Slack: slack.SlackConfig{Getenv: func(k string) string {
			if k == "HOOK" {
				return s.hook
			}
			return ""
		}, HTTPClient: client, Retry: slack.DefaultRetry(), Pacers: pace.NewPacers(s.cfg.Concurrency)},
		NewSES: func(context.Context) (SESAPI, error) { return nil, fmt.Errorf("no SES in the simulation") },
		Seen:   dedup.NewSeen(100_000), Storm: storm.New(), Timeout: 2 * time.Minute,
	}
	if s.fleet != nil {
		parts.State, parts.Storm = s.fleet, FleetStorm(s.fleet)
	}
	h, err := parts.Handler(context.Background(), s.rules)
	if err != nil {
		return nil, err
	}
	return &container{id: s.containers, parts: parts, h: h}, nil
}

// simTick is how often (model time) the arrivals are let in.
const simTick = 100 * time.Millisecond

// arrive lets the storm's notifications in, evenly over cfg.Arrival, on
// the ticks of the simulation's clock, then the lone ones at their
// times; it closes out when all have arrived.
func (s *sim) arrive(ctx context.Context, out chan<- []*simRecord) {
	defer close(out)
	send := func(recs []*simRecord) bool {
		select {
		case out <- recs:
			return true
		case <-ctx.Done():
			return false
		}
	}
	n := s.cfg.Notifications
	every := s.cfg.Arrival / time.Duration(n)
	tick := time.NewTicker(simTick)
	defer tick.Stop()
	for next := 0; next < n; {
		due := min(int(time.Since(s.epoch)/every)+1, n)
		if due > next {
			recs := make([]*simRecord, 0, due-next)
			now := time.Now()
			for i := next; i < due; i++ {
				recs = append(recs, &simRecord{i: i, visible: now})
			}
			if !send(recs) {
				return
			}
			next = due
		}
		if next == n {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
	for k, at := range s.cfg.Lone {
		t := time.NewTimer(time.Until(s.epoch.Add(at)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		if !send([]*simRecord{{i: n + k, visible: time.Now()}}) {
			return
		}
	}
}

// poll is the event source mapping (or SNS): it hands records to free
// containers, at most cfg.MaxConcurrency at once, when a batch is full or
// its oldest record has waited the batching window; it takes back what
// the invocations report failed. It returns when every record is done
// (posted, folded, or in the dead-letter queue) or at the horizon, once
// every invocation has returned.
func (s *sim) poll(ctx context.Context, arrivals <-chan []*simRecord) {
	window := s.cfg.BatchingWindow
	stopped := false
	for {
		now := time.Now()
		for len(s.invisible) > 0 && !s.invisible[0].visible.After(now) {
			s.visible = append(s.visible, s.invisible[0])
			s.invisible = s.invisible[1:]
		}
		for !stopped && s.running < s.cfg.MaxConcurrency && len(s.visible) > 0 {
			if len(s.visible) < s.cfg.BatchSize && now.Sub(s.visible[0].visible) < window {
				break
			}
			n := min(len(s.visible), s.cfg.BatchSize)
			batch := slices.Clone(s.visible[:n])
			s.visible = s.visible[n:]
			s.start(ctx, batch, now)
		}
		if arrivals == nil && s.running == 0 && (stopped || len(s.visible)+len(s.invisible) == 0) {
			s.unfinished += len(s.visible) + len(s.invisible)
			for _, t := range s.arrived {
				if t.IsZero() { // cut off before it arrived
					s.unfinished++
				}
			}
			return
		}
		var wake <-chan time.Time
		var timer *time.Timer
		if !stopped {
			var at time.Time
			if len(s.visible) > 0 && s.running < s.cfg.MaxConcurrency {
				at = s.visible[0].visible.Add(window)
			}
			if len(s.invisible) > 0 && (at.IsZero() || s.invisible[0].visible.Before(at)) {
				at = s.invisible[0].visible
			}
			if !at.IsZero() {
				timer = time.NewTimer(time.Until(at))
				wake = timer.C
			}
		}
		var ctxDone <-chan struct{}
		if !stopped {
			ctxDone = ctx.Done()
		}
		select {
		case recs, ok := <-arrivals:
			if !ok {
				arrivals = nil
				break
			}
			for _, r := range recs {
				s.arrived[r.i] = r.visible
			}
			s.visible = append(s.visible, recs...)
		case inv := <-s.done:
			s.finish(inv)
		case <-wake:
		case <-ctxDone:
			stopped = true // the horizon: no more invocations; wait for those running
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// start hands batch to a free container (the one freed last, as Lambda
// reuses warm ones; a new one when none is free).
func (s *sim) start(ctx context.Context, batch []*simRecord, now time.Time) {
	var c *container
	if n := len(s.idle); n > 0 {
		c = s.idle[n-1]
		s.idle = s.idle[:n-1]
	} else {
		var err error
		if c, err = s.newContainer(); err != nil {
			s.tb.Errorf("container: %v", err)
			return
		}
	}
	for _, r := range batch {
		r.receives++
		if !s.cfg.Direct {
			// The visibility timeout runs from the receipt: a failed
			// record comes back then, whenever the invocation ended.
			r.visible = now.Add(s.cfg.Visibility)
		}
	}
	s.running++
	go func() { s.done <- s.invoke(ctx, c, batch) }()
}

// invoke runs one invocation on c, as the Lambda runtime would: the
// function's timeout, ActionContext's margin, the handler's Invoke.
func (s *sim) invoke(ctx context.Context, c *container, batch []*simRecord) simInvocation {
	payload := s.payload(batch)
	if s.cfg.FreshStorm {
		c.h.Storm = storm.New()
	}
	inv := simInvocation{container: c.id, start: time.Now(), c: c, batch: batch}
	timeout := s.cfg.Timeout
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	actx, acancel := ActionContext(ictx, timeout)
	defer acancel()
	res := c.h.Invoke(actx, payload, simInvokeConcurrency, simInvokeWindow)
	inv.end = time.Now()
	inv.tally = res.Tally
	for _, r := range batch {
		inv.records = append(inv.records, r.i)
	}
	inv.timedOut = inv.end.Sub(inv.start) >= timeout
	inv.cut = ctx.Err() != nil
	switch {
	case inv.timedOut || res.Err != nil || !s.cfg.Direct && !res.SQS:
		inv.failed = inv.records // Lambda (or the queue) delivers the whole event again
	default:
		for _, id := range res.FailedIDs {
			i, err := strconv.Atoi(strings.TrimPrefix(id, "q-"))
			if err != nil {
				s.tb.Errorf("batchItemFailures names %q, not a record of the batch", id)
				continue
			}
			inv.failed = append(inv.failed, i)
		}
	}
	return inv
}

// finish takes an invocation's report: the container is free again; a
// failed record comes back later, or goes to the dead-letter queue.
func (s *sim) finish(inv simInvocation) {
	s.running--
	s.idle = append(s.idle, inv.c)
	s.invocations = append(s.invocations, inv)
	failed := map[int]bool{}
	for _, i := range inv.failed {
		failed[i] = true
	}
	for _, r := range inv.batch {
		if inv.cut {
			s.unfinished++
			continue
		}
		if !failed[r.i] {
			continue
		}
		tries := s.cfg.MaxReceive
		if s.cfg.Direct {
			tries = len(s.cfg.AsyncRetries) + 1
		}
		if r.receives >= tries {
			s.deadLetters = append(s.deadLetters, r.i)
			continue
		}
		if s.cfg.Direct {
			r.visible = inv.end.Add(s.cfg.AsyncRetries[r.receives-1])
		}
		k := sort.Search(len(s.invisible), func(j int) bool { return s.invisible[j].visible.After(r.visible) })
		s.invisible = slices.Insert(s.invisible, k, r)
	}
}

// payload is the event of one invocation: an SQS batch, or an SNS event
// of one notification.
func (s *sim) payload(batch []*simRecord) []byte {
	var v any
	if s.cfg.Direct {
		r := batch[0]
		v = events.SNSEvent{Records: []events.SNSEventRecord{{EventSource: "aws:sns", EventVersion: "1.0",
			SNS: events.SNSEntity{Type: "Notification", MessageID: fmt.Sprintf("sns-%d", r.i),
				TopicArn: "arn:aws:sns:us-east-1:123456789012:ses", Message: s.ses[r.i]}}}}
	} else {
		ev := events.SQSEvent{Records: make([]events.SQSMessage, len(batch))}
		for k, r := range batch {
			ev.Records[k] = events.SQSMessage{MessageId: fmt.Sprintf("q-%d", r.i), EventSource: "aws:sqs",
				Body:       snsBody(fmt.Sprintf("sns-%d", r.i), s.ses[r.i]),
				Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(r.receives)}}
		}
		v = ev
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings only
	}
	return b
}

// simFigures are what a run came to.
type simFigures struct {
	// Messages are the posts Slack accepted, Throttled the calls it
	// answered 429, Calls every call.
	Messages, Throttled, Calls int
	// Digests are the digest messages; Named the notifications named in
	// a message of their own, Folded those counted in digests.
	Digests, Named, Folded int
	// Invocations, the containers they ran in, the records delivered
	// again, those in the dead-letter (or failure) queue and those left
	// at the horizon.
	Invocations, Containers, Redelivered, DeadLetters, Unfinished int
	// Duplicates are the notifications a container took for ones it had
	// handled. Dropped are the records an invocation neither handled nor
	// reported in batchItemFailures: the queue deletes them unseen.
	Duplicates, Dropped int
	// Took is how long the run took in model time.
	Took time.Duration
}

// figures reads the posts and the invocations: the figures, and when
// each notification was named in a message of its own.
func (r *simResult) figures() (simFigures, map[int][]time.Time) {
	f := simFigures{Messages: r.counts.Succeeded, Throttled: r.counts.Throttled, Calls: r.counts.Requests,
		Invocations: len(r.invocations), Containers: r.containers, DeadLetters: len(r.deadLetters),
		Unfinished: r.unfinished, Took: r.took}
	named := map[int][]time.Time{}
	for _, p := range r.posts {
		if m := simDigestRE.FindStringSubmatch(p.Text); m != nil {
			f.Digests++
			n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
			f.Folded += n
			continue
		}
		seen := map[int]bool{}
		for _, m := range simAddressRE.FindAllStringSubmatch(string(p.Body), -1) {
			i, _ := strconv.Atoi(m[1])
			if !seen[i] {
				seen[i] = true
				named[i] = append(named[i], p.Time)
			}
		}
	}
	f.Named = len(named)
	delivered := map[int]bool{}
	for _, inv := range r.invocations {
		f.Redelivered += len(inv.records)
		for _, i := range inv.records {
			delivered[i] = true
		}
		f.Duplicates += inv.tally.Duplicates
		if !inv.cut && len(inv.failed) < len(inv.records) {
			f.Dropped += len(inv.records) - inv.tally.Inputs
		}
	}
	f.Redelivered -= len(delivered)
	return f, named
}

// modelAt is the model time of an instant of the run.
func (r *simResult) modelAt(t time.Time) time.Duration {
	return t.Sub(r.start)
}

// simHeader and row make the table of the benchmark.
const simHeader = "| deployment | Slack messages | 429s (of calls) | digests | named / folded | invocations | containers | redelivered | dead letters | dropped | left at the end | simulated time |"

func (f simFigures) row(name string) string {
	return fmt.Sprintf("| %s | %d | %d (of %d) | %d | %d / %d | %d | %d | %d | %d | %d | %d | %s |", name,
		f.Messages, f.Throttled, f.Calls, f.Digests, f.Named, f.Folded, f.Invocations, f.Containers, f.Redelivered,
		f.DeadLetters, f.Dropped, f.Unfinished, f.Took.Round(time.Second))
}

// check checks what every storm-safe run must show: every notification
// named in a message of its own or counted in a digest, once; nothing in
// the dead-letter queue or left over; no record reported in
// batchItemFailures that its invocation had posted.
func (r *simResult) check(tb testing.TB) simFigures {
	tb.Helper()
	f, named := r.figures()
	total := r.cfg.Notifications + len(r.cfg.Lone)
	twice := 0
	for i, ts := range named {
		if len(ts) > 1 {
			twice++
			if twice <= 5 {
				tb.Errorf("%s named in %d messages", simAddress(i), len(ts))
			}
		}
	}
	if f.Named+f.Folded != total {
		tb.Errorf("%d notifications named in messages + %d counted in digests = %d, want %d", f.Named, f.Folded, f.Named+f.Folded, total)
	}
	if f.DeadLetters+f.Unfinished != 0 {
		tb.Errorf("%d records in the dead-letter queue, %d left at the horizon; want none", f.DeadLetters, f.Unfinished)
	}
	if f.Dropped != 0 {
		tb.Errorf("%d records neither handled nor reported in batchItemFailures: lost", f.Dropped)
	}
	if f.Duplicates != 0 {
		tb.Errorf("%d notifications taken for duplicates: a record reported failed had been done", f.Duplicates)
	}
	bad := 0
	for _, inv := range r.invocations {
		for _, i := range inv.failed {
			for _, t := range named[i] {
				if !t.Before(inv.start) && !t.After(inv.end) {
					bad++
					if bad <= 5 {
						tb.Errorf("%s was posted at %s by the invocation (container %d, %s to %s) that reported it in batchItemFailures",
							simAddress(i), r.modelAt(t), inv.container, r.modelAt(inv.start), r.modelAt(inv.end))
					}
				}
			}
		}
	}
	return f
}

// TestStormSimulation shows, on a synctest bubble's fake clock, that the
// default deployment is storm-safe: 10,000 bounces in a minute through
// the queue with the template's defaults (batches of 1,000, a 10 s
// window, 2 at once, each container pacing at (2+1) × 1.1 s) come to at
// most 40 Slack messages, fewer than 5% of Slack's calls are answered
// 429, and every recipient is named or counted, once. Then, once the
// storm window has passed, each of three lone notifications is posted, in
// a message of its own, exactly when the batching window is over.
func TestStormSimulation(t *testing.T) {
	synctest.Test(t, testStormSimulation)
}

// testStormSimulation is TestStormSimulation inside its bubble.
func testStormSimulation(t *testing.T) {
	cfg := simAfter()
	// After the storm and its window (its messages end within about 40 s;
	// a container folds until digest_after of them are older than
	// digest_window), three notifications, each alone in its batch.
	quiet := cfg.Arrival + cfg.DigestWindow
	spacing := cfg.BatchingWindow + 2*time.Second
	cfg.Lone = []time.Duration{quiet, quiet + spacing, quiet + 2*spacing}
	r := runSim(t, cfg)
	f := r.check(t)
	t.Logf("\n%s\n%s", simHeader, f.row(cfg.Name))

	// The storm's figures: everything but what the invocations of the
	// lone notifications did (alone in their time).
	type span struct{ from, to time.Time }
	var lone []span
	for _, inv := range r.invocations {
		if slices.Min(inv.records) >= cfg.Notifications {
			lone = append(lone, span{inv.start, inv.end})
		}
	}
	ofStorm := func(t time.Time) bool {
		for _, sp := range lone {
			if !t.Before(sp.from) && !t.After(sp.to) {
				return false
			}
		}
		return true
	}
	messages, calls, throttled := 0, 0, 0
	for _, p := range r.posts {
		if ofStorm(p.Time) {
			messages++
		}
	}
	for _, c := range r.calls {
		if ofStorm(c.at) {
			calls++
			if c.status == http.StatusTooManyRequests {
				throttled++
			}
		}
	}
	if messages > 40 {
		t.Errorf("the storm came to %d Slack messages, want at most 40", messages)
	}
	if 20*throttled >= calls {
		t.Errorf("%d of the storm's %d Slack calls were answered 429, want fewer than 5%%", throttled, calls)
	}

	if f.Redelivered != 0 {
		t.Errorf("%d records delivered again: a post or a digest gave up (a 429 is to be waited out within the invocation)", f.Redelivered)
	}

	// Quiet times: fewer than digest_after messages of the storm's own
	// within digest_window before the first lone notification and until
	// the last is handled, so that no container is storming.
	_, named := r.figures()
	from, to := quiet-cfg.DigestWindow, cfg.Lone[len(cfg.Lone)-1]+cfg.BatchingWindow+time.Second
	var late []string
	for i := range cfg.Notifications {
		for _, at := range named[i] {
			if m := r.modelAt(at); m > from && m < to {
				late = append(late, fmt.Sprintf("%s at %s", simAddress(i), m))
			}
		}
	}
	if len(late) >= simDigestAfter {
		t.Fatalf("the storm posted %d messages of its own from %s to %s (%s): not quiet times%s", len(late), from, to, strings.Join(late, ", "), r.trace())
	}
	// The latency of each lone notification: from its arrival in the
	// queue to the post that names it. The model says the window (the
	// batcher waits it out for a batch that is not full) and then one post
	// at once (the pacer has been idle for minutes, the storm is over);
	// the real work takes no time on the bubble's clock, so the latency is
	// the window exactly. A pace still owed or a storm still folding
	// would add to it.
	for k := range cfg.Lone {
		i := cfg.Notifications + k
		if len(named[i]) != 1 {
			t.Errorf("lone notification %s: named in %d messages of its own, want 1 (not folded: the storm is over)", simAddress(i), len(named[i]))
			continue
		}
		if lat := named[i][0].Sub(r.arrived[i]); lat != cfg.BatchingWindow {
			t.Errorf("lone notification %d, arrived at %s, was posted %s later, want %s (the batching window)", k+1, r.modelAt(r.arrived[i]), lat, cfg.BatchingWindow)
		}
	}
	if t.Failed() {
		t.Logf("what happened:%s", r.trace())
	}
}

// TestStormSimulationFleet shows, on a synctest bubble's fake clock, the
// fold across the fleet: 2,000 bounces in a minute through the queue in
// batches of 100, up to four containers at once. Each container on its
// own folds after its own digest_after messages, so the storm names
// digest_after recipients per container; with one fleet state shared by
// the containers (state.Memory, as the state table), it names exactly
// digest_after in all, and every other recipient is counted in a digest,
// once.
func TestStormSimulationFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := simConfig{Name: "queue, 4 containers", Notifications: 2000, Arrival: time.Minute,
			BatchSize: 100, BatchingWindow: 10 * time.Second, Visibility: 730 * time.Second, MaxReceive: 5,
			MaxConcurrency: 4, Concurrency: 4, Timeout: 120 * time.Second,
			Pace: 1100 * time.Millisecond, DigestWindow: 5 * time.Minute, Horizon: time.Hour}
		own := runSim(t, cfg)
		fo := own.check(t)
		cfg.Fleet, cfg.Name = true, cfg.Name+", one fleet state"
		fleet := runSim(t, cfg)
		ff := fleet.check(t)
		t.Logf("\n%s\n%s\n%s", simHeader, fo.row("queue, 4 containers, state per process"), ff.row(cfg.Name))
		if own.containers < 2 || fleet.containers < 2 {
			t.Fatalf("%d and %d containers ran, want several: the model shows nothing", own.containers, fleet.containers)
		}
		if fo.Named <= simDigestAfter {
			t.Errorf("state per process: %d recipients named in messages of their own, want more than digest_after (%d): each container folds on its own count", fo.Named, simDigestAfter)
		}
		if ff.Named != simDigestAfter {
			t.Errorf("one fleet state: %d recipients named in messages of their own across %d containers, want digest_after (%d) in all", ff.Named, fleet.containers, simDigestAfter)
		}
		if t.Failed() {
			t.Logf("what happened:%s", fleet.trace())
		}
	})
}

// BenchmarkStormSimulation prints the figures of the storm (10,000
// bounces in a minute) for the table of docs/performance.md: the queue
// with the template's defaults (after), with its former defaults and
// digests per invocation (before), and SNS invoking the function
// directly. It runs on the real clock, at real speed: the former
// defaults are cut off after 10 minutes, the direct path takes about 5
// (Lambda's retries after 1 and 2 minutes), the template's shape 1, or
// 13 when a batch has to come back after the visibility timeout. Each
// sub-benchmark (after, before, direct) runs alone with -bench
// StormSimulation/NAME.
func BenchmarkStormSimulation(b *testing.B) {
	var rows []string
	for _, tc := range []struct {
		name string
		cfg  simConfig
	}{{"after", simAfter()}, {"before", simBefore()}, {"direct", simDirect()}} {
		b.Run(tc.name, func(b *testing.B) {
			var r *simResult
			for b.Loop() {
				r = runSim(b, tc.cfg)
			}
			var f simFigures
			if tc.name == "after" {
				// The storm-safe shape accounts for every recipient, once,
				// whatever its figures; the others are known to lose some.
				if f = r.check(b); b.Failed() {
					b.Logf("what happened:%s", r.trace())
				}
			} else {
				f, _ = r.figures()
			}
			b.ReportMetric(float64(f.Messages), "messages")
			b.ReportMetric(float64(f.Throttled), "429s")
			b.ReportMetric(float64(f.Calls), "calls")
			b.ReportMetric(float64(f.Digests), "digests")
			b.ReportMetric(float64(f.DeadLetters), "dead-letters")
			b.ReportMetric(float64(f.Unfinished), "unfinished")
			b.ReportMetric(float64(f.Dropped), "dropped")
			b.ReportMetric(f.Took.Seconds(), "sim-s")
			rows = append(rows, f.row(tc.cfg.Name))
			b.Logf("\n%s\n%s", simHeader, f.row(tc.cfg.Name))
		})
	}
	b.Logf("10,000 bounces in 60 s:\n%s\n%s", simHeader, strings.Join(rows, "\n"))
}

// trace is the run's story, for a failure: each invocation, and each
// Slack call, in model time.
func (r *simResult) trace() string {
	var b strings.Builder
	invs := slices.Clone(r.invocations)
	slices.SortFunc(invs, func(x, y simInvocation) int { return x.start.Compare(y.start) })
	for _, inv := range invs {
		fmt.Fprintf(&b, "\ninvocation in container %d, %s to %s: %d records, %d folded, %d digests (%d failed), %d reported failed",
			inv.container, r.modelAt(inv.start), r.modelAt(inv.end), len(inv.records), inv.tally.Digested["hook"],
			inv.tally.Digests+inv.tally.DigestsFailed, inv.tally.DigestsFailed, len(inv.failed))
	}
	for _, c := range r.calls {
		fmt.Fprintf(&b, "\ncall from container %d answered at %s: %d", c.container, r.modelAt(c.at), c.status)
	}
	return b.String()
}
