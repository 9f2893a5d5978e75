package ses

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Item is what one input notification decoded to: a Notification, or the
// reason it was skipped (not an SES notification) or could not be read.
// Exactly one of Notification, Skipped and Err is set.
type Item struct {
	// Input is where the item came from: "FILE:LINE", "FILE:LINE[INDEX]"
	// for an element of a top-level array, "FILE:LINE#N" for the Nth
	// record of a Lambda SNS or SQS event.
	Input string
	// Envelope is sns, sqs, eventbridge, http or file.
	Envelope string
	// EnvelopeID is the id of the envelope the item came in: the SNS
	// MessageId (Lambda SNS record, SNS HTTP body), the SQS messageId
	// (SQS record, whatever its body) or the EventBridge event id.
	EnvelopeID string
	// SNSMessageID is the SNS MessageId when SNS carried the item (also
	// inside an SQS body); SNS reuses it when it delivers again.
	SNSMessageID string
	// TopicArn is the SNS topic, when known.
	TopicArn string
	// Origin is what the envelopes say of where the content came from,
	// for a Lambda invocation to decide whether it may act on it.
	Origin Origin

	Notification *Notification
	Skipped      string
	Err          error
}

// Origin is what an item's envelopes say of where its content came from:
// the decoders fill it and check none of it. Whether the content may be
// acted on is for the caller to decide (a Lambda invocation checks the
// SNS signature, the queue, the account).
type Origin struct {
	// SNS is the SNS message the item was read from (a Lambda SNS record,
	// an SQS body, an SNS HTTP body): the very message whose Message was
	// decoded, so that a signature checked over it covers exactly what is
	// acted on. Nil when no SNS envelope carried the item.
	SNS *SNSMessage
	// Queue is the ARN of the SQS queue of an SQS record (its
	// eventSourceARN, which Lambda writes, not the sender).
	Queue string
	// EventBridge says that the item was an EventBridge event, given to
	// the function directly or in an SQS body; Account is that event's
	// account.
	EventBridge bool
	Account     string
}

// Decode decodes one JSON document into the notifications it carries,
// detecting its shape by content: a Lambda SNS or SQS event (one item per
// record), an EventBridge event, an SNS HTTP body, a bare SES
// notification, or a top-level array of any of these (one item per
// element, named INPUT[INDEX]). input names the document in Item.Input.
// A document that has the keys of two shapes (an SNS body that also holds
// Records, say) is refused rather than read one way or the other, and so
// is a member name given twice in one object, at any level of the
// document or of the SES JSON it carries (keys match exactly, in letter
// case too). Decode never panics on any input: what it cannot read is an
// Item with Err.
func Decode(input string, doc []byte) []Item {
	return appendDecode(nil, input, doc)
}

// appendDecode is Decode appending to dst. doc is not kept: it may be
// reused once appendDecode returns.
func appendDecode(dst []Item, input string, doc []byte) []Item {
	for it := range Items(input, doc) {
		dst = append(dst, it)
	}
	return dst
}

// Items is Decode one item at a time: an element of an array or a record
// of a Lambda event is decoded only when the loop asks for it, so that a
// large batch is never held decoded all at once. doc must not change
// while the loop runs.
func Items(input string, doc []byte) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		doc = bytes.TrimSpace(doc)
		if len(doc) == 0 || doc[0] != '[' {
			documentItems(input, doc, yield)
			return
		}
		var a array
		if err := jsonError(json.Unmarshal(doc, &a, syntaxOnly()...)); err != nil {
			yield(Item{Input: input, Envelope: EnvelopeFile, Err: err})
			return
		}
		if len(a.elems) == 0 {
			yield(Item{Input: input, Envelope: EnvelopeFile, Skipped: "an empty JSON array"})
			return
		}
		for i, e := range a.elems {
			if !documentItems(input+"["+strconv.Itoa(i)+"]", doc[e.start:e.end], yield) {
				return
			}
		}
	}
}

