package intake

import (
	"fmt"
	"strings"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// CheckFields refuses a message that lacks a field SNS always sends: Type,
// MessageId, TopicArn, Message, Timestamp, SignatureVersion, Signature and
// SigningCertURL, and also Token and SubscribeURL for a
// SubscriptionConfirmation or an UnsubscribeConfirmation. m is what
// ses.ParseSNS read: a field is present when m.Has says so.
func CheckFields(m *ses.SNSMessage) error {
	required := []string{"Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"}
	if m.Type == ses.SNSSubscriptionConfirmation || m.Type == ses.SNSUnsubscribeConfirmation {
		required = append(required, "Token", "SubscribeURL")
	}
	var missing []string
	for _, k := range required {
		if !m.Has(k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sns message: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// StringToSign returns the canonical string SNS signs for m's Type: for a
// Notification the keys Message, MessageId, Subject (only when not nil),
// Timestamp, TopicArn and Type; for a SubscriptionConfirmation or an
// UnsubscribeConfirmation the keys Message, MessageId, SubscribeURL,
// Timestamp, Token, TopicArn and Type; each as "key\nvalue\n". Another Type
// is an error.
func StringToSign(m *ses.SNSMessage) (string, error) {
	type kv struct{ k, v string }
	var pairs []kv
	switch m.Type {
	case ses.SNSNotification:
		pairs = []kv{{"Message", m.Message}, {"MessageId", m.MessageID}}
		if m.Subject != nil {
			pairs = append(pairs, kv{"Subject", *m.Subject})
		}
		pairs = append(pairs, kv{"Timestamp", m.Timestamp}, kv{"TopicArn", m.TopicArn}, kv{"Type", m.Type})
	case ses.SNSSubscriptionConfirmation, ses.SNSUnsubscribeConfirmation:
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
