package ses

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
)

// sesWire is the SES JSON as read, before normalisation. Both SES formats
// share it; fields absent in one format simply stay empty. Unknown fields
// are skipped here and kept in Notification.Raw.
type sesWire struct {
	notificationType, eventType string
	hasMail                     bool
	mail                        Mail
	headers                     []header
	from, to, cc, replyTo       []string
	subject                     string

	bounce       Bounce
	bounced      []wireRecipient
	hasBounce    bool
	complaint    Complaint
	complained   []wireRecipient
	hasComplaint bool
	delivery     Delivery
	delivered    []string
	hasDelivery  bool
	delay        Delay
	delayed      []wireRecipient
	hasDelay     bool
	reject       Reject
	failure      Failure
	open         Open
	click        Click
	subscription Subscription
}

type header struct{ name, value string }

type wireRecipient struct {
	address, action, status, diagnosticCode string
}

// decodeSES decodes the SES JSON (raw, which the Notification keeps) into
// a Notification. A set-up message, an inbound-mail notification or JSON
// that is not SES's gives a skip reason instead.
func decodeSES(raw string) (*Notification, string, error) {
	var w sesWire
	l := lexer{b: readOnlyBytes(raw), s: raw}
	l.object(func(k []byte) { w.member(&l, k) })
	l.end()
	if l.err != nil {
		return nil, "", fmt.Errorf("SES JSON: %w", l.err)
	}
	n := &Notification{Raw: raw}
	switch {
	case w.eventType != "":
		n.Format = "event"
		n.Event.Type = strings.ReplaceAll(w.eventType, " ", "")
	case w.notificationType == "AmazonSnsSubscriptionSucceeded":
		return nil, "SES set-up message AmazonSnsSubscriptionSucceeded", nil
	case w.notificationType == "Received":
		return nil, "SES inbound mail (Received), not feedback", nil
	case w.notificationType != "":
		n.Format = "notification"
		n.Event.Type = w.notificationType
	default:
		return nil, "JSON message that is not an SES notification (no notificationType or eventType)", nil
	}
	if !w.hasMail {
		return nil, "", fmt.Errorf("SES %s notification has no mail object", n.Event.Type)
	}
	w.finishMail()
	n.Mail = w.mail
	n.Event.Timestamp = n.Mail.Timestamp

	var recips []wireRecipient
	from := "mail.destination" // where the recipients come from
	switch n.Event.Type {
	case TypeBounce:
		if !w.hasBounce {
			return nil, "", missing("bounce")
		}
		n.Bounce, recips, from = w.bounce, w.bounced, "bounce.bouncedRecipients"
		n.Event.Timestamp = cmp.Or(w.bounce.Timestamp, n.Event.Timestamp)
	case TypeComplaint:
		if !w.hasComplaint {
			return nil, "", missing("complaint")
		}
		n.Complaint, recips, from = w.complaint, w.complained, "complaint.complainedRecipients"
		n.Event.Timestamp = cmp.Or(w.complaint.Timestamp, n.Event.Timestamp)
	case TypeDelivery:
		if !w.hasDelivery {
			return nil, "", missing("delivery")
		}
		n.Delivery, from = w.delivery, "delivery.recipients"
		recips = make([]wireRecipient, len(w.delivered))
		for i, a := range w.delivered {
			recips[i].address = a
		}
		n.Event.Timestamp = cmp.Or(w.delivery.Timestamp, n.Event.Timestamp)
	case TypeDeliveryDelay:
		if !w.hasDelay {
			return nil, "", missing("deliveryDelay")
		}
		n.Delay, recips, from = w.delay, w.delayed, "deliveryDelay.delayedRecipients"
		n.Event.Timestamp = cmp.Or(w.delay.Timestamp, n.Event.Timestamp)
	default:
		// Send, Reject, Open, Click, RenderingFailure, Subscription and
		// types SES may add later name no recipients: mail.destination.
		n.Reject, n.Failure, n.Open, n.Click, n.Subscription = w.reject, w.failure, w.open, w.click, w.subscription
		n.Event.Timestamp = cmp.Or(w.open.Timestamp, w.click.Timestamp, w.subscription.Timestamp, n.Event.Timestamp)
		recips = make([]wireRecipient, len(n.Mail.Destination))
		for i, a := range n.Mail.Destination {
			recips[i].address = a
		}
	}
	if len(recips) == 0 {
		return nil, fmt.Sprintf("SES %s names no recipients (%s is empty)", n.Event.Type, from), nil
	}
	n.Recipients = make([]Recipient, len(recips))
	for i, r := range recips {
		rc := NewRecipient(r.address)
		rc.Status, rc.Action, rc.DiagnosticCode = r.status, r.action, r.diagnosticCode
		n.Recipients[i] = rc
	}
	return n, "", nil
}