// array is a JSON array read as syntax only: where it and its elements
// lie. Each element is decoded on its own, so that a name given twice or
// invalid UTF-8 in one of them is an error of that one only.
type array struct {
	base       int64 // the offset of the document in the input of the decoder
	start, end int
	elems      []span
}

// syntaxOnly are the options that read an array as syntax only.
func syntaxOnly() []json.Options {
	return []json.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}
}

// UnmarshalJSONFrom reads the array, keeping where each element lies.
func (a *array) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	a.start = int(dec.InputOffset()-a.base) - 1
	for dec.PeekKind() != ']' {
		e, err := valueSpan(dec, a.base)
		if err != nil {
			return err
		}
		a.elems = append(a.elems, e)
	}
	_, err := dec.ReadToken()
	a.end = int(dec.InputOffset() - a.base)
	return err
}

// documentItems yields the items of a document that is not a top-level
// array, and reports whether the loop goes on.
func documentItems(input string, doc []byte, yield func(Item) bool) bool {
	d := new(document)
	if err := d.read(doc); err != nil {
		return yield(Item{Input: input, Envelope: EnvelopeFile, Err: err})
	}
	return d.items(input, yield)
}

// items yields the items of a document that was read, and reports
// whether the loop goes on.
func (d *document) items(input string, yield func(Item) bool) bool {
	sh, err := d.shape()
	if err != nil {
		return yield(Item{Input: input, Envelope: EnvelopeFile, Err: err})
	}
	if sh != shapeLambda {
		return yield(decodeShape(input, EnvelopeFile, "", d, sh))
	}
	records, err := d.lambdaRecords()
	if err != nil {
		return yield(Item{Input: input, Envelope: EnvelopeFile, Err: err})
	}
	if len(records) == 0 {
		return yield(Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda event with no records"})
	}
	for i, rec := range records {
		if !yield(decodeRecord(input+"#"+strconv.Itoa(i+1), d.doc[rec.start:rec.end])) {
			return false
		}
	}
	return true
}

// The shapes a JSON document can have.
type shape uint8

const (
	shapeNone        shape = iota
	shapeLambda            // Records
	shapeSNS               // Type
	shapeEventBridge       // source, detail-type, detail
	shapeSES               // notificationType, eventType
)

func (s shape) String() string {
	switch s {
	case shapeLambda:
		return "a Lambda event (Records)"
	case shapeSNS:
		return "an SNS message (Type)"
	case shapeEventBridge:
		return "an EventBridge event (source, detail-type, detail)"
	case shapeSES:
		return "an SES notification (notificationType, eventType)"
	}
	return "nothing known"
}

// topKey is a top-level key that some decoder reads.
type topKey uint8

const (
	keyOther topKey = iota
	keyRecords
	keyType
	keyMessageID
	keyTopicArn
	keyTimestamp
	keyMessage
	keySubject
	keySignatureVersion
	keySignature
	keySigningCertURL
	keySigningCertURLLambda // SigningCertUrl, as a Lambda record writes it
	keySubscribeURL
	keyUnsubscribeURL
	keyUnsubscribeURLLambda // UnsubscribeUrl
	keyToken
	keySource
	keyDetailType
	keyDetail
	keyID
	keyAccount
	keyNotificationType
	keyEventType
	numTopKeys
)

// topKeyOf returns the top-level key a name is, matched exactly.
func topKeyOf(name []byte) topKey {
	switch string(name) {
	case "Records":
		return keyRecords
	case "Type":
		return keyType
	case "MessageId":
		return keyMessageID
	case "TopicArn":
		return keyTopicArn
	case "Timestamp":
		return keyTimestamp
	case "Message":
		return keyMessage
	case "Subject":
		return keySubject
	case "SignatureVersion":
		return keySignatureVersion
	case "Signature":
		return keySignature
	case "SigningCertURL":
		return keySigningCertURL
	case "SigningCertUrl":
		return keySigningCertURLLambda
	case "SubscribeURL":
		return keySubscribeURL
	case "UnsubscribeURL":
		return keyUnsubscribeURL
	case "UnsubscribeUrl":
		return keyUnsubscribeURLLambda
	case "Token":
		return keyToken
	case "source":
		return keySource
	case "detail-type":
		return keyDetailType
	case "detail":
		return keyDetail
	case "id":
		return keyID
	case "account":
		return keyAccount
	case "notificationType":
		return keyNotificationType
	case "eventType":
		return keyEventType
	}
	return keyOther
}

// shape returns the shape a top-level key names.
func (k topKey) shape() shape {
	switch k {
	case keyRecords:
		return shapeLambda
	case keyType:
		return shapeSNS
	case keySource, keyDetailType, keyDetail:
		return shapeEventBridge
	case keyNotificationType, keyEventType:
		return shapeSES
	}
	return shapeNone
}

// document is the top level of a JSON document that is not an array,
// read in one pass that validates all of it (the records of a Lambda
// event as syntax only: each is judged when it is decoded): its kind, the
// shapes its keys name, every key (for SNS, which refuses a key given
// twice in any letter case) and where the values of the keys a decoder
// reads lie.
type document struct {
	doc     []byte
	base    int64 // the offset of the document in the input of the decoder that reads it
	kind    jsontext.Kind
	found   []shape          // the shapes the keys name, each once, in order
	names   []span           // every key, quoted as written
	vals    [numTopKeys]span // where each key's value lies; end 0 when absent
	records []span           // the elements of Records, when an array
	buf     [16]span         // names' first storage
	foundTo [4]shape         // found's
	// unescaped is where strings with escapes are unescaped before they
	// are copied, and message where an SNS Message is, both kept from one
	// document to the next: a Message is tens of KB.
	unescaped, message []byte
	// msg is the SNS Message as bytes, once sns has read it: the SES JSON
	// is decoded from them, without a copy of its own.
	msg []byte
}

// read reads doc, which d keeps.
func (d *document) read(doc []byte) error {
	d.reset(0)
	d.doc = doc
	return jsonError(json.Unmarshal(doc, d))
}

// reset makes d ready to read a document at offset base of its decoder's
// input.
func (d *document) reset(base int64) {
	*d = document{base: base, unescaped: d.unescaped, message: d.message}
	d.names, d.found = d.buf[:0], d.foundTo[:0]
}

// UnmarshalJSONFrom reads the top level of the document.
func (d *document) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	d.kind = dec.PeekKind()
	if d.kind != '{' {
		_, err := dec.ReadValue()
		return err
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var buf []byte
	for dec.PeekKind() != '}' {
		quoted, err := dec.ReadValue()
		if err != nil {
			return err
		}
		end := int(dec.InputOffset() - d.base)
		d.names = append(d.names, span{end - len(quoted), end})
		key, err := unquoteName(quoted, &buf)
		if err != nil {
			return err
		}
		k := topKeyOf(key)
		if sh := k.shape(); sh != shapeNone && !slices.Contains(d.found, sh) {
			d.found = append(d.found, sh)
		}
		if k == keyRecords && dec.PeekKind() == '[' {
			err = d.readRecords(dec)
		} else {
			d.vals[k], err = valueSpan(dec, d.base)
		}
		if err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// readRecords reads the array of Records, keeping where each record
// lies; each is decoded on its own, so that one that is wrong is the
// only one refused.
func (d *document) readRecords(dec *jsontext.Decoder) error {
	a := array{base: d.base}
	if err := json.UnmarshalDecode(dec, &a, syntaxOnly()...); err != nil {
		return err
	}
	d.records, d.vals[keyRecords] = a.elems, span{a.start, a.end}
	return nil
}

// value returns the value of key k, or nil when the document has none.
func (d *document) value(k topKey) []byte {
	v := d.vals[k]
	if v.end == 0 {
		return nil
	}
	return d.doc[v.start:v.end]
}

// str returns the value of key k (named name), a string or null ("").
func (d *document) str(k topKey, name string) (string, error) {
	v := d.value(k)
	if v == nil {
		return "", nil
	}
	return unquote(v, name, &d.unescaped)
}

// lambdaRecords returns where the records of a Lambda event lie.
func (d *document) lambdaRecords() ([]span, error) {
	switch k := jsontext.Value(d.value(keyRecords)).Kind(); k {
	case '[':
		return d.records, nil
	case 'n':
		return nil, nil
	default:
		return nil, &kindError{name: "Records", got: k, want: "an array"}
	}
}

// shape returns the shape the document's keys name. A document with the
// keys of two shapes is an error: no reader guesses which one the sender
// meant.
func (d *document) shape() (shape, error) {
	switch len(d.found) {
	case 0:
		return shapeNone, nil
	case 1:
		return d.found[0], nil
	}
	names := make([]string, len(d.found))
	for i, f := range d.found {
		names[i] = f.String()
	}
	return shapeNone, errors.New("ambiguous document: it has the keys of " + strings.Join(names, " and of ") + "; refusing to read it as either")
}

// decodeShape decodes a document of a known shape other than a Lambda
// event, which arrived in envelope (file, or sqs for an SQS body).
func decodeShape(input, envelope, envelopeID string, d *document, sh shape) Item {
	switch sh {
	case shapeSNS:
		if envelope == EnvelopeFile {
			envelope = EnvelopeHTTP
		}
		m, err := d.sns()
		if err != nil {
			return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID, Err: fmt.Errorf("SNS message: %w", err)}
		}
		return decodeSNS(input, envelope, envelopeID, m, d.msg)
	case shapeEventBridge:
		if envelope == EnvelopeFile {
			envelope = EnvelopeEventBridge
		}
		return decodeEventBridge(Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID}, d)
	case shapeSES:
		it := Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID}
		decodeSESInto(&it, string(d.doc), d.doc)
		return it
	case shapeLambda:
		return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID, Err: errors.New("a Lambda event (Records) inside a message")}
	}
	if d.kind != '{' {
		return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID, Skipped: "a JSON " + kindName(d.kind) + ", not a notification"}
	}
	return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID,
		Skipped: "not an SES notification: no Records, Type, detail-type, notificationType or eventType"}
}

