package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Wire types of the SES JSON. Both formats share them; fields absent in one
// format simply stay empty. Unknown fields are ignored here and kept in
// Notification.Raw.
type wireSES struct {
	NotificationType string          `json:"notificationType"`
	EventType        string          `json:"eventType"`
	Mail             *wireMail       `json:"mail"`
	Bounce           *wireBounce     `json:"bounce"`
	Complaint        *wireComplaint  `json:"complaint"`
	Delivery         *wireDelivery   `json:"delivery"`
	Reject           *Reject         `json:"reject"`
	Failure          *Failure        `json:"failure"`
	Open             *Open           `json:"open"`
	Click            *Click          `json:"click"`
	DeliveryDelay    *wireDelay      `json:"deliveryDelay"`
	Subscription     *wireSubscribe  `json:"subscription"`
	Message          json.RawMessage `json:"message"` // AmazonSnsSubscriptionSucceeded
}

type wireMail struct {
	Timestamp        string          `json:"timestamp"`
	MessageID        string          `json:"messageId"`
	Source           string          `json:"source"`
	SourceArn        string          `json:"sourceArn"`
	SourceIP         string          `json:"sourceIp"`
	SendingAccountID string          `json:"sendingAccountId"`
	CallerIdentity   string          `json:"callerIdentity"`
	Destination      []string        `json:"destination"`
	HeadersTruncated flexBool        `json:"headersTruncated"`
	Headers          []wireHeader    `json:"headers"`
	CommonHeaders    *wireCommon     `json:"commonHeaders"`
	Tags             map[string]strs `json:"tags"`
}

type wireHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type wireCommon struct {
	From    strs   `json:"from"`
	To      strs   `json:"to"`
	Cc      strs   `json:"cc"`
	ReplyTo strs   `json:"replyTo"`
	Subject string `json:"subject"`
}

type wireBounce struct {
	BounceType        string          `json:"bounceType"`
	BounceSubType     string          `json:"bounceSubType"`
	BouncedRecipients []wireRecipient `json:"bouncedRecipients"`
	Timestamp         string          `json:"timestamp"`
	FeedbackID        string          `json:"feedbackId"`
	RemoteMtaIP       string          `json:"remoteMtaIp"`
	ReportingMTA      string          `json:"reportingMTA"`
}

type wireRecipient struct {
	EmailAddress   string `json:"emailAddress"`
	Action         string `json:"action"`
	Status         string `json:"status"`
	DiagnosticCode string `json:"diagnosticCode"`
}

type wireComplaint struct {
	ComplainedRecipients  []wireRecipient `json:"complainedRecipients"`
	Timestamp             string          `json:"timestamp"`
	FeedbackID            string          `json:"feedbackId"`
	ComplaintSubType      string          `json:"complaintSubType"`
	UserAgent             string          `json:"userAgent"`
	ComplaintFeedbackType string          `json:"complaintFeedbackType"`
	ArrivalDate           string          `json:"arrivalDate"`
}

type wireDelivery struct {
	Timestamp            string     `json:"timestamp"`
	ProcessingTimeMillis flexNumber `json:"processingTimeMillis"`
	Recipients           []string   `json:"recipients"`
	SMTPResponse         string     `json:"smtpResponse"`
	ReportingMTA         string     `json:"reportingMTA"`
	RemoteMtaIP          string     `json:"remoteMtaIp"`
}

type wireDelay struct {
	Timestamp         string          `json:"timestamp"`
	DelayType         string          `json:"delayType"`
	ExpirationTime    string          `json:"expirationTime"`
	DelayedRecipients []wireRecipient `json:"delayedRecipients"`
	ReportingMTA      string          `json:"reportingMTA"`
}

type wireSubscribe struct {
	ContactList         string `json:"contactList"`
	Timestamp           string `json:"timestamp"`
	Source              string `json:"source"`
	NewTopicPreferences *struct {
		UnsubscribeAll flexBool `json:"unsubscribeAll"`
	} `json:"newTopicPreferences"`
}

