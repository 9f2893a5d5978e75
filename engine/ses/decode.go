package ses

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
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
// Records, say) is refused rather than read one way or the other. Decode
// never panics on any input: what it cannot read is an Item with Err.
func Decode(input string, doc []byte) []Item {
	return AppendDecode(nil, input, doc)
}

// AppendDecode is Decode appending to dst. doc is not kept: it may be
// reused once AppendDecode returns.
func AppendDecode(dst []Item, input string, doc []byte) []Item {
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
		var elems [][]byte
		l := lexer{b: doc}
		l.array(func() { elems = append(elems, l.raw()) })
		l.end()
		switch {
		case l.err != nil:
			yield(Item{Input: input, Envelope: EnvelopeFile, Err: l.err})
			return
		case len(elems) == 0:
			yield(Item{Input: input, Envelope: EnvelopeFile, Skipped: "an empty JSON array"})
			return
		}
		for i, e := range elems {
			if !documentItems(input+"["+strconv.Itoa(i)+"]", e, yield) {
				return
			}
		}
	}
}

// documentItems yields the items of a document that is not a top-level
// array, and reports whether the loop goes on.
func documentItems(input string, doc []byte, yield func(Item) bool) bool {
	s, err := sniff(doc)
	if err != nil {
		return yield(Item{Input: input, Envelope: EnvelopeFile, Err: err})
	}
	if s.shape != shapeLambda {
		return yield(decodeShape(input, EnvelopeFile, "", doc, s))
	}
	if len(s.records) == 0 {
		return yield(Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda event with no records"})
	}
	for i, rec := range s.records {
		if !yield(decodeRecord(input+"#"+strconv.Itoa(i+1), rec)) {
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

// sniffed is what the top level of a document says about its shape.
type sniffed struct {
	shape   shape
	kind    string   // the JSON kind, when the document is not an object
	records [][]byte // the records of a Lambda event
}

// sniff finds the shape of a document by its top-level keys, which are
// matched exactly. A document with the keys of two shapes is an error: no
// reader guesses which one the sender meant.
func sniff(doc []byte) (sniffed, error) {
	var s sniffed
	l := lexer{b: doc}
	c := l.peek()
	if c != '{' {
		l.skip()
		l.end()
		if l.err != nil {
			if len(doc) > 0 && c != '[' && c != '"' && c != '-' && (c < '0' || c > '9') && c != 't' && c != 'f' && c != 'n' {
				return s, errors.New("invalid JSON: " + preview(doc) + " is not a JSON document")
			}
			return s, l.err
		}
		s.kind = jsonKind(c)
		if c == '"' {
			s.kind = "string"
		}
		return s, nil
	}
	var found []shape
	note := func(sh shape) {
		for _, f := range found {
			if f == sh {
				return
			}
		}
		found = append(found, sh)
	}
	l.object(func(k []byte) {
		switch string(k) {
		case "Records":
			note(shapeLambda)
			l.array(func() { s.records = append(s.records, l.raw()) })
			return
		case "Type":
			note(shapeSNS)
		case "source", "detail-type", "detail":
			note(shapeEventBridge)
		case "notificationType", "eventType":
			note(shapeSES)
		}
		l.skip()
	})
	l.end()
	if l.err != nil {
		return s, l.err
	}
	switch len(found) {
	case 0:
		s.shape = shapeNone
	case 1:
		s.shape = found[0]
	default:
		names := make([]string, len(found))
		for i, f := range found {
			names[i] = f.String()
		}
		return s, errors.New("ambiguous document: it has the keys of " + strings.Join(names, " and of ") + "; refusing to read it as either")
	}
	return s, nil
}

// decodeShape decodes a document of a known shape other than a Lambda
// event, which arrived in envelope (file, or sqs for an SQS body).
func decodeShape(input, envelope, envelopeID string, doc []byte, s sniffed) Item {
	switch s.shape {
	case shapeSNS:
		if envelope == EnvelopeFile {
			envelope = EnvelopeHTTP
		}
		m, err := ParseSNS(doc)
		if err != nil {
			return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID, Err: fmt.Errorf("SNS message: %w", err)}
		}
		return DecodeSNS(input, envelope, envelopeID, m)
	case shapeEventBridge:
		if envelope == EnvelopeFile {
			envelope = EnvelopeEventBridge
		}
		return decodeEventBridge(Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID}, doc)
	case shapeSES:
		it := Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID}
		decodeSESInto(&it, string(doc))
		return it
	case shapeLambda:
		return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID, Err: errors.New("a Lambda event (Records) inside a message")}
	}
	if s.kind != "" {
		return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID, Skipped: "a JSON " + s.kind + ", not a notification"}
	}
	return Item{Input: input, Envelope: envelope, EnvelopeID: envelopeID,
		Skipped: "not an SES notification: no Records, Type, detail-type, notificationType or eventType"}
}

