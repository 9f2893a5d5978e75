package actions

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sesrouter/sesrouter/engine"
	"github.com/slack-go/slack"
)

// Digests: in a storm, a destination takes the first DigestAfter messages
// of a batch (a route run, an SQS batch, a window of serve); every later
// notify of the batch to it is folded into the batch's digest for it, one
// message posted when the batch ends.
const (
	// digestAddresses is how many folded addresses a digest names.
	digestAddresses = 20
	// digestRows is how many rows each count of a digest shows.
	digestRows = 15
)

// Batch gathers the digests of one batch. Make one with
// Dispatcher.NewBatch, carry out the batch's plans under a context from
// WithBatch, then call Flush once every Dispatch of the batch has
// returned. It is safe for concurrent use.
type Batch struct {
	d *Dispatcher

	mu    sync.Mutex
	dests map[string]*digest
}

// digest is what a batch knows of one destination.
type digest struct {
	posted        int // messages posted (or being posted)
	notifications int // folded
	recipients    int // folded
	byType        map[string]int
	byDomain      map[string]int
	byRule        map[string]int
	addresses     []string // the first digestAddresses folded
	// folded are the notifications folded, kept when the dispatcher has
	// a Seen: should the digest fail, they are forgotten, so that a
	// redelivery is not a duplicate.
	folded []*engine.Notification
}

// NewBatch returns an empty batch for d's destinations.
func (d *Dispatcher) NewBatch() *Batch {
	return &Batch{d: d, dests: map[string]*digest{}}
}

type batchKey struct{}

// WithBatch returns ctx carrying b: Dispatch under it counts the messages
// of each destination in b and folds the notifications past the
// destination's digest_after into b. Without a batch, every notify posts.
func WithBatch(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

func batchFrom(ctx context.Context) *Batch {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	return b
}

// admit says whether the notice to dest, which takes msgs messages, is
// posted (true) or folded into the digest (false, and counted).
func (b *Batch) admit(dest string, limit, msgs int, notice *Notice) bool {
	if limit < 1 {
		limit = engine.DefaultDigestAfter
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.dests[dest]
	if g == nil {
		g = &digest{byType: map[string]int{}, byDomain: map[string]int{}, byRule: map[string]int{}}
		b.dests[dest] = g
	}
	if g.posted < limit {
		g.posted += msgs
		return true
	}
	g.notifications++
	if b.d != nil && b.d.Seen != nil {
		g.folded = append(g.folded, notice.Notification)
	}
	g.byType[eventTitle(notice.Notification)]++
	for i := range notice.Recipients {
		r := &notice.Recipients[i]
		addr := recipientAddress(r)
		g.recipients++
		domain := "(none)"
		if at := strings.LastIndexByte(addr, '@'); at >= 0 {
			domain = strings.ToLower(addr[at+1:])
		}
		g.byDomain[domain]++
		g.byRule[cmp.Or(r.Rule, "(none)")]++
		if len(g.addresses) < digestAddresses {
			g.addresses = append(g.addresses, addr)
		}
	}
	return false
}

// digestAfter is d's digest_after; 0 (the default) for nil.
func digestAfter(d *engine.Destination) int {
	if d == nil {
		return 0
	}
	return d.Slack.DigestAfter
}

// Flush posts one digest message to each destination that folded
// anything, in the order of the rules file, and returns one result per
// digest: action "digest:NAME", outcome posted or failed. The batch is
// then empty (Flush may be called again).
func (b *Batch) Flush(ctx context.Context) []Result {
	b.mu.Lock()
	dests := b.dests
	b.dests = map[string]*digest{}
	b.mu.Unlock()
	var results []Result
	for _, name := range b.d.Rules.DestinationNames {
		g := dests[name]
		if g == nil || g.notifications == 0 {
			continue
		}
		r := Result{Action: "digest:" + name, Outcome: OutcomePosted}
		m := g.message()
		r.Messages = []Message{m}
		switch n := b.d.Notifiers[name]; {
		case n == nil:
			r.Outcome, r.Error = OutcomeFailed, "destination "+name+" is not set up"
		case b.d.DryRun:
			r.Outcome, r.Payload = OutcomeDryRun, n.Payload(m)
		default:
			if err := n.Post(ctx, m); err != nil {
				r.Outcome, r.Error = OutcomeFailed, err.Error()
				for _, nt := range g.folded {
					b.d.Seen.forget(seenKeys(nt))
				}
			}
		}
		results = append(results, r)
	}
	return results
}

// message is the digest as one Slack message: a header, then the counts
// by type and subtype, by recipient domain and by deciding rule, then the
// first addresses. It keeps within Slack's limits whatever it holds.
func (g *digest) message() Message {
	header := fmt.Sprintf("Digest · %s notifications folded", thousands(g.notifications))
	if g.notifications == 1 {
		header = "Digest · 1 notification folded"
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, plainText(header, maxHeaderText), false, false)),
		slack.NewContextBlock("", mrkdwn(fmt.Sprintf("%s recipients, past this destination's messages for the batch", thousands(g.recipients)))),
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
		fmt.Fprintf(&addrs, " and %s more", thousands(more))
	}
	blocks = append(blocks, section(addrs.String()))
	text := fmt.Sprintf("%s (%s recipients)", header, thousands(g.recipients))
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
			fmt.Fprintf(&b, "\n• and %d others: %s", len(keys)-i, thousands(rest))
			break
		}
		fmt.Fprintf(&b, "\n• %s: %s", escapeText(k, capRule), thousands(counts[k]))
	}
	return b.String()
}

// thousands formats n with commas: 1,234.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
