package ses

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// samplesDir holds the real SES, SNS, SQS and EventBridge samples, copied
// into testdata with their source notes (SOURCES.md beside them).
var samplesDir = filepath.Join("..", "..", "testdata", "samples", "events")

// sampleWant is what SOURCES.md says of one sample: either a notification
// (type, bounce type and subtype, recipient addresses) or a skip reason
// or an error (substrings of it). check, when set, looks at more fields.
type sampleWant struct {
	envelope   string
	envelopeID string
	snsID      string
	typ        string
	format     string
	bounceType string
	subType    string
	recipients []string
	skipped    string
	err        string
	check      func(t *testing.T, n *Notification)
}

// sampleTable is keyed by the number that starts each sample's file name.
var sampleTable = map[string]sampleWant{
	"01": {envelope: EnvelopeHTTP, envelopeID: "9b307bf2-65c7-5e1e-a305-2cf235d89524", typ: TypeBounce, format: "notification",
		bounceType: "Permanent", subType: "General", recipients: []string{"bounce@simulator.amazonses.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "bounce.remoteMtaIp", n.Bounce.RemoteMtaIP, "34.192.116.36")
			checkEq(t, "bounce.reportingMTA", n.Bounce.ReportingMTA, "dsn; a27-24.smtp-out.us-west-2.amazonses.com")
			checkEq(t, "recipient.diagnosticCode", n.Recipients[0].DiagnosticCode, "smtp; 550 5.1.1 user unknown")
			checkEq(t, "recipient.status", n.Recipients[0].Status, "5.1.1")
			checkEq(t, "recipient.action", n.Recipients[0].Action, "failed")
			checkEq(t, "event.topicArn", n.Event.TopicArn, "arn:aws:sns:us-west-2:635608510762:laravel-ses-Bounce")
		}},
	"02": {envelope: EnvelopeHTTP, typ: TypeComplaint, format: "notification", recipients: []string{"complaint@simulator.amazonses.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "complaint.subType", n.Complaint.SubType, "") // "complaintSubType": null
			checkEq(t, "complaint.userAgent", n.Complaint.UserAgent, "Amazon SES Mailbox Simulator")
			checkEq(t, "complaint.feedbackType", n.Complaint.FeedbackType, "abuse")
			checkEq(t, "complaint.arrivalDate", n.Complaint.ArrivalDate, "")
		}},
	"03": {envelope: EnvelopeHTTP, typ: TypeDelivery, format: "notification", recipients: []string{"juha.vehnia@sampleninja.io"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "delivery.processingTimeMillis", n.Delivery.ProcessingTimeMillis, 789)
			checkEq(t, "delivery.remoteMtaIp", n.Delivery.RemoteMtaIP, "74.125.199.26")
		}},
	"04": {envelope: EnvelopeHTTP, typ: TypeBounce, format: "notification", bounceType: "Permanent", subType: "OnAccountSuppressionList",
		recipients: []string{"relayuser@test.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "bounce.reportingMTA", n.Bounce.ReportingMTA, "dns; amazonses.com")
			checkEq(t, "bounce.remoteMtaIp", n.Bounce.RemoteMtaIP, "")
			if !strings.HasPrefix(n.Recipients[0].DiagnosticCode, "Amazon SES did not send the message to this address because it is on the suppression list") {
				t.Errorf("diagnosticCode = %q, want SES's suppression-list text", n.Recipients[0].DiagnosticCode)
			}
			// An RFC 2047 encoded word as display name.
			checkEq(t, "mail.source", n.Mail.Source, "=?utf-8?b?Imxjcm91Y2hAbW96aWxsYS5jb20gW3ZpYSBSZWxheV0i?= <relay@unfck.email>")
			checkEq(t, "mail.sourceAddress", n.Mail.SourceAddress, "relay@unfck.email")
			checkEq(t, "mail.sourceDomain", n.Mail.SourceDomain, "unfck.email")
			checkEq(t, "mail.from", n.Mail.From, []string{`"\"sender@test.com [via Relay]\"" <relay@unfck.email>`})
			checkEq(t, "mail.replyTo", n.Mail.ReplyTo, []string{"replies@unfck.email"})
		}},
	"08": {envelope: EnvelopeFile, typ: TypeBounce, format: "notification", bounceType: "Permanent", subType: "General",
		recipients: []string{"bounce@simulator.amazonses.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "mail.sourceDomain", n.Mail.SourceDomain, "eder.com.au")
		}},
	"10": {envelope: EnvelopeFile, typ: TypeBounce, format: "notification", bounceType: "Permanent", subType: "General",
		recipients: []string{"jane@example.com"},
		check: func(t *testing.T, n *Notification) {
			// commonHeaders.to is one string holding three addresses.
			checkEq(t, "mail.to", n.Mail.To, []string{"Jane Doe <jane@example.com>", "Mary Doe <mary@example.com>", "Richard Doe <richard@example.com>"})
			checkEq(t, "bounce.reportingMTA", n.Bounce.ReportingMTA, "dns; email.example.com")
			checkEq(t, "mail.callerIdentity", n.Mail.CallerIdentity, "IAM_user_or_role_name")
		}},
	"11": {envelope: EnvelopeFile, typ: TypeBounce, format: "notification", bounceType: "Permanent", subType: "General",
		recipients: []string{"jane@example.com", "richard@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "mail.destination", n.Mail.Destination, []string{"jane@example.com", "mary@example.com", "richard@example.com"})
			for _, r := range n.Recipients {
				if r.Status != "" || r.Action != "" || r.DiagnosticCode != "" {
					t.Errorf("recipient %s has DSN fields %+v; the sample has none", r.Address, r)
				}
			}
		}},
	"12": {envelope: EnvelopeFile, typ: TypeComplaint, format: "notification", recipients: []string{"richard@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "complaint.userAgent", n.Complaint.UserAgent, "AnyCompany Feedback Loop (V0.01)")
			checkEq(t, "complaint.feedbackType", n.Complaint.FeedbackType, "abuse")
			checkEq(t, "complaint.arrivalDate", n.Complaint.ArrivalDate, "2016-01-27T14:59:38.237Z")
		}},
	"13": {envelope: EnvelopeFile, typ: TypeComplaint, format: "notification", recipients: []string{"richard@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "complaint.feedbackType", n.Complaint.FeedbackType, "")
			checkEq(t, "complaint.userAgent", n.Complaint.UserAgent, "")
		}},
	"14": {envelope: EnvelopeFile, typ: TypeDelivery, format: "notification", recipients: []string{"jane@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "delivery.processingTimeMillis", n.Delivery.ProcessingTimeMillis, 546)
			checkEq(t, "delivery.smtpResponse", n.Delivery.SMTPResponse, "250 ok:  Message 64111812 accepted")
		}},
	"15": {envelope: EnvelopeHTTP, typ: TypeBounce, format: "event", bounceType: "Permanent", subType: "General",
		recipients: []string{"mcbounceface@spatie.be"},
		check: func(t *testing.T, n *Notification) {
			d := n.Recipients[0].DiagnosticCode
			// A multi-line diagnosticCode, with PHP's \/ escapes decoded.
			if strings.Count(d, "\n") != 3 || !strings.Contains(d, "https://support.google.com/mail/?p=NoSuchUser") {
				t.Errorf("diagnosticCode = %q, want 4 lines with the Google URL", d)
			}
			checkEq(t, "bounce.remoteMtaIp", n.Bounce.RemoteMtaIP, "")
			checkEq(t, `mail.tags["ses:configuration-set"]`, n.Mail.Tags["ses:configuration-set"], []string{"mailcoach"})
		}},
	"17": {envelope: EnvelopeHTTP, typ: TypeClick, format: "event", recipients: []string{"hello@rias.be"},
		check: func(t *testing.T, n *Notification) {
			if n.Click.LinkTags != nil {
				t.Errorf("click.linkTags = %#v, want nil (null in the sample)", n.Click.LinkTags)
			}
			checkEq(t, "click.link", n.Click.Link, "https://spatie.be")
			checkEq(t, "mail.sourceArn", n.Mail.SourceArn, "")
		}},
	"18": {envelope: EnvelopeHTTP, typ: TypeOpen, format: "event", recipients: []string{"rias@spatie.be"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "mail.source", n.Mail.Source, `"Spatie" <info@spatie.be>`)
			checkEq(t, "mail.sourceAddress", n.Mail.SourceAddress, "info@spatie.be")
			checkEq(t, "open.userAgent", n.Open.UserAgent, "Mozilla/5.0")
			if len(n.Mail.ReplyTo) == 0 {
				t.Error("mail.replyTo is empty; the sample has a replyTo array")
			}
		}},
	"19": {envelope: EnvelopeHTTP, skipped: "Successfully validated SNS topic"},
	"22": {envelope: EnvelopeHTTP, envelopeID: "7f46a153-88ff-4d95-91f5-188d2b695155", skipped: "SubscriptionConfirmation"},
	// 24, 26, 27, 31, 32, 36: real envelopes whose message is not SES's.
	"24": {envelope: EnvelopeSQS, envelopeID: "79406a00-bf15-46ca-978c-22c3613fcb30", snsID: "d88d4479-6ec0-54fe-b63f-1cf9df4bb16e",
		skipped: "not an SES notification"},
	"26": {envelope: EnvelopeSNS, skipped: "not JSON"},
	"27": {envelope: EnvelopeSQS, envelopeID: "MessageID_1", skipped: "not JSON"},
	"31": {envelope: EnvelopeHTTP, skipped: "not JSON"},
	"32": {envelope: EnvelopeHTTP, skipped: "not JSON"},
	"36": {envelope: EnvelopeSQS, envelopeID: "c2f72267-c1b4-432b-b35e-c27a337798d1", skipped: "not JSON"},
	"43": {envelope: EnvelopeFile, typ: TypeBounce, format: "event", bounceType: "Permanent", subType: "General",
		recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "mail.sourceAddress", n.Mail.SourceAddress, "sender@example.com")
		}},
	"44": {envelope: EnvelopeFile, typ: TypeComplaint, format: "event", recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "complaint.feedbackType", n.Complaint.FeedbackType, "abuse")
		}},
	"45": {envelope: EnvelopeFile, typ: TypeDelivery, format: "event", recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "delivery.processingTimeMillis", n.Delivery.ProcessingTimeMillis, 11893)
		}},
	"46": {envelope: EnvelopeFile, typ: TypeSend, format: "event", recipients: []string{"recipient@example.com"}},
	// The doc's Reject example sends to the sender itself.
	"47": {envelope: EnvelopeFile, typ: TypeReject, format: "event", recipients: []string{"sender@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "reject.reason", n.Reject.Reason, "Bad content")
		}},
	"48": {envelope: EnvelopeFile, typ: TypeOpen, format: "event", recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "open.ipAddress", n.Open.IPAddress, "192.0.2.1")
		}},
	"49": {envelope: EnvelopeFile, typ: TypeClick, format: "event", recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "click.linkTags", n.Click.LinkTags, map[string][]string{"samplekey0": {"samplevalue0"}, "samplekey1": {"samplevalue1"}})
		}},
	"50": {envelope: EnvelopeFile, typ: TypeRenderingFailure, format: "event", recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "failure.templateName", n.Failure.TemplateName, "MyTemplate")
			checkEq(t, "failure.errorMessage", n.Failure.ErrorMessage, "Attribute 'attributeName' is not present in the rendering data.")
		}},
	"51": {envelope: EnvelopeFile, typ: TypeDeliveryDelay, format: "event", recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "delay.type", n.Delay.Type, "TransientCommunicationFailure")
			checkEq(t, "delay.expirationTime", n.Delay.ExpirationTime, "2020-06-16T00:25:40.914Z")
			checkEq(t, "recipient.status", n.Recipients[0].Status, "4.4.1")
			checkEq(t, "recipient.diagnosticCode", n.Recipients[0].DiagnosticCode, "smtp; 421 4.4.1 Unable to connect to remote host")
		}},
	"52": {envelope: EnvelopeFile, typ: TypeSubscription, format: "event", recipients: []string{"recipient@example.com"},
		check: func(t *testing.T, n *Notification) {
			checkEq(t, "subscription", n.Subscription, Subscription{ContactList: "ContactListName", Source: "UnsubscribeHeader",
				Timestamp: "2022-01-12T01:00:17.910Z", UnsubscribeAll: true})
		}},
}

