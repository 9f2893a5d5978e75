package ses

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// sesWire is the SES JSON as read, before normalisation. Both SES formats
// share it; fields absent in one format simply stay empty. Unknown fields
// are skipped here and kept in Notification.Raw. An object that is null
// reads as absent. Strings are read as text: where they lie in the JSON.
// Each wire type reads itself from the decoder (read), member by member,
// names matched exactly; each error names the member it is about.
type sesWire struct {
	NotificationType, EventType text
	Mail                        *mailWire
	Bounce                      *bounceWire
	Complaint                   *complaintWire
	Delivery                    *deliveryWire
	DeliveryDelay               *delayWire
	Reject                      struct{ Reason text }
	Failure                     struct{ ErrorMessage, TemplateName text }
	Open                        struct{ IPAddress, UserAgent, Timestamp text }
	Click                       struct {
		IPAddress, UserAgent, Timestamp, Link text
		LinkTags                              textMap
	}
	Subscription struct {
		ContactList, Timestamp, Source text
		UnsubscribeAll                 boolish // newTopicPreferences.unsubscribeAll
	}
}

// UnmarshalJSONFrom reads the SES JSON.
func (w *sesWire) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return members(dec, "", func(name []byte) error {
		switch string(name) {
		case "notificationType":
			return w.NotificationType.read(dec, "notificationType")
		case "eventType":
			return w.EventType.read(dec, "eventType")
		case "mail":
			return readObject(dec, &w.Mail, "mail")
		case "bounce":
			return readObject(dec, &w.Bounce, "bounce")
		case "complaint":
			return readObject(dec, &w.Complaint, "complaint")
		case "delivery":
			return readObject(dec, &w.Delivery, "delivery")
		case "deliveryDelay":
			return readObject(dec, &w.DeliveryDelay, "deliveryDelay")
		case "reject":
			return members(dec, "reject", func(name []byte) error {
				switch string(name) {
				case "reason":
					return w.Reject.Reason.read(dec, "reason")
				}
				return skip(dec)
			})
		case "failure":
			f := &w.Failure
			return members(dec, "failure", func(name []byte) error {
				switch string(name) {
				case "errorMessage":
					return f.ErrorMessage.read(dec, "errorMessage")
				case "templateName":
					return f.TemplateName.read(dec, "templateName")
				}
				return skip(dec)
			})
		case "open":
			o := &w.Open
			return members(dec, "open", func(name []byte) error {
				switch string(name) {
				case "ipAddress":
					return o.IPAddress.read(dec, "ipAddress")
				case "userAgent":
					return o.UserAgent.read(dec, "userAgent")
				case "timestamp":
					return o.Timestamp.read(dec, "timestamp")
				}
				return skip(dec)
			})
		case "click":
			c := &w.Click
			return members(dec, "click", func(name []byte) error {
				switch string(name) {
				case "linkTags":
					return c.LinkTags.read(dec, "linkTags")
				case "ipAddress":
					return c.IPAddress.read(dec, "ipAddress")
				case "userAgent":
					return c.UserAgent.read(dec, "userAgent")
				case "timestamp":
					return c.Timestamp.read(dec, "timestamp")
				case "link":
					return c.Link.read(dec, "link")
				}
				return skip(dec)
			})
		case "subscription":
			sub := &w.Subscription
			return members(dec, "subscription", func(name []byte) error {
				switch string(name) {
				case "newTopicPreferences":
					return members(dec, "newTopicPreferences", func(name []byte) error {
						if string(name) == "unsubscribeAll" {
							return sub.UnsubscribeAll.read(dec, "unsubscribeAll")
						}
						return skip(dec)
					})
				case "contactList":
					return sub.ContactList.read(dec, "contactList")
				case "timestamp":
					return sub.Timestamp.read(dec, "timestamp")
				case "source":
					return sub.Source.read(dec, "source")
				}
				return skip(dec)
			})
		}
		return skip(dec)
	})
}

// wireObject is a wire type that reads an object, named name.
type wireObject[T any] interface {
	*T
	read(dec *jsontext.Decoder, name string) error
}

