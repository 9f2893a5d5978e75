package ses

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// mixedCorpus returns n SNS HTTP bodies, one a line, as SNS posts them:
// about 70% bounces, 20% complaints and 10% deliveries, one in five in
// the event-publishing format (eventType, tags), one to three recipients
// each, with the headers and commonHeaders SES includes. The same n gives
// the same bytes.
func mixedCorpus(tb testing.TB, n int) [][]byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	lines := make([][]byte, n)
	for i := range lines {
		addrs := make([]string, 1+rng.IntN(3))
		for j := range addrs {
			addrs[j] = fmt.Sprintf("user%d.%d@example%d.com", i, j, rng.IntN(9))
		}
		ts := fmt.Sprintf("2024-05-02T10:%02d:%02d.000Z", i/60%60, i%60)
		mail := jsonv2Object{
			"timestamp": ts, "source": "Shop <shop@example.com>", "sourceArn": "arn:aws:ses:us-west-2:123456789012:identity/example.com",
			"sourceIp": "203.0.113.9", "sendingAccountId": "123456789012", "callerIdentity": "ses-smtp-user",
			"messageId": fmt.Sprintf("0100018f-%06d", i), "destination": addrs, "headersTruncated": false,
			"headers": []jsonv2Object{
				{"name": "Message-ID", "value": fmt.Sprintf("<%06d@shop.example.com>", i)},
				{"name": "Date", "value": "Thu, 02 May 2024 10:00:00 +0000"},
				{"name": "Subject", "value": fmt.Sprintf("Your order %d", i)},
				{"name": "From", "value": "Shop <shop@example.com>"},
				{"name": "To", "value": strings.Join(addrs, ", ")},
				{"name": "MIME-Version", "value": "1.0"},
				{"name": "Content-Type", "value": `multipart/alternative; boundary="b1_abc"`},
			},
			"commonHeaders": jsonv2Object{"from": []string{"Shop <shop@example.com>"}, "date": "Thu, 02 May 2024 10:00:00 +0000",
				"to": addrs, "messageId": fmt.Sprintf("<%06d@shop.example.com>", i), "subject": fmt.Sprintf("Your order %d", i)},
		}
		ses := jsonv2Object{"mail": mail}
		typ := "notificationType"
		if i%5 == 0 {
			typ = "eventType"
			mail["tags"] = map[string][]string{"ses:configuration-set": {"default"}, "campaign": {"spring"}}
		}
		recipients := make([]jsonv2Object, len(addrs))
		for j, a := range addrs {
			recipients[j] = jsonv2Object{"emailAddress": a, "action": "failed", "status": "5.1.1",
				"diagnosticCode": "smtp; 550 5.1.1 The email account that you tried to reach does not exist."}
		}
		switch r := rng.IntN(10); {
		case r < 7:
			ses[typ] = "Bounce"
			ses["bounce"] = jsonv2Object{"bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": recipients,
				"timestamp": ts, "feedbackId": fmt.Sprintf("0100018f-fb-%06d", i), "remoteMtaIp": "198.51.100.7",
				"reportingMTA": "dsn; a27-24.smtp-out.us-west-2.amazonses.com"}
		case r < 9:
			for _, rc := range recipients {
				delete(rc, "action")
				delete(rc, "status")
				delete(rc, "diagnosticCode")
			}
			ses[typ] = "Complaint"
			ses["complaint"] = jsonv2Object{"complainedRecipients": recipients, "timestamp": ts, "feedbackId": fmt.Sprintf("0100018f-fb-%06d", i),
				"complaintSubType": nil, "userAgent": "Mozilla/5.0", "complaintFeedbackType": "abuse", "arrivalDate": ts}
		default:
			ses[typ] = "Delivery"
			ses["delivery"] = jsonv2Object{"timestamp": ts, "processingTimeMillis": 1000 + i, "recipients": addrs,
				"smtpResponse": "250 2.6.0 Message received", "reportingMTA": "a8-77.smtp-out.amazonses.com", "remoteMtaIp": "192.0.2.80"}
		}
		msg, err := jsonv2.Marshal(ses, jsonv2.Deterministic(true))
		if err != nil {
			tb.Fatal(err)
		}
		body, err := jsonv2.Marshal(jsonv2Object{
			"Type": "Notification", "MessageId": fmt.Sprintf("5f3c1d2e-%06d", i), "TopicArn": "arn:aws:sns:us-west-2:123456789012:ses-feedback",
			"Message": string(msg), "Timestamp": ts, "SignatureVersion": "1", "Signature": "EXAMPLEpH+..",
			"SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0000.pem",
			"UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:ses-feedback:0000",
		}, jsonv2.Deterministic(true))
		if err != nil {
			tb.Fatal(err)
		}
		lines[i] = body
	}
	return lines
}

// jsonv2Object is a JSON object to marshal.
type jsonv2Object = map[string]any

