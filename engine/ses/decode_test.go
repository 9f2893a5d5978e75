package ses

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-json-experiment/json/jsontext"
)

// eventsDir holds the hand-written events the decoding tests read.
var eventsDir = filepath.Join("..", "..", "testdata", "events")

const (
	feedbackTopic = "arn:aws:sns:eu-west-1:111122223333:ses-feedback"
	eventsTopic   = "arn:aws:sns:eu-west-1:111122223333:ses-events"
	shopArn       = "arn:aws:ses:eu-west-1:111122223333:identity/shop.example.org"
	shopFrom      = "Shop <billing@shop.example.org>"
)

// readItems returns every item a Reader gives for a file of testdata/events.
func readItems(t *testing.T, name string) []Item {
	t.Helper()
	f, err := os.Open(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return drain(t, NewReader(f, name))
}

// drain reads a Reader to its end and fails on any error but io.EOF.
func drain(t *testing.T, r *Reader) []Item {
	t.Helper()
	var items []Item
	for {
		it, err := r.Next()
		if err == io.EOF {
			return items
		}
		if err != nil {
			t.Fatalf("Next after %d items: %v", len(items), err)
		}
		items = append(items, it)
		if len(items) > 100000 {
			t.Fatal("Reader does not stop")
		}
	}
}

// checkExactlyOne fails unless exactly one of Notification, Skipped and Err
// is set.
func checkExactlyOne(t *testing.T, it Item) {
	t.Helper()
	n := 0
	if it.Notification != nil {
		n++
	}
	if it.Skipped != "" {
		n++
	}
	if it.Err != nil {
		n++
	}
	if n != 1 {
		t.Errorf("%s: %d of Notification, Skipped, Err are set (want exactly 1): %+v", it.Input, n, it)
	}
}

// wantItem is what one decoded item must be. Exactly one of n, skipped
// and err is set; skipped and err are substrings of the reason, the part
// that says what happened (the wording around it is free to change).
type wantItem struct {
	input      string
	envelope   string
	envelopeID string
	snsID      string // the SNS MessageId, also inside SQS
	topicArn   string
	skipped    string
	err        string
	n          *Notification
}

// checkItem compares an item with what it must be, the notification
// field by field (Raw is checked to be valid JSON holding the message id).
func checkItem(t *testing.T, got Item, want wantItem) {
	t.Helper()
	checkExactlyOne(t, got)
	if got.Input != want.input {
		t.Errorf("Input = %q, want %q", got.Input, want.input)
	}
	if got.Envelope != want.envelope {
		t.Errorf("%s: Envelope = %q, want %q", want.input, got.Envelope, want.envelope)
	}
	if got.EnvelopeID != want.envelopeID {
		t.Errorf("%s: EnvelopeID = %q, want %q", want.input, got.EnvelopeID, want.envelopeID)
	}
	if got.SNSMessageID != want.snsID {
		t.Errorf("%s: SNSMessageID = %q, want %q", want.input, got.SNSMessageID, want.snsID)
	}
	if n := got.Notification; n != nil && (n.EnvelopeID != want.envelopeID || n.SNSMessageID != want.snsID) {
		t.Errorf("%s: Notification.EnvelopeID, SNSMessageID = %q, %q; want %q, %q", want.input, n.EnvelopeID, n.SNSMessageID, want.envelopeID, want.snsID)
	}
	if got.TopicArn != want.topicArn {
		t.Errorf("%s: TopicArn = %q, want %q", want.input, got.TopicArn, want.topicArn)
	}
	if (got.Skipped == "") != (want.skipped == "") || !strings.Contains(got.Skipped, want.skipped) {
		t.Errorf("%s: Skipped = %q, want it to say %q", want.input, got.Skipped, want.skipped)
	}
	switch {
	case got.Err == nil && want.err != "":
		t.Errorf("%s: Err = nil, want it to say %q", want.input, want.err)
	case got.Err != nil && (want.err == "" || !strings.Contains(got.Err.Error(), want.err)):
		t.Errorf("%s: Err = %q, want it to say %q", want.input, got.Err, want.err)
	}
	switch {
	case got.Notification == nil && want.n != nil:
		t.Errorf("%s: no Notification, want one", want.input)
	case got.Notification != nil && want.n == nil:
		t.Errorf("%s: unexpected Notification %+v", want.input, *got.Notification)
	case got.Notification != nil:
		checkNotification(t, got.Notification, want.n)
	}
}

// checkNotification compares every field of a notification but Raw and
// the sealed expression values, part by part so that a failure says where.
func checkNotification(t *testing.T, got, want *Notification) {
	t.Helper()
	parts := []struct {
		name      string
		got, want any
	}{
		{"Input", got.Input, want.Input},
		{"EnvelopeID", got.EnvelopeID, want.EnvelopeID},
		{"SNSMessageID", got.SNSMessageID, want.SNSMessageID},
		{"Format", got.Format, want.Format},
		{"Event", got.Event, want.Event},
		{"Mail", got.Mail, want.Mail},
		{"Bounce", got.Bounce, want.Bounce},
		{"Complaint", got.Complaint, want.Complaint},
		{"Delivery", got.Delivery, want.Delivery},
		{"Delay", got.Delay, want.Delay},
		{"Reject", got.Reject, want.Reject},
		{"Failure", got.Failure, want.Failure},
		{"Open", got.Open, want.Open},
		{"Click", got.Click, want.Click},
		{"Subscription", got.Subscription, want.Subscription},
		{"Recipients", got.Recipients, want.Recipients},
	}
	for _, p := range parts {
		if !reflect.DeepEqual(p.got, p.want) {
			t.Errorf("%s: %s =\n\t%#v\nwant\n\t%#v", want.Input, p.name, p.got, p.want)
		}
	}
	var raw struct {
		Mail struct {
			MessageID string `json:"messageId"`
		} `json:"mail"`
	}
	if err := json.Unmarshal([]byte(got.Raw), &raw); err != nil {
		t.Errorf("%s: Raw is not JSON: %v", want.Input, err)
	} else if raw.Mail.MessageID != want.Mail.MessageID {
		t.Errorf("%s: Raw holds mail.messageId %q, want %q", want.Input, raw.Mail.MessageID, want.Mail.MessageID)
	}
}

// rcpt is a Recipient as the decoder makes it: raw as SES wrote it, and
// its bare mailbox local@domain.
func rcpt(raw, local, domain, status, action, diag string) Recipient {
	return Recipient{Address: local + "@" + domain, Raw: raw, Local: local, Domain: domain, Status: status, Action: action, DiagnosticCode: diag}
}

// identityMail is the mail object the identity-notification test events
// share (sourceArn, sourceIp, sendingAccountId, callerIdentity).
func identityMail(ts, messageID, source string, dest ...string) Mail {
	return Mail{
		Timestamp: ts, MessageID: messageID, Source: source,
		SourceAddress: BareAddress(source), SourceDomain: "shop.example.org",
		SourceArn: shopArn, SourceIP: "198.51.100.7", SendingAccountID: "111122223333",
		CallerIdentity: "ses-smtp-user", Destination: dest,
	}
}

// eventMail is the mail object of the event-publishing test events.
func eventMail(ts, messageID string, dest ...string) Mail {
	return Mail{
		Timestamp: ts, MessageID: messageID, Source: "news@shop.example.org",
		SourceAddress: "news@shop.example.org", SourceDomain: "shop.example.org",
		SourceArn: shopArn, SendingAccountID: "111122223333", Destination: dest,
	}
}

// withHeaders adds the headers the test generator writes: From, To (the
// destinations joined) and Subject, and the matching common headers.
func withHeaders(m Mail, subject string) Mail {
	m.Subject = subject
	m.From = []string{shopFrom}
	m.To = append([]string(nil), m.Destination...)
	m.Headers = map[string]string{"From": shopFrom, "To": strings.Join(m.Destination, ", "), "Subject": subject}
	return m
}

func evTags() map[string][]string {
	return map[string][]string{
		"ses:configuration-set": {"feedback"}, "ses:source-ip": {"198.51.100.7"},
		"ses:from-domain": {"shop.example.org"}, "ses:caller-identity": {"app-sender"},
		"ses:operation": {"SendEmail"}, "campaign": {"spring", "2024"},
	}
}

func configSetTag(name string) map[string][]string {
	return map[string][]string{"ses:configuration-set": {name}}
}

// Lambda records of bounce-sns-lambda.json (and line 4 of mixed.ndjson).
func lambdaBounce1(input, envID string) *Notification {
	return &Notification{
		Input: input, EnvelopeID: envID, SNSMessageID: envID, Format: "notification",
		Event: Event{Type: TypeBounce, Timestamp: "2024-05-02T12:00:01.000Z", Envelope: EnvelopeSNS, TopicArn: feedbackTopic},
		Mail:  identityMail("2024-05-02T10:00:00.000Z", "0102018f3c000003-lambda-000000", "billing@shop.example.org", "carol@example.com"),
		Bounce: Bounce{Type: "Permanent", SubType: "General", FeedbackID: "fb-lambda-0001",
			Timestamp: "2024-05-02T12:00:01.000Z"},
		Recipients: []Recipient{rcpt("carol@example.com", "carol", "example.com", "5.1.1", "failed", "smtp; 550 5.1.1 no such user")},
	}
}

func lambdaBounce2(input, envID string) *Notification {
	return &Notification{
		Input: input, EnvelopeID: envID, SNSMessageID: envID, Format: "notification",
		Event:      Event{Type: TypeBounce, Timestamp: "2024-05-02T12:00:09.000Z", Envelope: EnvelopeSNS, TopicArn: feedbackTopic},
		Mail:       identityMail("2024-05-02T10:00:00.000Z", "0102018f3c000004-lambda-000000", "billing@shop.example.org", "dave@example.org"),
		Bounce:     Bounce{Type: "Undetermined", SubType: "Undetermined", FeedbackID: "fb-lambda-0002", Timestamp: "2024-05-02T12:00:09.000Z"},
		Recipients: []Recipient{rcpt("dave@example.org", "dave", "example.org", "", "", "")},
	}
}

func complaintNullSubtype(input, envID string) *Notification {
	return &Notification{
		Input: input, EnvelopeID: envID, SNSMessageID: envID, Format: "notification",
		Event: Event{Type: TypeComplaint, Timestamp: "2024-05-02T16:00:05.000Z", Envelope: EnvelopeHTTP, TopicArn: feedbackTopic},
		Mail:  identityMail("2024-05-02T10:00:00.000Z", "0102018f3c000009-complaint-000000", "billing@shop.example.org", "ivan@Example.COM"),
		Complaint: Complaint{FeedbackType: "abuse", UserAgent: "Yahoo!-Mail-Feedback/2.0",
			ArrivalDate: "2024-05-02T16:00:04.000Z", FeedbackID: "fb-complaint-0001", Timestamp: "2024-05-02T16:00:05.000Z"},
		Recipients: []Recipient{rcpt("ivan@Example.COM", "ivan", "example.com", "", "", "")},
	}
}

func rawDeliveryBounce(input, envID string) *Notification {
	m := eventMail("2024-05-02T10:00:00.000Z", "0102018f3c000006-raw-000000", "frank@example.com")
	m.Tags = configSetTag("feedback")
	return &Notification{
		Input: input, EnvelopeID: envID, Format: "event",
		Event: Event{Type: TypeBounce, Timestamp: "2024-05-02T14:00:01.000Z", Envelope: EnvelopeSQS},
		Mail:  m,
		Bounce: Bounce{Type: "Permanent", SubType: "OnAccountSuppressionList", ReportingMTA: "dns; amazonses.com",
			FeedbackID: "fb-raw-0001", Timestamp: "2024-05-02T14:00:01.000Z"},
		Recipients: []Recipient{rcpt("frank@example.com", "frank", "example.com", "5.1.1", "failed",
			"Amazon SES did not send the message to this address because it is on the suppression list for your account.")},
	}
}

const subscriptionConfirmationSkip = "SNS SubscriptionConfirmation for " + feedbackTopic

// TestDecodeFiles reads each hand-written event of testdata/events through
// a Reader and checks every normalised field of what comes out.
func TestDecodeFiles(t *testing.T) {
	twenty := func() *Notification {
		domains := []string{"example.com", "example.net", "Example.ORG", "sub.example.com"}
		n := &Notification{
			Input: "bounce-20-recipients.json:1", Format: "notification",
			Event:  Event{Type: TypeBounce, Timestamp: "2024-05-03T09:00:01.000Z", Envelope: EnvelopeFile},
			Mail:   identityMail("2024-05-02T10:00:00.000Z", "0102018f3c000018-twenty-000000", "billing@shop.example.org"),
			Bounce: Bounce{Type: "Permanent", SubType: "General", FeedbackID: "fb-twenty-0001", Timestamp: "2024-05-03T09:00:01.000Z"},
		}
		n.Mail.Destination = []string{}
		for i := 1; i <= 20; i++ {
			d := domains[i%4]
			local := fmt.Sprintf("user%02d", i)
			n.Mail.Destination = append(n.Mail.Destination, local+"@"+d)
			n.Recipients = append(n.Recipients, rcpt(local+"@"+d, local, strings.ToLower(d), "5.1.1", "failed", ""))
		}
		return n
	}

	tests := []struct {
		file string
		want []wantItem
	}{
		{"bounce-bare.json", []wantItem{{
			input: "bounce-bare.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "bounce-bare.json:1", Format: "notification",
				Event: Event{Type: TypeBounce, Timestamp: "2024-05-02T10:00:01.250Z", Envelope: EnvelopeFile},
				Mail: Mail{
					Timestamp: "2024-05-02T10:00:00.000Z", MessageID: "0102018f3c000001-bare-000000",
					Source: "Billing Team <billing@Shop.Example.org>", SourceAddress: "billing@shop.example.org",
					SourceDomain: "shop.example.org", SourceArn: shopArn, SourceIP: "198.51.100.7",
					SendingAccountID: "111122223333", CallerIdentity: "ses-smtp-user", Subject: "Your invoice",
					Destination: []string{"Alice.Smith@Mail.Example.COM"},
					From:        []string{"Billing Team <billing@shop.example.org>"},
					To:          []string{"Alice.Smith@Mail.Example.COM"},
					Headers: map[string]string{
						"From": "Billing Team <billing@shop.example.org>", "To": "Alice.Smith@Mail.Example.COM",
						"X-Tag": "one, two", "Subject": "Your invoice",
					},
					HeadersTruncated: true,
				},
				Bounce: Bounce{Type: "Permanent", SubType: "NoEmail", ReportingMTA: "dsn; a1-2.smtp-out.eu-west-1.amazonses.com",
					RemoteMtaIP: "192.0.2.25", FeedbackID: "fb-bare-0001", Timestamp: "2024-05-02T10:00:01.250Z"},
				Recipients: []Recipient{rcpt("Alice.Smith@Mail.Example.COM", "Alice.Smith", "mail.example.com",
					"5.1.1", "failed", "smtp; 550 5.1.1 user unknown")},
			},
		}}},
		{"bounce-http.json", []wantItem{{
			input: "bounce-http.json:1", envelope: EnvelopeHTTP, envelopeID: "11111111-2222-4333-8444-000000000001", snsID: "11111111-2222-4333-8444-000000000001", topicArn: eventsTopic,
			n: &Notification{
				Input: "bounce-http.json:1", EnvelopeID: "11111111-2222-4333-8444-000000000001", SNSMessageID: "11111111-2222-4333-8444-000000000001", Format: "event",
				Event: Event{Type: TypeBounce, Timestamp: "2024-05-02T11:00:05.000Z", Envelope: EnvelopeHTTP, TopicArn: eventsTopic},
				Mail: func() Mail {
					m := withHeaders(eventMail("2024-05-02T11:00:00.000Z", "0102018f3c000002-http-000000", "bob@example.net"), "Spring sale")
					m.Tags = evTags()
					return m
				}(),
				Bounce: Bounce{Type: "Transient", SubType: "MailboxFull", ReportingMTA: "dsn; a9-1.smtp-out.eu-west-1.amazonses.com",
					FeedbackID: "fb-http-0001", Timestamp: "2024-05-02T11:00:05.000Z"},
				Recipients: []Recipient{rcpt("bob@example.net", "bob", "example.net", "5.2.2", "failed", "smtp; 552 5.2.2 mailbox full")},
			},
		}}},
		{"bounce-sns-lambda.json", []wantItem{
			{
				input: "bounce-sns-lambda.json:1#1", envelope: EnvelopeSNS, envelopeID: "22222222-2222-4333-8444-000000000001", snsID: "22222222-2222-4333-8444-000000000001", topicArn: feedbackTopic,
				n: lambdaBounce1("bounce-sns-lambda.json:1#1", "22222222-2222-4333-8444-000000000001"),
			},
			{
				input: "bounce-sns-lambda.json:1#2", envelope: EnvelopeSNS, envelopeID: "22222222-2222-4333-8444-000000000002", snsID: "22222222-2222-4333-8444-000000000002", topicArn: feedbackTopic,
				n: lambdaBounce2("bounce-sns-lambda.json:1#2", "22222222-2222-4333-8444-000000000002"),
			},
		}},
		{"bounce-sqs-sns.json", []wantItem{
			{
				// The SQS messageId identifies the envelope; the SNS
				// MessageId (kept on retries) is kept too.
				input: "bounce-sqs-sns.json:1#1", envelope: EnvelopeSQS, envelopeID: "aaaaaaaa-0000-4000-8000-000000000001", snsID: "33333333-2222-4333-8444-000000000001", topicArn: feedbackTopic,
				n: &Notification{
					Input: "bounce-sqs-sns.json:1#1", EnvelopeID: "aaaaaaaa-0000-4000-8000-000000000001", SNSMessageID: "33333333-2222-4333-8444-000000000001", Format: "notification",
					Event: Event{Type: TypeBounce, Timestamp: "2024-05-02T13:00:01.000Z", Envelope: EnvelopeSQS, TopicArn: feedbackTopic},
					Mail:  identityMail("2024-05-02T10:00:00.000Z", "0102018f3c000005-sqs-000000", "billing@shop.example.org", "erin@example.com"),
					Bounce: Bounce{Type: "Permanent", SubType: "Suppressed", ReportingMTA: "dns; amazonses.com",
						FeedbackID: "fb-sqs-0001", Timestamp: "2024-05-02T13:00:01.000Z"},
					Recipients: []Recipient{rcpt("erin@example.com", "erin", "example.com", "5.1.1", "failed",
						"Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address. ")},
				},
			},
			{
				input: "bounce-sqs-sns.json:1#2", envelope: EnvelopeSQS, envelopeID: "aaaaaaaa-0000-4000-8000-000000000002", snsID: "33333333-2222-4333-8444-000000000002", topicArn: feedbackTopic,
				skipped: `SNS message is not JSON: "Successfully validated SNS topic for Amazon SES event publishing."`,
			},
		}},
		{"bounce-sqs-raw.json", []wantItem{{
			input: "bounce-sqs-raw.json:1#1", envelope: EnvelopeSQS, envelopeID: "bbbbbbbb-0000-4000-8000-000000000001",
			n: rawDeliveryBounce("bounce-sqs-raw.json:1#1", "bbbbbbbb-0000-4000-8000-000000000001"),
		}}},
		{"bounce-eventbridge.json", []wantItem{{
			input: "bounce-eventbridge.json:1", envelope: EnvelopeEventBridge, envelopeID: "cccccccc-0000-4000-8000-000000000001",
			n: &Notification{
				Input: "bounce-eventbridge.json:1", EnvelopeID: "cccccccc-0000-4000-8000-000000000001", Format: "event",
				Event: Event{Type: TypeBounce, Timestamp: "2024-05-02T15:00:01.000Z", Envelope: EnvelopeEventBridge},
				Mail: func() Mail {
					m := eventMail("2024-05-02T10:00:00.000Z", "0102018f3c000007-eb-000000", "grace@example.com")
					m.Tags = configSetTag("tracking")
					return m
				}(),
				Bounce:     Bounce{Type: "Permanent", SubType: "General", FeedbackID: "fb-eb-0001", Timestamp: "2024-05-02T15:00:01.000Z"},
				Recipients: []Recipient{rcpt("grace@example.com", "grace", "example.com", "5.1.1", "failed", "smtp; 550 5.1.1 unknown")},
			},
		}}},
		{"bounce-sqs-eventbridge.json", []wantItem{{
			// EventBridge -> SQS: the SQS envelope and message id.
			input: "bounce-sqs-eventbridge.json:1#1", envelope: EnvelopeSQS, envelopeID: "dddddddd-0000-4000-8000-000000000001",
			n: &Notification{
				Input: "bounce-sqs-eventbridge.json:1#1", EnvelopeID: "dddddddd-0000-4000-8000-000000000001", Format: "event",
				Event:      Event{Type: TypeBounce, Timestamp: "2024-05-02T15:30:01.000Z", Envelope: EnvelopeSQS},
				Mail:       eventMail("2024-05-02T10:00:00.000Z", "0102018f3c000008-ebsqs-000000", "heidi@example.com"),
				Bounce:     Bounce{Type: "Permanent", SubType: "General", FeedbackID: "fb-ebsqs-0001", Timestamp: "2024-05-02T15:30:01.000Z"},
				Recipients: []Recipient{rcpt("heidi@example.com", "heidi", "example.com", "", "", "")},
			},
		}}},
		{"eventbridge-sending-status.json", []wantItem{{
			input: "eventbridge-sending-status.json:1", envelope: EnvelopeEventBridge, envelopeID: "cccccccc-0000-4000-8000-000000000002",
			skipped: `EventBridge "Sending Status Disabled" is not an SES mail event`,
		}}},
		{"complaint-null-subtype.json", []wantItem{{
			input: "complaint-null-subtype.json:1", envelope: EnvelopeHTTP, envelopeID: "44444444-2222-4333-8444-000000000001", snsID: "44444444-2222-4333-8444-000000000001", topicArn: feedbackTopic,
			n: complaintNullSubtype("complaint-null-subtype.json:1", "44444444-2222-4333-8444-000000000001"),
		}}},
		{"click-linktags-null.json", []wantItem{{
			input: "click-linktags-null.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "click-linktags-null.json:1", Format: "event",
				Event: Event{Type: TypeClick, Timestamp: "2024-05-02T17:00:09.000Z", Envelope: EnvelopeFile},
				Mail: func() Mail {
					m := withHeaders(eventMail("2024-05-02T10:00:00.000Z", "0102018f3c000010-click-000000", "judy@example.com", "ken@example.org"), "Spring sale")
					m.Tags = evTags()
					return m
				}(),
				Click: Click{IPAddress: "203.0.113.9", UserAgent: "Mozilla/5.0", Timestamp: "2024-05-02T17:00:09.000Z",
					Link: "https://shop.example.org/sale", LinkTags: nil},
				Recipients: []Recipient{
					rcpt("judy@example.com", "judy", "example.com", "", "", ""),
					rcpt("ken@example.org", "ken", "example.org", "", "", ""),
				},
			},
		}}},
		{"rendering-failure.json", []wantItem{{
			input: "rendering-failure.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "rendering-failure.json:1", Format: "event",
				Event: Event{Type: TypeRenderingFailure, Timestamp: "2024-05-02T18:00:00.000Z", Envelope: EnvelopeFile},
				Mail: func() Mail {
					m := eventMail("2024-05-02T18:00:00.000Z", "EXAMPLE7c191be45-rf-000000", "leo@example.com")
					m.Tags = configSetTag("feedback")
					return m
				}(),
				Failure:    Failure{ErrorMessage: "Attribute 'name' is not present in the rendering data.", TemplateName: "welcome"},
				Recipients: []Recipient{rcpt("leo@example.com", "leo", "example.com", "", "", "")},
			},
		}}},
		{"deliverydelay.json", []wantItem{{
			input: "deliverydelay.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "deliverydelay.json:1", Format: "event",
				Event: Event{Type: TypeDeliveryDelay, Timestamp: "2024-05-02T19:05:00.000Z", Envelope: EnvelopeFile},
				Mail: func() Mail {
					m := eventMail("2024-05-02T19:00:00.000Z", "0102018f3c000012-delay-000000", "mia@example.com", "ned@example.net")
					m.Tags = configSetTag("feedback")
					return m
				}(),
				Delay: Delay{Type: "MailboxFull", ExpirationTime: "2024-05-03T07:00:00.000Z", ReportingMTA: "203.0.113.20",
					Timestamp: "2024-05-02T19:05:00.000Z"},
				Recipients: []Recipient{
					rcpt("mia@example.com", "mia", "example.com", "4.2.2", "", "smtp; 452 4.2.2 mailbox full"),
					rcpt("ned@example.net", "ned", "example.net", "4.4.7", "", "smtp; 421 4.4.7 try later"),
				},
			},
		}}},
		{"subscription.json", []wantItem{{
			input: "subscription.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "subscription.json:1", Format: "event",
				Event: Event{Type: TypeSubscription, Timestamp: "2024-05-02T20:00:00.000Z", Envelope: EnvelopeFile},
				Mail: func() Mail {
					m := withHeaders(eventMail("2024-05-02T10:00:00.000Z", "0102018f3c000013-sub-000000", "olga@example.com"), "Newsletter")
					m.Tags = configSetTag("feedback")
					return m
				}(),
				Subscription: Subscription{ContactList: "newsletter", Source: "UnsubscribeHeader",
					Timestamp: "2024-05-02T20:00:00.000Z", UnsubscribeAll: true},
				Recipients: []Recipient{rcpt("olga@example.com", "olga", "example.com", "", "", "")},
			},
		}}},
		{"send.json", []wantItem{{
			input: "send.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "send.json:1", Format: "event",
				Event: Event{Type: TypeSend, Timestamp: "2024-05-02T21:00:00.000Z", Envelope: EnvelopeFile},
				Mail: func() Mail {
					m := withHeaders(eventMail("2024-05-02T21:00:00.000Z", "0102018f3c000014-send-000000", "pat@example.com", "quinn@example.org"), "Spring sale")
					m.Tags = evTags()
					return m
				}(),
				Recipients: []Recipient{
					rcpt("pat@example.com", "pat", "example.com", "", "", ""),
					rcpt("quinn@example.org", "quinn", "example.org", "", "", ""),
				},
			},
		}}},
		{"reject.json", []wantItem{{
			input: "reject.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "reject.json:1", Format: "event",
				Event: Event{Type: TypeReject, Timestamp: "2024-05-02T22:00:00.000Z", Envelope: EnvelopeFile},
				Mail: func() Mail {
					m := withHeaders(eventMail("2024-05-02T22:00:00.000Z", "0102018f3c000015-reject-000000", "rita@example.com"), "Spring sale")
					m.Tags = configSetTag("feedback")
					return m
				}(),
				Reject:     Reject{Reason: "Bad content"},
				Recipients: []Recipient{rcpt("rita@example.com", "rita", "example.com", "", "", "")},
			},
		}}},
		{"open.json", []wantItem{{
			input: "open.json:1", envelope: EnvelopeHTTP, envelopeID: "55555555-2222-4333-8444-000000000001", snsID: "55555555-2222-4333-8444-000000000001", topicArn: eventsTopic,
			n: &Notification{
				Input: "open.json:1", EnvelopeID: "55555555-2222-4333-8444-000000000001", SNSMessageID: "55555555-2222-4333-8444-000000000001", Format: "event",
				Event: Event{Type: TypeOpen, Timestamp: "2024-05-02T23:10:00.000Z", Envelope: EnvelopeHTTP, TopicArn: eventsTopic},
				Mail: func() Mail {
					m := withHeaders(eventMail("2024-05-02T23:00:00.000Z", "0102018f3c000016-open-000000", "sam@example.com"), "Spring sale")
					m.Source = `"Shop News" <news@shop.example.org>`
					m.Tags = evTags()
					return m
				}(),
				Open:       Open{IPAddress: "203.0.113.50", UserAgent: "Mozilla/5.0", Timestamp: "2024-05-02T23:10:00.000Z"},
				Recipients: []Recipient{rcpt("sam@example.com", "sam", "example.com", "", "", "")},
			},
		}}},
		{"delivery.json", []wantItem{{
			input: "delivery.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "delivery.json:1", Format: "notification",
				Event: Event{Type: TypeDelivery, Timestamp: "2024-05-03T08:00:01.546Z", Envelope: EnvelopeFile},
				Mail: withHeaders(identityMail("2024-05-03T08:00:00.000Z", "0102018f3c000017-delivery-000000",
					"billing@shop.example.org", "tina@example.com"), "Your invoice"),
				Delivery: Delivery{Timestamp: "2024-05-03T08:00:01.546Z", ProcessingTimeMillis: 1546,
					SMTPResponse: "250 2.6.0 Message received", ReportingMTA: "a8-77.smtp-out.amazonses.com", RemoteMtaIP: "192.0.2.80"},
				Recipients: []Recipient{rcpt("tina@example.com", "tina", "example.com", "", "", "")},
			},
		}}},
		{"bounce-20-recipients.json", []wantItem{{
			input: "bounce-20-recipients.json:1", envelope: EnvelopeFile, n: twenty(),
		}}},
		{"setup-message-non-json.json", []wantItem{{
			input: "setup-message-non-json.json:1", envelope: EnvelopeHTTP, envelopeID: "66666666-2222-4333-8444-000000000001", snsID: "66666666-2222-4333-8444-000000000001", topicArn: eventsTopic,
			skipped: `SNS message is not JSON: "Successfully validated SNS topic for Amazon SES event publishing."`,
		}}},
		{"subscription-confirmation.json", []wantItem{{
			input: "subscription-confirmation.json:1", envelope: EnvelopeHTTP, envelopeID: "77777777-2222-4333-8444-000000000001", snsID: "77777777-2222-4333-8444-000000000001", topicArn: feedbackTopic,
			skipped: subscriptionConfirmationSkip,
		}}},
		{"sns-message-object.json", []wantItem{{
			input: "sns-message-object.json:1", envelope: EnvelopeHTTP,
			err: `"Message" is a JSON object, want a string: SNS always sends the message as a string (was it decoded twice?)`,
		}}},
		{"amazon-sns-subscription-succeeded.json", []wantItem{{
			input: "amazon-sns-subscription-succeeded.json:1", envelope: EnvelopeHTTP, envelopeID: "99999999-2222-4333-8444-000000000001", snsID: "99999999-2222-4333-8444-000000000001", topicArn: feedbackTopic,
			skipped: "SES set-up message AmazonSnsSubscriptionSucceeded",
		}}},
		{"common-headers-to-comma.json", []wantItem{{
			input: "common-headers-to-comma.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "common-headers-to-comma.json:1", Format: "notification",
				Event: Event{Type: TypeBounce, Timestamp: "2024-05-03T10:00:01.000Z", Envelope: EnvelopeFile},
				Mail: Mail{
					Timestamp: "2024-05-03T10:00:00.000Z", MessageID: "0102018f3c000023-comma-000000",
					Source: "john@example.com", SourceAddress: "john@example.com", SourceDomain: "example.com", Subject: "Hello",
					Destination: []string{"jane@example.com", "mary@example.com", "richard@example.com", "sue@example.com", "tom@example.com"},
					// A comma inside a quoted display name does not split.
					From:    []string{`"Doe, John" <john@example.com>`},
					To:      []string{`"Jane Doe" <jane@example.com>`, `"Doe, Mary" <mary@example.com>`, "richard@example.com"},
					Cc:      []string{"sue@example.com", "tom@example.com"},
					ReplyTo: []string{"replies@example.com"},
				},
				Bounce:     Bounce{Type: "Permanent", SubType: "General", FeedbackID: "fb-comma-0001", Timestamp: "2024-05-03T10:00:01.000Z"},
				Recipients: []Recipient{rcpt("jane@example.com", "jane", "example.com", "", "", "")},
			},
		}}},
		{"source-encoded-word.json", []wantItem{{
			input: "source-encoded-word.json:1", envelope: EnvelopeHTTP, envelopeID: "aaaaaaaa-2222-4333-8444-000000000001", snsID: "aaaaaaaa-2222-4333-8444-000000000001", topicArn: feedbackTopic,
			n: &Notification{
				Input: "source-encoded-word.json:1", EnvelopeID: "aaaaaaaa-2222-4333-8444-000000000001", SNSMessageID: "aaaaaaaa-2222-4333-8444-000000000001", Format: "notification",
				Event: Event{Type: TypeBounce, Timestamp: "2024-05-03T11:00:01.000Z", Envelope: EnvelopeHTTP, TopicArn: feedbackTopic},
				Mail: Mail{
					Timestamp: "2024-05-03T11:00:00.000Z", MessageID: "0102018f3c000024-rfc2047-000000",
					Source:        "=?utf-8?b?SsO2aG4gRMWTIFt2aWEgUmVsYXld?= <relay@Relay.Example.NET>",
					SourceAddress: "relay@relay.example.net", SourceDomain: "relay.example.net",
					Destination: []string{"uma@example.com"},
					From:        []string{`"\"sender@test.com [via Relay]\"" <relay@relay.example.net>`},
					To:          []string{"uma@example.com"},
				},
				Bounce:     Bounce{Type: "Permanent", SubType: "General", FeedbackID: "fb-rfc2047-0001", Timestamp: "2024-05-03T11:00:01.000Z"},
				Recipients: []Recipient{rcpt("uma@example.com", "uma", "example.com", "5.1.1", "failed", "")},
			},
		}}},
		{"bounce-unknown-subtype.json", []wantItem{{
			input: "bounce-unknown-subtype.json:1", envelope: EnvelopeHTTP, envelopeID: "bbbbbbbb-2222-4333-8444-000000000001", snsID: "bbbbbbbb-2222-4333-8444-000000000001", topicArn: feedbackTopic,
			n: &Notification{
				Input: "bounce-unknown-subtype.json:1", EnvelopeID: "bbbbbbbb-2222-4333-8444-000000000001", SNSMessageID: "bbbbbbbb-2222-4333-8444-000000000001", Format: "notification",
				Event: Event{Type: TypeBounce, Timestamp: "2024-05-03T12:00:01.000Z", Envelope: EnvelopeHTTP, TopicArn: feedbackTopic},
				Mail: Mail{Timestamp: "2024-05-03T12:00:00.000Z", MessageID: "0102018f3c000025-unknown-000000",
					Source: "billing@shop.example.org", SourceAddress: "billing@shop.example.org", SourceDomain: "shop.example.org",
					Destination: []string{"vera@example.com"}},
				Bounce: Bounce{Type: "Permanent", SubType: "OnTenantSuppressionList", FeedbackID: "fb-unknown-0001",
					Timestamp: "2024-05-03T12:00:01.000Z"},
				Recipients: []Recipient{rcpt("vera@example.com", "vera", "example.com", "5.1.1", "failed", "")},
			},
		}}},
		{"unknown-fields.json", []wantItem{{
			input: "unknown-fields.json:1", envelope: EnvelopeFile,
			n: &Notification{
				Input: "unknown-fields.json:1", Format: "event",
				Event: Event{Type: TypeDelivery, Timestamp: "2024-05-03T13:00:02.000Z", Envelope: EnvelopeFile},
				Mail: Mail{Timestamp: "2024-05-03T13:00:00.000Z", MessageID: "0102018f3c000026-extra-000000",
					Source: "news@shop.example.org", SourceAddress: "news@shop.example.org", SourceDomain: "shop.example.org",
					Destination: []string{"walt@example.com"},
					// A tag written as a single string becomes a one-item list.
					Tags: map[string][]string{"ses:outgoing-ip": {"192.0.2.99"}, "single": {"not-a-list"}}},
				// processingTimeMillis written as a string is still a number.
				Delivery:   Delivery{Timestamp: "2024-05-03T13:00:02.000Z", ProcessingTimeMillis: 2000, SMTPResponse: "250 ok"},
				Recipients: []Recipient{rcpt("walt@example.com", "walt", "example.com", "", "", "")},
			},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			items := readItems(t, tt.file)
			if len(items) != len(tt.want) {
				for _, it := range items {
					t.Logf("got %s: skipped=%q err=%v", it.Input, it.Skipped, it.Err)
				}
				t.Fatalf("%d items, want %d", len(items), len(tt.want))
			}
			for i := range items {
				checkItem(t, items[i], tt.want[i])
			}
		})
	}
}

