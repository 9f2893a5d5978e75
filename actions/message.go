package actions

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/slack-go/slack"
)

// Slack's limits on one message, and how this package keeps within them.
// Characters are counted as Slack counts them: Unicode characters
// (runes), not bytes.
const (
	maxBlocks       = 50   // blocks in a message
	maxSectionText  = 3000 // a section's text
	maxHeaderText   = 150  // a header's plain_text
	maxContextElems = 10   // elements of a context block
	maxContextText  = 3000 // one text element of a context block
	// maxMessageText keeps a message well below a limit Slack enforces
	// but does not document: chat.postMessage answers
	// msg_blocks_too_long when the text of all the blocks adds up to
	// about 12,000 characters (reports vary from 11,300 to 13,300).
	// Recipients are split across messages by this and by maxBlocks.
	maxMessageText  = 8000
	maxFallbackText = 500 // the one-line fallback text
	partReserve     = 40  // characters kept for "recipients 31–60 of 60"
	blocksPerPart   = 2   // the header and the context, in every message
	textPerBlock    = 20  // what a block's frame counts as, in characters
	ellipsis        = "…" // ends a value that was cut
	inertBacktick   = "ˋ" // U+02CB, stands in for a backtick in event text
	listedAtLayout  = "2006-01-02 15:04 UTC"
	timestampLayout = "2006-01-02 15:04:05 UTC"
)

// What a text that would show nothing shows instead: Slack rejects an
// empty or blank text object (invalid_blocks), and the post would be
// retried to no end.
const (
	untitled  = "SES notification" // a header, when the event type shows nothing
	emptyText = "_(empty)_"        // any other text object
)

// Caps on single values taken from an event, in characters of escaped
// text. They keep one recipient's section well under maxSectionText
// whatever the event holds (at most about 1,700 characters with two SES
// outcomes), so only a pathological input ever needs the final clamp.
const (
	capAddress   = 200
	capStatus    = 40
	capRule      = 100
	capDiag      = 600
	capReason    = 40
	capError     = 300
	capSource    = 200
	capSubject   = 250
	capMessageID = 120
	capDetail    = 500
	capFailure   = 1000
	// In the one-line fallback text.
	capFallbackAddress = 60
	capFallbackSource  = 80
	capFallbackSubject = 80
	fallbackAddresses  = 2 // addresses named before "+N more"
)

// BuildMessages returns the Slack messages that tell n's destination about
// n: a header naming the event type, a context line with the sender,
// subject, SES message id and time, the details of the type (a rendering
// failure's template and error, a click's link, …), then one section per
// recipient with its address, SMTP status, diagnostic code, the rule that
// decided and the outcome of each SES action.
//
// Every message keeps within Slack's limits: when the recipients do not
// fit in one message, they are split across several, each saying "part N
// of M" in its header. Text that comes from the event is escaped for
// mrkdwn and cut to length, so that it can never mention, link or break
// the formatting; the destination's mention, when it has one, is the only
// mention, at the start of the first message. BuildMessages is pure: the
// same Notice always gives the same messages.
func BuildMessages(n Notice) []Message {
	mention := strings.TrimSpace(n.Mention)
	nt := n.Notification
	if nt == nil {
		nt = new(ses.Notification)
	}
	title := eventTitle(nt)
	meta := append(metaElements(nt), originElements(nt)...)
	details := eventDetails(nt)
	sections := make([]string, len(n.Recipients))
	for i := range n.Recipients {
		sections[i] = recipientText(nt, &n.Recipients[i])
	}

	// What every message carries besides its recipients, in blocks and in
	// characters of text.
	restBlocks := blocksPerPart
	restText := maxHeaderText + partReserve + blocksPerPart*textPerBlock
	for _, e := range meta {
		restText += utf8.RuneCountInString(e)
	}
	firstBlocks, firstText := restBlocks, restText
	if details != "" {
		firstBlocks++
		firstText += utf8.RuneCountInString(details) + textPerBlock
	}
	if mention != "" {
		firstText += utf8.RuneCountInString(mention) + 1
	}
	parts := splitRecipients(sections, firstBlocks, firstText, restBlocks, restText)

	msgs := make([]Message, len(parts))
	for p, part := range parts {
		header := headerTitle(title, maxHeaderText)
		if len(parts) > 1 {
			header = partTitle(title, p+1, len(parts))
		}
		blocks := []slack.Block{headerBlock(header)}
		elems := meta
		if len(parts) > 1 {
			elems = append(slices.Clip(meta), partRange(part[0], part[1], max(len(sections), n.Total)))
		}
		if c := contextBlock(elems); c != nil {
			blocks = append(blocks, c)
		}

		lead := ""
		if p == 0 && mention != "" {
			lead = mention + " "
		}
		if p == 0 && details != "" {
			blocks = append(blocks, section(lead+details))
			lead = ""
		}
		for i, s := range sections[part[0]:part[1]] {
			sec := section(lead + s)
			if n.Unsuppress {
				sec.Accessory = unsuppressButton(nt, n.Destination, recipientAddress(&n.Recipients[part[0]+i]))
			}
			blocks = append(blocks, sec)
			lead = ""
		}
		if lead != "" { // a mention, and nothing to put it before
			blocks = append(blocks, section(strings.TrimSpace(lead)))
		}

		text := fallbackText(nt, header, n.Recipients[part[0]:part[1]])
		if p == 0 && mention != "" {
			text = mention + " " + text
		}
		msgs[p] = Message{Text: text, Blocks: blocks}
	}
	return msgs
}