// strs is a list of strings that also accepts a single string or null.
type strs []string

func (s *strs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = strs{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// flexBool accepts true, false, "true", "false" and null: SES documents
// headersTruncated as a string and sends a boolean.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(bytes.Trim(bytes.TrimSpace(b), `"`)) {
	case "true", "True", "TRUE":
		*f = true
	case "false", "False", "FALSE", "null", "":
		*f = false
	default:
		return fmt.Errorf("not a boolean: %s", b)
	}
	return nil
}

// flexNumber accepts a JSON number or a string holding one, or null.
type flexNumber int

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(bytes.TrimSpace(b), `"`))
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*f = flexNumber(v)
	return nil
}

// decodeSES decodes the SES JSON into a Notification. A set-up message, an
// inbound-mail notification or JSON that is not SES's gives a skip reason
// instead.
func decodeSES(raw []byte) (*Notification, string, error) {
	var w wireSES
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, "", jsonError("SES JSON: ", err)
	}
	n := &Notification{Raw: raw}
	switch {
	case w.EventType != "":
		n.Format = "event"
		n.Event.Type = strings.ReplaceAll(w.EventType, " ", "")
	case w.NotificationType == "AmazonSnsSubscriptionSucceeded":
		return nil, "SES set-up message AmazonSnsSubscriptionSucceeded", nil
	case w.NotificationType == "Received":
		return nil, "SES inbound mail (Received), not feedback", nil
	case w.NotificationType != "":
		n.Format = "notification"
		n.Event.Type = w.NotificationType
	default:
		return nil, "JSON message that is not an SES notification (no notificationType or eventType)", nil
	}
	if w.Mail == nil {
		return nil, "", fmt.Errorf("SES %s notification has no mail object", n.Event.Type)
	}
	fillMail(&n.Mail, w.Mail)
	n.Event.Timestamp = n.Mail.Timestamp

	var recips []wireRecipient
	named := true // whether the type names its own recipients
	switch n.Event.Type {
	case TypeBounce:
		b := w.Bounce
		if b == nil {
			return nil, "", missing("bounce")
		}
		n.Bounce = Bounce{Type: b.BounceType, SubType: b.BounceSubType, ReportingMTA: b.ReportingMTA,
			RemoteMtaIP: b.RemoteMtaIP, FeedbackID: b.FeedbackID, Timestamp: b.Timestamp}
		recips = b.BouncedRecipients
		n.Event.Timestamp = firstNonEmpty(b.Timestamp, n.Event.Timestamp)
	case TypeComplaint:
		c := w.Complaint
		if c == nil {
			return nil, "", missing("complaint")
		}
		n.Complaint = Complaint{FeedbackType: c.ComplaintFeedbackType, SubType: c.ComplaintSubType, UserAgent: c.UserAgent,
			ArrivalDate: c.ArrivalDate, FeedbackID: c.FeedbackID, Timestamp: c.Timestamp}
		recips = c.ComplainedRecipients
		n.Event.Timestamp = firstNonEmpty(c.Timestamp, n.Event.Timestamp)
	case TypeDelivery:
		d := w.Delivery
		if d == nil {
			return nil, "", missing("delivery")
		}
		n.Delivery = Delivery{Timestamp: d.Timestamp, ProcessingTimeMillis: int(d.ProcessingTimeMillis),
			SMTPResponse: d.SMTPResponse, ReportingMTA: d.ReportingMTA, RemoteMtaIP: d.RemoteMtaIP}
		for _, a := range d.Recipients {
			recips = append(recips, wireRecipient{EmailAddress: a})
		}
		n.Event.Timestamp = firstNonEmpty(d.Timestamp, n.Event.Timestamp)
	case TypeDeliveryDelay:
		d := w.DeliveryDelay
		if d == nil {
			return nil, "", missing("deliveryDelay")
		}
		n.Delay = Delay{Type: d.DelayType, ExpirationTime: d.ExpirationTime, ReportingMTA: d.ReportingMTA, Timestamp: d.Timestamp}
		recips = d.DelayedRecipients
		n.Event.Timestamp = firstNonEmpty(d.Timestamp, n.Event.Timestamp)
	default:
		named = false
	}
	switch n.Event.Type {
	case TypeReject:
		if w.Reject != nil {
			n.Reject = *w.Reject
		}
	case TypeRenderingFailure:
		if w.Failure != nil {
			n.Failure = *w.Failure
		}
	case TypeOpen:
		if w.Open != nil {
			n.Open = *w.Open
			n.Event.Timestamp = firstNonEmpty(n.Open.Timestamp, n.Event.Timestamp)
		}
	case TypeClick:
		if w.Click != nil {
			n.Click = *w.Click
			n.Event.Timestamp = firstNonEmpty(n.Click.Timestamp, n.Event.Timestamp)
		}
	case TypeSubscription:
		if s := w.Subscription; s != nil {
			n.Subscription = Subscription{ContactList: s.ContactList, Source: s.Source, Timestamp: s.Timestamp}
			if s.NewTopicPreferences != nil {
				n.Subscription.UnsubscribeAll = bool(s.NewTopicPreferences.UnsubscribeAll)
			}
			n.Event.Timestamp = firstNonEmpty(s.Timestamp, n.Event.Timestamp)
		}
	}
	if !named {
		// Send, Reject, Open, Click, RenderingFailure, Subscription and
		// types SES may add later name no recipients: mail.destination.
		for _, a := range n.Mail.Destination {
			recips = append(recips, wireRecipient{EmailAddress: a})
		}
	}
	n.Recipients = make([]Recipient, 0, len(recips))
	for _, r := range recips {
		rc := NewRecipient(r.EmailAddress)
		rc.Status, rc.Action, rc.DiagnosticCode = r.Status, r.Action, r.DiagnosticCode
		n.Recipients = append(n.Recipients, rc)
	}
	return n, "", nil
}

