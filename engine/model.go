package engine

import (
	"encoding/json"
	"net/mail"
	"strings"
)

// Envelope names, as reported in event.envelope and the JSON output.
const (
	EnvelopeSNS         = "sns"         // a Lambda SNS event record
	EnvelopeSQS         = "sqs"         // a Lambda SQS event record
	EnvelopeEventBridge = "eventbridge" // an EventBridge event
	EnvelopeHTTP        = "http"        // an SNS HTTP(S) POST body
	EnvelopeFile        = "file"        // bare SES JSON, as in a captured file
)

// Event types after normalisation. SES writes "Rendering Failure" with a
// space; the model calls it RenderingFailure. Types SES may add later are
// kept as they are written.
const (
	TypeBounce           = "Bounce"
	TypeComplaint        = "Complaint"
	TypeDelivery         = "Delivery"
	TypeSend             = "Send"
	TypeReject           = "Reject"
	TypeOpen             = "Open"
	TypeClick            = "Click"
	TypeRenderingFailure = "RenderingFailure"
	TypeDeliveryDelay    = "DeliveryDelay"
	TypeSubscription     = "Subscription"
)

// Notification is one SES notification, from either SES format (identity
// notifications with notificationType, event publishing with eventType),
// normalised into one model. Its exported sub-structs are exactly what rule
// expressions see under the names event, mail, bounce, and so on.
//
// Notifications are made by Decode (and the Reader); Route reads them and
// never changes them.
type Notification struct {
	// Input says where the notification came from, as "FILE:LINE" or
	// "FILE:LINE#RECORD" for a record of a Lambda batch event.
	Input string
	// EnvelopeID is the SNS MessageId, the SQS messageId or the EventBridge
	// event id; empty for bare SES JSON. SNSMessageID is the SNS MessageId
	// whenever SNS carried the notification, also inside SQS.
	EnvelopeID   string
	SNSMessageID string
	// Format is "notification" (identity notifications, notificationType)
	// or "event" (event publishing, eventType).
	Format string

	Event        Event
	Mail         Mail
	Bounce       Bounce
	Complaint    Complaint
	Delivery     Delivery
	Delay        Delay
	Reject       Reject
	Failure      Failure
	Open         Open
	Click        Click
	Subscription Subscription

	// Recipients are the recipients the rules are evaluated for: the
	// bounced, complained, delivered or delayed recipients, or, for types
	// that name none, mail.destination.
	Recipients []Recipient

	// Raw is the SES JSON exactly as received, so that fields the model
	// does not name are never lost.
	Raw json.RawMessage

	vars *exprVars // pre-boxed expression values, made once at decode
}

// Event describes the notification as a whole (event.* in rules).
type Event struct {
	// Type is Bounce, Complaint, Delivery, Send, Reject, Open, Click,
	// RenderingFailure, DeliveryDelay or Subscription (or a newer SES type
	// as written).
	Type string `expr:"type" json:"type"`
	// Timestamp is the time of the event itself (bounce.timestamp,
	// complaint.timestamp, …), or mail.timestamp where the type has none.
	Timestamp string `expr:"timestamp" json:"timestamp"`
	// Envelope is sns, sqs, eventbridge, http or file.
	Envelope string `expr:"envelope" json:"envelope"`
	// TopicArn is the SNS topic, when the envelope names one.
	TopicArn string `expr:"topicArn" json:"topicArn,omitempty"`
}