// readObject reads the object named name into a new *p; null leaves *p
// nil (absent).
func readObject[T any, P wireObject[T]](dec *jsontext.Decoder, p **T, name string) error {
	if dec.PeekKind() == 'n' {
		*p = nil
		_, err := dec.ReadToken()
		return err
	}
	v := new(T)
	*p = v
	return P(v).read(dec, name)
}

// readArray reads an array named name, calling elem for each element,
// which must read it; null is an empty array.
func readArray(dec *jsontext.Decoder, name string, elem func() error) error {
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '[':
	default:
		return wrongKind(dec, name, "an array")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

type mailWire struct {
	Timestamp, MessageID, Source, SourceArn, SourceIP, SendingAccountID, CallerIdentity text
	Destination                                                                         textList
	HeadersTruncated                                                                    boolish
	Tags                                                                                textMap
	Headers                                                                             []headerWire
	CommonHeaders                                                                       struct {
		From, To, Cc, ReplyTo textList
		Subject               text
	}
}

// headerWire is one of mail.headers.
type headerWire struct{ Name, Value text }

// read reads mail.
func (m *mailWire) read(dec *jsontext.Decoder, name string) error {
	return members(dec, name, func(name []byte) error {
		switch string(name) {
		case "destination":
			return m.Destination.read(dec, "destination")
		case "headersTruncated":
			return m.HeadersTruncated.read(dec, "headersTruncated")
		case "tags":
			return m.Tags.read(dec, "tags")
		case "headers":
			m.Headers = make([]headerWire, 0, 8)
			return readArray(dec, "headers", func() error {
				var h headerWire
				err := members(dec, "headers", func(name []byte) error {
					switch string(name) {
					case "name":
						return h.Name.read(dec, "name")
					case "value":
						return h.Value.read(dec, "value")
					}
					return skip(dec)
				})
				m.Headers = append(m.Headers, h)
				return err
			})
		case "commonHeaders":
			h := &m.CommonHeaders
			return members(dec, "commonHeaders", func(name []byte) error {
				switch string(name) {
				case "from":
					return h.From.read(dec, "from")
				case "to":
					return h.To.read(dec, "to")
				case "cc":
					return h.Cc.read(dec, "cc")
				case "replyTo":
					return h.ReplyTo.read(dec, "replyTo")
				case "subject":
					return h.Subject.read(dec, "subject")
				}
				return skip(dec)
			})
		case "timestamp":
			return m.Timestamp.read(dec, "timestamp")
		case "messageId":
			return m.MessageID.read(dec, "messageId")
		case "source":
			return m.Source.read(dec, "source")
		case "sourceArn":
			return m.SourceArn.read(dec, "sourceArn")
		case "sourceIp":
			return m.SourceIP.read(dec, "sourceIp")
		case "sendingAccountId":
			return m.SendingAccountID.read(dec, "sendingAccountId")
		case "callerIdentity":
			return m.CallerIdentity.read(dec, "callerIdentity")
		}
		return skip(dec)
	})
}

type bounceWire struct {
	BounceType, BounceSubType                        text
	BouncedRecipients                                []recipientWire
	Timestamp, FeedbackID, RemoteMtaIP, ReportingMTA text
}

// read reads bounce.
func (b *bounceWire) read(dec *jsontext.Decoder, name string) error {
	return members(dec, name, func(name []byte) error {
		switch string(name) {
		case "bouncedRecipients":
			return readRecipients(dec, &b.BouncedRecipients, "bouncedRecipients")
		case "bounceType":
			return b.BounceType.read(dec, "bounceType")
		case "bounceSubType":
			return b.BounceSubType.read(dec, "bounceSubType")
		case "timestamp":
			return b.Timestamp.read(dec, "timestamp")
		case "feedbackId":
			return b.FeedbackID.read(dec, "feedbackId")
		case "remoteMtaIp":
			return b.RemoteMtaIP.read(dec, "remoteMtaIp")
		case "reportingMTA":
			return b.ReportingMTA.read(dec, "reportingMTA")
		}
		return skip(dec)
	})
}

type complaintWire struct {
	ComplainedRecipients                                                                   []recipientWire
	Timestamp, FeedbackID, ComplaintSubType, UserAgent, ComplaintFeedbackType, ArrivalDate text
}

// read reads complaint.
func (c *complaintWire) read(dec *jsontext.Decoder, name string) error {
	return members(dec, name, func(name []byte) error {
		switch string(name) {
		case "complainedRecipients":
			return readRecipients(dec, &c.ComplainedRecipients, "complainedRecipients")
		case "timestamp":
			return c.Timestamp.read(dec, "timestamp")
		case "feedbackId":
			return c.FeedbackID.read(dec, "feedbackId")
		case "complaintSubType":
			return c.ComplaintSubType.read(dec, "complaintSubType")
		case "userAgent":
			return c.UserAgent.read(dec, "userAgent")
		case "complaintFeedbackType":
			return c.ComplaintFeedbackType.read(dec, "complaintFeedbackType")
		case "arrivalDate":
			return c.ArrivalDate.read(dec, "arrivalDate")
		}
		return skip(dec)
	})
}

type deliveryWire struct {
	Timestamp                               text
	ProcessingTimeMillis                    millis
	Recipients                              textList
	SMTPResponse, ReportingMTA, RemoteMtaIP text
}

// read reads delivery.
func (d *deliveryWire) read(dec *jsontext.Decoder, name string) error {
	return members(dec, name, func(name []byte) error {
		switch string(name) {
		case "processingTimeMillis":
			return d.ProcessingTimeMillis.read(dec, "processingTimeMillis")
		case "recipients":
			return d.Recipients.read(dec, "recipients")
		case "timestamp":
			return d.Timestamp.read(dec, "timestamp")
		case "smtpResponse":
			return d.SMTPResponse.read(dec, "smtpResponse")
		case "reportingMTA":
			return d.ReportingMTA.read(dec, "reportingMTA")
		case "remoteMtaIp":
			return d.RemoteMtaIP.read(dec, "remoteMtaIp")
		}
		return skip(dec)
	})
}

type delayWire struct {
	Timestamp, DelayType, ExpirationTime text
	DelayedRecipients                    []recipientWire
	ReportingMTA                         text
}

// read reads deliveryDelay.
func (d *delayWire) read(dec *jsontext.Decoder, name string) error {
	return members(dec, name, func(name []byte) error {
		switch string(name) {
		case "delayedRecipients":
			return readRecipients(dec, &d.DelayedRecipients, "delayedRecipients")
		case "timestamp":
			return d.Timestamp.read(dec, "timestamp")
		case "delayType":
			return d.DelayType.read(dec, "delayType")
		case "expirationTime":
			return d.ExpirationTime.read(dec, "expirationTime")
		case "reportingMTA":
			return d.ReportingMTA.read(dec, "reportingMTA")
		}
		return skip(dec)
	})
}

// recipientWire is a recipient of a bounce, complaint or delay: an
// object, or a bare address, which is tolerated.
type recipientWire struct {
	EmailAddress, Action, Status, DiagnosticCode text
}

// readRecipients reads an array of recipients named name into *rs.
func readRecipients(dec *jsontext.Decoder, rs *[]recipientWire, name string) error {
	*rs = make([]recipientWire, 0, 4)
	return readArray(dec, name, func() error {
		var r recipientWire
		err := r.read(dec, name)
		*rs = append(*rs, r)
		return err
	})
}

// read reads a recipient object of the array named name, or a bare
// address; null is an empty recipient.
func (r *recipientWire) read(dec *jsontext.Decoder, name string) error {
	if dec.PeekKind() == '"' {
		return r.EmailAddress.read(dec, name)
	}
	return members(dec, name, func(name []byte) error {
		switch string(name) {
		case "emailAddress":
			return r.EmailAddress.read(dec, "emailAddress")
		case "action":
			return r.Action.read(dec, "action")
		case "status":
			return r.Status.read(dec, "status")
		case "diagnosticCode":
			return r.DiagnosticCode.read(dec, "diagnosticCode")
		}
		return skip(dec)
	})
}

// decodeSES decodes the SES JSON (raw, which the Notification keeps, and
// whose substrings its strings are) into a Notification, reading it from
// b, which holds the same bytes (nil: a copy of raw). A set-up message,
// an inbound-mail notification or JSON that is not SES's gives a skip
// reason instead.
func decodeSES(raw string, b []byte) (*Notification, string, error) {
	if b == nil {
		b = []byte(raw)
	}
	var w sesWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, "", fmt.Errorf("SES JSON: %w", jsonError(err))
	}
	s := func(t text) string { return t.in(raw) }
	n := &Notification{Raw: raw}
	switch {
	case w.EventType.present() && w.NotificationType.present():
		return nil, "", errors.New("SES JSON has both notificationType and eventType: refusing to read it as either")
	case s(w.EventType) != "":
		n.Format = "event"
		n.Event.Type = strings.ReplaceAll(s(w.EventType), " ", "")
	}
	if n.Format == "" {
		switch typ := s(w.NotificationType); typ {
		case "":
			return nil, "JSON message that is not an SES notification (no notificationType or eventType)", nil
		case "AmazonSnsSubscriptionSucceeded":
			return nil, "SES set-up message AmazonSnsSubscriptionSucceeded", nil
		case "Received":
			return nil, "SES inbound mail (Received), not feedback", nil
		default:
			n.Format = "notification"
			n.Event.Type = typ
		}
	}
	if w.Mail == nil {
		return nil, "", fmt.Errorf("SES %s notification has no mail object", n.Event.Type)
	}
	n.Mail = w.Mail.model(raw)
	n.Event.Timestamp = n.Mail.Timestamp

	var recips []recipientWire
	var addrs []string         // or the recipients are these addresses
	from := "mail.destination" // where the recipients come from
	switch n.Event.Type {
	case TypeBounce:
		b := w.Bounce
		if b == nil {
			return nil, "", missing("bounce")
		}
		n.Bounce = Bounce{Type: s(b.BounceType), SubType: s(b.BounceSubType), ReportingMTA: s(b.ReportingMTA),
			RemoteMtaIP: s(b.RemoteMtaIP), FeedbackID: s(b.FeedbackID), Timestamp: s(b.Timestamp)}
		recips, from = b.BouncedRecipients, "bounce.bouncedRecipients"
		n.Event.Timestamp = cmp.Or(n.Bounce.Timestamp, n.Event.Timestamp)
	case TypeComplaint:
		c := w.Complaint
		if c == nil {
			return nil, "", missing("complaint")
		}
		n.Complaint = Complaint{FeedbackType: s(c.ComplaintFeedbackType), SubType: s(c.ComplaintSubType), UserAgent: s(c.UserAgent),
			ArrivalDate: s(c.ArrivalDate), FeedbackID: s(c.FeedbackID), Timestamp: s(c.Timestamp)}
		recips, from = c.ComplainedRecipients, "complaint.complainedRecipients"
		n.Event.Timestamp = cmp.Or(n.Complaint.Timestamp, n.Event.Timestamp)
	case TypeDelivery:
		d := w.Delivery
		if d == nil {
			return nil, "", missing("delivery")
		}
		n.Delivery = Delivery{Timestamp: s(d.Timestamp), ProcessingTimeMillis: int(d.ProcessingTimeMillis),
			SMTPResponse: s(d.SMTPResponse), ReportingMTA: s(d.ReportingMTA), RemoteMtaIP: s(d.RemoteMtaIP)}
		addrs, from = d.Recipients.in(raw), "delivery.recipients"
		n.Event.Timestamp = cmp.Or(n.Delivery.Timestamp, n.Event.Timestamp)
	case TypeDeliveryDelay:
		d := w.DeliveryDelay
		if d == nil {
			return nil, "", missing("deliveryDelay")
		}
		n.Delay = Delay{Type: s(d.DelayType), ExpirationTime: s(d.ExpirationTime), ReportingMTA: s(d.ReportingMTA), Timestamp: s(d.Timestamp)}
		recips, from = d.DelayedRecipients, "deliveryDelay.delayedRecipients"
		n.Event.Timestamp = cmp.Or(n.Delay.Timestamp, n.Event.Timestamp)
	default:
		// Send, Reject, Open, Click, RenderingFailure, Subscription and
		// types SES may add later name no recipients: mail.destination.
		o, c, sub := &w.Open, &w.Click, &w.Subscription
		n.Reject = Reject{Reason: s(w.Reject.Reason)}
		n.Failure = Failure{ErrorMessage: s(w.Failure.ErrorMessage), TemplateName: s(w.Failure.TemplateName)}
		n.Open = Open{IPAddress: s(o.IPAddress), UserAgent: s(o.UserAgent), Timestamp: s(o.Timestamp)}
		n.Click = Click{IPAddress: s(c.IPAddress), UserAgent: s(c.UserAgent), Timestamp: s(c.Timestamp), Link: s(c.Link),
			LinkTags: c.LinkTags.in(raw)}
		n.Subscription = Subscription{ContactList: s(sub.ContactList), Source: s(sub.Source), Timestamp: s(sub.Timestamp),
			UnsubscribeAll: bool(sub.UnsubscribeAll)}
		n.Event.Timestamp = cmp.Or(n.Open.Timestamp, n.Click.Timestamp, n.Subscription.Timestamp, n.Event.Timestamp)
		addrs = n.Mail.Destination
	}
	if len(recips)+len(addrs) == 0 {
		return nil, fmt.Sprintf("SES %s names no recipients (%s is empty)", n.Event.Type, from), nil
	}
	n.Recipients = make([]Recipient, 0, len(recips)+len(addrs))
	for _, r := range recips {
		rc := NewRecipient(s(r.EmailAddress))
		rc.Status, rc.Action, rc.DiagnosticCode = s(r.Status), s(r.Action), s(r.DiagnosticCode)
		n.Recipients = append(n.Recipients, rc)
	}
	for _, a := range addrs {
		n.Recipients = append(n.Recipients, NewRecipient(a))
	}
	return n, "", nil
}

