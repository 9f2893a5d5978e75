package actions

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/words"
	"github.com/slack-go/slack"
)

// Digests. A digest counts the notices folded into it, by event type,
// recipient domain and deciding rule, with the first addresses, and
// renders them as one Slack message: a storm's digest (what a batch
// folded for a destination), a sweep's summary, the digest of one
// notification's recipients past digest_after (foldRecipients), and the
// running counts of a storm's root message. Which notices fold, and
// when a digest is posted, is the pipeline's to decide.
const (
	// digestAddresses is how many folded addresses a digest names.
	digestAddresses = 20
	// digestRows is how many rows each count of a digest shows.
	digestRows = 15
)

// Digest counts the notices folded into one destination's digest and
// renders them as a message. It is not safe for concurrent use.
type Digest struct {
	dest          *rules.Destination
	notifications int
	recipients    int
	byType        map[string]int
	byDomain      map[string]int
	byRule        map[string]int
	addresses     []string // the first digestAddresses folded
	removed       int      // recipients taken off the suppression list
	sweep         bool
	// of, for the digest of one notification's recipients past its
	// destination's digest_after messages (foldRecipients), is how many
	// recipients the notification has, and messageID its SES message id.
	of        int
	messageID string
}

// NewDigest returns an empty digest for d.
func NewDigest(d *rules.Destination) *Digest {
	return &Digest{dest: d, byType: map[string]int{}, byDomain: map[string]int{}, byRule: map[string]int{}}
}

// NewSweepDigest returns an empty sweep summary for d: its message says
// how many of the addresses folded were taken off the suppression list.
func NewSweepDigest(d *rules.Destination) *Digest {
	g := NewDigest(d)
	g.sweep = true
	return g
}

// Add counts notice, with every recipient of it, in g.
func (g *Digest) Add(notice *Notice) { g.add(notice, notice.Recipients) }

// Notifications is how many notices g counts.
func (g *Digest) Notifications() int { return g.notifications }

// Recipients is how many recipients of those notices g counts.
func (g *Digest) Recipients() int { return g.recipients }

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
	g := NewDigest(d)
	g.of = len(all)
	if notice.Notification != nil {
		g.messageID = notice.Notification.Mail.MessageID
	}
	g.add(&notice, all[lo:])
	return append(msgs, g.Message())
}

// add counts notice in g, with recipients rs: all of the notice's, or,
// for the digest of one notification, those it folds.
func (g *Digest) add(notice *Notice, rs []NoticeRecipient) {
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

// Message is the digest as one Slack message: a header, then the counts
// by type and subtype, by recipient domain and by deciding rule, then the
// first addresses. It keeps within Slack's limits whatever it holds.
func (g *Digest) Message() Message {
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

// RootMessage is the root message of a storm thread whose counts are g:
// what the storm is, since start, and the counts so far, brought up to
// date at most every editEvery; or, with final, the totals of the
// window from start to end.
func (g *Digest) RootMessage(start, end time.Time, editEvery time.Duration, final bool) Message {
	after, window := g.dest.StormLimits()
	header := "Storm · " + words.Count(g.notifications, "notification", "notifications") + " so far"
	context := fmt.Sprintf("Started %s, after %s to this destination within %s; the digests and later messages are in this thread, and these counts are brought up to date at most every %s.",
		start.UTC().Format(timestampLayout), words.Count(after, "message", "messages"), shortDuration(window), shortDuration(editEvery))
	if final {
		header = "Storm over · " + words.Count(g.notifications, "notification", "notifications") + " in total"
		context = fmt.Sprintf("From %s to %s: %s, %s.", start.UTC().Format(timestampLayout), end.UTC().Format(timestampLayout),
			words.Count(g.notifications, "notification", "notifications"), words.Count(g.recipients, "recipient", "recipients"))
	}
	blocks := []slack.Block{
		headerBlock(header),
		slack.NewContextBlock("", mrkdwn(context)),
		section(countsText("By type", g.byType)),
		section(countsText("By recipient domain", g.byDomain)),
		section(countsText("By rule", g.byRule)),
	}
	text := fmt.Sprintf("%s (%s)", header, words.Count(g.recipients, "recipient", "recipients"))
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
