package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Item is what one input notification decoded to: a Notification, or the
// reason it was skipped (not an SES notification) or could not be read.
// Exactly one of Notification, Skipped and Err is set.
type Item struct {
	// Input is where the item came from: "FILE:LINE", or "FILE:LINE#N"
	// for the Nth record of a Lambda SNS or SQS event.
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

	Notification *Notification
	Skipped      string
	Err          error
}

// Decode decodes one JSON document into the notifications it carries,
// detecting its shape by content: a Lambda SNS or SQS event (one item per
// record), an EventBridge event, an SNS HTTP body, or a bare SES
// notification. input names the document in Item.Input. Decode never
// panics on any input: what it cannot read is an Item with Err.
func Decode(input string, doc []byte) []Item {
	return AppendDecode(nil, input, doc)
}

// AppendDecode is Decode appending to dst. doc is not kept: it may be
// reused once AppendDecode returns.
func AppendDecode(dst []Item, input string, doc []byte) []Item {
	var d document
	d.read(doc)
	switch {
	case d.err != nil:
		err := d.err
		if t := bytes.TrimSpace(doc); len(t) > 0 && t[0] != '{' && t[0] != '[' {
			err = errors.New("invalid JSON: " + preview(t) + " is not a JSON document")
		}
		return append(dst, Item{Input: input, Envelope: EnvelopeFile, Err: err})
	case d.isArray:
		return append(dst, Item{Input: input, Envelope: EnvelopeFile,
			Skipped: "a JSON array, not a notification (a file holds one JSON document per line, or one document)"})
	case d.hasRecords:
		if len(d.records) == 0 {
			return append(dst, Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda event with no records"})
		}
		for i, rec := range d.records {
			dst = append(dst, decodeRecord(input+"#"+strconv.Itoa(i+1), rec))
		}
		return dst
	case d.source != "" || d.detailType != "":
		it := Item{Input: input, Envelope: EnvelopeEventBridge, EnvelopeID: d.id}
		decodeEventBridge(&it, &d)
		return append(dst, it)
	case d.sns.Type != "":
		it := Item{Input: input, Envelope: EnvelopeHTTP}
		decodeSNS(&it, &d.sns)
		return append(dst, it)
	case d.sesType:
		it := Item{Input: input, Envelope: EnvelopeFile}
		// doc may be the caller's buffer: the Notification keeps a copy.
		decodeSESInto(&it, bytes.Clone(doc))
		return append(dst, it)
	case d.notObject:
		return append(dst, Item{Input: input, Envelope: EnvelopeFile, Skipped: "a JSON " + d.kind + ", not a notification"})
	}
	return append(dst, Item{Input: input, Envelope: EnvelopeFile,
		Skipped: "not an SES notification: no Records, Type, detail-type, notificationType or eventType"})
}

// document is what the top level of an input says about its shape.
type document struct {
	err        error
	isArray    bool
	notObject  bool
	kind       string
	hasRecords bool
	records    [][]byte
	sns        snsFields
	// EventBridge.
	source, detailType, id string
	detail                 []byte
	// Bare SES.
	sesType bool
}

// snsFields are the fields of an SNS message that sesrouter reads: the
// HTTP (and SQS body) layout and the Lambda record's Sns object share
// them.
type snsFields struct {
	Type, MessageID, TopicArn string
	// Message is the decoded Message string (never a slice of the input);
	// messageKind is the JSON kind when Message was not a string.
	Message     []byte
	hasMessage  bool
	messageKind string
}

func (d *document) read(doc []byte) {
	l := lexer{b: doc}
	switch c := l.peek(); c {
	case '{':
	case '[':
		l.skip()
		l.end()
		d.err, d.isArray = l.err, l.err == nil
		return
	default:
		l.skip()
		l.end()
		d.err, d.notObject, d.kind = l.err, true, jsonKind(c)
		if c == '"' {
			d.kind = "string"
		}
		return
	}
	l.object(func(k []byte) {
		switch string(k) {
		case "Records":
			d.hasRecords = true
			l.array(func() { d.records = append(d.records, l.raw()) })
		case "source":
			d.source = l.str()
		case "detail-type":
			d.detailType = l.str()
		case "id":
			d.id = l.str()
		case "detail":
			d.detail = l.raw()
		case "notificationType", "eventType":
			d.sesType = true
			l.skip()
		default:
			if !d.sns.member(&l, k) {
				l.skip()
			}
		}
	})
	l.end()
	d.err = l.err
}

// member reads the SNS field k, reporting whether it is one.
func (s *snsFields) member(l *lexer, k []byte) bool {
	switch string(k) {
	case "Type":
		s.Type = l.str()
	case "MessageId":
		s.MessageID = l.str()
	case "TopicArn":
		s.TopicArn = l.str()
	case "Message":
		s.hasMessage = true
		switch c := l.peek(); c {
		case '"':
			b, owned := l.strBytes()
			if !owned {
				b = bytes.Clone(b)
			}
			s.Message = b
		case 'n':
			l.literal("null")
			s.hasMessage = false
		default:
			s.messageKind = jsonKind(c)
			l.skip()
		}
	default:
		return false
	}
	return true
}

func decodeRecord(input string, raw []byte) Item {
	var (
		eventSource, messageID string
		body                   []byte
		hasBody                bool
		sns                    snsFields
		hasSNS                 bool
	)
	l := lexer{b: raw}
	l.object(func(k []byte) {
		switch string(k) {
		case "EventSource", "eventSource":
			eventSource = l.str()
		case "messageId":
			messageID = l.str()
		case "body":
			if l.null() {
				return
			}
			b, owned := l.strBytes()
			if !owned {
				b = bytes.Clone(b)
			}
			body, hasBody = b, true
		case "Sns":
			hasSNS = true
			l.object(func(k2 []byte) {
				if !sns.member(&l, k2) {
					l.skip()
				}
			})
		default:
			l.skip()
		}
	})
	if l.err != nil {
		return Item{Input: input, Envelope: EnvelopeFile, Err: fmt.Errorf("record: %w", l.err)}
	}
	switch {
	case hasSNS:
		it := Item{Input: input, Envelope: EnvelopeSNS}
		decodeSNS(&it, &sns)
		return it
	case hasBody:
		it := Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: messageID}
		decodeSQSBody(&it, body)
		return it
	}
	if eventSource == "" {
		eventSource = "an unknown source"
	}
	return Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda record from " + eventSource + " is neither SNS nor SQS"}
}

