package engine

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// shippedRules is a fixture with the shipped rules' semantics (the
// original handler's), so that editing rules.yaml breaks no engine test.
var shippedRules = filepath.Join("..", "testdata", "rules", "handler.yaml")

// loadShipped loads shippedRules, failing clearly without it.
func loadShipped(tb testing.TB) *Rules {
	tb.Helper()
	if _, err := os.Stat(shippedRules); err != nil {
		abs, _ := filepath.Abs(shippedRules)
		tb.Fatalf("the handler rules fixture is missing: %s (%v)", abs, err)
	}
	src, err := os.ReadFile(shippedRules)
	if err != nil {
		tb.Fatal(err)
	}
	rules, err := Load(shippedRules, src)
	if err != nil {
		tb.Fatalf("the handler rules fixture does not load:\n%v", err)
	}
	return rules
}

// worstCase is a bounce whose one recipient no earlier rule of the
// shipped file takes: every rule is tried and the last one decides.
func worstCase(tb testing.TB) *Notification {
	tb.Helper()
	return bounceFor(tb, "someone@example.com")
}

func BenchmarkRouteRulesYAML(b *testing.B) {
	r := NewRouter(loadShipped(b))
	n := worstCase(b)
	var p Plan
	b.ReportAllocs()
	for b.Loop() {
		r.RouteInto(&p, n)
	}
	if p.Recipients[0].Decider == nil {
		b.Fatal("no rule decided")
	}
}

// handDecision is what routeByHand decides for one recipient: the same
// things a Decision holds.
type handDecision struct {
	Recipient *Recipient
	Trials    []string
	Decider   string
	Actions   []Action
	Dropped   bool
	Unmatched bool
}

var (
	handIgnored = map[string]struct{}{"ignore@example.com": {}}
	handKeep    = map[string]struct{}{"no.suppress.domain.jp": {}}
	handNotify  = Action{Kind: ActionNotify, Destination: "ses-alerts"}
)

// routeByHand makes the decisions of the shipped rules with plain Go,
// into out's storage: the baseline BenchmarkRouteRulesYAML compares with.
func routeByHand(n *Notification, out []handDecision) []handDecision {
	out = out[:0]
	for i := range n.Recipients {
		rc := &n.Recipients[i]
		var d handDecision
		if len(out) < cap(out) {
			d = out[:len(out)+1][len(out)]
		}
		d = handDecision{Recipient: rc, Trials: d.Trials[:0], Actions: d.Actions[:0]}
		d.Trials = append(d.Trials, "ignore-dummies")
		_, ignored := handIgnored[rc.Address]
		switch {
		case ignored || rc.Domain == "ignore.domain.jp":
			d.Decider, d.Dropped = "ignore-dummies", true
			d.Actions = append(d.Actions, Action{Kind: ActionDrop})
		default:
			d.Trials = append(d.Trials, "keep-deliverable")
			_, keep := handKeep[rc.Domain]
			if n.Event.Type == TypeBounce && (strings.Contains(rc.Address, "no-suppress") || keep) {
				d.Decider = "keep-deliverable"
				d.Actions = append(d.Actions, Action{Kind: ActionUnsuppress}, handNotify)
				break
			}
			d.Trials = append(d.Trials, "notify-bounces-and-complaints")
			if n.Event.Type == TypeBounce || n.Event.Type == TypeComplaint {
				d.Decider = "notify-bounces-and-complaints"
				d.Actions = append(d.Actions, handNotify)
				break
			}
			d.Unmatched = true
		}
		out = append(out, d)
	}
	return out
}

// TestRouteByHandAgrees checks that the hand-written baseline makes the
// decisions the shipped rules make, so that the benchmarks compare like
// with like.
func TestRouteByHandAgrees(t *testing.T) {
	r := NewRouter(loadShipped(t))
	for _, addr := range []string{"someone@example.com", "ignore@example.com", "x@ignore.domain.jp",
		"no-suppress-1@example.com", "y@no.suppress.domain.jp"} {
		t.Run(addr, func(t *testing.T) {
			n := bounceFor(t, addr)
			d := r.Route(n).Recipients[0]
			h := routeByHand(n, nil)[0]
			var trials []string
			for _, tr := range d.Trials {
				trials = append(trials, tr.Rule.Name)
			}
			checkEq(t, "trials", h.Trials, trials)
			checkEq(t, "decider", h.Decider, d.Decider.Name)
			checkEq(t, "actions", h.Actions, d.Actions)
			checkEq(t, "dropped", h.Dropped, d.Dropped)
		})
	}
}

func BenchmarkRouteHandWritten(b *testing.B) {
	n := worstCase(b)
	var out []handDecision
	b.ReportAllocs()
	for b.Loop() {
		out = routeByHand(n, out)
	}
	if out[0].Decider == "" {
		b.Fatal("no rule decided")
	}
}

