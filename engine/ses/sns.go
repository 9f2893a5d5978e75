package ses

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SNS message types.
const (
	SNSNotification             = "Notification"
	SNSSubscriptionConfirmation = "SubscriptionConfirmation"
	SNSUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// SNSMessage is an SNS message: the one reading of an SNS envelope, for the
// HTTP body layout (which is also an SQS body's when raw delivery is off)
// and for the Sns object of a Lambda SNS record. intake verifies it, and
// the decoders route its Message; nobody reads an SNS envelope another way.
type SNSMessage struct {
	Type, MessageID, TopicArn, Timestamp string
	// Message is the message SNS carried, as a string.
	Message string
	// Subject is nil when absent or null: it is not signed then.
	Subject                                     *string
	SignatureVersion, Signature, SigningCertURL string
	// SubscribeURL and Token are set for subscription and unsubscribe
	// confirmations; UnsubscribeURL for notifications (it is not signed).
	SubscribeURL, UnsubscribeURL, Token string

	present snsField // the fields the envelope had, null ones excepted
}

// snsField is a bit set of the SNS fields.
type snsField uint16

const (
	snsType snsField = 1 << iota
	snsMessageID
	snsTopicArn
	snsTimestamp
	snsMessage
	snsSubject
	snsSignatureVersion
	snsSignature
	snsSigningCertURL
	snsSubscribeURL
	snsUnsubscribeURL
	snsToken
)

// snsFields are the keys of an SNS envelope. A Lambda record writes
// SigningCertUrl and UnsubscribeUrl where the HTTP body writes ...URL;
// both spellings are read, and an envelope holding both is refused as a
// duplicate. noControl marks the values in which a control character is
// refused: SNS signs "Key\nValue\n" pairs, so a newline in one of them
// could move text from one field into another and still verify.
var snsFields = []struct {
	key       string
	bit       snsField
	noControl bool
}{
	{"Type", snsType, true},
	{"MessageId", snsMessageID, true},
	{"TopicArn", snsTopicArn, true},
	{"Timestamp", snsTimestamp, true},
	{"Message", snsMessage, false},
	{"Subject", snsSubject, false},
	{"SignatureVersion", snsSignatureVersion, true},
	{"Signature", snsSignature, true},
	{"SigningCertURL", snsSigningCertURL, true},
	{"SigningCertUrl", snsSigningCertURL, true},
	{"SubscribeURL", snsSubscribeURL, true},
	{"UnsubscribeURL", snsUnsubscribeURL, true},
	{"UnsubscribeUrl", snsUnsubscribeURL, true},
	{"Token", snsToken, true},
}

// Has reports whether the envelope had the field named as SNS writes it
// in an HTTP body ("MessageId", "SigningCertURL", ...); a null counts as
// absent.
func (m *SNSMessage) Has(key string) bool {
	for _, f := range snsFields {
		if f.key == key {
			return m.present&f.bit != 0
		}
	}
	return false
}

// field returns where the value of the field with bit b goes.
func (m *SNSMessage) field(b snsField) *string {
	switch b {
	case snsType:
		return &m.Type
	case snsMessageID:
		return &m.MessageID
	case snsTopicArn:
		return &m.TopicArn
	case snsTimestamp:
		return &m.Timestamp
	case snsMessage:
		return &m.Message
	case snsSignatureVersion:
		return &m.SignatureVersion
	case snsSignature:
		return &m.Signature
	case snsSigningCertURL:
		return &m.SigningCertURL
	case snsSubscribeURL:
		return &m.SubscribeURL
	case snsUnsubscribeURL:
		return &m.UnsubscribeURL
	case snsToken:
		return &m.Token
	}
	return nil
}

// ParseSNS reads an SNS envelope: one JSON object whose SNS fields are
// strings (Subject and Message may be null, which counts as absent).
// Every other key (MessageAttributes, a field SNS adds later, or a key of
// another envelope shape) is ignored: nothing but SNS's own fields is ever
// read from it. A key given twice, in any letter case ("Message" and
// "message"), a control character in a field that SNS signs as a single
// line, and anything after the object are errors. Which fields must be
// present is for the caller to say (Has).
func ParseSNS(b []byte) (*SNSMessage, error) {
	m := new(SNSMessage)
	var seen []string // keys so far, in lower case
	var problem error
	l := lexer{b: b}
	if l.peek() != '{' {
		return nil, errors.New("an SNS message is a JSON object")
	}
	l.object(func(k []byte) {
		key := string(k)
		lower := strings.ToLower(key)
		for _, s := range seen {
			if s == lower && problem == nil {
				problem = fmt.Errorf("key %q appears twice (keys are compared in any letter case)", key)
			}
		}
		seen = append(seen, lower)
		for _, f := range snsFields {
			if f.key != key {
				continue
			}
			m.read(&l, f.bit, key)
			if f.noControl && problem == nil {
				if v := m.field(f.bit); v != nil && hasControl(*v) {
					problem = fmt.Errorf("%s holds a control character", key)
				}
			}
			return
		}
		l.skip()
	})
	l.end()
	if l.err != nil {
		return nil, l.err
	}
	if problem != nil {
		return nil, problem
	}
	return m, nil
}

// read reads the string value of the field with bit b (key as written),
// or null.
func (m *SNSMessage) read(l *lexer, b snsField, key string) {
	switch c := l.peek(); {
	case c == 'n':
		l.literal("null")
		return
	case c != '"':
		l.typeError("a string")
		if b == snsMessage && l.err != nil {
			l.err = fmt.Errorf("%w: SNS always sends the message as a string (was it decoded twice?)", l.err)
		}
		return
	}
	s := l.str()
	if l.err != nil {
		return
	}
	if b == snsSubject {
		m.Subject = &s
	} else {
		*m.field(b) = s
	}
	m.present |= b
}

// hasControl reports whether s holds a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return true
		}
	}
	return false
}

// DecodeSNS decodes the message m carries, which arrived in envelope
// (EnvelopeSNS for a Lambda record, EnvelopeSQS for an SQS body,
// EnvelopeHTTP for an HTTP body): a Notification's Message is decoded as
// SES JSON, with the envelope metadata (MessageId, TopicArn) taken from m;
// a subscription or unsubscribe confirmation, a message that is not JSON
// and a set-up message are skipped. envelopeID is the id of the envelope
// the message came in: the SQS messageId inside SQS, else m's MessageId.
// The item's Origin.SNS is m itself.
func DecodeSNS(input, envelope, envelopeID string, m *SNSMessage) Item {
	it := Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID, SNSMessageID: m.MessageID, TopicArn: m.TopicArn,
		Origin: Origin{SNS: m}}
	if it.EnvelopeID == "" {
		it.EnvelopeID = m.MessageID
	}
	switch m.Type {
	case SNSNotification:
	case SNSSubscriptionConfirmation, SNSUnsubscribeConfirmation:
		it.Skipped = "SNS " + m.Type + " for " + orUnknown(m.TopicArn)
		return it
	case "":
		it.Err = errors.New("SNS message has no Type")
		return it
	default:
		it.Skipped = "SNS message of type " + strconv.Quote(m.Type)
		return it
	}
	if m.present&snsMessage == 0 {
		it.Err = errors.New("SNS Notification has no Message")
		return it
	}
	t := strings.TrimSpace(m.Message)
	if len(t) == 0 || t[0] != '{' {
		it.Skipped = "SNS message is not JSON: " + preview([]byte(t))
		return it
	}
	decodeSESInto(&it, t)
	return it
}
