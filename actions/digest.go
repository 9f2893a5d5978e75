package actions

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/words"
	"github.com/slack-go/slack"
)

// Storms. A destination takes DigestAfter messages within its
// DigestWindow; once it has, its later notifies are folded into a digest
// for the batch they belong to (a route run, a Lambda invocation, a
// window of serve), posted when the batch ends. The storm state outlives
// batches (it lives as long as the process: a warm Lambda container, a
// serve across reloads), so that a storm spread over many small batches
// is still folded; the digests never outlive their batch.
const (
	// digestAddresses is how many folded addresses a digest names.
	digestAddresses = 20
	// digestRows is how many rows each count of a digest shows.
	digestRows = 15
)

// Storm is the storm state of every destination: when each had its
// recent messages. It is safe for concurrent use.
type Storm struct {
	mu      sync.Mutex
	posts   map[string][]time.Time // by destination: the times of its last DigestAfter messages, oldest first
	threads map[string]*threadSlot // by destination: its open storm thread
	roots   Roots

	// shared, when set, counts the messages of every process instead of
	// posts; foldUntil is then, by destination, the end of the window in
	// which it was last found storming.
	shared    StormCounter
	foldUntil map[string]time.Time
}

// StormCounter counts a destination's messages across every process
// that shares it (the fleet state), in fixed windows.
type StormCounter interface {
	// CountMessage adds one to the messages of the destination dest in
	// the window of length window that holds now, and returns how many
	// it has had in that window, this one included. An error leaves the
	// notify undecided: it fails.
	CountMessage(ctx context.Context, dest string, window time.Duration, now time.Time) (int64, error)
}

// NewStorm returns a Storm in which no destination has had any message,
// whose storm threads' roots are kept in the process.
func NewStorm() *Storm { return NewStormWithRoots(ProcessRoots()) }

// NewStormWithRoots is NewStorm with the roots of storm threads kept in
// roots: with fleet state, one root per storm for the whole fleet.
func NewStormWithRoots(roots Roots) *Storm {
	return &Storm{posts: map[string][]time.Time{}, threads: map[string]*threadSlot{}, roots: roots}
}

// NewFleetStorm returns a Storm whose counts are shared: a destination
// storms once c counts more than its digest_after messages within the
// digest_window (a fixed window of that length) across every process
// that shares c, however many there are. Its storm threads last to the
// end of that window, and their roots are kept in roots (nil: in the
// process), which, shared too, gives the fleet one root per storm.
func NewFleetStorm(c StormCounter, roots Roots) *Storm {
	if roots == nil {
		roots = ProcessRoots()
	}
	s := NewStormWithRoots(roots)
	s.shared, s.foldUntil = c, map[string]time.Time{}
	return s
}

