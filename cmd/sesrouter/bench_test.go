package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The throughput benchmark and its event generator.
//
// BenchmarkRouteDryRunJSON runs the whole route command in-process, as a
// user would run it, over 10,000 generated notifications:
//
//	go test -run='^$' -bench=RouteDryRunJSON ./cmd/sesrouter
//
// BenchmarkBinary (live_bench_test.go) runs the real binary over such
// files, and reports its peak RSS.

// benchEventsPerRun is the size of the file BenchmarkRouteDryRunJSON routes.
const benchEventsPerRun = 10_000

func BenchmarkRouteDryRunJSON(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.ndjson")
	size := writeBenchFileOrFail(b, path, benchEventsPerRun)
	args := []string{"route", "-dry-run", "-format", "json", "-rules", handlerRules, path}
	benchRoute(b, args, testEnv(nil), size, benchEventsPerRun)
}

// BenchmarkRouteDryRunJSONEvery is BenchmarkRouteDryRunJSON with
// digest_after raised, so that no storm folds and every notify's Slack
// payload is rendered and written in its JSON line: the cost of
// rendering, side by side with the run that folds.
//
//	go test -run='^$' -bench='RouteDryRunJSON' -cpu 1 -count 5 ./cmd/sesrouter
func BenchmarkRouteDryRunJSONEvery(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.ndjson")
	size := writeBenchFileOrFail(b, path, benchEventsPerRun)
	rules := writeFile(b, b.TempDir(), "rules.yaml", strings.Replace(readHandlerRules(b), "      pace: 0s\n", "      pace: 0s\n      digest_after: 1000000\n", 1))
	args := []string{"route", "-dry-run", "-format", "json", "-rules", rules, path}
	benchRoute(b, args, testEnv(nil), size, benchEventsPerRun)
}

// benchRoute runs route with args until the benchmark is done, each run
// over a file of size bytes and events events, and reports events/s.
func benchRoute(b *testing.B, args []string, e env, size int64, events int) {
	b.Helper()
	var stderr bytes.Buffer
	b.SetBytes(size)
	b.ReportAllocs()
	runs := 0
	for b.Loop() {
		stderr.Reset()
		if code := run(args, strings.NewReader(""), io.Discard, &stderr, e); code != exitOK {
			b.Fatalf("route exited %d:\n%s", code, stderr.String())
		}
		runs++
	}
	b.ReportMetric(float64(runs*events)/b.Elapsed().Seconds(), "events/s")
}

// TestBenchEventsRoute checks that the generated events are what the
// benchmark claims they are: every line an SNS HTTP notification that
// decodes and routes without error, in the intended mix of types, and
// the same bytes for the same seed.
func TestBenchEventsRoute(t *testing.T) {
	const n = 500
	var a, b bytes.Buffer
	if err := writeBenchEvents(&a, n, 1); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchEvents(&b, n, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("writeBenchEvents is not deterministic")
	}
	if avg := a.Len() / n; avg < 2000 || avg > 3500 {
		t.Errorf("average line is %d bytes, want about 2-3 KB like real notifications", avg)
	}
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, a.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"route", "-dry-run", "-format", "json", "-rules", handlerRules, path}, strings.NewReader(""), &stdout, &stderr, testEnv(nil))
	if code != exitOK {
		t.Fatalf("route exited %d:\n%s", code, stderr.String())
	}
	types := map[string]int{}
	envelopes := map[string]int{}
	lines := 0
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		var got struct {
			Input, Envelope, Type, Skipped, Error string
			Recipients                            []json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("output line %d: %v", lines, err)
		}
		if got.Skipped != "" || got.Error != "" || len(got.Recipients) == 0 || len(got.Recipients) > 3 {
			t.Errorf("output line %d: %s", lines, sc.Bytes())
		}
		types[got.Type]++
		envelopes[got.Envelope]++
	}
	if lines != n {
		t.Fatalf("%d output lines, want %d", lines, n)
	}
	if envelopes["http"] != n {
		t.Errorf("envelopes %v, want all http", envelopes)
	}
	for typ, want := range map[string]float64{"Bounce": 0.70, "Complaint": 0.20, "Delivery": 0.10} {
		if got := float64(types[typ]) / n; got < want-0.07 || got > want+0.07 {
			t.Errorf("%s is %.0f%% of the events, want about %.0f%%", typ, 100*got, 100*want)
		}
	}
}