// Mail is SES's mail object (mail.* in rules).
type Mail struct {
	Timestamp string `expr:"timestamp" json:"timestamp"`
	MessageID string `expr:"messageId" json:"messageId"`
	// Source is the envelope sender as SES wrote it, which may carry a
	// display name or an RFC 2047 encoded word.
	Source string `expr:"source" json:"source"`
	// SourceAddress is the bare address of Source.
	SourceAddress string `expr:"sourceAddress" json:"sourceAddress"`
	// SourceDomain is the domain of Source, in lower case.
	SourceDomain     string `expr:"sourceDomain" json:"sourceDomain"`
	SourceArn        string `expr:"sourceArn" json:"sourceArn,omitempty"`
	SourceIP         string `expr:"sourceIp" json:"sourceIp,omitempty"`
	SendingAccountID string `expr:"sendingAccountId" json:"sendingAccountId,omitempty"`
	CallerIdentity   string `expr:"callerIdentity" json:"callerIdentity,omitempty"`
	// Subject is commonHeaders.subject, when SES included headers.
	Subject string `expr:"subject" json:"subject,omitempty"`
	// Destination lists every envelope recipient (To, Cc and Bcc).
	Destination []string `expr:"destination" json:"destination"`
	// From, To, Cc and ReplyTo are the common headers, split into one
	// entry per address (SES may put several addresses in one entry).
	From    []string `expr:"from" json:"from,omitempty"`
	To      []string `expr:"to" json:"to,omitempty"`
	Cc      []string `expr:"cc" json:"cc,omitempty"`
	ReplyTo []string `expr:"replyTo" json:"replyTo,omitempty"`
	// Tags are the event-publishing tags, each a list of values.
	Tags map[string][]string `expr:"tags" json:"tags,omitempty"`
	// Headers are the original headers by name as written, when SES
	// included them; repeated headers are joined with ", ".
	Headers          map[string]string `expr:"headers" json:"headers,omitempty"`
	HeadersTruncated bool              `expr:"headersTruncated" json:"headersTruncated,omitempty"`
}

// Bounce is SES's bounce object (bounce.* in rules).
type Bounce struct {
	// Type is Permanent, Transient or Undetermined.
	Type string `expr:"type" json:"type"`
	// SubType is General, NoEmail, Suppressed, OnAccountSuppressionList, …
	// kept as SES wrote it.
	SubType      string `expr:"subType" json:"subType"`
	ReportingMTA string `expr:"reportingMTA" json:"reportingMTA,omitempty"`
	RemoteMtaIP  string `expr:"remoteMtaIp" json:"remoteMtaIp,omitempty"`
	FeedbackID   string `expr:"feedbackId" json:"feedbackId,omitempty"`
	Timestamp    string `expr:"timestamp" json:"timestamp,omitempty"`
}

// Complaint is SES's complaint object (complaint.* in rules).
type Complaint struct {
	// FeedbackType is complaintFeedbackType: abuse, not-spam, …
	FeedbackType string `expr:"feedbackType" json:"feedbackType,omitempty"`
	// SubType is complaintSubType: empty or OnAccountSuppressionList.
	SubType     string `expr:"subType" json:"subType,omitempty"`
	UserAgent   string `expr:"userAgent" json:"userAgent,omitempty"`
	ArrivalDate string `expr:"arrivalDate" json:"arrivalDate,omitempty"`
	FeedbackID  string `expr:"feedbackId" json:"feedbackId,omitempty"`
	Timestamp   string `expr:"timestamp" json:"timestamp,omitempty"`
}

// Delivery is SES's delivery object (delivery.* in rules).
type Delivery struct {
	Timestamp            string `expr:"timestamp" json:"timestamp,omitempty"`
	ProcessingTimeMillis int    `expr:"processingTimeMillis" json:"processingTimeMillis,omitempty"`
	SMTPResponse         string `expr:"smtpResponse" json:"smtpResponse,omitempty"`
	ReportingMTA         string `expr:"reportingMTA" json:"reportingMTA,omitempty"`
	RemoteMtaIP          string `expr:"remoteMtaIp" json:"remoteMtaIp,omitempty"`
}

// Delay is SES's deliveryDelay object (delay.* in rules).
type Delay struct {
	// Type is delayType: InternalFailure, General, MailboxFull, …
	Type           string `expr:"type" json:"type,omitempty"`
	ExpirationTime string `expr:"expirationTime" json:"expirationTime,omitempty"`
	ReportingMTA   string `expr:"reportingMTA" json:"reportingMTA,omitempty"`
	Timestamp      string `expr:"timestamp" json:"timestamp,omitempty"`
}