// model returns the Mail of the model, with the fields derived from the
// ones read.
func (w *mailWire) model(raw string) Mail {
	s := func(t text) string { return t.in(raw) }
	m := Mail{
		Timestamp: s(w.Timestamp), MessageID: s(w.MessageID), Source: s(w.Source), SourceArn: s(w.SourceArn), SourceIP: s(w.SourceIP),
		SendingAccountID: s(w.SendingAccountID), CallerIdentity: s(w.CallerIdentity), Destination: w.Destination.in(raw),
		Tags: w.Tags.in(raw), HeadersTruncated: bool(w.HeadersTruncated), Subject: s(w.CommonHeaders.Subject),
	}
	if m.Destination == nil {
		m.Destination = []string{}
	}
	m.SourceAddress = BareAddress(m.Source)
	if at := strings.LastIndexByte(m.SourceAddress, '@'); at >= 0 {
		m.SourceDomain = strings.ToLower(m.SourceAddress[at+1:])
	}
	h := &w.CommonHeaders
	m.From, m.To = h.From.addresses(raw), h.To.addresses(raw)
	m.Cc, m.ReplyTo = h.Cc.addresses(raw), h.ReplyTo.addresses(raw)
	if len(w.Headers) > 0 {
		m.Headers = make(map[string]string, len(w.Headers))
		for _, h := range w.Headers {
			name, value := s(h.Name), s(h.Value)
			if prev, ok := m.Headers[name]; ok {
				m.Headers[name] = prev + ", " + value
			} else {
				m.Headers[name] = value
			}
		}
		if m.Subject == "" {
			m.Subject = m.Headers["Subject"]
		}
	}
	return m
}

