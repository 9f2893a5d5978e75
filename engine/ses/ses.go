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
type sesWire struct {
	NotificationType text           `json:"notificationType"`
	EventType        text           `json:"eventType"`
	Mail             *mailWire      `json:"mail"`
	Bounce           *bounceWire    `json:"bounce"`
	Complaint        *complaintWire `json:"complaint"`
	Delivery         *deliveryWire  `json:"delivery"`
	DeliveryDelay    *delayWire     `json:"deliveryDelay"`
	Reject           struct {
		Reason text `json:"reason"`
	} `json:"reject"`
	Failure struct {
		ErrorMessage text `json:"errorMessage"`
		TemplateName text `json:"templateName"`
	} `json:"failure"`
	Open struct {
		IPAddress text `json:"ipAddress"`
		UserAgent text `json:"userAgent"`
		Timestamp text `json:"timestamp"`
	} `json:"open"`
	Click struct {
		IPAddress text    `json:"ipAddress"`
		UserAgent text    `json:"userAgent"`
		Timestamp text    `json:"timestamp"`
		Link      text    `json:"link"`
		LinkTags  textMap `json:"linkTags"`
	} `json:"click"`
	Subscription struct {
		ContactList         text `json:"contactList"`
		Timestamp           text `json:"timestamp"`
		Source              text `json:"source"`
		NewTopicPreferences struct {
			UnsubscribeAll boolish `json:"unsubscribeAll"`
		} `json:"newTopicPreferences"`
	} `json:"subscription"`
}

type mailWire struct {
	Timestamp        text     `json:"timestamp"`
	MessageID        text     `json:"messageId"`
	Source           text     `json:"source"`
	SourceArn        text     `json:"sourceArn"`
	SourceIP         text     `json:"sourceIp"`
	SendingAccountID text     `json:"sendingAccountId"`
	CallerIdentity   text     `json:"callerIdentity"`
	Destination      textList `json:"destination"`
	HeadersTruncated boolish  `json:"headersTruncated"`
	Tags             textMap  `json:"tags"`
	Headers          []struct {
		Name  text `json:"name"`
		Value text `json:"value"`
	} `json:"headers"`
	CommonHeaders struct {
		From    textList `json:"from"`
		To      textList `json:"to"`
		Cc      textList `json:"cc"`
		ReplyTo textList `json:"replyTo"`
		Subject text     `json:"subject"`
	} `json:"commonHeaders"`
}

type bounceWire struct {
	BounceType        text            `json:"bounceType"`
	BounceSubType     text            `json:"bounceSubType"`
	BouncedRecipients []recipientWire `json:"bouncedRecipients"`
	Timestamp         text            `json:"timestamp"`
	FeedbackID        text            `json:"feedbackId"`
	RemoteMtaIP       text            `json:"remoteMtaIp"`
	ReportingMTA      text            `json:"reportingMTA"`
}

type complaintWire struct {
	ComplainedRecipients  []recipientWire `json:"complainedRecipients"`
	Timestamp             text            `json:"timestamp"`
	FeedbackID            text            `json:"feedbackId"`
	ComplaintSubType      text            `json:"complaintSubType"`
	UserAgent             text            `json:"userAgent"`
	ComplaintFeedbackType text            `json:"complaintFeedbackType"`
	ArrivalDate           text            `json:"arrivalDate"`
}

type deliveryWire struct {
	Timestamp            text     `json:"timestamp"`
	ProcessingTimeMillis millis   `json:"processingTimeMillis"`
	Recipients           textList `json:"recipients"`
	SMTPResponse         text     `json:"smtpResponse"`
	ReportingMTA         text     `json:"reportingMTA"`
	RemoteMtaIP          text     `json:"remoteMtaIp"`
}

type delayWire struct {
	Timestamp         text            `json:"timestamp"`
	DelayType         text            `json:"delayType"`
	ExpirationTime    text            `json:"expirationTime"`
	DelayedRecipients []recipientWire `json:"delayedRecipients"`
	ReportingMTA      text            `json:"reportingMTA"`
}

