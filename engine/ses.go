package engine

import (
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
// reads as absent.
type sesWire struct {
	NotificationType *string        `json:"notificationType"`
	EventType        *string        `json:"eventType"`
	Mail             *mailWire      `json:"mail"`
	Bounce           *bounceWire    `json:"bounce"`
	Complaint        *complaintWire `json:"complaint"`
	Delivery         *deliveryWire  `json:"delivery"`
	DeliveryDelay    *delayWire     `json:"deliveryDelay"`
	Reject           struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	Failure struct {
		ErrorMessage string `json:"errorMessage"`
		TemplateName string `json:"templateName"`
	} `json:"failure"`
	Open struct {
		IPAddress string `json:"ipAddress"`
		UserAgent string `json:"userAgent"`
		Timestamp string `json:"timestamp"`
	} `json:"open"`
	Click struct {
		IPAddress string `json:"ipAddress"`
		UserAgent string `json:"userAgent"`
		Timestamp string `json:"timestamp"`
		Link      string `json:"link"`
		LinkTags  strMap `json:"linkTags"`
	} `json:"click"`
	Subscription struct {
		ContactList         string `json:"contactList"`
		Timestamp           string `json:"timestamp"`
		Source              string `json:"source"`
		NewTopicPreferences struct {
			UnsubscribeAll boolish `json:"unsubscribeAll"`
		} `json:"newTopicPreferences"`
	} `json:"subscription"`
}

type mailWire struct {
	Timestamp        string   `json:"timestamp"`
	MessageID        string   `json:"messageId"`
	Source           string   `json:"source"`
	SourceArn        string   `json:"sourceArn"`
	SourceIP         string   `json:"sourceIp"`
	SendingAccountID string   `json:"sendingAccountId"`
	CallerIdentity   string   `json:"callerIdentity"`
	Destination      strList  `json:"destination"`
	HeadersTruncated boolish  `json:"headersTruncated"`
	Tags             strMap   `json:"tags"`
	Headers          []header `json:"headers"`
	CommonHeaders    struct {
		From    strList `json:"from"`
		To      strList `json:"to"`
		Cc      strList `json:"cc"`
		ReplyTo strList `json:"replyTo"`
		Subject string  `json:"subject"`
	} `json:"commonHeaders"`
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type bounceWire struct {
	BounceType        string          `json:"bounceType"`
	BounceSubType     string          `json:"bounceSubType"`
	BouncedRecipients []recipientWire `json:"bouncedRecipients"`
	Timestamp         string          `json:"timestamp"`
	FeedbackID        string          `json:"feedbackId"`
	RemoteMtaIP       string          `json:"remoteMtaIp"`
	ReportingMTA      string          `json:"reportingMTA"`
}

type complaintWire struct {
	ComplainedRecipients  []recipientWire `json:"complainedRecipients"`
	Timestamp             string          `json:"timestamp"`
	FeedbackID            string          `json:"feedbackId"`
	ComplaintSubType      string          `json:"complaintSubType"`
	UserAgent             string          `json:"userAgent"`
	ComplaintFeedbackType string          `json:"complaintFeedbackType"`
	ArrivalDate           string          `json:"arrivalDate"`
}

type deliveryWire struct {
	Timestamp            string  `json:"timestamp"`
	ProcessingTimeMillis millis  `json:"processingTimeMillis"`
	Recipients           strList `json:"recipients"`
	SMTPResponse         string  `json:"smtpResponse"`
	ReportingMTA         string  `json:"reportingMTA"`
	RemoteMtaIP          string  `json:"remoteMtaIp"`
}

type delayWire struct {
	Timestamp         string          `json:"timestamp"`
	DelayType         string          `json:"delayType"`
	ExpirationTime    string          `json:"expirationTime"`
	DelayedRecipients []recipientWire `json:"delayedRecipients"`
	ReportingMTA      string          `json:"reportingMTA"`
}

// recipientWire is a recipient of a bounce, complaint or delay: an
// object, or a bare address, which is tolerated.
type recipientWire struct {
	EmailAddress   string `json:"emailAddress"`
	Action         string `json:"action"`
	Status         string `json:"status"`
	DiagnosticCode string `json:"diagnosticCode"`
}

// UnmarshalJSONFrom reads a recipient object, or a bare address; null
// is an empty recipient.
func (r *recipientWire) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '"' {
		var err error
		r.EmailAddress, err = readString(dec, "")
		return err
	}
	return members(dec, "", func(name []byte) error {
		var err error
		switch string(name) {
		case "emailAddress":
			r.EmailAddress, err = readString(dec, "emailAddress")
		case "action":
			r.Action, err = readString(dec, "action")
		case "status":
			r.Status, err = readString(dec, "status")
		case "diagnosticCode":
			r.DiagnosticCode, err = readString(dec, "diagnosticCode")
		default:
			_, err = dec.ReadValue()
		}
		return err
	})
}

// decodeSES decodes the SES JSON (raw, which the Notification keeps; b is
// its bytes, or nil) into a Notification. A set-up message, an
// inbound-mail notification or JSON that is not SES's gives a skip reason
// instead.
func decodeSES(raw string, b []byte) (*Notification, string, error) {
	var w sesWire
	var err error
	if b != nil {
		err = json.Unmarshal(b, &w)
	} else {
		err = json.UnmarshalRead(strings.NewReader(raw), &w)
	}
	if err != nil {
		return nil, "", fmt.Errorf("SES JSON: %w", jsonError(err))
	}
	n := &Notification{Raw: raw}
	switch {
	case w.EventType != nil && w.NotificationType != nil:
		return nil, "", errors.New("SES JSON has both notificationType and eventType: refusing to read it as either")
	case w.EventType != nil && *w.EventType != "":
		n.Format = "event"
		n.Event.Type = strings.ReplaceAll(*w.EventType, " ", "")
	case w.NotificationType == nil || *w.NotificationType == "":
		return nil, "JSON message that is not an SES notification (no notificationType or eventType)", nil
	case *w.NotificationType == "AmazonSnsSubscriptionSucceeded":
		return nil, "SES set-up message AmazonSnsSubscriptionSucceeded", nil
	case *w.NotificationType == "Received":
		return nil, "SES inbound mail (Received), not feedback", nil
	default:
		n.Format = "notification"
		n.Event.Type = *w.NotificationType
	}
	if w.Mail == nil {
		return nil, "", fmt.Errorf("SES %s notification has no mail object", n.Event.Type)
	}
	n.Mail = w.Mail.model()
	n.Event.Timestamp = n.Mail.Timestamp

	var recips []recipientWire
	from := "mail.destination" // where the recipients come from
	switch n.Event.Type {
	case TypeBounce:
		b := w.Bounce
		if b == nil {
			return nil, "", missing("bounce")
		}
		n.Bounce = Bounce{Type: b.BounceType, SubType: b.BounceSubType, ReportingMTA: b.ReportingMTA,
			RemoteMtaIP: b.RemoteMtaIP, FeedbackID: b.FeedbackID, Timestamp: b.Timestamp}
		recips, from = b.BouncedRecipients, "bounce.bouncedRecipients"
		n.Event.Timestamp = cmp.Or(b.Timestamp, n.Event.Timestamp)
	case TypeComplaint:
		c := w.Complaint
		if c == nil {
			return nil, "", missing("complaint")
		}
		n.Complaint = Complaint{FeedbackType: c.ComplaintFeedbackType, SubType: c.ComplaintSubType, UserAgent: c.UserAgent,
			ArrivalDate: c.ArrivalDate, FeedbackID: c.FeedbackID, Timestamp: c.Timestamp}
		recips, from = c.ComplainedRecipients, "complaint.complainedRecipients"
		n.Event.Timestamp = cmp.Or(c.Timestamp, n.Event.Timestamp)
	case TypeDelivery:
		d := w.Delivery
		if d == nil {
			return nil, "", missing("delivery")
		}
		n.Delivery = Delivery{Timestamp: d.Timestamp, ProcessingTimeMillis: int(d.ProcessingTimeMillis),
			SMTPResponse: d.SMTPResponse, ReportingMTA: d.ReportingMTA, RemoteMtaIP: d.RemoteMtaIP}
		recips, from = addresses(d.Recipients), "delivery.recipients"
		n.Event.Timestamp = cmp.Or(d.Timestamp, n.Event.Timestamp)
	case TypeDeliveryDelay:
		d := w.DeliveryDelay
		if d == nil {
			return nil, "", missing("deliveryDelay")
		}
		n.Delay = Delay{Type: d.DelayType, ExpirationTime: d.ExpirationTime, ReportingMTA: d.ReportingMTA, Timestamp: d.Timestamp}
		recips, from = d.DelayedRecipients, "deliveryDelay.delayedRecipients"
		n.Event.Timestamp = cmp.Or(d.Timestamp, n.Event.Timestamp)
	default:
		// Send, Reject, Open, Click, RenderingFailure, Subscription and
		// types SES may add later name no recipients: mail.destination.
		n.Reject = Reject(w.Reject)
		n.Failure = Failure(w.Failure)
		n.Open = Open(w.Open)
		c, s := &w.Click, &w.Subscription
		n.Click = Click{IPAddress: c.IPAddress, UserAgent: c.UserAgent, Timestamp: c.Timestamp, Link: c.Link, LinkTags: c.LinkTags}
		n.Subscription = Subscription{ContactList: s.ContactList, Source: s.Source, Timestamp: s.Timestamp,
			UnsubscribeAll: bool(s.NewTopicPreferences.UnsubscribeAll)}
		n.Event.Timestamp = cmp.Or(n.Open.Timestamp, n.Click.Timestamp, n.Subscription.Timestamp, n.Event.Timestamp)
		recips = addresses(n.Mail.Destination)
	}
	if len(recips) == 0 {
		return nil, fmt.Sprintf("SES %s names no recipients (%s is empty)", n.Event.Type, from), nil
	}
	n.Recipients = make([]Recipient, len(recips))
	for i, r := range recips {
		rc := NewRecipient(r.EmailAddress)
		rc.Status, rc.Action, rc.DiagnosticCode = r.Status, r.Action, r.DiagnosticCode
		n.Recipients[i] = rc
	}
	return n, "", nil
}

// addresses makes recipients of bare addresses.
func addresses(as []string) []recipientWire {
	rs := make([]recipientWire, len(as))
	for i, a := range as {
		rs[i].EmailAddress = a
	}
	return rs
}

// model returns the Mail of the model, with the fields derived from the
// ones read.
func (w *mailWire) model() Mail {
	m := Mail{
		Timestamp: w.Timestamp, MessageID: w.MessageID, Source: w.Source, SourceArn: w.SourceArn, SourceIP: w.SourceIP,
		SendingAccountID: w.SendingAccountID, CallerIdentity: w.CallerIdentity, Destination: w.Destination,
		Tags: w.Tags, HeadersTruncated: bool(w.HeadersTruncated), Subject: w.CommonHeaders.Subject,
	}
	if m.Destination == nil {
		m.Destination = []string{}
	}
	m.SourceAddress = BareAddress(m.Source)
	if at := strings.LastIndexByte(m.SourceAddress, '@'); at >= 0 {
		m.SourceDomain = strings.ToLower(m.SourceAddress[at+1:])
	}
	h := &w.CommonHeaders
	m.From, m.To, m.Cc, m.ReplyTo = splitAddresses(h.From), splitAddresses(h.To), splitAddresses(h.Cc), splitAddresses(h.ReplyTo)
	if len(w.Headers) > 0 {
		m.Headers = make(map[string]string, len(w.Headers))
		for _, h := range w.Headers {
			if prev, ok := m.Headers[h.Name]; ok {
				m.Headers[h.Name] = prev + ", " + h.Value
			} else {
				m.Headers[h.Name] = h.Value
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

// strList is a list of strings that SES may also write as a single
// string (commonHeaders.to, a tag's value); null is an empty list and a
// null in the list an empty string.
type strList []string

// UnmarshalJSONFrom reads an array of strings, a string, or null.
func (l *strList) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case 'n':
		*l = nil
		_, err := dec.ReadToken()
		return err
	case '"':
		s, err := readString(dec, "")
		*l = strList{s}
		return err
	case '[':
	default:
		return wrongKind(dec, "", "an array")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	out := strList{}
	for dec.PeekKind() != ']' {
		s, err := readString(dec, "")
		if err != nil {
			return err
		}
		out = append(out, s)
	}
	*l = out
	_, err := dec.ReadToken()
	return err
}

// strMap is an object of string lists (mail.tags, click.linkTags).
type strMap map[string][]string

// UnmarshalJSONFrom reads an object of string lists, or null.
func (m *strMap) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == 'n' {
		*m = nil
		_, err := dec.ReadToken()
		return err
	}
	out := strMap{}
	err := members(dec, "", func(name []byte) error {
		var l strList
		err := l.UnmarshalJSONFrom(dec)
		out[string(name)] = l
		return err
	})
	*m = out
	return err
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
