package rules

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/vm"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// Probe runs every rule, on its own (whatever the rules before it decide),
// for every recipient of a built-in set of synthetic notifications: one of
// each SES type, once with everything SES may send and once with as
// little as it may, and recipients both ordinary and odd (a display name,
// a comment, upper case, no '@', an empty address, a very long one,
// non-ASCII). It returns, as errors, each rule that fails at run time on
// one of them, naming the first event it failed on (such a rule fails
// closed in production: the recipient gets no action and the
// notification counts as failed), and as warnings each rule whose cost
// for one recipient passes slow steps (SlowRule in check). The cost is
// computed from the compiled expression, not timed, so that the warnings
// do not depend on how busy the machine is. Nothing outside the process
// is touched.
func (r *Rules) Probe(slow uint64) (errs, warns []*Problem) {
	events := probeEvents()
	env := NewEnv(r.Lists)
	var machine vm.VM
	for _, rule := range r.Rules {
		if rule.Program == nil {
			continue
		}
		ctx := fmt.Sprintf("rule %q", rule.Name)
		if steps, hot := ruleCost(rule); steps > slow {
			where := ""
			if hot != nil {
				from := hot.Location().From
				where = fmt.Sprintf(", most of them at %s, offset %d of the expression", quoteAt(rule.When, from), from)
			}
			warns = append(warns, &Problem{File: r.File, Pos: rule.Pos, Context: ctx,
				Message: fmt.Sprintf("warning: slow: up to %d steps for one recipient (over %d%s); every recipient of every notification runs it", steps, slow, where)})
		}
	events:
		for _, ev := range events {
			env.Notification = ev.n
			for _, rc := range ev.n.Recipients {
				env.Recipient = rc
				if _, err := machine.Run(rule.Program, env); err != nil {
					errs = append(errs, &Problem{File: r.File, Pos: rule.Pos, Context: ctx,
						Message: fmt.Sprintf("fails on %s, recipient %q: %s; a rule that fails gives the recipient no action and fails the notification: guard it (?? , len(...) > 0, in)",
							ev.name, rc.Raw, strings.TrimPrefix(rule.RunError(err).Error(), ctx+": "))})
					break events
				}
			}
		}
	}
	return errs, warns
}

// probeEvent is one synthetic notification of Probe.
type probeEvent struct {
	name string
	n    *ses.Notification
}

// probeAddresses are the recipients of every synthetic notification.
func probeAddresses() []string {
	return []string{
		"someone@example.com",
		`"Some One" <Some.One@Example.COM>`,
		"no-suppress@bank.example (a comment)",
		"UPPER@EXAMPLE.ORG",
		"no-at-sign",
		"",
		strings.Repeat("x", 300) + "@example.com",
		"ünïcødé@exämple.de",
	}
}

// probeEvents makes the synthetic notifications: each type, full and
// bare.
func probeEvents() []probeEvent {
	var out []probeEvent
	for _, typ := range []string{ses.TypeBounce, ses.TypeComplaint, ses.TypeDelivery, ses.TypeSend, ses.TypeReject, ses.TypeOpen, ses.TypeClick,
		ses.TypeRenderingFailure, ses.TypeDeliveryDelay, ses.TypeSubscription} {
		for _, full := range []bool{true, false} {
			n := &ses.Notification{Input: "probe", Format: "event", Event: ses.Event{Type: typ, Envelope: ses.EnvelopeFile}}
			name := "a bare " + typ
			if full {
				name = "a full " + typ
				n.Event = ses.Event{Type: typ, Timestamp: "2024-01-01T00:00:02.000Z", Envelope: ses.EnvelopeSNS,
					TopicArn: "arn:aws:sns:us-east-1:123456789012:ses"}
				n.Mail = ses.Mail{Timestamp: "2024-01-01T00:00:00.000Z", MessageID: "m-1", Source: `"Shop" <news@shop.example>`,
					SourceAddress: "news@shop.example", SourceDomain: "shop.example", Subject: "Hello",
					From: []string{"news@shop.example"}, To: []string{"someone@example.com"},
					Tags:    map[string][]string{"ses:configuration-set": {"default"}, "campaign": {"spring"}},
					Headers: map[string]string{"Subject": "Hello", "X-Campaign": "spring"}}
				n.Bounce = ses.Bounce{Type: "Permanent", SubType: "General", FeedbackID: "fb-1", Timestamp: n.Event.Timestamp}
				n.Complaint = ses.Complaint{FeedbackType: "abuse", FeedbackID: "fb-2", Timestamp: n.Event.Timestamp}
				n.Delivery = ses.Delivery{ProcessingTimeMillis: 1000, SMTPResponse: "250 ok"}
				n.Delay = ses.Delay{Type: "MailboxFull"}
				n.Reject = ses.Reject{Reason: "Bad content"}
				n.Failure = ses.Failure{ErrorMessage: "oops", TemplateName: "t"}
				n.Click = ses.Click{Link: "https://example.com/", LinkTags: map[string][]string{"k": {"v"}}}
			}
			for _, a := range probeAddresses() {
				rc := ses.NewRecipient(a)
				if full {
					rc.Status, rc.Action, rc.DiagnosticCode = "5.1.1", "failed", "smtp; 550 5.1.1 user unknown"
				}
				n.Recipients = append(n.Recipients, rc)
				n.Mail.Destination = append(n.Mail.Destination, a)
			}
			out = append(out, probeEvent{name: name, n: n})
		}
	}
	return out
}