// TestDecodeKeepsUnknownFieldsInRaw checks that fields the model does not
// name survive in Notification.Raw, at every level.
func TestDecodeKeepsUnknownFieldsInRaw(t *testing.T) {
	items := readItems(t, "unknown-fields.json")
	if len(items) != 1 || items[0].Notification == nil {
		t.Fatalf("want one notification, got %+v", items)
	}
	var raw struct {
		FutureTopLevel struct {
			Answer int `json:"answer"`
		} `json:"futureTopLevel"`
		Mail struct {
			FutureMailField string `json:"futureMailField"`
		} `json:"mail"`
		Delivery struct {
			FutureDeliveryField []int `json:"futureDeliveryField"`
		} `json:"delivery"`
	}
	if err := json.Unmarshal([]byte(items[0].Notification.Raw), &raw); err != nil {
		t.Fatal(err)
	}
	if raw.FutureTopLevel.Answer != 42 || raw.Mail.FutureMailField != "kept" || !reflect.DeepEqual(raw.Delivery.FutureDeliveryField, []int{1, 2, 3}) {
		t.Errorf("unknown fields lost from Raw: %+v\nRaw: %s", raw, items[0].Notification.Raw)
	}
}

// TestDecodeRawIsSESJSON checks that Raw is the SES JSON itself, not the
// envelope around it, for every envelope.
func TestDecodeRawIsSESJSON(t *testing.T) {
	for _, file := range []string{"bounce-bare.json", "bounce-http.json", "bounce-sns-lambda.json", "bounce-sqs-sns.json",
		"bounce-sqs-raw.json", "bounce-eventbridge.json", "bounce-sqs-eventbridge.json"} {
		t.Run(file, func(t *testing.T) {
			seen := 0
			for _, it := range readItems(t, file) {
				if it.Notification == nil {
					continue
				}
				seen++
				var top map[string]json.RawMessage
				if err := json.Unmarshal([]byte(it.Notification.Raw), &top); err != nil {
					t.Fatalf("%s: Raw is not a JSON object: %v", it.Input, err)
				}
				_, identity := top["notificationType"]
				_, event := top["eventType"]
				_, mail := top["mail"]
				if !(identity || event) || !mail {
					t.Errorf("%s: Raw is not the SES JSON: keys %v", it.Input, keys(top))
				}
			}
			if seen == 0 {
				t.Errorf("%s holds no notification", file)
			}
		})
	}
}

