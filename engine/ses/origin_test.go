package ses

import (
	"strconv"
	"testing"
)

// TestOrigin decodes one item of each envelope a Lambda invocation can
// carry and checks what Origin says of it: the SNS message the item was
// read from (the same one whose Message became the notification), the
// SQS queue of the record, and the EventBridge event's account.
func TestOrigin(t *testing.T) {
	const (
		queue   = "arn:aws:sqs:eu-west-1:111122223333:ses-feedback"
		account = "111122223333"
		bounce  = `{"notificationType":"Bounce","mail":{"messageId":"m-1","destination":["a@example.com"]},` +
			`"bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"a@example.com"}]}}`
	)
	envelope := `{"Type":"Notification","MessageId":"sns-1","TopicArn":"` + feedbackTopic + `","Message":` + strconv.Quote(bounce) +
		`,"Timestamp":"2024-05-01T10:00:00.000Z","SignatureVersion":"1","Signature":"c2ln","SigningCertURL":"https://sns.eu-west-1.amazonaws.com/x.pem"}`
	lambdaRecord := `{"EventSource":"aws:sns","Sns":{"Type":"Notification","MessageId":"sns-2","TopicArn":"` + feedbackTopic +
		`","Message":` + strconv.Quote(bounce) + `,"Signature":"c2ln","SigningCertUrl":"https://sns.eu-west-1.amazonaws.com/x.pem"}}`
	eventBridge := `{"version":"0","id":"eb-1","detail-type":"Email Bounced","source":"aws.ses","account":"` + account + `","detail":` +
		`{"eventType":"Bounce","mail":{"messageId":"m-2","destination":["a@example.com"]},"bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"a@example.com"}]}}}`
	sqs := func(body string) string {
		return `{"Records":[{"messageId":"q-1","eventSource":"aws:sqs","eventSourceARN":"` + queue + `","body":` + strconv.Quote(body) + `}]}`
	}
	tests := []struct {
		name, doc   string
		envelope    string
		topic       string // of Origin.SNS; empty: no SNS message
		queue       string
		eventBridge bool
		account     string
	}{
		{name: "SNS record", doc: `{"Records":[` + lambdaRecord + `]}`, envelope: EnvelopeSNS, topic: feedbackTopic},
		{name: "SQS body holding an SNS envelope", doc: sqs(envelope), envelope: EnvelopeSQS, topic: feedbackTopic, queue: queue},
		{name: "SQS body of bare SES JSON", doc: sqs(bounce), envelope: EnvelopeSQS, queue: queue},
		{name: "SQS body holding an EventBridge event", doc: sqs(eventBridge), envelope: EnvelopeSQS, queue: queue, eventBridge: true, account: account},
		{name: "EventBridge event", doc: eventBridge, envelope: EnvelopeEventBridge, eventBridge: true, account: account},
		{name: "SNS HTTP body", doc: envelope, envelope: EnvelopeHTTP, topic: feedbackTopic},
		{name: "bare SES JSON", doc: bounce, envelope: EnvelopeFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := Decode("in", []byte(tt.doc))
			if len(items) != 1 || items[0].Notification == nil {
				t.Fatalf("decoded %+v, want one notification", items)
			}
			it := items[0]
			o := it.Origin
			if it.Envelope != tt.envelope || o.Queue != tt.queue || o.EventBridge != tt.eventBridge || o.Account != tt.account {
				t.Errorf("envelope %s, origin %+v; want envelope %s, queue %q, eventBridge %v, account %q",
					it.Envelope, o, tt.envelope, tt.queue, tt.eventBridge, tt.account)
			}
			switch {
			case tt.topic == "" && o.SNS != nil:
				t.Errorf("Origin.SNS is %+v, want none", o.SNS)
			case tt.topic == "":
			case o.SNS == nil:
				t.Errorf("Origin.SNS is nil, want the SNS message of %s", tt.topic)
			case o.SNS.TopicArn != tt.topic || o.SNS.Message != it.Notification.Raw || o.SNS.MessageID != it.SNSMessageID:
				t.Errorf("Origin.SNS is %+v: want the message whose Message the notification was decoded from (%q), of %s",
					o.SNS, it.Notification.Raw, tt.topic)
			}
		})
	}
}
