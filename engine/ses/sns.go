package ses

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
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
	top       topKey
	bit       snsField
	noControl bool
}{
	{"Type", keyType, snsType, true},
	{"MessageId", keyMessageID, snsMessageID, true},
	{"TopicArn", keyTopicArn, snsTopicArn, true},
	{"Timestamp", keyTimestamp, snsTimestamp, true},
	{"Message", keyMessage, snsMessage, false},
	{"Subject", keySubject, snsSubject, false},
	{"SignatureVersion", keySignatureVersion, snsSignatureVersion, true},
	{"Signature", keySignature, snsSignature, true},
	{"SigningCertURL", keySigningCertURL, snsSigningCertURL, true},
	{"SigningCertUrl", keySigningCertURLLambda, snsSigningCertURL, true},
	{"SubscribeURL", keySubscribeURL, snsSubscribeURL, true},
	{"UnsubscribeURL", keyUnsubscribeURL, snsUnsubscribeURL, true},
	{"UnsubscribeUrl", keyUnsubscribeURLLambda, snsUnsubscribeURL, true},
	{"Token", keyToken, snsToken, true},
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
// "message"), or twice in any object inside it, a control character in a
// field that SNS signs as a single line, invalid JSON or UTF-8, and
// anything after the object are errors. Which fields must be present is
// for the caller to say (Has). Its cost is linear in the size of b,
// whatever b holds.
func ParseSNS(b []byte) (*SNSMessage, error) {
	_, m, err := parseSNS(b)
	return m, err
}

// parseSNS is ParseSNS, also returning the document it read.
func parseSNS(b []byte) (*document, *SNSMessage, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, nil, errors.New("an SNS message is a JSON object")
	}
	d := new(document)
	if err := d.read(b); err != nil {
		if dup, ok := errors.AsType[*dupError](err); ok && dup.in == "" {
			dup.fold = true
		}
		return nil, nil, err
	}
	m, err := d.sns()
	return d, m, err
}

// sns reads the SNS envelope an object document holds.
func (d *document) sns() (*SNSMessage, error) {
	if d.kind != '{' {
		return nil, errors.New("an SNS message is a JSON object")
	}
	if name, ok := foldDup(d.doc, d.names, nil); ok {
		return nil, &dupError{name: name, fold: true}
	}
	m := new(SNSMessage)
	for _, f := range snsFields {
		raw := d.value(f.top)
		if raw == nil {
			continue
		}
		buf := &d.unescaped
		if f.bit == snsMessage {
			buf = &d.message
		}
		b, err := unquoteBytes(raw, f.key, buf)
		if err != nil {
			if f.bit == snsMessage {
				err = fmt.Errorf("%w: SNS always sends the message as a string (was it decoded twice?)", err)
			}
			return nil, err
		}
		if raw[0] == 'n' {
			continue
		}
		s := string(b)
		if f.bit == snsMessage {
			d.msg = b
		}
		if f.noControl && hasControl(s) {
			return nil, fmt.Errorf("%s holds a control character", f.key)
		}
		if f.bit == snsSubject {
			subject := s
			m.Subject = &subject
		} else {
			*m.field(f.bit) = s
		}
		m.present |= f.bit
	}
	return m, nil
}

// foldNames is how many names foldDup compares pair by pair; beyond it,
// it looks each up in a map, so that its cost stays linear.
const foldNames = 16

// foldDup reports the first of names (quoted, in doc) that repeats an
// earlier one in another letter case (names repeated exactly are refused
// by the JSON reader). Names are compared as strings.ToLower makes them.
// work, when not nil, counts the comparisons and lookups made, for tests.
func foldDup(doc []byte, names []span, work *int) (string, bool) {
	var seen map[string]struct{}
	if len(names) > foldNames {
		seen = make(map[string]struct{}, len(names))
	}
	var small [foldNames]struct {
		name  []byte
		ascii bool
	}
	for i, n := range names {
		var buf []byte // a name with escapes is unescaped into a buffer of its own
		key, err := unquoteName(doc[n.start:n.end], &buf)
		if err != nil {
			return "", false // the JSON reader has refused it already
		}
		if seen != nil {
			if work != nil {
				*work++
			}
			lower := strings.ToLower(string(key))
			if _, ok := seen[lower]; ok {
				return string(key), true
			}
			seen[lower] = struct{}{}
			continue
		}
		ascii := isASCII(key)
		for _, s := range small[:i] {
			if work != nil {
				*work++
			}
			// ASCII names of different lengths differ in any case.
			if (!ascii || !s.ascii || len(s.name) == len(key)) && lowerEqual(s.name, key) {
				return string(key), true
			}
		}
		small[i].name, small[i].ascii = key, ascii
	}
	return "", false
}

// lowerEqual reports whether strings.ToLower makes a and b the same,
// without making them.
func lowerEqual(a, b []byte) bool {
	for len(a) > 0 && len(b) > 0 {
		if ca, cb := a[0], b[0]; ca < utf8.RuneSelf && cb < utf8.RuneSelf {
			if ca != cb && lowerASCII(ca) != lowerASCII(cb) {
				return false
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRune(a)
		rb, nb := utf8.DecodeRune(b)
		if ra != rb && unicode.ToLower(ra) != unicode.ToLower(rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) == len(b)
}

// isASCII reports whether b is all ASCII.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasControl reports whether s holds a C0 or C1 control character or DEL.
// It looks at eight bytes at a time while they are all printable ASCII,
// which the fields SNS signs are (a Signature is 344 bytes of base64),
// and at each byte from the first word that is not.
func hasControl(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// A byte below 0x20 (it borrows), or above 0x7e (adding 1 sets
		// its high bit, or it had it): look byte by byte from here.
		if ((x-0x20*ones)&^x|(x+ones)|x)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return true
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] < 0xa0: // U+0080 to U+009F
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
	return decodeSNS(input, envelope, envelopeID, m, nil)
}

// decodeSNS is DecodeSNS; msg, when not nil, is m.Message as bytes.
func decodeSNS(input, envelope, envelopeID string, m *SNSMessage, msg []byte) Item {
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
	var b []byte
	if msg != nil {
		b = bytes.TrimSpace(msg)
	}
	decodeSESInto(&it, t, b)
	return it
}