func missing(obj string) error {
	return errors.New("SES JSON has no " + obj + " object")
}

// text is a JSON string of the SES JSON, or null, as read: where it lies
// in the JSON. Its string is a substring of the JSON when it holds no
// escapes (in), so that a notification costs one copy of its JSON, not
// one a field.
type text struct {
	start, end int // the quoted string, in the JSON; end is 0 for null
	escaped    bool
}

// read reads a string or null, the value of the member name.
func (t *text) read(dec *jsontext.Decoder, name string) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch k := v.Kind(); k {
	case 'n':
		*t = text{}
		return nil
	case '"':
		end := int(dec.InputOffset())
		*t = text{start: end - len(v), end: end, escaped: bytes.IndexByte(v, '\\') >= 0}
		return nil
	default:
		return &kindError{name: name, got: k, want: "a string"}
	}
}

// present reports whether the string was there, and not null.
func (t text) present() bool {
	return t.end != 0
}

// in returns the string, read from raw, the JSON it lies in.
func (t text) in(raw string) string {
	if t.end == 0 {
		return ""
	}
	if !t.escaped {
		return raw[t.start+1 : t.end-1]
	}
	b, _ := jsontext.AppendUnquote(nil, raw[t.start:t.end]) // valid: the decoder read it
	return string(b)
}