// record is one record of a Lambda event, as read: an SNS record (Sns)
// or an SQS record (body).
type record struct {
	eventSource, messageID string
	queue                  string // eventSourceARN: the queue of an SQS record
	body                   string
	hasBody, hasSNS        bool
	sns                    span
}

// UnmarshalJSONFrom reads a record. A null reads as an empty record.
func (r *record) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return members(dec, "", func(name []byte) error {
		var err error
		switch string(name) {
		case "EventSource":
			r.eventSource, err = readString(dec, "EventSource")
		case "eventSource":
			r.eventSource, err = readString(dec, "eventSource")
		case "messageId":
			r.messageID, err = readString(dec, "messageId")
		case "eventSourceARN":
			r.queue, err = readString(dec, "eventSourceARN")
		case "body":
			if dec.PeekKind() == 'n' {
				_, err = dec.ReadToken()
				return err
			}
			r.body, err = readString(dec, "body")
			r.hasBody = true
		case "Sns":
			r.sns, err = valueSpan(dec, 0)
			r.hasSNS = true
		default:
			_, err = dec.ReadValue()
		}
		return err
	})
}

// decodeRecord decodes one record of a Lambda event: an SNS record (its
// Sns object is an SNS message) or an SQS record (its body is an SNS
// message, an EventBridge event, or bare SES JSON).
func decodeRecord(input string, raw []byte) Item {
	var r record
	if err := jsonError(json.Unmarshal(raw, &r)); err != nil {
		return Item{Input: input, Envelope: EnvelopeFile, Err: fmt.Errorf("record: %w", err)}
	}
	switch {
	case r.hasSNS && r.hasBody:
		return Item{Input: input, Envelope: EnvelopeFile, Err: errors.New("record: ambiguous: it has both Sns and body")}
	case r.hasSNS:
		d, m, err := parseSNS(raw[r.sns.start:r.sns.end])
		if err != nil {
			return Item{Input: input, Envelope: EnvelopeSNS, Err: fmt.Errorf("SNS record: %w", err)}
		}
		return decodeSNS(input, EnvelopeSNS, "", m, d.msg)
	case r.hasBody:
		it := decodeSQSBody(input, r.messageID, []byte(r.body))
		it.Origin.Queue = r.queue
		return it
	}
	if r.eventSource == "" {
		r.eventSource = "an unknown source"
	}
	return Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda record from " + r.eventSource + " is neither SNS nor SQS"}
}