// checkEq fails the test when got is not deeply equal to want.
func checkEq[T any](t *testing.T, name string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

// TestConformanceSamples decodes every real sample and checks it against
// what SOURCES.md says of it. A sample without an entry in the table fails,
// so that new samples get looked at.
func TestConformanceSamples(t *testing.T) {
	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		key, _, _ := strings.Cut(name, "_")
		t.Run(name, func(t *testing.T) {
			w, ok := sampleTable[key]
			if !ok {
				t.Fatalf("sample %s is not in the conformance table: add what SOURCES.md says of it", name)
			}
			if seen[key] {
				t.Fatalf("two samples numbered %s", key)
			}
			seen[key] = true
			f, err := os.Open(filepath.Join(samplesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			items := drain(t, NewReader(f, name))
			if len(items) != 1 {
				t.Fatalf("%d items, want 1: %+v", len(items), items)
			}
			it := items[0]
			checkExactlyOne(t, it)
			wantInput := name + ":1"
			if it.Envelope == EnvelopeSNS || it.Envelope == EnvelopeSQS {
				wantInput += "#1"
			}
			checkEq(t, "Input", it.Input, wantInput)
			checkEq(t, "Envelope", it.Envelope, w.envelope)
			if w.envelopeID != "" {
				checkEq(t, "EnvelopeID", it.EnvelopeID, w.envelopeID)
			}
			if w.snsID != "" {
				checkEq(t, "SNSMessageID", it.SNSMessageID, w.snsID)
			}
			switch {
			case w.skipped != "":
				if !strings.Contains(it.Skipped, w.skipped) {
					t.Errorf("Skipped = %q, want it to say %q (Err %v)", it.Skipped, w.skipped, it.Err)
				}
			case w.err != "":
				if it.Err == nil || !strings.Contains(it.Err.Error(), w.err) {
					t.Errorf("Err = %v, want it to say %q", it.Err, w.err)
				}
			default:
				n := it.Notification
				if n == nil {
					t.Fatalf("no notification: skipped %q, err %v", it.Skipped, it.Err)
				}
				checkEq(t, "event.type", n.Event.Type, w.typ)
				checkEq(t, "event.envelope", n.Event.Envelope, w.envelope)
				checkEq(t, "Format", n.Format, w.format)
				checkEq(t, "bounce.type", n.Bounce.Type, w.bounceType)
				checkEq(t, "bounce.subType", n.Bounce.SubType, w.subType)
				var addrs []string
				for _, r := range n.Recipients {
					addrs = append(addrs, r.Address)
				}
				checkEq(t, "recipients", addrs, w.recipients)
				if n.Mail.MessageID == "" || n.Event.Timestamp == "" {
					t.Errorf("mail.messageId %q, event.timestamp %q: want both set", n.Mail.MessageID, n.Event.Timestamp)
				}
				if w.check != nil {
					w.check(t, n)
				}
			}
		})
	}
	var missing []string
	for key := range sampleTable {
		if !seen[key] {
			missing = append(missing, key)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("the table describes samples that are not in %s: %v", samplesDir, missing)
	}
}