// textList is a list of strings that SES may also write as a single
// string (commonHeaders.to, a tag's value); null is an empty list and a
// null in the list an empty string.
type textList []text

// read reads an array of strings, a string, or null, the value of the
// member name.
func (l *textList) read(dec *jsontext.Decoder, name string) error {
	switch dec.PeekKind() {
	case 'n':
		*l = nil
		_, err := dec.ReadToken()
		return err
	case '"':
		*l = textList{{}}
		return (*l)[0].read(dec, name)
	}
	out := make(textList, 0, 4)
	err := readArray(dec, name, func() error {
		var t text
		err := t.read(dec, name)
		out = append(out, t)
		return err
	})
	*l = out
	return err
}

// in returns the strings, read from raw; nil for null.
func (l textList) in(raw string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, t := range l {
		out[i] = t.in(raw)
	}
	return out
}

// addresses returns the header entries, read from raw, one entry per
// address (appendAddresses).
func (l textList) addresses(raw string) []string {
	var out []string
	for _, t := range l {
		out = appendAddresses(out, t.in(raw))
	}
	return out
}

// textMap is an object of string lists (mail.tags, click.linkTags).
type textMap map[string]textList

// read reads an object of string lists, or null, the value of the
// member name.
func (m *textMap) read(dec *jsontext.Decoder, name string) error {
	if dec.PeekKind() == 'n' {
		*m = nil
		_, err := dec.ReadToken()
		return err
	}
	out := textMap{}
	err := members(dec, name, func(name []byte) error {
		key := string(name) // before the value is read, which may move name
		var l textList
		err := l.read(dec, key)
		out[key] = l
		return err
	})
	*m = out
	return err
}