// The baseline's typed structs: both layers of an SNS body, with the
// fields the model reads, as a plain json/v2 unmarshal reads them.
type (
	plainSNS struct {
		Type, MessageId, TopicArn, Message, Timestamp               string
		Subject                                                     *string
		SignatureVersion, Signature, SigningCertURL, UnsubscribeURL string
	}
	plainRecipient struct {
		EmailAddress   string `json:"emailAddress"`
		Action         string `json:"action"`
		Status         string `json:"status"`
		DiagnosticCode string `json:"diagnosticCode"`
	}
	plainSES struct {
		NotificationType string `json:"notificationType"`
		EventType        string `json:"eventType"`
		Mail             struct {
			Timestamp        string              `json:"timestamp"`
			MessageID        string              `json:"messageId"`
			Source           string              `json:"source"`
			SourceArn        string              `json:"sourceArn"`
			SourceIP         string              `json:"sourceIp"`
			SendingAccountID string              `json:"sendingAccountId"`
			CallerIdentity   string              `json:"callerIdentity"`
			Destination      []string            `json:"destination"`
			HeadersTruncated bool                `json:"headersTruncated"`
			Tags             map[string][]string `json:"tags"`
			Headers          []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"headers"`
			CommonHeaders struct {
				From    []string `json:"from"`
				To      []string `json:"to"`
				Cc      []string `json:"cc"`
				ReplyTo []string `json:"replyTo"`
				Subject string   `json:"subject"`
			} `json:"commonHeaders"`
		} `json:"mail"`
		Bounce *struct {
			BounceType        string           `json:"bounceType"`
			BounceSubType     string           `json:"bounceSubType"`
			BouncedRecipients []plainRecipient `json:"bouncedRecipients"`
			Timestamp         string           `json:"timestamp"`
			FeedbackID        string           `json:"feedbackId"`
			RemoteMtaIP       string           `json:"remoteMtaIp"`
			ReportingMTA      string           `json:"reportingMTA"`
		} `json:"bounce"`
		Complaint *struct {
			ComplainedRecipients  []plainRecipient `json:"complainedRecipients"`
			Timestamp             string           `json:"timestamp"`
			FeedbackID            string           `json:"feedbackId"`
			ComplaintSubType      string           `json:"complaintSubType"`
			UserAgent             string           `json:"userAgent"`
			ComplaintFeedbackType string           `json:"complaintFeedbackType"`
			ArrivalDate           string           `json:"arrivalDate"`
		} `json:"complaint"`
		Delivery *struct {
			Timestamp            string   `json:"timestamp"`
			ProcessingTimeMillis int      `json:"processingTimeMillis"`
			Recipients           []string `json:"recipients"`
			SMTPResponse         string   `json:"smtpResponse"`
			ReportingMTA         string   `json:"reportingMTA"`
			RemoteMtaIP          string   `json:"remoteMtaIp"`
		} `json:"delivery"`
	}
)

// unmarshalBoth is the baseline: both layers of each line unmarshaled
// into plainSNS and plainSES, nothing else.
func unmarshalBoth(tb testing.TB, lines [][]byte) {
	for _, line := range lines {
		var env plainSNS
		var ses plainSES
		if err := jsonv2.Unmarshal(line, &env); err != nil {
			tb.Fatal(err)
		}
		if err := jsonv2.Unmarshal([]byte(env.Message), &ses); err != nil {
			tb.Fatal(err)
		}
	}
}

// readAll reads data (the lines, joined) through a Reader.
func readAll(tb testing.TB, data []byte, want int) {
	rd := NewReader(bytes.NewReader(data), "bench")
	n := 0
	for {
		it, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil || it.Notification == nil {
			tb.Fatalf("%s: %v %v %s", it.Input, err, it.Err, it.Skipped)
		}
		n++
	}
	if n != want {
		tb.Fatalf("%d notifications, want %d", n, want)
	}
}

// BenchmarkDecodeVsUnmarshal compares, on the same mixed corpus of SNS
// bodies, a Reader (framing and decoding both layers into the model: what
// a dry run reads with) with the baseline of a plain json/v2 unmarshal of
// both layers into typed structs. It reports each in CPU time per event
// (the CPU time of the process, so that a busy machine does not skew the
// comparison) and their ratio, read-x.
func BenchmarkDecodeVsUnmarshal(b *testing.B) {
	const n = 2000
	lines := mixedCorpus(b, n)
	data := bytes.Join(lines, []byte("\n"))
	var reader, plain time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := cpuTime()
		readAll(b, data, n)
		mid := cpuTime()
		unmarshalBoth(b, lines)
		reader, plain = reader+mid-start, plain+cpuTime()-mid
	}
	events := float64(b.N * n)
	b.ReportMetric(float64(reader.Nanoseconds())/events, "cpu-ns/event-read")
	b.ReportMetric(float64(plain.Nanoseconds())/events, "cpu-ns/event-unmarshal")
	b.ReportMetric(float64(reader)/float64(plain), "read-x")
}

// BenchmarkMixedRead is the Reader half of BenchmarkDecodeVsUnmarshal
// alone, for profiles.
func BenchmarkMixedRead(b *testing.B) {
	const n = 2000
	data := bytes.Join(mixedCorpus(b, n), []byte("\n"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		readAll(b, data, n)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMixedUnmarshal is the baseline half alone.
func BenchmarkMixedUnmarshal(b *testing.B) {
	const n = 2000
	lines := mixedCorpus(b, n)
	b.ReportAllocs()
	for b.Loop() {
		unmarshalBoth(b, lines)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}