// decodeRecord decodes one record of a Lambda event: an SNS record (its
// Sns object is an SNS message) or an SQS record (its body is an SNS
// message, an EventBridge event, or bare SES JSON).
func decodeRecord(input string, raw []byte) Item {
	var (
		eventSource, messageID, queue string
		body, sns                     []byte
		hasBody                       bool
	)
	l := lexer{b: raw}
	l.object(func(k []byte) {
		switch string(k) {
		case "EventSource", "eventSource":
			eventSource = l.str()
		case "messageId":
			messageID = l.str()
		case "eventSourceARN":
			queue = l.str()
		case "body":
			if l.null() {
				return
			}
			body, hasBody = []byte(l.str()), true
		case "Sns":
			sns = l.raw()
		default:
			l.skip()
		}
	})
	if l.err != nil {
		return Item{Input: input, Envelope: EnvelopeFile, Err: fmt.Errorf("record: %w", l.err)}
	}
	switch {
	case sns != nil && hasBody:
		return Item{Input: input, Envelope: EnvelopeFile, Err: errors.New("record: ambiguous: it has both Sns and body")}
	case sns != nil:
		m, err := ParseSNS(sns)
		if err != nil {
			return Item{Input: input, Envelope: EnvelopeSNS, Err: fmt.Errorf("SNS record: %w", err)}
		}
		return DecodeSNS(input, EnvelopeSNS, "", m)
	case hasBody:
		it := decodeSQSBody(input, messageID, body)
		it.Origin.Queue = queue
		return it
	}
	if eventSource == "" {
		eventSource = "an unknown source"
	}
	return Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda record from " + eventSource + " is neither SNS nor SQS"}
}

// decodeSQSBody reads an SQS message body: an SNS message (raw delivery
// off), an EventBridge event (EventBridge to SQS), or the bare SES JSON
// (raw delivery on).
func decodeSQSBody(input, messageID string, body []byte) Item {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: messageID, Skipped: "SQS body is not JSON: " + preview(trimmed)}
	}
	s, err := sniff(trimmed)
	if err != nil {
		return Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: messageID, Err: fmt.Errorf("SQS body: %w", err)}
	}
	if s.shape == shapeNone {
		return Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: messageID, Skipped: "SQS body is JSON but not an SES notification"}
	}
	return decodeShape(input, EnvelopeSQS, messageID, trimmed, s)
}

// decodeEventBridge reads an EventBridge event into it, whose envelope the
// caller has set.
func decodeEventBridge(it Item, doc []byte) Item {
	var source, detailType, id, account string
	var detail []byte
	l := lexer{b: doc}
	l.object(func(k []byte) {
		switch string(k) {
		case "source":
			source = l.str()
		case "account":
			account = l.str()
		case "detail-type":
			detailType = l.str()
		case "id":
			id = l.str()
		case "detail":
			detail = l.raw()
		default:
			l.skip()
		}
	})
	if l.err != nil {
		it.Err = fmt.Errorf("EventBridge event: %w", l.err)
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
	if len(detail) == 0 || detail[0] != '{' {
		it.Err = fmt.Errorf("EventBridge %q event has no detail object", detailType)
		return it
	}
	var hasType bool
	dl := lexer{b: detail}
	dl.object(func(k []byte) {
		if string(k) == "eventType" {
			hasType = dl.str() != ""
			return
		}
		dl.skip()
	})
	if dl.err != nil {
		it.Err = fmt.Errorf("EventBridge detail: %w", dl.err)
		return it
	}
	if !hasType {
		it.Skipped = "EventBridge " + strconv.Quote(detailType) + " is not an SES mail event"
		return it
	}
	decodeSESInto(&it, string(detail))
	return it
}

// decodeSESInto decodes the SES JSON itself (raw, which the Notification
// keeps) and fills it.Notification, or it.Skipped / it.Err.
func decodeSESInto(it *Item, raw string) {
	n, skipped, err := decodeSES(raw)
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

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '"':
		return "string"
	}
	return "number"
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