func keys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestDecodeInline pins the skip reasons and errors of small documents,
// one per way a document can fail to be an SES notification.
func TestDecodeInline(t *testing.T) {
	const mail = `"mail":{"timestamp":"2024-01-01T00:00:00.000Z","source":"a@b.example","messageId":"m-1","destination":["x@Y.example","z@y.example"]}`
	tests := []struct {
		name string
		doc  string
		want []wantItem
	}{
		{"not JSON", `not json`, []wantItem{{input: "in", envelope: EnvelopeFile,
			err: "invalid JSON"}}},
		{"JSON number", `42`, []wantItem{{input: "in", envelope: EnvelopeFile, skipped: "a JSON number, not a notification"}}},
		{"JSON null", `null`, []wantItem{{input: "in", envelope: EnvelopeFile, skipped: "a JSON null, not a notification"}}},
		{"JSON array", `[{"notificationType":"Bounce"}, 7]`, []wantItem{
			{input: "in[0]", envelope: EnvelopeFile, err: "SES Bounce notification has no mail object"},
			{input: "in[1]", envelope: EnvelopeFile, skipped: "a JSON number, not a notification"}}},
		{"empty JSON array", `[]`, []wantItem{{input: "in", envelope: EnvelopeFile, skipped: "an empty JSON array"}}},
		{"SNS body smuggling Records", `{"Type":"Notification","MessageId":"s1","Message":"{}","Records":[{"eventSource":"aws:sqs","body":"{}"}]}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: "ambiguous document: it has the keys of an SNS message (Type) and of a Lambda event (Records)"}}},
		{"SNS body smuggling EventBridge", `{"Type":"Notification","MessageId":"s1","Message":"{}","source":"aws.ses","detail":{}}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: "ambiguous document: it has the keys of an SNS message (Type) and of an EventBridge event"}}},
		{"SNS body with a duplicate Message", `{"Type":"Notification","MessageId":"s1","Message":"a","message":"{}"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, err: `key "message" appears twice`}}},
		{"SNS MessageId with a newline", `{"Type":"Notification","MessageId":"s1\nSubject\nx","Message":"a"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, err: "MessageId holds a control character"}}},
		{"SQS record with both Sns and body", `{"Records":[{"Sns":{"Type":"Notification"},"body":"{}"}]}`, []wantItem{{
			input: "in#1", envelope: EnvelopeFile, err: "ambiguous: it has both Sns and body"}}},
		{"notificationType a number", `{"notificationType":5,` + mail + `}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: `"notificationType" is a JSON number, want a string`}}},
		{"bounce without recipients", `{"eventType":"Bounce",` + mail + `,"bounce":{"bounceType":"Permanent","bouncedRecipients":[]}}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, skipped: "SES Bounce names no recipients (bounce.bouncedRecipients is empty)"}}},
		{"broken object", `{"Type":"Notification",`, []wantItem{{input: "in", envelope: EnvelopeFile, err: "invalid JSON"}}},
		{"empty object", `{}`, []wantItem{{input: "in", envelope: EnvelopeFile,
			skipped: "not an SES notification: no Records, Type, detail-type, notificationType or eventType"}}},
		{"no records", `{"Records":[]}`, []wantItem{{input: "in", envelope: EnvelopeFile,
			skipped: "Lambda event with no records"}}},
		{"S3 record", `{"Records":[{"eventSource":"aws:s3","s3":{}}]}`, []wantItem{{input: "in#1", envelope: EnvelopeFile,
			skipped: "Lambda record from aws:s3 is neither SNS nor SQS"}}},
		{"record of no source", `{"Records":[{}]}`, []wantItem{{input: "in#1", envelope: EnvelopeFile,
			skipped: "is neither SNS nor SQS"}}},
		{"record not an object", `{"Records":[1]}`, []wantItem{{input: "in#1", envelope: EnvelopeFile,
			err: "record: "}}},
		{"SQS body not JSON", `{"Records":[{"eventSource":"aws:sqs","messageId":"q1","body":"hello"}]}`, []wantItem{{
			input: "in#1", envelope: EnvelopeSQS, envelopeID: "q1", skipped: `SQS body is not JSON: "hello"`}}},
		{"SQS body broken JSON", `{"Records":[{"eventSource":"aws:sqs","messageId":"q1","body":"{broken"}]}`, []wantItem{{
			input: "in#1", envelope: EnvelopeSQS, envelopeID: "q1",
			err: "SQS body: invalid JSON"}}},
		{"SQS body other JSON", `{"Records":[{"eventSource":"aws:sqs","messageId":"q1","body":"{\"order\":1}"}]}`, []wantItem{{
			input: "in#1", envelope: EnvelopeSQS, envelopeID: "q1", skipped: "not an SES notification"}}},
		{"EventBridge not SES", `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","id":"e1","detail":{}}`, []wantItem{{
			input: "in", envelope: EnvelopeEventBridge, envelopeID: "e1", skipped: `EventBridge event from "aws.ec2", not aws.ses`}}},
		{"EventBridge without detail", `{"source":"aws.ses","detail-type":"Email Bounced","id":"e1"}`, []wantItem{{
			input: "in", envelope: EnvelopeEventBridge, envelopeID: "e1", err: `EventBridge "Email Bounced" event has no detail object`}}},
		{"SNS UnsubscribeConfirmation", `{"Type":"UnsubscribeConfirmation","MessageId":"s1","TopicArn":"arn:t","Message":"bye"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, envelopeID: "s1", snsID: "s1", topicArn: "arn:t", skipped: "SNS UnsubscribeConfirmation for arn:t"}}},
		{"SNS confirmation without topic", `{"Type":"SubscriptionConfirmation","MessageId":"s1"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, envelopeID: "s1", snsID: "s1", skipped: "SNS SubscriptionConfirmation for an unknown topic"}}},
		{"SNS unknown type", `{"Type":"Weird","MessageId":"s1"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, envelopeID: "s1", snsID: "s1", skipped: `SNS message of type "Weird"`}}},
		{"SNS without Message", `{"Type":"Notification","MessageId":"s1"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, envelopeID: "s1", snsID: "s1", err: "SNS Notification has no Message"}}},
		{"SNS Message null", `{"Type":"Notification","MessageId":"s1","Message":null}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, envelopeID: "s1", snsID: "s1", err: "SNS Notification has no Message"}}},
		{"SNS Message array", `{"Type":"Notification","MessageId":"s1","Message":[1]}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP,
			err: `"Message" is a JSON array, want a string: SNS always sends the message as a string (was it decoded twice?)`}}},
		{"SNS Message broken JSON", `{"Type":"Notification","MessageId":"s1","Message":"{not json"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, envelopeID: "s1", snsID: "s1",
			err: "SES JSON: invalid JSON"}}},
		{"SNS Message other JSON", `{"Type":"Notification","MessageId":"s1","Message":"{\"hello\":1}"}`, []wantItem{{
			input: "in", envelope: EnvelopeHTTP, envelopeID: "s1", snsID: "s1",
			skipped: "JSON message that is not an SES notification (no notificationType or eventType)"}}},
		{"inbound mail", `{"notificationType":"Received",` + mail + `,"receipt":{}}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, skipped: "SES inbound mail (Received), not feedback"}}},
		{"bounce without mail", `{"eventType":"Bounce","bounce":{}}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: "SES Bounce notification has no mail object"}}},
		{"bounce without bounce", `{"eventType":"Bounce",` + mail + `}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: "SES JSON has no bounce object"}}},
		{"complaint without complaint", `{"notificationType":"Complaint",` + mail + `}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: "SES JSON has no complaint object"}}},
		{"delivery without delivery", `{"notificationType":"Delivery",` + mail + `}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: "SES JSON has no delivery object"}}},
		{"delay without deliveryDelay", `{"eventType":"DeliveryDelay",` + mail + `}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: "SES JSON has no deliveryDelay object"}}},
		{"headersTruncated not a boolean", `{"eventType":"Send","mail":{"headersTruncated":"maybe"}}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: `"headersTruncated" is a JSON string, want a boolean`}}},
		{"processingTimeMillis not a number", `{"eventType":"Delivery","mail":{},"delivery":{"processingTimeMillis":"abc"}}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, err: `"processingTimeMillis" is a JSON string, want a number`}}},

		{"new event type", `{"eventType":"Future Thing",` + mail + `}`, []wantItem{{
			input: "in", envelope: EnvelopeFile,
			// A type SES may add later is kept (spaces removed) and its
			// recipients are mail.destination.
			n: &Notification{
				Input: "in", Format: "event",
				Event: Event{Type: "FutureThing", Timestamp: "2024-01-01T00:00:00.000Z", Envelope: EnvelopeFile},
				Mail: Mail{Timestamp: "2024-01-01T00:00:00.000Z", MessageID: "m-1", Source: "a@b.example",
					SourceAddress: "a@b.example", SourceDomain: "b.example", Destination: []string{"x@Y.example", "z@y.example"}},
				Recipients: []Recipient{rcpt("x@Y.example", "x", "y.example", "", "", ""), rcpt("z@y.example", "z", "y.example", "", "", "")},
			},
		}}},
		{"send without destination", `{"eventType":"Send","mail":{"messageId":"m-2","source":"a@b.example"},"send":{}}`, []wantItem{{
			input: "in", envelope: EnvelopeFile, skipped: "SES Send names no recipients (mail.destination is empty)"}}},
		{"Lambda record mix", `{"Records":[` +
			`{"EventSource":"aws:sns","Sns":{"Type":"Notification","MessageId":"s1","TopicArn":"arn:t","Message":"plain text"}},` +
			`{"eventSource":"aws:sqs","messageId":"q2","body":"{\"Type\":\"SubscriptionConfirmation\",\"MessageId\":\"s2\",\"TopicArn\":\"arn:t\"}"},` +
			`{"eventSource":"aws:sqs","messageId":"q3","body":"{\"source\":\"aws.ses\",\"detail-type\":\"Sending Status Enabled\",\"id\":\"e3\",\"detail\":{}}"}]}`,
			[]wantItem{
				{input: "in#1", envelope: EnvelopeSNS, envelopeID: "s1", snsID: "s1", topicArn: "arn:t", skipped: `SNS message is not JSON: "plain text"`},
				{input: "in#2", envelope: EnvelopeSQS, envelopeID: "q2", snsID: "s2", topicArn: "arn:t", skipped: "SNS SubscriptionConfirmation for arn:t"},
				{input: "in#3", envelope: EnvelopeSQS, envelopeID: "q3", skipped: `EventBridge "Sending Status Enabled" is not an SES mail event`},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := Decode("in", []byte(tt.doc))
			if len(items) != len(tt.want) {
				t.Fatalf("%d items, want %d: %+v", len(items), len(tt.want), items)
			}
			for i := range items {
				checkItem(t, items[i], tt.want[i])
			}
		})
	}
}

// TestDecodeLongSkipPreview checks that a long non-JSON SNS message is cut
// in the skip reason.
func TestDecodeLongSkipPreview(t *testing.T) {
	msg := strings.Repeat("x", 100)
	items := Decode("in", []byte(`{"Type":"Notification","MessageId":"s1","Message":"`+msg+`"}`))
	want := `SNS message is not JSON: "` + strings.Repeat("x", 80) + `…"`
	if len(items) != 1 || items[0].Skipped != want {
		t.Fatalf("got %+v, want Skipped %q", items, want)
	}
}

// TestAppendDecode checks that appendDecode appends to dst, keeping what
// is there, and that Decode is appendDecode to nil.
func TestAppendDecode(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(eventsDir, "bounce-sns-lambda.json"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := []Item{{Input: "earlier", Skipped: "kept"}}
	got := appendDecode(prefix, "lambda", doc)
	if len(got) != 3 {
		t.Fatalf("appendDecode gave %d items, want 3", len(got))
	}
	if got[0].Input != "earlier" || got[0].Skipped != "kept" {
		t.Errorf("appendDecode changed dst[0]: %+v", got[0])
	}
	if got[1].Input != "lambda#1" || got[2].Input != "lambda#2" {
		t.Errorf("appended inputs = %q, %q; want lambda#1, lambda#2", got[1].Input, got[2].Input)
	}
	plain := Decode("lambda", doc)
	if len(plain) != 2 {
		t.Fatalf("Decode gave %d items, want 2", len(plain))
	}
	for i := range plain {
		if plain[i].Input != got[i+1].Input || plain[i].EnvelopeID != got[i+1].EnvelopeID ||
			!reflect.DeepEqual(plain[i].Notification.Recipients, got[i+1].Notification.Recipients) {
			t.Errorf("Decode item %d differs from appendDecode's: %+v vs %+v", i, plain[i], got[i+1])
		}
	}
}

// TestDecodeCopiesInput checks that a Notification does not alias the
// caller's buffer: a Reader reuses its buffer for the next document.
func TestDecodeCopiesInput(t *testing.T) {
	for _, file := range []string{"bounce-bare.json", "bounce-http.json", "bounce-sqs-raw.json", "bounce-eventbridge.json"} {
		t.Run(file, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join(eventsDir, file))
			if err != nil {
				t.Fatal(err)
			}
			items := Decode(file, doc)
			if len(items) != 1 || items[0].Notification == nil {
				t.Fatalf("want one notification, got %+v", items)
			}
			n := items[0].Notification
			raw := string(n.Raw)
			addr := n.Recipients[0].Address
			for i := range doc {
				doc[i] = 'X'
			}
			if string(n.Raw) != raw || n.Recipients[0].Address != addr {
				t.Errorf("overwriting the input changed the notification: Raw %q, address %q", n.Raw, n.Recipients[0].Address)
			}
		})
	}
}

// TestDecodeScalarWhereStringExpected checks that a number or a boolean
// where SES writes a string is an error naming the field, not a string
// made of its JSON text (a notificationType of 5 is not the type "5").
func TestDecodeScalarWhereStringExpected(t *testing.T) {
	for _, tt := range []struct{ doc, err string }{
		{`{"eventType":"Send","mail":{"messageId":12,"destination":["a@b.example"]}}`, `"messageId" is a JSON number, want a string`},
		{`{"eventType":"Send","mail":{"source":true,"destination":["a@b.example"]}}`, `"source" is a JSON boolean, want a string`},
		{`{"eventType":"Send","mail":{"source":{"a":1},"destination":["a@b.example"]}}`, `"source" is a JSON object, want a string`},
		{`{"notificationType":5,"mail":{}}`, `"notificationType" is a JSON number, want a string`},
	} {
		items := Decode("in", []byte(tt.doc))
		if len(items) != 1 || items[0].Err == nil || !strings.Contains(items[0].Err.Error(), tt.err) {
			t.Errorf("%s: got %+v, want an error saying %s", tt.doc, items, tt.err)
		}
	}
}

// snsBody wraps SES JSON in an SNS HTTP body, as the Message string.
func snsBody(t *testing.T, ses string) string {
	t.Helper()
	msg, err := jsontext.AppendQuote(nil, ses)
	if err != nil {
		t.Fatal(err)
	}
	return `{"Type":"Notification","MessageId":"s1","TopicArn":"arn:t","Message":` + string(msg) + `}`
}

// TestDecodeRepeatedMember checks that a member name given twice in one
// object, anywhere in a notification or its envelope, is an error naming
// it: two bounce objects are not merged (the recipients of both were
// routed), nor is one of two values silently kept.
func TestDecodeRepeatedMember(t *testing.T) {
	const mail = `"mail":{"timestamp":"2024-01-01T00:00:00.000Z","source":"a@b.example","messageId":"m-1","destination":["x@y.example"]}`
	bounce := func(addr string) string {
		return `"bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"` + addr + `"}]}`
	}
	twoBounces := `{"notificationType":"Bounce",` + mail + "," + bounce("a@example.com") + "," + bounce("b@example.com") + "}"
	cases := []struct{ name, doc, err string }{
		{"bounce twice", twoBounces, `key "bounce" appears twice`},
		{"bounce twice in an SNS message", snsBody(t, twoBounces), `SES JSON: key "bounce" appears twice`},
		{"bounce twice in an SQS body", `{"Records":[{"eventSource":"aws:sqs","messageId":"q1","body":` + quoteJSON(t, twoBounces) + `}]}`,
			`SQS body: key "bounce" appears twice`},
		{"emailAddress twice", `{"notificationType":"Bounce",` + mail + `,"bounce":{"bouncedRecipients":[{"emailAddress":"a@example.com","emailAddress":"b@example.com"}]}}`,
			`key "emailAddress" appears twice in "/bounce/bouncedRecipients/0"`},
		{"messageId twice", `{"eventType":"Send","mail":{"messageId":"m-1","messageId":"m-2","destination":["x@y.example"]}}`,
			`key "messageId" appears twice in "/mail"`},
		{"a tag twice", `{"eventType":"Send","mail":{"destination":["x@y.example"],"tags":{"k":["a"],"k":["b"]}}}`,
			`key "k" appears twice in "/mail/tags"`},
		{"a member of an unknown object twice", `{"eventType":"Send",` + mail + `,"future":{"a":1,"a":2}}`,
			`key "a" appears twice in "/future"`},
		{"eventType twice", `{"eventType":"Send","eventType":"Bounce",` + mail + `}`, `key "eventType" appears twice`},
		{"body twice in an SQS record", `{"Records":[{"eventSource":"aws:sqs","messageId":"q1","body":"{}","body":"{}"}]}`,
			`record: key "body" appears twice`},
		{"Sns twice in a Lambda record", `{"Records":[{"EventSource":"aws:sns","Sns":{"Type":"Notification"},"Sns":{"Type":"Notification"}}]}`,
			`record: key "Sns" appears twice`},
		{"Message twice in a Lambda SNS record", `{"Records":[{"EventSource":"aws:sns","Sns":{"Type":"Notification","Message":"{}","Message":"{}"}}]}`,
			`key "Message" appears twice`},
		{"detail twice in an EventBridge event", `{"source":"aws.ses","detail-type":"Email Sent","detail":{"eventType":"Send",` + mail + `},"detail":{}}`,
			`key "detail" appears twice`},
		{"eventType twice in an EventBridge detail", `{"source":"aws.ses","detail-type":"Email Sent","detail":{"eventType":"Send","eventType":"Bounce",` + mail + `}}`,
			`key "eventType" appears twice in "/detail"`},
		{"an element of a top-level array", `[{"eventType":"Send",` + mail + `,"eventType":"Open"}]`, `key "eventType" appears twice`},
	}
	// The SES JSON of an SNS Message is read by the SES decoder alone,
	// which checks names itself: each of these, in a Message.
	var manyTags, longNames strings.Builder
	for i := range 40 {
		fmt.Fprintf(&manyTags, `"tag-%d":["v"],`, i)
		fmt.Fprintf(&longNames, `"%s-%d":["v"],`, strings.Repeat("n", 30), i)
	}
	for _, tt := range []struct{ name, ses, err string }{
		{"emailAddress twice", `{"notificationType":"Bounce",` + mail + `,"bounce":{"bouncedRecipients":[{"emailAddress":"a@example.com","emailAddress":"b@example.com"}]}}`,
			`key "emailAddress" appears twice in "/bounce/bouncedRecipients/0"`},
		{"messageId twice", `{"eventType":"Send","mail":{"messageId":"m-1","messageId":"m-2","destination":["x@y.example"]}}`,
			`key "messageId" appears twice in "/mail"`},
		{"messageId twice, once escaped", `{"eventType":"Send","mail":{"messageId":"m-1","mess\u0061geId":"m-2","destination":["x@y.example"]}}`,
			`key "messageId" appears twice in "/mail"`},
		{"an unread member twice", `{"eventType":"Send","mail":{"destination":["x@y.example"],"commonHeaders":{"date":"a","date":"b"}}}`,
			`key "date" appears twice in "/mail/commonHeaders"`},
		{"a tag twice", `{"eventType":"Send","mail":{"destination":["x@y.example"],"tags":{"k":["a"],"k":["b"]}}}`,
			`key "k" appears twice in "/mail/tags"`},
		{"a tag twice among many", `{"eventType":"Send","mail":{"destination":["x@y.example"],"tags":{` + manyTags.String() + `"tag-7":["b"]}}}`,
			`key "tag-7" appears twice in "/mail/tags"`},
		{"a long tag twice among many", `{"eventType":"Send","mail":{"destination":["x@y.example"],"tags":{` + longNames.String() + `"` + strings.Repeat("n", 30) + `-3":["b"]}}}`,
			`key "` + strings.Repeat("n", 30) + `-3" appears twice in "/mail/tags"`},
		{"a member of an unknown object twice", `{"eventType":"Send",` + mail + `,"future":{"x":[{"a":1,"a":2}]}}`,
			`key "a" appears twice in "/future/x/0"`},
		{"eventType twice", `{"eventType":"Send","eventType":"Bounce",` + mail + `}`, `key "eventType" appears twice`},
	} {
		cases = append(cases, struct{ name, doc, err string }{tt.name + " in an SNS message", snsBody(t, tt.ses), "SES JSON: " + tt.err})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			items := Decode("in", []byte(tt.doc))
			if len(items) != 1 || items[0].Err == nil || !strings.Contains(items[0].Err.Error(), tt.err) {
				t.Fatalf("got %+v, want one error saying %s", items, tt.err)
			}
		})
	}
}