// splitRecipients splits the recipients, whose sections are given, into
// consecutive parts [from, to) so that no message has more than maxBlocks
// blocks or maxMessageText characters of text. The first message carries
// firstBlocks blocks and firstText characters besides its recipients, the
// others rest…. Every part holds at least one recipient; with none, there
// is one empty part.
func splitRecipients(sections []string, firstBlocks, firstText, restBlocks, restText int) [][2]int {
	if len(sections) == 0 {
		return [][2]int{{0, 0}}
	}
	var parts [][2]int
	from := 0
	blocks, text := firstBlocks, firstText
	for i, s := range sections {
		size := utf8.RuneCountInString(s) + textPerBlock
		if i > from && (blocks+1 > maxBlocks || text+size > maxMessageText) {
			parts = append(parts, [2]int{from, i})
			from = i
			blocks, text = restBlocks, restText
		}
		blocks++
		text += size
	}
	return append(parts, [2]int{from, len(sections)})
}

// EventTitle names n's event type and subtype for people, in parts:
// "Bounce", "Permanent/General"; "Complaint", "abuse"; "Delivery delayed",
// "MailboxFull". A message's header joins them with " · " (eventTitle),
// the text output and the HTML page of a dry run with a space. Plain
// text, not escaped; empty parts are left out.
func EventTitle(n *ses.Notification) []string {
	join := func(parts ...string) []string {
		kept := parts[:0]
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				kept = append(kept, p)
			}
		}
		return kept
	}
	switch n.Event.Type {
	case ses.TypeBounce:
		kind := n.Bounce.Type
		if n.Bounce.SubType != "" {
			if kind != "" {
				kind += "/"
			}
			kind += n.Bounce.SubType
		}
		return join("Bounce", kind)
	case ses.TypeComplaint:
		return join("Complaint", n.Complaint.FeedbackType, n.Complaint.SubType)
	case ses.TypeDeliveryDelay:
		return join("Delivery delayed", n.Delay.Type)
	case ses.TypeReject:
		return join("Reject", n.Reject.Reason)
	case ses.TypeRenderingFailure:
		return []string{"Rendering failure"}
	}
	if t := join(n.Event.Type); len(t) > 0 {
		return t // Delivery, Send, Open, Click, Subscription, or a newer type
	}
	return []string{untitled}
}

// eventTitle is n's title as a message's header says it: "Bounce ·
// Permanent/General", "Complaint · abuse", "Delivery delayed ·
// MailboxFull".
func eventTitle(n *ses.Notification) string { return strings.Join(EventTitle(n), " · ") }

// headerTitle is title as a header shows it: plain text of at most limit
// characters, never empty (Slack rejects an empty header, and the post
// would be retried to no end): "SES notification" when title shows
// nothing, as an event type made only of control characters does.
func headerTitle(title string, limit int) string {
	if t := plainText(title, limit); t != "" {
		return t
	}
	return untitled
}

// partTitle is title as a header shows it, saying which part of how
// many: "Bounce · Permanent/General (part 2 of 3)". The title is cut so
// that the part always shows.
func partTitle(title string, part, parts int) string {
	suffix := fmt.Sprintf(" (part %d of %d)", part, parts)
	return headerTitle(title, maxHeaderText-utf8.RuneCountInString(suffix)) + suffix
}

// partRange says which recipients a part holds: "recipients 31–60 of
// 60", "recipient 61 of 61".
func partRange(from, to, total int) string {
	if to-from == 1 {
		return fmt.Sprintf("recipient %d of %d", to, total)
	}
	return fmt.Sprintf("recipients %d–%d of %d", from+1, to, total)
}

