package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SNS message types.
const (
	TypeNotification             = "Notification"
	TypeSubscriptionConfirmation = "SubscriptionConfirmation"
	TypeUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// Message is an SNS message in its HTTP body layout (the fields SNS signs
// and the ones sesrouter reads).
type Message struct {
	Type, MessageID, TopicArn, Message, Timestamp, SignatureVersion, Signature, SigningCertURL string
	// Subject is nil when absent or null: it is not signed then.
	Subject *string
	// Token and SubscribeURL are set for subscription and unsubscribe
	// confirmations; UnsubscribeURL for notifications (it is not signed).
	Token, SubscribeURL, UnsubscribeURL string
}

// ParseMessage decodes an SNS HTTP body: a single JSON object whose known
// fields (SNS's names: Type, MessageId, TopicArn, Message, Timestamp,
// SignatureVersion, Signature, SigningCertURL, Subject, Token, SubscribeURL,
// UnsubscribeURL) are strings; Subject may also be null. Unknown fields such
// as MessageAttributes are ignored. A known field given twice, a missing
// required field, or trailing data is an error. Token and SubscribeURL are
// required for SubscriptionConfirmation and UnsubscribeConfirmation.
func ParseMessage(body []byte) (*Message, error) {
	m := &Message{}
	subject := ""
	fields := map[string]*string{
		"Type":             &m.Type,
		"MessageId":        &m.MessageID,
		"TopicArn":         &m.TopicArn,
		"Message":          &m.Message,
		"Timestamp":        &m.Timestamp,
		"SignatureVersion": &m.SignatureVersion,
		"Signature":        &m.Signature,
		"SigningCertURL":   &m.SigningCertURL,
		"Subject":          &subject,
		"Token":            &m.Token,
		"SubscribeURL":     &m.SubscribeURL,
		"UnsubscribeURL":   &m.UnsubscribeURL,
	}
	seen := map[string]bool{}
	subjectSet := false

	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("sns message: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("sns message: not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("sns message: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("sns message: not a JSON object")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("sns message: field %s: %w", key, err)
		}
		dst, known := fields[key]
		if !known {
			continue
		}
		if seen[key] {
			return nil, fmt.Errorf("sns message: field %s given twice", key)
		}
		seen[key] = true
		if key == "Subject" {
			if string(raw) == "null" {
				continue
			}
			subjectSet = true
		}
		if len(raw) == 0 || raw[0] != '"' {
			return nil, fmt.Errorf("sns message: field %s: not a string", key)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("sns message: field %s: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("sns message: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("sns message: data after the JSON object")
	}
	if subjectSet {
		m.Subject = &subject
	}

	required := []string{"Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"}
	if m.Type == TypeSubscriptionConfirmation || m.Type == TypeUnsubscribeConfirmation {
		required = append(required, "Token", "SubscribeURL")
	}
	var missing []string
	for _, k := range required {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("sns message: missing %s", strings.Join(missing, ", "))
	}
	return m, nil
}

// StringToSign returns the canonical string SNS signs for m's Type: for a
// Notification the keys Message, MessageId, Subject (only when not nil),
// Timestamp, TopicArn and Type; for a SubscriptionConfirmation or an
// UnsubscribeConfirmation the keys Message, MessageId, SubscribeURL,
// Timestamp, Token, TopicArn and Type; each as "key\nvalue\n". Another Type
// is an error.
func StringToSign(m *Message) (string, error) {
	type kv struct{ k, v string }
	var pairs []kv
	switch m.Type {
	case TypeNotification:
		pairs = []kv{{"Message", m.Message}, {"MessageId", m.MessageID}}
		if m.Subject != nil {
			pairs = append(pairs, kv{"Subject", *m.Subject})
		}
		pairs = append(pairs, kv{"Timestamp", m.Timestamp}, kv{"TopicArn", m.TopicArn}, kv{"Type", m.Type})
	case TypeSubscriptionConfirmation, TypeUnsubscribeConfirmation:
		pairs = []kv{
			{"Message", m.Message}, {"MessageId", m.MessageID}, {"SubscribeURL", m.SubscribeURL},
			{"Timestamp", m.Timestamp}, {"Token", m.Token}, {"TopicArn", m.TopicArn}, {"Type", m.Type},
		}
	default:
		return "", fmt.Errorf("sns message: unknown Type %q", m.Type)
	}
	var b strings.Builder
	for _, p := range pairs {
		b.WriteString(p.k)
		b.WriteByte('\n')
		b.WriteString(p.v)
		b.WriteByte('\n')
	}
	return b.String(), nil
}