// TestDecodeRepeatedMemberIsolated checks that a member given twice in one
// record of a Lambda event, or in one element of a top-level array, makes
// that item an error and no other: a batch is not refused for one record.
func TestDecodeRepeatedMemberIsolated(t *testing.T) {
	const send = `{"eventType":"Send","mail":{"destination":["x@y.example"]}}`
	const dup = `{"eventType":"Send","mail":{"destination":["x@y.example"],"destination":["z@y.example"]}}`
	for _, tt := range []struct{ name, doc, bad, good string }{
		{"Lambda SQS records", `{"Records":[{"eventSource":"aws:sqs","messageId":"q1","body":"{}","messageId":"q1"},` +
			`{"eventSource":"aws:sqs","messageId":"q2","body":` + quoteJSON(t, send) + `}]}`, "in#1", "in#2"},
		{"Lambda SNS records", `{"Records":[{"EventSource":"aws:sns","Sns":{"Type":"Notification","Type":"Notification","Message":"{}"}},` +
			`{"EventSource":"aws:sns","Sns":{"Type":"Notification","MessageId":"s2","Message":` + quoteJSON(t, send) + `}}]}`, "in#1", "in#2"},
		{"a top-level array", `[` + dup + `,` + send + `]`, "in[0]", "in[1]"},
		{"a top-level array, invalid UTF-8", "[{\"eventType\":\"Send\",\"mail\":{\"destination\":[\"x\xff@y.example\"]}}," + send + `]`, "in[0]", "in[1]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			items := Decode("in", []byte(tt.doc))
			if len(items) != 2 || items[0].Input != tt.bad || items[0].Err == nil || items[1].Input != tt.good || items[1].Notification == nil {
				t.Fatalf("got %+v, want an error for %s and a notification for %s", items, tt.bad, tt.good)
			}
		})
	}
}