// metaElements are the context elements every message of n carries, as
// mrkdwn: sender, subject, SES message id and the time of the event.
func metaElements(n *ses.Notification) []string {
	var elems []string
	if !blank(n.Mail.Source) {
		elems = append(elems, "*From:* "+escapeText(n.Mail.Source, capSource))
	}
	if !blank(n.Mail.Subject) {
		elems = append(elems, "*Subject:* "+escapeText(n.Mail.Subject, capSubject))
	}
	if !blank(n.Mail.MessageID) {
		elems = append(elems, "*Message ID:* "+codeSpan(n.Mail.MessageID, capMessageID))
	}
	if ts := n.Event.Timestamp; !blank(ts) {
		elems = append(elems, formatTime(ts))
	}
	return elems
}

// eventDetails is what the header does not say about n's type, as
// mrkdwn: a rendering failure's template and error, a click's link, the
// SMTP response of a delivery, … Empty when there is nothing to add.
func eventDetails(n *ses.Notification) string {
	var lines []string
	add := func(items ...string) {
		var kept []string
		for _, it := range items {
			if it != "" {
				kept = append(kept, it)
			}
		}
		if len(kept) > 0 {
			lines = append(lines, strings.Join(kept, " · "))
		}
	}
	label := func(name, value string) string {
		if blank(value) {
			return ""
		}
		return "*" + name + ":* " + value
	}
	code := func(name, value string, limit int) string {
		if blank(value) {
			return ""
		}
		return label(name, codeSpan(value, limit))
	}
	switch n.Event.Type {
	case ses.TypeDelivery:
		took := ""
		if ms := n.Delivery.ProcessingTimeMillis; ms > 0 {
			took = label("Processing time", formatMillis(ms))
		}
		add(code("SMTP response", n.Delivery.SMTPResponse, capDetail), took)
	case ses.TypeDeliveryDelay:
		if !blank(n.Delay.ExpirationTime) {
			add(label("SES gives up at", formatTime(n.Delay.ExpirationTime)))
		}
	case ses.TypeRenderingFailure:
		add(code("Template", n.Failure.TemplateName, capDetail))
		add(code("Error", n.Failure.ErrorMessage, capFailure))
	case ses.TypeOpen:
		add(code("IP", n.Open.IPAddress, capDetail), code("User agent", n.Open.UserAgent, capDetail))
	case ses.TypeClick:
		add(code("Link", n.Click.Link, capDetail))
		add(code("IP", n.Click.IPAddress, capDetail), code("User agent", n.Click.UserAgent, capDetail))
	case ses.TypeSubscription:
		all := ""
		if n.Subscription.UnsubscribeAll {
			all = "unsubscribed from all topics"
		}
		add(code("Contact list", n.Subscription.ContactList, capDetail), all,
			label("Source", escapeText(n.Subscription.Source, capDetail)))
	}
	return strings.Join(lines, "\n")
}

// recipientText is one recipient's section, as mrkdwn:
//
//	`a@example.com` · 5.1.1 failed · rule `hard-bounce`
//	`smtp; 550 5.1.1 user unknown`
//	→ removed from the suppression list (listed for BOUNCE since 2024-05-01 10:00 UTC)
//	<https://…/ses/home?region=…#/suppression-list/a%40example.com|suppression list entry in the SES console>
//
// The last line, for a Bounce or Complaint whose region is known.
func recipientText(n *ses.Notification, r *NoticeRecipient) string {
	var rc ses.Recipient
	if r.Recipient != nil {
		rc = *r.Recipient
	}
	var b strings.Builder
	if blank(rc.Address) {
		b.WriteString("_(no address)_")
	} else {
		b.WriteString(codeSpan(rc.Address, capAddress))
	}
	status, action := escapeText(rc.Status, capStatus), escapeText(rc.Action, capStatus)
	if status != "" || action != "" {
		b.WriteString(" · ")
		b.WriteString(status)
		if status != "" && action != "" {
			b.WriteByte(' ')
		}
		b.WriteString(action)
	}
	if !blank(r.Rule) {
		b.WriteString(" · rule ")
		b.WriteString(codeSpan(r.Rule, capRule))
	}
	if !blank(rc.DiagnosticCode) {
		b.WriteByte('\n')
		b.WriteString(codeSpan(rc.DiagnosticCode, capDiag))
	}
	for _, o := range r.SES {
		b.WriteString("\n→ ")
		b.WriteString(sesText(o))
	}
	if link := suppressionLink(n, rc.Address); link != "" {
		b.WriteString("\n")
		b.WriteString(link)
	}
	return b.String()
}