// decide is admit, from the shared counts when s has them.
func (s *Storm) decide(ctx context.Context, d *rules.Destination, now time.Time) (bool, error) {
	if s.shared == nil {
		return s.admit(d, now), nil
	}
	after, window := d.StormLimits()
	c, err := s.shared.CountMessage(ctx, d.Name, window, now)
	if err != nil {
		return false, fmt.Errorf("storm count of %s: %w", d.Name, err)
	}
	if c <= int64(after) {
		return true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.foldUntil[d.Name] = now.Truncate(window).Add(window)
	return false, nil
}

// admit says whether a notice to d at now is posted (true, and counted)
// or folded (false): folded once d has had DigestAfter notices within
// DigestWindow of now.
func (s *Storm) admit(d *rules.Destination, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	after, window := d.StormLimits()
	recent := s.posts[d.Name]
	cut := 0
	for cut < len(recent) && now.Sub(recent[cut]) >= window {
		cut++
	}
	recent = recent[cut:]
	if len(recent) >= after {
		s.posts[d.Name] = recent
		return false
	}
	recent = append(recent, now)
	s.posts[d.Name] = recent
	return true
}

// Storming reports whether d's later notifies are being folded now.
func (s *Storm) Storming(d *rules.Destination, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared != nil {
		return now.Before(s.foldUntil[d.Name])
	}
	after, window := d.StormLimits()
	n := 0
	for _, t := range s.posts[d.Name] {
		if now.Sub(t) < window {
			n++
		}
	}
	return n >= after
}

// Batch gathers the digests of one batch: what its notifications folded,
// per destination. Dispatch folds into it; Flush posts the digests once
// every Dispatch of the batch has returned. It is safe for concurrent use.
type Batch struct {
	storm *Storm // nil: every notify folds (a sweep)
	now   func() time.Time
	keep  bool
	sweep bool

	mu    sync.Mutex
	dests map[string]*digest
}

// NewBatch returns an empty batch under storm. keep says whether to keep
// the inputs and de-duplication keys of what is folded (for a bounded
// batch whose inputs can be retried: a Lambda invocation, a window of
// serve); without it, only counts are kept, so that a long route run's
// memory does not grow with what it folds.
func NewBatch(storm *Storm, keep bool) *Batch {
	return &Batch{storm: storm, now: time.Now, keep: keep, dests: map[string]*digest{}}
}

// NewSweepBatch returns the batch of a sweep: every notify folds, and
// each destination gets one summary message at the end, saying how many
// addresses were taken off the suppression list.
func NewSweepBatch() *Batch {
	return &Batch{now: time.Now, sweep: true, dests: map[string]*digest{}}
}

// digest is what a batch folded for one destination.
type digest struct {
	dest          *rules.Destination
	notifier      Notifier // the notifier of the rules in force when folded
	notifications int
	recipients    int
	byType        map[string]int
	byDomain      map[string]int
	byRule        map[string]int
	addresses     []string // the first digestAddresses folded
	inputs, keys  []string // when the batch keeps them
	claims        [][]string
	removed       int // recipients taken off the suppression list
	sweep         bool
	// of, for the digest of one notification's recipients past its
	// destination's digest_after messages (foldRecipients), is how many
	// recipients the notification has, and messageID its SES message id.
	of        int
	messageID string
}

// newDigest returns an empty digest for d.
func newDigest(d *rules.Destination) *digest {
	return &digest{dest: d, byType: map[string]int{}, byDomain: map[string]int{}, byRule: map[string]int{}}
}

// admit says whether the notice to d is posted (true) or folded into
// the batch's digest for d (false), and, when d has an open storm thread
// (the first fold starts one), its ts: the notice's messages go in it,
// and its root counts the notice. With shared counts (the fleet state),
// an error when they cannot be read, and then nothing is folded.
func (b *Batch) admit(ctx context.Context, d *rules.Destination, n Notifier, notice *Notice) (bool, string, error) {
	var thread *stormThread
	if b.storm != nil {
		now := b.now()
		ok, err := b.storm.decide(ctx, d, now)
		if err != nil {
			return false, "", err
		}
		if ok {
			thread = b.storm.threadFor(ctx, d, n, now, nil)
			if thread != nil {
				thread.count(notice, now)
				return true, thread.ts, nil
			}
			return true, "", nil
		}
		thread = b.storm.threadFor(ctx, d, n, now, notice)
	}
	b.fold(d, n, notice)
	if thread != nil {
		return false, thread.ts, nil
	}
	return false, "", nil
}

// fold folds notice into the batch's digest for d.
func (b *Batch) fold(d *rules.Destination, n Notifier, notice *Notice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.dests[d.Name]
	if g == nil {
		g = newDigest(d)
		g.sweep = b.sweep
		b.dests[d.Name] = g
	}
	g.notifier = n
	if b.keep {
		g.inputs = append(g.inputs, notice.Notification.Input)
		keys := SeenKeys(notice.Notification)
		g.keys = append(g.keys, keys...)
		g.claims = append(g.claims, keys)
	}
	g.add(notice, notice.Recipients)
}

// foldRecipients is the messages of a notice to d whose recipients take
// more than after messages: the messages of as many of its first
// recipients as fit in after messages, then one digest of the rest,
// counted as a storm's digest counts them (by type, recipient domain and
// rule, and the first addresses). However many recipients the notice
// has, it takes at most after + 1 messages.
func foldRecipients(notice Notice, d *rules.Destination, after int) []Message {
	all := notice.Recipients
	head := notice
	head.Total = len(all)
	fits := func(k int) bool {
		head.Recipients = all[:k]
		return len(BuildMessages(head)) <= after
	}
	// The most first recipients that fit: more recipients never take
	// fewer messages. Each message holds at least one recipient, so
	// after of them fit; search up from there by doubling, then halve.
	lo, hi := 0, len(all) // all of them do not fit
	for k := max(after, 1); k < hi; k *= 2 {
		if !fits(k) {
			hi = k
			break
		}
		lo = k
	}
	for hi-lo > 1 {
		if mid := lo + (hi-lo)/2; fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	var msgs []Message
	if lo > 0 {
		head.Recipients = all[:lo]
		msgs = BuildMessages(head)
	}
	g := newDigest(d)
	g.of = len(all)
	if notice.Notification != nil {
		g.messageID = notice.Notification.Mail.MessageID
	}
	g.add(&notice, all[lo:])
	return append(msgs, g.message())
}

// add counts notice in g, with recipients rs: all of the notice's, or,
// for the digest of one notification, those it folds.
func (g *digest) add(notice *Notice, rs []NoticeRecipient) {
	g.notifications++
	nt := notice.Notification
	if nt == nil {
		nt = new(ses.Notification)
	}
	count(g.byType, eventTitle(nt))
	for i := range rs {
		r := &rs[i]
		addr := recipientAddress(r)
		g.recipients++
		domain := "(none)"
		if r.Recipient != nil && r.Recipient.Domain != "" {
			domain = r.Recipient.Domain
		}
		count(g.byDomain, domain)
		count(g.byRule, cmp.Or(r.Rule, "(none)"))
		for _, o := range r.SES {
			if o.Outcome == OutcomeRemoved || (o.Outcome == OutcomeDryRun && o.Action == rules.ActionUnsuppress) {
				g.removed++
			}
		}
		if len(g.addresses) < digestAddresses {
			g.addresses = append(g.addresses, addr)
		}
	}
}

// digestKeys bounds the keys a digest counts by (types, domains, rules),
// so that its memory does not grow with a storm's variety: past it, new
// keys are counted together as "(others)".
const digestKeys = 1000

// count adds one to m[key], or to m["(others)"] once m is full.
func count(m map[string]int, key string) {
	if _, ok := m[key]; !ok && len(m) >= digestKeys {
		key = "(others)"
	}
	m[key]++
}

// DigestResult is what became of one digest.
type DigestResult struct {
	Destination string
	// Outcome is OutcomePosted, OutcomeDryRun or OutcomeFailed (with Err).
	Outcome Outcome
	Err     error
	Message Message
	// Notifications and Recipients are what the digest folded.
	Notifications, Recipients int
	// Inputs are the inputs of the notifications folded, and Keys their
	// de-duplication keys, when the batch keeps them: a failed digest
	// leaves them unseen, so they count as failed and their keys are to
	// be forgotten.
	Inputs, Keys []string
	// Claims are the keys of each notification folded, one slice per
	// notification, when the batch keeps them: the claims in the fleet
	// state to release.
	Claims [][]string
}

// String says what became of the digest, in a line:
//
//	digest to ses-alerts posted: 990 more bounces …
func (r DigestResult) String() string {
	s := "digest to " + r.Destination + " " + string(r.Outcome) + ": " + r.Message.Text
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Flush posts one digest message to each destination that folded
// anything, in the order of the rules file, and says what became of
// each. The batch is then empty (Flush may be called again).
func (b *Batch) Flush(ctx context.Context) []DigestResult {
	b.mu.Lock()
	dests := slices.SortedFunc(maps.Values(b.dests), func(x, y *digest) int {
		return cmp.Or(cmp.Compare(x.dest.Index, y.dest.Index), cmp.Compare(x.dest.Name, y.dest.Name))
	})
	b.dests = map[string]*digest{}
	b.mu.Unlock()
	var results []DigestResult
	for _, g := range dests {
		r := DigestResult{Destination: g.dest.Name, Message: g.message(), Notifications: g.notifications, Recipients: g.recipients,
			Inputs: g.inputs, Keys: g.keys, Claims: g.claims}
		r.Message.ThreadTS = b.storm.threadTS(g.dest.Name)
		r.Outcome, r.Err = g.notifier.Post(ctx, r.Message)
		results = append(results, r)
	}
	return results
}

// message is the digest as one Slack message: a header, then the counts
// by type and subtype, by recipient domain and by deciding rule, then the
// first addresses. It keeps within Slack's limits whatever it holds.
func (g *digest) message() Message {
	header := "Digest · " + words.Count(g.notifications, "notification", "notifications") + " folded"
	context := fmt.Sprintf("%s, after %s to this destination within %s",
		words.Count(g.recipients, "recipient", "recipients"), words.Count(g.dest.DigestAfter, "message", "messages"), shortDuration(g.dest.DigestWindow))
	tally := words.Count(g.recipients, "recipient", "recipients")
	switch {
	case g.sweep:
		header = fmt.Sprintf("Sweep · %s taken off the suppression list", words.Count(g.removed, "address", "addresses"))
		context = fmt.Sprintf("%s on the suppression list matched a rule that notifies here", words.Count(g.recipients, "address", "addresses"))
	case g.of > 0:
		after, _ := g.dest.StormLimits()
		header = fmt.Sprintf("Digest · %s folded", words.Count(g.recipients, "more recipient", "more recipients"))
		context = fmt.Sprintf("%s of the %s recipients of one notification, after %s for it",
			words.Thousands(g.recipients), words.Thousands(g.of), words.Count(after, "message", "messages"))
		if g.messageID != "" {
			context += " · *Message ID:* " + codeSpan(g.messageID, capMessageID)
		}
		tally = "of " + words.Count(g.of, "recipient", "recipients")
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, plainText(header, maxHeaderText), false, false)),
		slack.NewContextBlock("", mrkdwn(context)),
		section(countsText("By type", g.byType)),
		section(countsText("By recipient domain", g.byDomain)),
		section(countsText("By rule", g.byRule)),
	}
	var addrs strings.Builder
	addrs.WriteString("*Recipients*\n")
	for i, a := range g.addresses {
		if i > 0 {
			addrs.WriteString(", ")
		}
		addrs.WriteString(codeSpan(a, capFallbackAddress))
	}
	if more := g.recipients - len(g.addresses); more > 0 {
		fmt.Fprintf(&addrs, " and %s more", words.Thousands(more))
	}
	blocks = append(blocks, section(addrs.String()))
	text := fmt.Sprintf("%s (%s)", header, tally)
	return Message{Text: escapeText(text, maxFallbackText), Blocks: blocks}
}

// countsText is a titled list of counts, largest first, at most
// digestRows rows and "and N others".
func countsText(title string, counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b))
	})
	var b strings.Builder
	b.WriteString("*" + title + "*")
	for i, k := range keys {
		if i == digestRows {
			rest := 0
			for _, k := range keys[i:] {
				rest += counts[k]
			}
			fmt.Fprintf(&b, "\n• and %d others: %s", len(keys)-i, words.Thousands(rest))
			break
		}
		fmt.Fprintf(&b, "\n• %s: %s", escapeText(k, capRule), words.Thousands(counts[k]))
	}
	return b.String()
}

// shortDuration writes d for people, without the zero units Go writes:
// 5m, not 5m0s; 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}