// decodeSQSBody reads an SQS message body: an SNS message (raw delivery
// off), an EventBridge event (EventBridge to SQS), or the bare SES JSON
// (raw delivery on).
func decodeSQSBody(input, messageID string, body []byte) Item {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: messageID, Skipped: "SQS body is not JSON: " + preview(trimmed)}
	}
	d := new(document)
	err := d.read(trimmed)
	var sh shape
	if err == nil {
		sh, err = d.shape()
	}
	if err != nil {
		return Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: messageID, Err: fmt.Errorf("SQS body: %w", err)}
	}
	if sh == shapeNone {
		return Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: messageID, Skipped: "SQS body is JSON but not an SES notification"}
	}
	return decodeShape(input, EnvelopeSQS, messageID, d, sh)
}

// decodeEventBridge reads an EventBridge event into it, whose envelope the
// caller has set.
func decodeEventBridge(it Item, d *document) Item {
	source, err := d.str(keySource, "source")
	var detailType, id string
	if err == nil {
		detailType, err = d.str(keyDetailType, "detail-type")
	}
	if err == nil {
		id, err = d.str(keyID, "id")
	}
	var account string
	if err == nil {
		account, err = d.str(keyAccount, "account")
	}
	if err != nil {
		it.Err = fmt.Errorf("EventBridge event: %w", err)
		return it
	}
	if it.EnvelopeID == "" {
		it.EnvelopeID = id
	}
	it.Origin.EventBridge, it.Origin.Account = true, account
	if source != "aws.ses" {
		it.Skipped = "EventBridge event from " + strconv.Quote(source) + ", not aws.ses"
		return it
	}
	detail := d.value(keyDetail)
	if len(detail) == 0 || detail[0] != '{' {
		it.Err = fmt.Errorf("EventBridge %q event has no detail object", detailType)
		return it
	}
	var probe struct {
		EventType string `json:"eventType"`
	}
	if err := jsonError(json.Unmarshal(detail, &probe)); err != nil {
		it.Err = fmt.Errorf("EventBridge detail: %w", err)
		return it
	}
	if probe.EventType == "" {
		it.Skipped = "EventBridge " + strconv.Quote(detailType) + " is not an SES mail event"
		return it
	}
	decodeSESInto(&it, string(detail), detail)
	return it
}

// decodeSESInto decodes the SES JSON itself (raw, which the Notification
// keeps, and b, the same bytes: nil makes a copy of raw) and fills
// it.Notification, or it.Skipped / it.Err.
func decodeSESInto(it *Item, raw string, b []byte) {
	n, skipped, err := decodeSES(raw, b)
	switch {
	case err != nil:
		it.Err = err
	case skipped != "":
		it.Skipped = skipped
	default:
		n.Input, n.EnvelopeID, n.SNSMessageID = it.Input, it.EnvelopeID, it.SNSMessageID
		n.Event.Envelope, n.Event.TopicArn = it.Envelope, it.TopicArn
		it.Notification = n
	}
}

func preview(b []byte) string {
	const max = 80
	s := string(b)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown topic"
	}
	return s
}