// member reads the top-level SES field k.
func (w *sesWire) member(l *lexer, k []byte) {
	switch string(k) {
	case "notificationType":
		w.notificationType = l.str()
	case "eventType":
		w.eventType = l.str()
	case "mail":
		w.hasMail = !l.null() && l.object(func(k []byte) { w.mailMember(l, k) })
	case "bounce":
		w.hasBounce = !l.null() && l.object(func(k []byte) { w.bounceMember(l, k) })
	case "complaint":
		w.hasComplaint = !l.null() && l.object(func(k []byte) { w.complaintMember(l, k) })
	case "delivery":
		w.hasDelivery = !l.null() && l.object(func(k []byte) { w.deliveryMember(l, k) })
	case "deliveryDelay":
		w.hasDelay = !l.null() && l.object(func(k []byte) { w.delayMember(l, k) })
	case "reject":
		l.object(func(k []byte) {
			switch string(k) {
			case "reason":
				w.reject.Reason = l.str()
			default:
				l.skip()
			}
		})
	case "failure":
		l.object(func(k []byte) {
			switch string(k) {
			case "errorMessage":
				w.failure.ErrorMessage = l.str()
			case "templateName":
				w.failure.TemplateName = l.str()
			default:
				l.skip()
			}
		})
	case "open":
		l.object(func(k []byte) {
			switch string(k) {
			case "ipAddress":
				w.open.IPAddress = l.str()
			case "userAgent":
				w.open.UserAgent = l.str()
			case "timestamp":
				w.open.Timestamp = l.str()
			default:
				l.skip()
			}
		})
	case "click":
		l.object(func(k []byte) {
			switch string(k) {
			case "ipAddress":
				w.click.IPAddress = l.str()
			case "userAgent":
				w.click.UserAgent = l.str()
			case "timestamp":
				w.click.Timestamp = l.str()
			case "link":
				w.click.Link = l.str()
			case "linkTags":
				w.click.LinkTags = l.strMap()
			default:
				l.skip()
			}
		})
	case "subscription":
		l.object(func(k []byte) {
			switch string(k) {
			case "contactList":
				w.subscription.ContactList = l.str()
			case "timestamp":
				w.subscription.Timestamp = l.str()
			case "source":
				w.subscription.Source = l.str()
			case "newTopicPreferences":
				l.object(func(k []byte) {
					if string(k) == "unsubscribeAll" {
						w.subscription.UnsubscribeAll = l.boolish()
						return
					}
					l.skip()
				})
			default:
				l.skip()
			}
		})
	default:
		l.skip()
	}
}

func (w *sesWire) mailMember(l *lexer, k []byte) {
	m := &w.mail
	switch string(k) {
	case "timestamp":
		m.Timestamp = l.str()
	case "messageId":
		m.MessageID = l.str()
	case "source":
		m.Source = l.str()
	case "sourceArn":
		m.SourceArn = l.str()
	case "sourceIp":
		m.SourceIP = l.str()
	case "sendingAccountId":
		m.SendingAccountID = l.str()
	case "callerIdentity":
		m.CallerIdentity = l.str()
	case "destination":
		m.Destination = l.strs()
	case "headersTruncated":
		m.HeadersTruncated = l.boolish()
	case "tags":
		m.Tags = l.strMap()
	case "headers":
		l.array(func() {
			var h header
			l.object(func(k []byte) {
				switch string(k) {
				case "name":
					h.name = l.str()
				case "value":
					h.value = l.str()
				default:
					l.skip()
				}
			})
			w.headers = append(w.headers, h)
		})
	case "commonHeaders":
		l.object(func(k []byte) {
			switch string(k) {
			case "from":
				w.from = l.strs()
			case "to":
				w.to = l.strs()
			case "cc":
				w.cc = l.strs()
			case "replyTo":
				w.replyTo = l.strs()
			case "subject":
				w.subject = l.str()
			default:
				l.skip()
			}
		})
	default:
		l.skip()
	}
}