func fillMail(m *Mail, w *wireMail) {
	*m = Mail{
		Timestamp: w.Timestamp, MessageID: w.MessageID, Source: w.Source,
		SourceArn: w.SourceArn, SourceIP: w.SourceIP, SendingAccountID: w.SendingAccountID,
		CallerIdentity: w.CallerIdentity, Destination: w.Destination, HeadersTruncated: bool(w.HeadersTruncated),
	}
	if m.Destination == nil {
		m.Destination = []string{}
	}
	m.SourceAddress = BareAddress(w.Source)
	if at := strings.LastIndexByte(m.SourceAddress, '@'); at >= 0 {
		m.SourceDomain = strings.ToLower(m.SourceAddress[at+1:])
	}
	if c := w.CommonHeaders; c != nil {
		m.Subject = c.Subject
		m.From, m.To, m.Cc, m.ReplyTo = splitAddresses(c.From), splitAddresses(c.To), splitAddresses(c.Cc), splitAddresses(c.ReplyTo)
	}
	if len(w.Tags) > 0 {
		m.Tags = make(map[string][]string, len(w.Tags))
		for k, v := range w.Tags {
			m.Tags[k] = v
		}
	}
	if len(w.Headers) > 0 {
		m.Headers = make(map[string]string, len(w.Headers))
		for _, h := range w.Headers {
			if prev, ok := m.Headers[h.Name]; ok {
				m.Headers[h.Name] = prev + ", " + h.Value
			} else {
				m.Headers[h.Name] = h.Value
			}
		}
	}
	if m.Subject == "" && m.Headers != nil {
		m.Subject = m.Headers["Subject"]
	}
}

func missing(obj string) error {
	return fmt.Errorf("SES JSON has no %s object", obj)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
