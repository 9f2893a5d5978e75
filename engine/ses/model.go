package ses

import (
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Envelope names, as reported in event.envelope and the JSON output.
const (
	EnvelopeSNS         = "sns"         // a Lambda SNS event record
	EnvelopeSQS         = "sqs"         // a Lambda SQS event record
	EnvelopeEventBridge = "eventbridge" // an EventBridge event
	EnvelopeHTTP        = "http"        // an SNS HTTP(S) POST body
	EnvelopeFile        = "file"        // bare SES JSON, as in a captured file
	EnvelopeSweep       = "sweep"       // an entry of the suppression list, read by sweep
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
// normalised into one model. Its sections (Event, Mail, Bounce, …) are
// exactly what rule expressions see under the names their expr tags give;
// the doc tags say what each name holds (Names lists them all).
//
// Notifications are made by Decode (and the Reader); Route reads them and
// never changes them.
type Notification struct {
	// Input says where the notification came from, as "FILE:LINE" or
	// "FILE:LINE#RECORD" for a record of a Lambda batch event.
	Input string `expr:"-"`
	// EnvelopeID is the SNS MessageId, the SQS messageId or the EventBridge
	// event id; empty for bare SES JSON. SNSMessageID is the SNS MessageId
	// whenever SNS carried the notification, also inside SQS.
	EnvelopeID   string `expr:"-"`
	SNSMessageID string `expr:"-"`
	// Format is "notification" (identity notifications, notificationType)
	// or "event" (event publishing, eventType).
	Format string `expr:"-"`

	Event        Event        `expr:"event" doc:"the notification as a whole"`
	Mail         Mail         `expr:"mail" doc:"the mail the notification is about"`
	Bounce       Bounce       `expr:"bounce" doc:"a Bounce" type:"Bounce"`
	Complaint    Complaint    `expr:"complaint" doc:"a Complaint" type:"Complaint"`
	Delivery     Delivery     `expr:"delivery" doc:"a Delivery" type:"Delivery"`
	Delay        Delay        `expr:"delay" doc:"a DeliveryDelay" type:"DeliveryDelay"`
	Reject       Reject       `expr:"reject" doc:"a Reject" type:"Reject"`
	Failure      Failure      `expr:"failure" doc:"a RenderingFailure" type:"RenderingFailure"`
	Open         Open         `expr:"open" doc:"an Open" type:"Open"`
	Click        Click        `expr:"click" doc:"a Click" type:"Click"`
	Subscription Subscription `expr:"subscription" doc:"a Subscription" type:"Subscription"`

	// Recipients are the recipients the rules are evaluated for: the
	// bounced, complained, delivered or delayed recipients, or, for types
	// that name none, mail.destination.
	Recipients []Recipient `expr:"-"`

	// Raw is the SES JSON exactly as received, so that fields the model
	// does not name are never lost.
	Raw string `expr:"-"`
}

// Event describes the notification as a whole (event.* in rules).
type Event struct {
	Type      string `expr:"type" doc:"Bounce, Complaint, Delivery, Send, Reject, Open, Click, RenderingFailure, DeliveryDelay or Subscription" values:"Bounce,Complaint,Delivery,Send,Reject,Open,Click,RenderingFailure,DeliveryDelay,Subscription"`
	Timestamp string `expr:"timestamp" doc:"when the event happened (bounce.timestamp, complaint.timestamp, …, or mail.timestamp)"`
	Envelope  string `expr:"envelope" doc:"how it arrived: sns, sqs, eventbridge, http, file, or sweep" values:"sns,sqs,eventbridge,http,file,sweep"`
	TopicArn  string `expr:"topicArn" doc:"the SNS topic, when SNS carried it"`
}

// Mail is SES's mail object (mail.* in rules).
type Mail struct {
	Timestamp        string              `expr:"timestamp" doc:"when the mail was sent"`
	MessageID        string              `expr:"messageId" doc:"the SES message id"`
	Source           string              `expr:"source" doc:"the envelope sender as SES wrote it (may carry a display name)"`
	SourceAddress    string              `expr:"sourceAddress" doc:"the bare address of mail.source" derived:"true"`
	SourceDomain     string              `expr:"sourceDomain" doc:"the domain of mail.source, in lower case" derived:"true"`
	SourceArn        string              `expr:"sourceArn" doc:"the ARN of the sending identity"`
	SourceIP         string              `expr:"sourceIp" doc:"the IP address that called SES"`
	SendingAccountID string              `expr:"sendingAccountId" doc:"the AWS account that sent the mail"`
	CallerIdentity   string              `expr:"callerIdentity" doc:"the IAM identity that sent the mail"`
	Subject          string              `expr:"subject" doc:"the Subject header, when SES included headers"`
	Destination      []string            `expr:"destination" doc:"every envelope recipient (To, Cc and Bcc)"`
	From             []string            `expr:"from" doc:"the From header, one entry per address"`
	To               []string            `expr:"to" doc:"the To header, one entry per address"`
	Cc               []string            `expr:"cc" doc:"the Cc header, one entry per address"`
	ReplyTo          []string            `expr:"replyTo" doc:"the Reply-To header, one entry per address"`
	Tags             map[string][]string `expr:"tags" doc:"the event-publishing tags, each a list of values"`
	Headers          map[string]string   `expr:"headers" doc:"the original headers by name (repeated ones joined with \", \"), when SES included them"`
	HeadersTruncated bool                `expr:"headersTruncated" doc:"SES cut the headers short"`
}

// Bounce is SES's bounce object (bounce.* in rules).
type Bounce struct {
	Type         string `expr:"type" doc:"Permanent, Transient or Undetermined" values:"Permanent,Transient,Undetermined"`
	SubType      string `expr:"subType" doc:"General, NoEmail, Suppressed, OnAccountSuppressionList, MailboxFull, … as SES wrote it" values:"Undetermined,General,NoEmail,Suppressed,OnAccountSuppressionList,OnTenantSuppressionList,EmailValidationSuppressed,UnsubscribedRecipient,MailboxFull,MessageTooLarge,CustomTimeoutExceeded,ContentRejected,AttachmentRejected"`
	ReportingMTA string `expr:"reportingMTA" doc:"the MTA that reported the bounce"`
	RemoteMtaIP  string `expr:"remoteMtaIp" doc:"the IP address of the MTA SES tried"`
	FeedbackID   string `expr:"feedbackId" doc:"the bounce's unique id"`
	Timestamp    string `expr:"timestamp" doc:"when the bounce was reported"`
}

// Complaint is SES's complaint object (complaint.* in rules).
type Complaint struct {
	FeedbackType string `expr:"feedbackType" doc:"complaintFeedbackType: abuse, auth-failure, fraud, not-spam, other or virus" values:"abuse,auth-failure,fraud,not-spam,other,virus"`
	SubType      string `expr:"subType" doc:"complaintSubType: empty or OnAccountSuppressionList" values:"OnAccountSuppressionList"`
	UserAgent    string `expr:"userAgent" doc:"the user agent of the feedback report"`
	ArrivalDate  string `expr:"arrivalDate" doc:"when the feedback report arrived"`
	FeedbackID   string `expr:"feedbackId" doc:"the complaint's unique id"`
	Timestamp    string `expr:"timestamp" doc:"when the complaint was reported"`
}

// Delivery is SES's delivery object (delivery.* in rules).
type Delivery struct {
	Timestamp            string `expr:"timestamp" doc:"when the mail was delivered"`
	ProcessingTimeMillis int    `expr:"processingTimeMillis" doc:"how long SES took, in milliseconds"`
	SMTPResponse         string `expr:"smtpResponse" doc:"the receiving MTA's answer"`
	ReportingMTA         string `expr:"reportingMTA" doc:"the SES host that delivered"`
	RemoteMtaIP          string `expr:"remoteMtaIp" doc:"the IP address of the receiving MTA"`
}

// Delay is SES's deliveryDelay object (delay.* in rules).
type Delay struct {
	Type           string `expr:"type" doc:"delayType: InternalFailure, General, MailboxFull, SpamDetected, …" values:"InternalFailure,General,MailboxFull,SpamDetected,RecipientServerError,IPFailure,TransientCommunicationFailure,BYOIPHostNameLookupUnavailable,Undetermined,SendingDeferral"`
	ExpirationTime string `expr:"expirationTime" doc:"when SES stops trying"`
	ReportingMTA   string `expr:"reportingMTA" doc:"the MTA that reported the delay"`
	Timestamp      string `expr:"timestamp" doc:"when the delay was reported"`
}

// Reject is SES's reject object (reject.* in rules).
type Reject struct {
	Reason string `expr:"reason" doc:"why SES rejected the mail (Bad content)"`
}

// Failure is SES's rendering failure object (failure.* in rules).
type Failure struct {
	ErrorMessage string `expr:"errorMessage" doc:"why the template did not render"`
	TemplateName string `expr:"templateName" doc:"the template"`
}

// Open is SES's open object (open.* in rules).
type Open struct {
	IPAddress string `expr:"ipAddress" doc:"the opener's IP address"`
	UserAgent string `expr:"userAgent" doc:"the opener's user agent"`
	Timestamp string `expr:"timestamp" doc:"when the mail was opened"`
}

// Click is SES's click object (click.* in rules).
type Click struct {
	IPAddress string              `expr:"ipAddress" doc:"the clicker's IP address"`
	UserAgent string              `expr:"userAgent" doc:"the clicker's user agent"`
	Timestamp string              `expr:"timestamp" doc:"when the link was clicked"`
	Link      string              `expr:"link" doc:"the link"`
	LinkTags  map[string][]string `expr:"linkTags" doc:"the link's tags, each a list of values"`
}

// Subscription is SES's subscription object (subscription.* in rules).
type Subscription struct {
	ContactList    string `expr:"contactList" doc:"the contact list"`
	Source         string `expr:"source" doc:"how the change came (UnsubscribeHeader, …)"`
	Timestamp      string `expr:"timestamp" doc:"when it changed"`
	UnsubscribeAll bool   `expr:"unsubscribeAll" doc:"newTopicPreferences.unsubscribeAll"`
}

// Recipient is one recipient a notification names (recipient.* in rules).
type Recipient struct {
	Address string `expr:"address" doc:"the bare mailbox local@domain, domain in lower case: exactly what unsuppress and suppress send to SES" derived:"true"`
	Raw     string `expr:"raw" doc:"the address as SES wrote it, display name and comments included"`
	Local   string `expr:"local" doc:"the local part of recipient.address" derived:"true"`
	Domain  string `expr:"domain" doc:"the domain of recipient.address, in lower case" derived:"true"`
	// Status, Action and DiagnosticCode come from the DSN of a bounce, or
	// the delayed recipient of a DeliveryDelay; empty when SES gave none.
	Status         string `expr:"status" doc:"the SMTP status from the DSN (5.1.1, …)"`
	Action         string `expr:"action" doc:"the DSN action (failed, delayed, …)"`
	DiagnosticCode string `expr:"diagnosticCode" doc:"the remote MTA's diagnostic, as SES wrote it"`
	// Invalid says why Raw holds no valid mailbox ("" when it does): no
	// SES action is taken for such a recipient.
	Invalid string `expr:"-"`
}

// maxAddress is the longest mailbox accepted, in bytes: 64 for the local
// part, 255 for the domain, and the '@' would make 320.
const maxAddress = 320

// NewRecipient returns the Recipient for an address as SES wrote it (raw):
// Address is its bare mailbox, with the display name and comments removed
// and the domain in lower case. A raw address that holds no valid mailbox
// (no '@' or two, a control character, invalid UTF-8, longer than 320
// bytes) gets Invalid, the reason, and an Address that is raw trimmed.
func NewRecipient(raw string) Recipient {
	r := Recipient{Raw: raw}
	addr, err := Mailbox(raw)
	if err != nil {
		r.Invalid = err.Error()
		addr = strings.TrimSpace(raw)
	}
	r.Address = addr
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		r.Local, r.Domain = addr[:at], strings.ToLower(addr[at+1:])
	} else {
		r.Local = addr
	}
	return r
}

// Mailbox returns the bare mailbox (local@domain, domain in lower case) of
// an address as written, which may carry a display name and comments
// ("Name" <a@b>, a@b (comment)), or why it holds none.
func Mailbox(raw string) (string, error) {
	switch {
	case !utf8.ValidString(raw):
		return "", errors.New("not a mailbox: invalid UTF-8")
	case hasControl(raw):
		return "", errors.New("not a mailbox: it holds a control character")
	case len(raw) > maxAddress:
		return "", fmt.Errorf("not a mailbox: longer than %d bytes", maxAddress)
	}
	s := strings.TrimSpace(raw)
	if strings.ContainsAny(s, "<>\"() \t,;:[]") {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return "", fmt.Errorf("not a mailbox: %w", err)
		}
		s = a.Address
	}
	at := strings.IndexByte(s, '@')
	switch {
	case at < 0:
		return "", errors.New("not a mailbox: no @")
	case strings.Count(s, "@") > 1:
		return "", errors.New("not a mailbox: more than one @")
	case at == 0 || at == len(s)-1:
		return "", errors.New("not a mailbox: empty local part or domain")
	}
	if domain := strings.ToLower(s[at+1:]); domain != s[at+1:] {
		return s[:at] + "@" + domain, nil
	}
	return s, nil
}

// BareAddress returns the bare mailbox of an address that may carry a
// display name ("Name <a@b>" gives "a@b"), or, when it holds none, the
// address trimmed.
func BareAddress(s string) string {
	if a, err := Mailbox(s); err == nil {
		return a
	}
	return strings.TrimSpace(s)
}

// appendAddresses appends to out the addresses of a header entry that
// may hold several, comma-separated, each as written: commas inside
// quoted display names and angle brackets do not split.
func appendAddresses(out []string, e string) []string {
	if !strings.Contains(e, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
		return out
	}
	return append(out, splitOutsideQuotes(e)...)
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

// Safe returns s for a terminal: as it is when it is printable, else
// quoted as %q writes it, so that a value from an event cannot move the
// cursor, clear the screen or reorder the text (control and bidi
// characters). Text output quotes every value from an event through it.
func Safe(s string) string {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			return strconv.Quote(s)
		}
	}
	return s
}
