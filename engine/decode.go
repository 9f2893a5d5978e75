package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// EnvelopeID is the SNS, SQS or EventBridge message id, when known.
	EnvelopeID string
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

// AppendDecode is Decode appending to dst.
func AppendDecode(dst []Item, input string, doc []byte) []Item {
	var d document
	if err := json.Unmarshal(doc, &d); err != nil {
		return append(dst, Item{Input: input, Envelope: EnvelopeFile, Err: jsonError("", err)})
	}
	switch {
	case d.Records != nil:
		if len(d.Records) == 0 {
			return append(dst, Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda event with no records"})
		}
		for i, rec := range d.Records {
			dst = append(dst, decodeRecord(fmt.Sprintf("%s#%d", input, i+1), rec))
		}
		return dst
	case d.Source != "" || d.DetailType != "":
		return append(dst, decodeEventBridge(input, &d))
	case d.Type != "":
		it := Item{Input: input, Envelope: EnvelopeHTTP}
		decodeSNS(&it, &d.snsFields)
		return append(dst, it)
	case d.NotificationType != "" || d.EventType != "":
		it := Item{Input: input, Envelope: EnvelopeFile}
		// doc may be the caller's buffer: the Notification keeps a copy.
		decodeSESInto(&it, bytes.Clone(doc))
		return append(dst, it)
	}
	return append(dst, Item{Input: input, Envelope: EnvelopeFile,
		Skipped: "not an SES notification: no Records, Type, detail-type, notificationType or eventType"})
}

// document is the union of every top-level shape; which fields are set
// tells the shape. Only fields whose names do not collide across shapes
// (encoding/json matches names case-insensitively) are listed.
type document struct {
	Records []json.RawMessage `json:"Records"`
	snsFields
	// EventBridge.
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	ID         string          `json:"id"`
	Detail     json.RawMessage `json:"detail"`
	// Bare SES.
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
}

// snsFields are the fields of an SNS message in its HTTP (and SQS body)
// layout; a Lambda SNS record has the same names apart from the URL keys,
// which are not read.
type snsFields struct {
	Type      string          `json:"Type"`
	MessageID string          `json:"MessageId"`
	TopicArn  string          `json:"TopicArn"`
	Message   json.RawMessage `json:"Message"`
}

type record struct {
	EventSource string     `json:"eventSource"` // aws:sns or aws:sqs (any case)
	MessageID   string     `json:"messageId"`
	Body        *string    `json:"body"`
	Sns         *snsFields `json:"Sns"`
}

func decodeRecord(input string, raw json.RawMessage) Item {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Item{Input: input, Envelope: EnvelopeFile, Err: jsonError("record: ", err)}
	}
	switch {
	case r.Sns != nil:
		it := Item{Input: input, Envelope: EnvelopeSNS}
		decodeSNS(&it, r.Sns)
		return it
	case r.Body != nil:
		it := Item{Input: input, Envelope: EnvelopeSQS, EnvelopeID: r.MessageID}
		decodeSQSBody(&it, []byte(*r.Body))
		return it
	}
	src := r.EventSource
	if src == "" {
		src = "unknown"
	}
	return Item{Input: input, Envelope: EnvelopeFile, Skipped: "Lambda record from " + src + " is neither SNS nor SQS"}
}

// decodeSQSBody reads an SQS message body: an SNS envelope (raw delivery
// off), an EventBridge event (EventBridge to SQS), or the bare SES JSON
// (raw delivery on).
func decodeSQSBody(it *Item, body []byte) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		it.Skipped = "SQS body is not JSON: " + preview(trimmed)
		return
	}
	var d document
	if err := json.Unmarshal(trimmed, &d); err != nil {
		it.Err = jsonError("SQS body: ", err)
		return
	}
	switch {
	case d.Type != "":
		id := it.EnvelopeID
		decodeSNS(it, &d.snsFields)
		if it.EnvelopeID == "" {
			it.EnvelopeID = id
		}
	case d.Source != "" || d.DetailType != "":
		eb := decodeEventBridge(it.Input, &d)
		eb.Envelope, eb.EnvelopeID = EnvelopeSQS, it.EnvelopeID
		if eb.Notification != nil {
			eb.Notification.Event.Envelope = EnvelopeSQS
			eb.Notification.EnvelopeID = it.EnvelopeID
		}
		*it = eb
	case d.NotificationType != "" || d.EventType != "":
		decodeSESInto(it, trimmed)
	default:
		it.Skipped = "SQS body is not an SES notification"
	}
}

// decodeSNS reads the Message of an SNS envelope.
func decodeSNS(it *Item, s *snsFields) {
	it.EnvelopeID, it.TopicArn = s.MessageID, s.TopicArn
	switch s.Type {
	case "Notification":
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		it.Skipped = "SNS " + s.Type + " for " + orUnknown(s.TopicArn)
		return
	default:
		it.Skipped = "SNS message of type " + strconv.Quote(s.Type)
		return
	}
	msg := bytes.TrimSpace(s.Message)
	if len(msg) == 0 || bytes.Equal(msg, []byte("null")) {
		it.Err = errors.New("SNS Notification has no Message")
		return
	}
	if msg[0] != '"' {
		it.Err = errors.New("SNS Message is a JSON " + jsonKind(msg[0]) + ", not a string: SNS always sends the message as a string (was it decoded twice?)")
		return
	}
	var text string
	if err := json.Unmarshal(msg, &text); err != nil {
		it.Err = jsonError("SNS Message: ", err)
		return
	}
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "{") {
		it.Skipped = "SNS message is not JSON: " + preview([]byte(t))
		return
	}
	decodeSESInto(it, []byte(t))
}

func decodeEventBridge(input string, d *document) Item {
	it := Item{Input: input, Envelope: EnvelopeEventBridge, EnvelopeID: d.ID}
	if d.Source != "aws.ses" {
		it.Skipped = "EventBridge event from " + strconv.Quote(d.Source) + ", not aws.ses"
		return it
	}
	detail := bytes.TrimSpace(d.Detail)
	if len(detail) == 0 || detail[0] != '{' {
		it.Err = fmt.Errorf("EventBridge %q event has no detail object", d.DetailType)
		return it
	}
	var probe struct {
		EventType string `json:"eventType"`
	}
	if err := json.Unmarshal(detail, &probe); err != nil {
		it.Err = jsonError("EventBridge detail: ", err)
		return it
	}
	if probe.EventType == "" {
		it.Skipped = "EventBridge " + strconv.Quote(d.DetailType) + " is not an SES mail event"
		return it
	}
	decodeSESInto(&it, detail)
	return it
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
		n.Input, n.EnvelopeID = it.Input, it.EnvelopeID
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

func jsonError(prefix string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%sinvalid JSON at byte %d: %w", prefix, se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%sfield %q: JSON %s where %s was expected: %w", prefix, te.Field, te.Value, te.Type, err)
	}
	return fmt.Errorf("%s%w", prefix, err)
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