// hundredRules returns 100 rules of the shapes real files have (domain
// checks, globs, bounce subtypes, tags) of which a bounce to
// someone@example.com with campaign tag "spring" matches only the last.
func hundredRules() string {
	var b strings.Builder
	b.WriteString("version: 1\ndestinations:\n  ops: {slack: {webhook_env: OPS_URL}}\nlists:\n")
	for i := range 5 {
		fmt.Fprintf(&b, "  domains%d: [a%d.example.com, b%d.example.net, c%d.example.org]\n", i, i, i, i)
	}
	b.WriteString("rules:\n")
	for i := range 99 {
		var when string
		switch i % 5 {
		case 0:
			when = fmt.Sprintf(`recipient.domain == "d%d.example.com" || recipient.domain in lists.domains%d`, i, i%5)
		case 1:
			when = fmt.Sprintf(`glob("*-%d@*.example.org", recipient.address)`, i)
		case 2:
			when = fmt.Sprintf(`bounce.subType == "Sub%d" && inDomain(recipient.address, "corp%d.example")`, i, i)
		case 3:
			when = fmt.Sprintf(`"c%d" in mail.tags["campaign"] && event.type == "Bounce"`, i)
		case 4:
			when = fmt.Sprintf(`recipient.address startsWith "team%d+" || mail.sourceDomain == "s%d.example"`, i, i)
		}
		fmt.Fprintf(&b, "  - name: rule-%d\n    when: %s\n    actions: [{notify: ops}]\n", i, quoteYAML(when))
	}
	b.WriteString("  - name: last\n    when: event.type in [\"Bounce\", \"Complaint\"]\n    actions: [unsuppress, {notify: ops}]\n")
	return b.String()
}

func quoteYAML(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func BenchmarkRoute100Rules(b *testing.B) {
	rules := mustLoad(b, hundredRules())
	r := NewRouter(rules)
	n := worstCase(b)
	var p Plan
	r.RouteInto(&p, n)
	if d := p.Recipients[0]; len(rules.Rules) != 100 || d.Decider == nil || d.Decider.Name != "last" || len(d.Matched) != 1 {
		b.Fatalf("want 100 rules of which only the last matches; %d rules, decision %+v", len(rules.Rules), viewDecision(&d))
	}
	b.ReportAllocs()
	for b.Loop() {
		r.RouteInto(&p, n)
	}
}

// decodeRouteLines returns n NDJSON lines of SNS HTTP bodies, each an
// identity bounce with one or two recipients and the headers SES
// includes: about 2.5 KB a line, like real ones.
func decodeRouteLines(n int) []byte {
	var buf strings.Builder
	for i := range n {
		rcpts := fmt.Sprintf(`{"emailAddress":"user%d@example%d.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 The email account that you tried to reach does not exist."}`, i, i%7)
		if i%3 == 0 {
			rcpts += fmt.Sprintf(`,{"emailAddress":"no-suppress-%d@example.com","action":"failed","status":"5.2.2","diagnosticCode":"smtp; 552 5.2.2 mailbox full"}`, i)
		}
		ses := fmt.Sprintf(`{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[%s],`+
			`"timestamp":"2024-05-02T10:00:01.000Z","feedbackId":"0100018f-fb-%06d","remoteMtaIp":"198.51.100.7","reportingMTA":"dsn; a27-24.smtp-out.us-west-2.amazonses.com"},`+
			`"mail":{"timestamp":"2024-05-02T10:00:00.000Z","source":"Shop <shop@example.com>","sourceArn":"arn:aws:ses:us-west-2:123456789012:identity/example.com",`+
			`"sourceIp":"203.0.113.9","sendingAccountId":"123456789012","callerIdentity":"ses-smtp-user","messageId":"0100018f-%06d","destination":["user%d@example%d.com"],`+
			`"headersTruncated":false,"headers":[{"name":"Message-ID","value":"<%06d@shop.example.com>"},{"name":"Date","value":"Thu, 02 May 2024 10:00:00 +0000"},`+
			`{"name":"Subject","value":"Your order %d"},{"name":"From","value":"Shop <shop@example.com>"},{"name":"To","value":"user%d@example%d.com"},`+
			`{"name":"MIME-Version","value":"1.0"},{"name":"Content-Type","value":"multipart/alternative; boundary=\"b1_abc\""}],`+
			`"commonHeaders":{"from":["Shop <shop@example.com>"],"date":"Thu, 02 May 2024 10:00:00 +0000","to":["user%d@example%d.com"],"messageId":"<%06d@shop.example.com>","subject":"Your order %d"}}}`,
			rcpts, i, i, i, i%7, i, i, i, i%7, i, i%7, i, i)
		msg, _ := jsontext.AppendQuote(nil, ses)
		fmt.Fprintf(&buf, `{"Type":"Notification","MessageId":"5f3c1d2e-%06d","TopicArn":"arn:aws:sns:us-west-2:123456789012:ses-bounces","Message":%s,`+
			`"Timestamp":"2024-05-02T10:00:02.000Z","SignatureVersion":"1","Signature":"EXAMPLEpH+..","SigningCertURL":"https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0000.pem",`+
			`"UnsubscribeURL":"https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:ses-bounces:0000"}`+"\n", i, msg)
	}
	return []byte(buf.String())
}

// BenchmarkDecodeRoute is decoding plus routing: the Reader over NDJSON
// SNS bodies, then every notification routed by the shipped rules. It
// reports events/s; run it on one core (taskset -c 0) for the figure in
// the README.
func BenchmarkDecodeRoute(b *testing.B) {
	const n = 10000
	data := decodeRouteLines(n)
	router := NewRouter(loadShipped(b))
	var p Plan
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		rd := NewReader(bytes.NewReader(data), "bench")
		count := 0
		for {
			it, err := rd.Next()
			if err != nil {
				break
			}
			if it.Notification == nil {
				b.Fatalf("%s: %v %s", it.Input, it.Err, it.Skipped)
			}
			router.RouteInto(&p, it.Notification)
			count++
		}
		if count != n {
			b.Fatalf("%d notifications, want %d", count, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

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
