package route

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// shippedRules is a fixture with the shipped rules' semantics (the
// original handler's), so that editing rules.yaml breaks no engine test.
var shippedRules = filepath.Join("..", "..", "testdata", "rules", "handler.yaml")

// loadShipped loads shippedRules, failing clearly without it.
func loadShipped(tb testing.TB) *rules.Rules {
	tb.Helper()
	if _, err := os.Stat(shippedRules); err != nil {
		abs, _ := filepath.Abs(shippedRules)
		tb.Fatalf("the handler rules fixture is missing: %s (%v)", abs, err)
	}
	src, err := os.ReadFile(shippedRules)
	if err != nil {
		tb.Fatal(err)
	}
	rules, err := rules.Load(shippedRules, src)
	if err != nil {
		tb.Fatalf("the handler rules fixture does not load:\n%v", err)
	}
	return rules
}

// worstCase is a bounce whose one recipient no earlier rule of the
// shipped file takes: every rule is tried and the last one decides.
func worstCase(tb testing.TB) *ses.Notification {
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
	Recipient *ses.Recipient
	Trials    []string
	Decider   string
	Actions   []rules.Action
	Dropped   bool
	Unmatched bool
}

var (
	handIgnored = map[string]struct{}{"ignore@example.com": {}}
	handKeep    = map[string]struct{}{"no.suppress.domain.jp": {}}
	handNotify  = rules.Action{Kind: rules.ActionNotify, Destination: "ses-alerts"}
)

// routeByHand makes the decisions of the shipped rules with plain Go,
// into out's storage: the baseline BenchmarkRouteRulesYAML compares with.
func routeByHand(n *ses.Notification, out []handDecision) []handDecision {
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
			d.Actions = append(d.Actions, rules.Action{Kind: rules.ActionDrop})
		default:
			d.Trials = append(d.Trials, "keep-deliverable")
			_, keep := handKeep[rc.Domain]
			if n.Event.Type == ses.TypeBounce && (strings.Contains(rc.Address, "no-suppress") || keep) {
				d.Decider = "keep-deliverable"
				d.Actions = append(d.Actions, rules.Action{Kind: rules.ActionUnsuppress}, handNotify)
				break
			}
			d.Trials = append(d.Trials, "notify-bounces-and-complaints")
			if n.Event.Type == ses.TypeBounce || n.Event.Type == ses.TypeComplaint {
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
		rd := ses.NewReader(bytes.NewReader(data), "bench")
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

// BenchmarkReader reads 100,000 NDJSON lines of SNS HTTP bodies (about
// 2 KB each, as real ones) through a Reader: framing and decoding, no
// routing. It reports lines/s.
func BenchmarkReader(b *testing.B) {
	const lines, distinct = 100000, 1000
	chunk := decodeRouteLines(distinct)
	b.SetBytes(int64(len(chunk)) * lines / distinct)
	b.ReportAllocs()
	for b.Loop() {
		rd := ses.NewReader(&repeatReader{chunk: chunk, n: lines / distinct, off: len(chunk)}, "bench")
		count := 0
		for {
			it, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil || it.Notification == nil {
				b.Fatalf("%s: %v %v %s", it.Input, err, it.Err, it.Skipped)
			}
			count++
		}
		if count != lines {
			b.Fatalf("%d notifications, want %d", count, lines)
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// repeatReader reads chunk n times over, without holding more than it.
type repeatReader struct {
	chunk []byte
	n, i  int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.off == len(r.chunk) {
		if r.i == r.n {
			return 0, io.EOF
		}
		r.i++
		r.off = 0
	}
	n := copy(p, r.chunk[r.off:])
	r.off += n
	return n, nil
}