func writeBenchFileOrFail(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeBenchEvents(w, n, 1); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// writeBenchEvents writes n SES notifications to w as NDJSON, each wrapped
// in an SNS HTTP body with the SES JSON as the Message string, as SNS
// posts them. The same seed gives the same bytes.
//
// The mix: about 70% bounces (permanent General, NoEmail and
// OnAccountSuppressionList, and transient ones), 20% complaints, 10%
// deliveries; one in five in the event-publishing format (eventType, tags)
// and the rest identity notifications; 1-3 recipients each, across
// several domains, including ignore@example.com, no-suppress-N@example.com
// and addresses at no.suppress.domain.jp; with the headers and
// commonHeaders SES includes.
func writeBenchEvents(w io.Writer, n int, seed uint64) error {
	g := &benchGen{rng: rand.New(rand.NewPCG(seed, seed^0x5e5_7007e7)), base: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}
	var inner bytes.Buffer
	innerEnc := json.NewEncoder(&inner)
	innerEnc.SetEscapeHTML(false)
	outEnc := json.NewEncoder(w)
	outEnc.SetEscapeHTML(false)
	for i := range n {
		msg, sns := g.event(i)
		inner.Reset()
		if err := innerEnc.Encode(msg); err != nil {
			return err
		}
		sns.Message = strings.TrimSuffix(inner.String(), "\n")
		if msg.EventType != "" {
			sns.Message += "\n" // event publishing ends the Message with a newline
		}
		if err := outEnc.Encode(sns); err != nil {
			return err
		}
	}
	return nil
}

// The wire shapes, fields in the order SES and SNS write them.
type (
	benchSNS struct {
		Type             string `json:"Type"`
		MessageID        string `json:"MessageId"`
		TopicArn         string `json:"TopicArn"`
		Subject          string `json:"Subject,omitempty"`
		Message          string `json:"Message"`
		Timestamp        string `json:"Timestamp"`
		SignatureVersion string `json:"SignatureVersion"`
		Signature        string `json:"Signature"`
		SigningCertURL   string `json:"SigningCertURL"`
		UnsubscribeURL   string `json:"UnsubscribeURL"`
	}
	benchSES struct {
		NotificationType string          `json:"notificationType,omitempty"`
		EventType        string          `json:"eventType,omitempty"`
		Bounce           *benchBounce    `json:"bounce,omitempty"`
		Complaint        *benchComplaint `json:"complaint,omitempty"`
		Delivery         *benchDelivery  `json:"delivery,omitempty"`
		Mail             benchMail       `json:"mail"`
	}
	benchBounce struct {
		BounceType        string           `json:"bounceType"`
		BounceSubType     string           `json:"bounceSubType"`
		BouncedRecipients []benchRecipient `json:"bouncedRecipients"`
		Timestamp         string           `json:"timestamp"`
		FeedbackID        string           `json:"feedbackId"`
		RemoteMtaIP       string           `json:"remoteMtaIp,omitempty"`
		ReportingMTA      string           `json:"reportingMTA"`
	}
	benchRecipient struct {
		EmailAddress   string `json:"emailAddress"`
		Action         string `json:"action,omitempty"`
		Status         string `json:"status,omitempty"`
		DiagnosticCode string `json:"diagnosticCode,omitempty"`
	}
	benchComplaint struct {
		FeedbackID            string           `json:"feedbackId"`
		ComplaintSubType      *string          `json:"complaintSubType"`
		ComplainedRecipients  []benchRecipient `json:"complainedRecipients"`
		Timestamp             string           `json:"timestamp"`
		UserAgent             string           `json:"userAgent,omitempty"`
		ComplaintFeedbackType string           `json:"complaintFeedbackType,omitempty"`
		ArrivalDate           string           `json:"arrivalDate,omitempty"`
	}
	benchDelivery struct {
		Timestamp            string   `json:"timestamp"`
		ProcessingTimeMillis int      `json:"processingTimeMillis"`
		Recipients           []string `json:"recipients"`
		SMTPResponse         string   `json:"smtpResponse"`
		RemoteMtaIP          string   `json:"remoteMtaIp"`
		ReportingMTA         string   `json:"reportingMTA"`
	}
	benchMail struct {
		Timestamp        string              `json:"timestamp"`
		Source           string              `json:"source"`
		SourceArn        string              `json:"sourceArn"`
		SourceIP         string              `json:"sourceIp,omitempty"`
		SendingAccountID string              `json:"sendingAccountId"`
		CallerIdentity   string              `json:"callerIdentity,omitempty"`
		MessageID        string              `json:"messageId"`
		Destination      []string            `json:"destination"`
		HeadersTruncated bool                `json:"headersTruncated"`
		Headers          []benchHeader       `json:"headers"`
		CommonHeaders    benchCommon         `json:"commonHeaders"`
		Tags             map[string][]string `json:"tags,omitempty"`
	}
	benchHeader struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	benchCommon struct {
		From      []string `json:"from"`
		Date      string   `json:"date"`
		To        []string `json:"to"`
		MessageID string   `json:"messageId"`
		Subject   string   `json:"subject"`
	}
)

type benchGen struct {
	rng  *rand.Rand
	base time.Time
}

type benchSender struct {
	source, display, domain, subject, configSet string
}

var benchSenders = []benchSender{
	{"noreply@mail.example.com", "Example Shop", "mail.example.com", "Your order has shipped", "transactional"},
	{"news@news.example.com", "Example News", "news.example.com", "今週のおすすめ商品とセール情報", "marketing"},
	{"billing@example.com", "Example Billing", "example.com", "Invoice INV-2024-0042 is ready", "transactional"},
	{"support@example.co.jp", "Example サポート", "example.co.jp", "お問い合わせありがとうございます", "transactional"},
}

var benchDomains = []string{"gmail.com", "yahoo.co.jp", "example.com", "example.org", "outlook.com", "docomo.ne.jp", "mail.bigcorp.co.jp", "icloud.com"}

// address returns one recipient address: mostly ordinary ones across
// several domains, and some that the shipped rules treat specially.
func (g *benchGen) address() string {
	switch r := g.rng.IntN(100); {
	case r < 5:
		return "ignore@example.com"
	case r < 10:
		return fmt.Sprintf("no-suppress-%d@example.com", g.rng.IntN(50)+1)
	case r < 15:
		return fmt.Sprintf("user%d@no.suppress.domain.jp", g.rng.IntN(1000))
	case r < 17:
		return fmt.Sprintf("qa%d@ignore.domain.jp", g.rng.IntN(100))
	default:
		return fmt.Sprintf("%s.%s%d@%s", benchFirst[g.rng.IntN(len(benchFirst))], benchLast[g.rng.IntN(len(benchLast))],
			g.rng.IntN(10000), benchDomains[g.rng.IntN(len(benchDomains))])
	}
}

var (
	benchFirst = []string{"taro", "hanako", "john", "mary", "kenji", "yuki", "alex", "sam"}
	benchLast  = []string{"yamada", "suzuki", "smith", "tanaka", "jones", "sato"}
)

func (g *benchGen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *benchGen) uuid() string {
	return g.hex(8) + "-" + g.hex(4) + "-" + g.hex(4) + "-" + g.hex(4) + "-" + g.hex(12)
}

// sesID returns an ID in SES's shape: 0100018f…-uuid-000000.
func (g *benchGen) sesID() string { return "0100018f" + g.hex(8) + "-" + g.uuid() + "-000000" }

// event returns the i-th notification and its SNS envelope (without the
// Message, which the caller fills).
func (g *benchGen) event(i int) (*benchSES, *benchSNS) {
	sent := g.base.Add(time.Duration(i) * 700 * time.Millisecond)
	at := sent.Add(time.Duration(500+g.rng.IntN(5000)) * time.Millisecond)
	eventFormat := g.rng.IntN(5) == 0
	sender := benchSenders[g.rng.IntN(len(benchSenders))]

	nrcpt := 1 + g.rng.IntN(3)
	recipients := make([]string, nrcpt)
	for j := range recipients {
		recipients[j] = g.address()
	}

	msg := &benchSES{Mail: g.mail(sent, sender, recipients, eventFormat)}
	kind := ""
	switch r := g.rng.IntN(100); {
	case r < 70:
		kind = "Bounce"
		msg.Bounce = g.bounce(at, recipients)
	case r < 90:
		kind = "Complaint"
		msg.Complaint = g.complaint(at, sent, recipients)
	default:
		kind = "Delivery"
		msg.Delivery = &benchDelivery{
			Timestamp: ts(at), ProcessingTimeMillis: int(at.Sub(sent) / time.Millisecond), Recipients: recipients,
			SMTPResponse: "250 2.0.0 OK  " + strconv.Itoa(1714521600+i) + " " + g.hex(10) + " - gsmtp",
			RemoteMtaIP:  fmt.Sprintf("142.250.%d.%d", g.rng.IntN(256), g.rng.IntN(256)),
			ReportingMTA: "a8-" + strconv.Itoa(g.rng.IntN(100)) + ".smtp-out.amazonses.com",
		}
	}
	region := "ap-northeast-1"
	topic := "arn:aws:sns:" + region + ":123456789012:ses-" + strings.ToLower(kind)
	sns := &benchSNS{
		Type: "Notification", MessageID: g.uuid(), TopicArn: topic,
		Timestamp: ts(at.Add(20 * time.Millisecond)), SignatureVersion: "1",
		Signature:      base64.StdEncoding.EncodeToString(g.bytes(256)),
		SigningCertURL: "https://sns." + region + ".amazonaws.com/SimpleNotificationService-" + benchCertName + ".pem",
		UnsubscribeURL: "https://sns." + region + ".amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topic + ":" + g.uuid(),
	}
	if eventFormat {
		msg.EventType = kind
		sns.Subject = "Amazon SES Email Event Notification"
		sns.TopicArn = "arn:aws:sns:" + region + ":123456789012:ses-events"
	} else {
		msg.NotificationType = kind
	}
	return msg, sns
}

// benchCertName is the signing certificate every generated message names,
// as SNS names one certificate for months at a time.
const benchCertName = "01d088a6f77103d0fe307c0069e40ed6"

func (g *benchGen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return b
}

func (g *benchGen) mail(sent time.Time, s benchSender, recipients []string, eventFormat bool) benchMail {
	id := g.sesID()
	msgID := "<" + g.hex(32) + "@" + s.domain + ">"
	from := s.display + " <" + s.source + ">"
	to := strings.Join(recipients, ", ")
	date := sent.Format("Mon, 02 Jan 2006 15:04:05 -0700")
	m := benchMail{
		Timestamp: ts(sent), Source: s.source,
		SourceArn:        "arn:aws:ses:ap-northeast-1:123456789012:identity/" + s.domain,
		SendingAccountID: "123456789012", MessageID: id, Destination: recipients,
		Headers: []benchHeader{
			{"Message-ID", msgID},
			{"Date", date},
			{"Subject", s.subject},
			{"From", from},
			{"To", to},
			{"MIME-Version", "1.0"},
			{"Content-Type", `multipart/alternative; boundary="----=_Part_` + strconv.Itoa(g.rng.IntN(1_000_000)) + "_" + g.hex(8) + `"`},
		},
		CommonHeaders: benchCommon{From: []string{from}, Date: date, To: []string{to}, MessageID: msgID, Subject: s.subject},
	}
	if s.configSet == "marketing" {
		m.Headers = append(m.Headers,
			benchHeader{"List-Unsubscribe", "<https://news.example.com/unsubscribe/" + g.uuid() + ">, <mailto:unsubscribe@news.example.com>"},
			benchHeader{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"})
	}
	if eventFormat {
		m.Headers = append(m.Headers, benchHeader{"X-SES-CONFIGURATION-SET", s.configSet})
		m.CommonHeaders.MessageID = id
		m.Tags = map[string][]string{
			"ses:operation":         {"SendRawEmail"},
			"ses:configuration-set": {s.configSet},
			"ses:source-ip":         {"203.0.113." + strconv.Itoa(g.rng.IntN(255))},
			"ses:from-domain":       {s.domain},
			"ses:caller-identity":   {"ses-smtp-user.20240401-101010"},
			"team":                  {s.configSet},
		}
	} else {
		m.SourceIP = "203.0.113." + strconv.Itoa(g.rng.IntN(255))
		m.CallerIdentity = "ses-smtp-user.20240401-101010"
	}
	return m
}

func (g *benchGen) bounce(at time.Time, recipients []string) *benchBounce {
	b := &benchBounce{Timestamp: ts(at), FeedbackID: g.sesID()}
	switch r := g.rng.IntN(100); {
	case r < 40:
		b.BounceType, b.BounceSubType = "Permanent", "General"
	case r < 60:
		b.BounceType, b.BounceSubType = "Permanent", "NoEmail"
	case r < 80:
		b.BounceType, b.BounceSubType = "Permanent", "OnAccountSuppressionList"
	case r < 92:
		b.BounceType, b.BounceSubType = "Transient", "General"
	default:
		b.BounceType, b.BounceSubType = "Transient", "MailboxFull"
	}
	if b.BounceSubType == "OnAccountSuppressionList" {
		b.ReportingMTA = "dns; amazonses.com"
	} else {
		b.ReportingMTA = "dsn; e" + strconv.Itoa(g.rng.IntN(300)) + "-" + strconv.Itoa(g.rng.IntN(300)) + ".smtp-out.ap-northeast-1.amazonses.com"
		b.RemoteMtaIP = fmt.Sprintf("198.51.100.%d", g.rng.IntN(255))
	}
	for _, a := range recipients {
		rc := benchRecipient{EmailAddress: a, Action: "failed"}
		switch b.BounceSubType {
		case "OnAccountSuppressionList":
			rc.Status = "5.1.1"
			rc.DiagnosticCode = "Amazon SES did not send the message to this address because it is on the suppression list for your account. For more information about removing addresses from the suppression list, see the Amazon SES Developer Guide at https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html"
		case "MailboxFull":
			rc.Status = "5.2.2"
			rc.DiagnosticCode = "smtp; 552 5.2.2 The email account that you tried to reach is over quota."
		default:
			if b.BounceType == "Transient" {
				rc.Action, rc.Status = "delayed", "4.4.7"
				rc.DiagnosticCode = "smtp; 421 4.4.7 Message expired: unable to deliver in 840 minutes."
			} else {
				rc.Status = "5.1.1"
				rc.DiagnosticCode = "smtp; 550 5.1.1 <" + a + ">: Recipient address rejected: User unknown in virtual mailbox table"
			}
		}
		b.BouncedRecipients = append(b.BouncedRecipients, rc)
	}
	return b
}

func (g *benchGen) complaint(at, sent time.Time, recipients []string) *benchComplaint {
	c := &benchComplaint{FeedbackID: g.sesID(), Timestamp: ts(at)}
	for _, a := range recipients {
		c.ComplainedRecipients = append(c.ComplainedRecipients, benchRecipient{EmailAddress: a})
	}
	switch r := g.rng.IntN(100); {
	case r < 70:
		c.ComplaintFeedbackType = "abuse"
	case r < 80:
		c.ComplaintFeedbackType = "not-spam"
	}
	if c.ComplaintFeedbackType != "" {
		c.UserAgent = "Yahoo!-Mail-Feedback/2.0"
		c.ArrivalDate = ts(sent.Add(2 * time.Minute))
	}
	return c
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