// recipientWire is a recipient of a bounce, complaint or delay: an
// object, or a bare address, which is tolerated.
type recipientWire struct {
	EmailAddress   text `json:"emailAddress"`
	Action         text `json:"action"`
	Status         text `json:"status"`
	DiagnosticCode text `json:"diagnosticCode"`
}

// UnmarshalJSONFrom reads a recipient object, or a bare address; null
// is an empty recipient.
func (r *recipientWire) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '"' {
		return r.EmailAddress.UnmarshalJSONFrom(dec)
	}
	return members(dec, "", func(name []byte) error {
		switch string(name) {
		case "emailAddress":
			return r.EmailAddress.UnmarshalJSONFrom(dec)
		case "action":
			return r.Action.UnmarshalJSONFrom(dec)
		case "status":
			return r.Status.UnmarshalJSONFrom(dec)
		case "diagnosticCode":
			return r.DiagnosticCode.UnmarshalJSONFrom(dec)
		}
		_, err := dec.ReadValue()
		return err
	})
}

// decodeSES decodes the SES JSON (raw, which the Notification keeps, and
// whose substrings its strings are) into a Notification. A set-up
// message, an inbound-mail notification or JSON that is not SES's gives a
// skip reason instead.
func decodeSES(raw string) (*Notification, string, error) {
	var w sesWire
	if err := json.UnmarshalRead(strings.NewReader(raw), &w); err != nil {
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
			UnsubscribeAll: bool(sub.NewTopicPreferences.UnsubscribeAll)}
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

// UnmarshalJSONFrom reads a string or null.
func (t *text) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case 'n':
		*t = text{}
		_, err := dec.ReadToken()
		return err
	case '"':
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		end := int(dec.InputOffset())
		*t = text{start: end - len(v), end: end, escaped: bytes.IndexByte(v, '\\') >= 0}
		return nil
	}
	return wrongKind(dec, "", "a string")
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

// UnmarshalJSONFrom reads an array of strings, a string, or null.
func (l *textList) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case 'n':
		*l = nil
		_, err := dec.ReadToken()
		return err
	case '"':
		*l = textList{{}}
		return (*l)[0].UnmarshalJSONFrom(dec)
	case '[':
	default:
		return wrongKind(dec, "", "an array")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	out := textList{}
	for dec.PeekKind() != ']' {
		var t text
		if err := t.UnmarshalJSONFrom(dec); err != nil {
			return err
		}
		out = append(out, t)
	}
	*l = out
	_, err := dec.ReadToken()
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

// UnmarshalJSONFrom reads an object of string lists, or null.
func (m *textMap) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == 'n' {
		*m = nil
		_, err := dec.ReadToken()
		return err
	}
	out := textMap{}
	err := members(dec, "", func(name []byte) error {
		key := string(name) // before the value is read, which may move name
		var l textList
		err := l.UnmarshalJSONFrom(dec)
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

// UnmarshalJSONFrom reads true, false, "true", "false" (in lower,
// title or upper case), "" or null.
func (b *boolish) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
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
		return &kindError{got: '"', want: "a boolean"}
	}
	return wrongKind(dec, "", "a boolean")
}

// millis is a whole number of milliseconds that SES may also write as a
// string; null and "" are 0. A fraction is cut off; a number too large
// for an int is an error, never wrapped around.
type millis int

// UnmarshalJSONFrom reads a number, a string holding one, or null.
func (n *millis) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	k := dec.PeekKind()
	switch k {
	case 'n':
		*n = 0
		_, err := dec.ReadToken()
		return err
	case '0', '"':
	default:
		return wrongKind(dec, "", "a number")
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
		return &rangeError{value: s}
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && (math.IsNaN(f) || f < math.MinInt || f >= -math.MinInt):
		return &rangeError{value: s}
	case err != nil:
		return &kindError{got: k, want: "a number"}
	}
	*n = millis(f)
	return nil
}