// Reject is SES's reject object (reject.* in rules).
type Reject struct {
	Reason string `expr:"reason" json:"reason,omitempty"`
}

// Failure is SES's rendering failure object (failure.* in rules).
type Failure struct {
	ErrorMessage string `expr:"errorMessage" json:"errorMessage,omitempty"`
	TemplateName string `expr:"templateName" json:"templateName,omitempty"`
}

// Open is SES's open object (open.* in rules).
type Open struct {
	IPAddress string `expr:"ipAddress" json:"ipAddress,omitempty"`
	UserAgent string `expr:"userAgent" json:"userAgent,omitempty"`
	Timestamp string `expr:"timestamp" json:"timestamp,omitempty"`
}

// Click is SES's click object (click.* in rules).
type Click struct {
	IPAddress string              `expr:"ipAddress" json:"ipAddress,omitempty"`
	UserAgent string              `expr:"userAgent" json:"userAgent,omitempty"`
	Timestamp string              `expr:"timestamp" json:"timestamp,omitempty"`
	Link      string              `expr:"link" json:"link,omitempty"`
	LinkTags  map[string][]string `expr:"linkTags" json:"linkTags,omitempty"`
}

// Subscription is SES's subscription object (subscription.* in rules).
type Subscription struct {
	ContactList string `expr:"contactList" json:"contactList,omitempty"`
	Source      string `expr:"source" json:"source,omitempty"`
	Timestamp   string `expr:"timestamp" json:"timestamp,omitempty"`
	// UnsubscribeAll is newTopicPreferences.unsubscribeAll.
	UnsubscribeAll bool `expr:"unsubscribeAll" json:"unsubscribeAll,omitempty"`
}

// Recipient is one recipient a notification names (recipient.* in rules).
type Recipient struct {
	// Address is the address as SES wrote it.
	Address string `expr:"address" json:"address"`
	// Local is the local part of the bare address.
	Local string `expr:"local" json:"local"`
	// Domain is the domain of the bare address, in lower case.
	Domain string `expr:"domain" json:"domain"`
	// Status, Action and DiagnosticCode come from the DSN of a bounce, or
	// the delayed recipient of a DeliveryDelay; empty when SES gave none.
	Status         string `expr:"status" json:"status,omitempty"`
	Action         string `expr:"action" json:"action,omitempty"`
	DiagnosticCode string `expr:"diagnosticCode" json:"diagnosticCode,omitempty"`
}

// NewRecipient returns the Recipient for an address as SES wrote it, with
// its local part and lower-case domain. Display names are tolerated.
func NewRecipient(address string) Recipient {
	bare := BareAddress(address)
	r := Recipient{Address: address}
	if at := strings.LastIndexByte(bare, '@'); at >= 0 {
		r.Local = bare[:at]
		r.Domain = strings.ToLower(bare[at+1:])
	} else {
		r.Local = bare
	}
	return r
}

// BareAddress returns the addr-spec of an address that may carry a display
// name ("Name <a@b>" gives "a@b"). It never fails: what cannot be parsed is
// returned trimmed as it is, or the part between the last angle brackets.
func BareAddress(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "<>\" (") {
		return s
	}
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return strings.TrimSpace(s[i+1 : i+j])
		}
	}
	return s
}

// splitAddresses splits header entries that may each hold several
// comma-separated addresses into one entry per address, each as written:
// commas inside quoted display names and angle brackets do not split.
func splitAddresses(entries []string) []string {
	var out []string
	for _, e := range entries {
		if !strings.Contains(e, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
			continue
		}
		out = append(out, splitOutsideQuotes(e)...)
	}
	return out
}

func splitOutsideQuotes(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			depth++
		case c == '>' && !quoted && depth > 0:
			depth--
		case c == ',' && !quoted && depth == 0:
			if p := strings.TrimSpace(s[start:i]); p != "" {
				out = append(out, p)
			}
			start = i + 1
		}
	}
	if p := strings.TrimSpace(s[start:]); p != "" {
		out = append(out, p)
	}
	return out
}