func quoteJSON(t *testing.T, s string) string {
	t.Helper()
	b, err := jsontext.AppendQuote(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDecodeBothTypes checks that SES JSON with both notificationType and
// eventType is refused, rather than read as one of them.
func TestDecodeBothTypes(t *testing.T) {
	const rest = `"mail":{"destination":["x@y.example"]},"bounce":{"bouncedRecipients":[{"emailAddress":"x@y.example"}]},` +
		`"delivery":{"recipients":["x@y.example"]}`
	for _, doc := range []string{
		`{"notificationType":"Bounce","eventType":"Delivery",` + rest + `}`,
		`{"eventType":"Delivery","notificationType":"Bounce",` + rest + `}`,
		`{"eventType":"Bounce","notificationType":"Bounce",` + rest + `}`,
		`{"eventType":"","notificationType":"Bounce",` + rest + `}`,
	} {
		items := Decode("in", []byte(doc))
		want := "SES JSON has both notificationType and eventType"
		if len(items) != 1 || items[0].Err == nil || !strings.Contains(items[0].Err.Error(), want) {
			t.Errorf("%s: got %+v, want an error saying %s", doc, items, want)
		}
	}
	// A null is absent, as everywhere in SES's JSON.
	items := Decode("in", []byte(`{"eventType":null,"notificationType":"Bounce",`+rest+`}`))
	if len(items) != 1 || items[0].Notification == nil || items[0].Notification.Format != "notification" {
		t.Errorf("eventType null beside notificationType: got %+v, want a notification", items)
	}
}

// TestDecodeProcessingTimeMillis checks the numbers processingTimeMillis
// takes, as a number or a string: a fraction is cut off, and a number
// too large for an int is an error, never wrapped around (1e400 read as
// -9223372036854775808).
func TestDecodeProcessingTimeMillis(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int
		err   string
	}{
		{`789`, 789, ""},
		{`"2000"`, 2000, ""},
		{`12.7`, 12, ""},
		{`1e3`, 1000, ""},
		{`-5`, -5, ""},
		{`null`, 0, ""},
		{`""`, 0, ""},
		{`9223372036854775807`, math.MaxInt, ""},
		{`1e400`, 0, `"processingTimeMillis" is out of range: 1e400`},
		{`-1e400`, 0, `"processingTimeMillis" is out of range: -1e400`},
		{`"1e400"`, 0, `"processingTimeMillis" is out of range: 1e400`},
		{`9223372036854775808`, 0, `"processingTimeMillis" is out of range: 9223372036854775808`},
		{`1e19`, 0, `"processingTimeMillis" is out of range: 1e19`},
		{`"NaN"`, 0, `"processingTimeMillis" is out of range: NaN`},
		{`"Infinity"`, 0, `"processingTimeMillis" is out of range: Infinity`},
		{`"abc"`, 0, `"processingTimeMillis" is a JSON string, want a number`},
		{`true`, 0, `"processingTimeMillis" is a JSON boolean, want a number`},
	} {
		doc := `{"notificationType":"Delivery","mail":{"destination":["x@y.example"]},"delivery":{"recipients":["x@y.example"],"processingTimeMillis":` + tt.value + `}}`
		items := Decode("in", []byte(doc))
		if len(items) != 1 {
			t.Fatalf("%s: %d items", tt.value, len(items))
		}
		it := items[0]
		switch {
		case tt.err != "":
			if it.Err == nil || !strings.Contains(it.Err.Error(), tt.err) {
				t.Errorf("%s: got %+v, want an error saying %s", tt.value, it, tt.err)
			}
		case it.Notification == nil:
			t.Errorf("%s: got %+v, want a notification", tt.value, it)
		case it.Notification.Delivery.ProcessingTimeMillis != tt.want:
			t.Errorf("%s: processingTimeMillis = %d, want %d", tt.value, it.Notification.Delivery.ProcessingTimeMillis, tt.want)
		}
	}
}

// TestTextMapKeysKept checks that the keys of mail.tags are kept as
// written when the decoder moves its buffer while it reads their values
// (a name the decoder returns is only valid until the next read).
func TestTextMapKeysKept(t *testing.T) {
	var b strings.Builder
	want := map[string][]string{}
	b.WriteString(`{"pad":"` + strings.Repeat("p", 10000) + `","tags":{`)
	for i := range 300 {
		k, v := fmt.Sprintf("tag-%03d-%s", i, strings.Repeat("k", 40)), fmt.Sprintf("value-%03d-%s", i, strings.Repeat("v", 40))
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(quoteJSON(t, k) + ":[" + quoteJSON(t, v) + "]")
		want[k] = []string{v}
	}
	b.WriteString("}}")
	raw := b.String()
	var tags textMap
	dec := jsontext.NewDecoder(iotest.OneByteReader(strings.NewReader(raw)))
	err := members(dec, "", func(name []byte) error {
		if string(name) == "tags" {
			return tags.read(dec, "tags")
		}
		return skip(dec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := tags.in(raw); !reflect.DeepEqual(got, want) {
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("key %q, not in the JSON", k)
			}
		}
		t.Fatalf("%d tags, want %d", len(got), len(want))
	}
}