// in returns the lists, read from raw; nil for null.
func (m textMap) in(raw string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, l := range m {
		out[k] = l.in(raw)
	}
	return out
}

// boolish is a boolean that SES may also write as a string ("true",
// "False", ...); null and "" are false.
type boolish bool

// read reads true, false, "true", "false" (in lower, title or upper
// case), "" or null, the value of the member name.
func (b *boolish) read(dec *jsontext.Decoder, name string) error {
	switch k := dec.PeekKind(); k {
	case 't', 'f', 'n':
		_, err := dec.ReadToken()
		*b = k == 't'
		return err
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		switch tok.String() {
		case "true", "True", "TRUE":
			*b = true
			return nil
		case "false", "False", "FALSE", "":
			*b = false
			return nil
		}
		return &kindError{name: name, got: '"', want: "a boolean"}
	}
	return wrongKind(dec, name, "a boolean")
}

// millis is a whole number of milliseconds that SES may also write as a
// string; null and "" are 0. A fraction is cut off; a number too large
// for an int is an error, never wrapped around.
type millis int

// read reads a number, a string holding one, or null, the value of the
// member name.
func (n *millis) read(dec *jsontext.Decoder, name string) error {
	k := dec.PeekKind()
	switch k {
	case 'n':
		*n = 0
		_, err := dec.ReadToken()
		return err
	case '0', '"':
	default:
		return wrongKind(dec, name, "a number")
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	s := tok.String()
	if s == "" {
		*n = 0
		return nil
	}
	if i, err := strconv.ParseInt(s, 10, 0); err == nil {
		*n = millis(i)
		return nil
	} else if errors.Is(err, strconv.ErrRange) {
		return &rangeError{name: name, value: s}
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && (math.IsNaN(f) || f < math.MinInt || f >= -math.MinInt):
		return &rangeError{name: name, value: s}
	case err != nil:
		return &kindError{name: name, got: k, want: "a number"}
	}
	*n = millis(f)
	return nil
}