// decodeSQSBody reads an SQS message body (owned by the caller): an SNS
// envelope (raw delivery off), an EventBridge event (EventBridge to SQS),
// or the bare SES JSON (raw delivery on).
func decodeSQSBody(it *Item, body []byte) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		it.Skipped = "SQS body is not JSON: " + preview(trimmed)
		return
	}
	var d document
	d.read(trimmed)
	switch {
	case d.err != nil:
		it.Err = fmt.Errorf("SQS body: %w", d.err)
	case d.sns.Type != "":
		decodeSNS(it, &d.sns)
	case d.source != "" || d.detailType != "":
		// EventBridge to SQS: the envelope it came in is SQS.
		decodeEventBridge(it, &d)
	case d.sesType:
		decodeSESInto(it, trimmed)
	default:
		it.Skipped = "SQS body is JSON but not an SES notification"
	}
}

// decodeSNS reads the Message of an SNS envelope.
func decodeSNS(it *Item, s *snsFields) {
	it.SNSMessageID, it.TopicArn = s.MessageID, s.TopicArn
	if it.Envelope != EnvelopeSQS {
		it.EnvelopeID = s.MessageID
	}
	switch s.Type {
	case "Notification":
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		it.Skipped = "SNS " + s.Type + " for " + orUnknown(s.TopicArn)
		return
	default:
		it.Skipped = "SNS message of type " + strconv.Quote(s.Type)
		return
	}
	switch {
	case s.messageKind != "":
		it.Err = errors.New("SNS Message is a JSON " + s.messageKind + ", not a string: SNS always sends the message as a string (was it decoded twice?)")
		return
	case !s.hasMessage:
		it.Err = errors.New("SNS Notification has no Message")
		return
	}
	t := bytes.TrimSpace(s.Message)
	if len(t) == 0 || t[0] != '{' {
		it.Skipped = "SNS message is not JSON: " + preview(t)
		return
	}
	decodeSESInto(it, t)
}

// decodeEventBridge reads the detail of an EventBridge event into it,
// whose envelope the caller has set.
func decodeEventBridge(it *Item, d *document) {
	if d.source != "aws.ses" {
		it.Skipped = "EventBridge event from " + strconv.Quote(d.source) + ", not aws.ses"
		return
	}
	if len(d.detail) == 0 || d.detail[0] != '{' {
		it.Err = fmt.Errorf("EventBridge %q event has no detail object", d.detailType)
		return
	}
	var hasType bool
	l := lexer{b: d.detail}
	l.object(func(k []byte) {
		if string(k) == "eventType" {
			hasType = l.str() != ""
			return
		}
		l.skip()
	})
	if l.err != nil {
		it.Err = fmt.Errorf("EventBridge detail: %w", l.err)
		return
	}
	if !hasType {
		it.Skipped = "EventBridge " + strconv.Quote(d.detailType) + " is not an SES mail event"
		return
	}
	decodeSESInto(it, bytes.Clone(d.detail))
}

// decodeSESInto decodes the SES JSON itself and fills it.Notification, or
// it.Skipped / it.Err.
func decodeSESInto(it *Item, raw []byte) {
	n, skipped, err := decodeSES(raw)
	switch {
	case err != nil:
		it.Err = err
	case skipped != "":
		it.Skipped = skipped
	default:
		n.Input, n.EnvelopeID, n.SNSMessageID = it.Input, it.EnvelopeID, it.SNSMessageID
		n.Event.Envelope, n.Event.TopicArn = it.Envelope, it.TopicArn
		n.seal()
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