// finishMail derives the mail fields that are not read as they are.
func (w *sesWire) finishMail() {
	m := &w.mail
	if m.Destination == nil {
		m.Destination = []string{}
	}
	m.SourceAddress = BareAddress(m.Source)
	if at := strings.LastIndexByte(m.SourceAddress, '@'); at >= 0 {
		m.SourceDomain = strings.ToLower(m.SourceAddress[at+1:])
	}
	m.Subject = w.subject
	m.From, m.To, m.Cc, m.ReplyTo = splitAddresses(w.from), splitAddresses(w.to), splitAddresses(w.cc), splitAddresses(w.replyTo)
	if len(w.headers) > 0 {
		m.Headers = make(map[string]string, len(w.headers))
		for _, h := range w.headers {
			if prev, ok := m.Headers[h.name]; ok {
				m.Headers[h.name] = prev + ", " + h.value
			} else {
				m.Headers[h.name] = h.value
			}
		}
		if m.Subject == "" {
			m.Subject = m.Headers["Subject"]
		}
	}
}

func (l *lexer) recipients(dst *[]wireRecipient) {
	l.array(func() {
		var r wireRecipient
		switch l.peek() {
		case '"': // tolerate a bare address
			r.address = l.str()
		default:
			l.object(func(k []byte) {
				switch string(k) {
				case "emailAddress":
					r.address = l.str()
				case "action":
					r.action = l.str()
				case "status":
					r.status = l.str()
				case "diagnosticCode":
					r.diagnosticCode = l.str()
				default:
					l.skip()
				}
			})
		}
		*dst = append(*dst, r)
	})
}

func (w *sesWire) bounceMember(l *lexer, k []byte) {
	b := &w.bounce
	switch string(k) {
	case "bounceType":
		b.Type = l.str()
	case "bounceSubType":
		b.SubType = l.str()
	case "bouncedRecipients":
		l.recipients(&w.bounced)
	case "timestamp":
		b.Timestamp = l.str()
	case "feedbackId":
		b.FeedbackID = l.str()
	case "remoteMtaIp":
		b.RemoteMtaIP = l.str()
	case "reportingMTA":
		b.ReportingMTA = l.str()
	default:
		l.skip()
	}
}

func (w *sesWire) complaintMember(l *lexer, k []byte) {
	c := &w.complaint
	switch string(k) {
	case "complainedRecipients":
		l.recipients(&w.complained)
	case "timestamp":
		c.Timestamp = l.str()
	case "feedbackId":
		c.FeedbackID = l.str()
	case "complaintSubType":
		c.SubType = l.str()
	case "userAgent":
		c.UserAgent = l.str()
	case "complaintFeedbackType":
		c.FeedbackType = l.str()
	case "arrivalDate":
		c.ArrivalDate = l.str()
	default:
		l.skip()
	}
}

func (w *sesWire) deliveryMember(l *lexer, k []byte) {
	d := &w.delivery
	switch string(k) {
	case "timestamp":
		d.Timestamp = l.str()
	case "processingTimeMillis":
		d.ProcessingTimeMillis = int(l.number())
	case "recipients":
		w.delivered = l.strs()
	case "smtpResponse":
		d.SMTPResponse = l.str()
	case "reportingMTA":
		d.ReportingMTA = l.str()
	case "remoteMtaIp":
		d.RemoteMtaIP = l.str()
	default:
		l.skip()
	}
}

func (w *sesWire) delayMember(l *lexer, k []byte) {
	d := &w.delay
	switch string(k) {
	case "timestamp":
		d.Timestamp = l.str()
	case "delayType":
		d.Type = l.str()
	case "expirationTime":
		d.ExpirationTime = l.str()
	case "delayedRecipients":
		l.recipients(&w.delayed)
	case "reportingMTA":
		d.ReportingMTA = l.str()
	default:
		l.skip()
	}
}

func missing(obj string) error {
	return errors.New("SES JSON has no " + obj + " object")
}