// sesText says, as mrkdwn, what one SES action did.
func sesText(o SESOutcome) string {
	switch o.Outcome {
	case OutcomeRemoved:
		var since []string
		if reason := escapeText(o.Reason, capReason); reason != "" {
			since = append(since, "for "+reason)
		}
		if !o.ListedAt.IsZero() {
			since = append(since, "since "+o.ListedAt.UTC().Format(listedAtLayout))
		}
		if len(since) == 0 {
			return "removed from the suppression list"
		}
		return "removed from the suppression list (listed " + strings.Join(since, " ") + ")"
	case OutcomeNotSuppressed:
		return "not on the suppression list"
	case OutcomeAdded:
		if reason := escapeText(o.Reason, capReason); reason != "" {
			return "added to the suppression list (" + reason + ")"
		}
		return "added to the suppression list"
	case OutcomeDryRun:
		if o.Action == rules.ActionSuppress {
			return "would be added to the suppression list (dry run)"
		}
		return "would be removed from the suppression list (dry run)"
	case OutcomeFailed:
		msg := "*" + o.Action.String() + " failed*"
		if o.Err != nil {
			msg += ": " + codeSpan(ShortError(o.Err), capError)
		}
		return msg
	}
	return o.Action.String() + ": " + escapeText(string(o.Outcome), capStatus)
}

// fallbackText is the one-line text of a message: what Slack shows in
// notifications and where blocks cannot be shown. Escaped for mrkdwn.
//
//	Bounce · Permanent/General: 3 recipients (a@x.com, b@y.com, +1 more) from sender@example.com, subject "Hello"
func fallbackText(n *ses.Notification, header string, rs []NoticeRecipient) string {
	var b strings.Builder
	b.WriteString(escapeText(header, maxHeaderText))
	switch len(rs) {
	case 0:
	case 1:
		b.WriteString(": ")
		b.WriteString(fallbackAddress(&rs[0]))
	default:
		fmt.Fprintf(&b, ": %d recipients (", len(rs))
		shown := min(len(rs), fallbackAddresses)
		if len(rs) == fallbackAddresses+1 {
			shown = len(rs) - 1 // "+1 more" reads better than a third address cut short
		}
		for i := range shown {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(fallbackAddress(&rs[i]))
		}
		if more := len(rs) - shown; more > 0 {
			fmt.Fprintf(&b, ", +%d more", more)
		}
		b.WriteByte(')')
	}
	if source := escapeText(n.Mail.Source, capFallbackSource); source != "" {
		b.WriteString(" from ")
		b.WriteString(source)
	}
	if subject := escapeText(n.Mail.Subject, capFallbackSubject); subject != "" {
		b.WriteString(`, subject "`)
		b.WriteString(subject)
		b.WriteByte('"')
	}
	return clampMrkdwn(b.String(), maxFallbackText)
}

// fallbackAddress is r's address as the fallback text names it.
func fallbackAddress(r *NoticeRecipient) string {
	if a := escapeText(recipientAddress(r), capFallbackAddress); a != "" {
		return a
	}
	return "(no address)"
}

func recipientAddress(r *NoticeRecipient) string {
	if r.Recipient == nil {
		return ""
	}
	return r.Recipient.Address
}

// The blocks of a message are made here and only here, so that none is
// one Slack rejects (invalid_blocks, and the post is retried to no end):
// no text object is empty or only spaces, a context block has 1 to
// maxContextElems elements, and no text is longer than its limit. The
// texts given are already shown as shownText says (escapeText,
// plainText).

// headerBlock is a header block of plain text, never empty (headerTitle).
func headerBlock(text string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, headerTitle(text, maxHeaderText), false, false))
}

// contextBlock is a context block of the mrkdwn texts given, each clamped
// to Slack's limit: those that show nothing are left out, and past
// maxContextElems the rest. nil when none is left.
func contextBlock(texts []string) *slack.ContextBlock {
	elems := make([]slack.MixedElement, 0, min(len(texts), maxContextElems))
	for _, t := range texts {
		if len(elems) == maxContextElems {
			break
		}
		if !blank(t) {
			elems = append(elems, mrkdwn(clampMrkdwn(t, maxContextText)))
		}
	}
	if len(elems) == 0 {
		return nil
	}
	return slack.NewContextBlock("", elems...)
}

// section is a section block of mrkdwn text, clamped to Slack's limit.
func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(clampMrkdwn(text, maxSectionText)), nil, nil)
}

// mrkdwn is a mrkdwn text object with verbatim set: Slack then turns no
// bare URL, domain, channel name or @name into a link or a mention. Only
// the explicit <…> forms would, and escapeText makes those impossible in
// event text. A text that shows nothing becomes "_(empty)_".
func mrkdwn(text string) *slack.TextBlockObject {
	if blank(text) {
		text = emptyText
	}
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, true)
}
