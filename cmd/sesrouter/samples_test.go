package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestRouteSamples routes every real sample of testdata/samples with the
// rules of the original handler and checks the JSON output against
// docs/commands.md:
// one valid JSON line per input notification (one per record of a Lambda
// event), in input order; every recipient of a notification listed;
// non-SES inputs skipped; exactly the keys it names; and the notifies
// past the destination's digest_after digested.
func TestRouteSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.json samples in %s/events", samplesDir)
	}
	var want []sampleExpect
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exps, err := expectSample(src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range exps {
			exps[i].file = f
		}
		want = append(want, exps...)
	}

	args := append([]string{"route", "-dry-run", "-format", "json", "-rules", handlerRules}, files...)
	r := runCLI(t, testEnv(nil), "", args...)
	if r.code != exitOK {
		t.Errorf("exit status %d, want 0\nstderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d output lines for %d input notifications", len(lines), len(want))
	}
	for i, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not valid JSON: %s", i+1, line)
			continue
		}
		if i >= len(want) {
			t.Errorf("line %d has no input: %s", i+1, line)
			continue
		}
		checkSampleLine(t, want[i], line)
	}
	// A dry run folds a storm as a live run would: past the destination's
	// digest_after, the notifies are digested, and the one digest of the
	// run says how many.
	digested := strings.Count(r.stdout, `"outcome":"digested"`)
	m := regexp.MustCompile(`(?m)^sesrouter route: digest to ses-alerts dry-run: Digest · ([0-9]+) notifications? folded`).FindStringSubmatch(r.stderr)
	if digested == 0 || m == nil || m[1] != strconv.Itoa(digested) {
		t.Errorf("%d notifies digested; stderr:\n%s\nwant a dry-run digest of them all", digested, r.stderr)
	}
}

// sampleExpect is what the output line for one input notification should
// say, worked out from the sample independently of the engine.
type sampleExpect struct {
	file       string
	skipped    bool     // not an SES notification
	recipients []string // the recipients, in order
}

// checkSampleLine checks one output line against what the sample says.
func checkSampleLine(t *testing.T, want sampleExpect, line string) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		t.Errorf("not a JSON object: %s", line)
		return
	}
	var input string
	json.Unmarshal(obj["input"], &input)
	if !strings.HasPrefix(input, want.file+":") {
		t.Errorf("input %q, want one from %s: the lines are out of order\n%s", input, want.file, line)
		return
	}
	if want.skipped {
		if _, ok := obj["skipped"]; !ok {
			t.Errorf("%s is not an SES notification and should be skipped:\n%s", input, line)
		}
		for _, k := range sortedKeys(obj) {
			if k != "input" && k != "envelope" && k != "skipped" {
				t.Errorf("%s: skipped line has key %q; want only input, envelope and skipped", input, k)
			}
		}
		return
	}
	if keys := sortedKeys(obj); !slices.Equal(keys, []string{"envelope", "input", "messageId", "recipients", "results", "type"}) {
		t.Errorf("%s: keys %v, want exactly input, envelope, type, messageId, recipients, results:\n%s", input, keys, line)
		return
	}
	var recips []map[string]json.RawMessage
	if err := json.Unmarshal(obj["recipients"], &recips); err != nil {
		t.Errorf("%s: recipients: %v", input, err)
	}
	var got []string
	for _, rc := range recips {
		var addr string
		json.Unmarshal(rc["address"], &addr)
		got = append(got, addr)
		keys := sortedKeys(rc)
		var rules []string
		json.Unmarshal(rc["rules"], &rules)
		wantKeys := []string{"actions", "address", "rules"}
		if len(rules) == 0 {
			wantKeys = []string{"actions", "address", "rules", "unmatched"}
			if string(rc["unmatched"]) != "true" {
				t.Errorf("%s: recipient %s matched no rule but unmatched is %s", input, addr, rc["unmatched"])
			}
		}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("%s: recipient %s has keys %v, want %v", input, addr, keys, wantKeys)
		}
	}
	if !slices.Equal(got, want.recipients) {
		t.Errorf("%s: recipients %q, want every recipient of the notification: %q", input, got, want.recipients)
	}
	var results []map[string]json.RawMessage
	if err := json.Unmarshal(obj["results"], &results); err != nil {
		t.Errorf("%s: results: %v", input, err)
	}
	for _, res := range results {
		var action string
		json.Unmarshal(res["action"], &action)
		keys := sortedKeys(res)
		var outcome string
		json.Unmarshal(res["outcome"], &outcome)
		wantKeys := []string{"action", "outcome", "recipient"}
		switch {
		case strings.HasPrefix(action, "notify:") && outcome == "digested":
			wantKeys = []string{"action", "outcome"} // past digest_after, folded into the digest
		case strings.HasPrefix(action, "notify:"):
			wantKeys = []string{"action", "outcome", "payload"} // a dry run shows what it would post
		}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("%s: result for %s has keys %v, want %v", input, action, keys, wantKeys)
		}
	}
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expectSample works out, from a sample file, the notifications it holds:
// one per record of a Lambda event, else one per JSON document.
func expectSample(src []byte) ([]sampleExpect, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	var out []sampleExpect
	for dec.More() {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return nil, err
		}
		if recs, ok := doc["Records"].([]any); ok {
			for _, r := range recs {
				rec, _ := r.(map[string]any)
				switch {
				case rec["Sns"] != nil:
					sns, _ := rec["Sns"].(map[string]any)
					out = append(out, expectSNS(sns))
				case rec["body"] != nil:
					body, _ := rec["body"].(string)
					out = append(out, expectBody(body))
				default:
					out = append(out, sampleExpect{skipped: true})
				}
			}
			if len(recs) == 0 {
				out = append(out, sampleExpect{skipped: true})
			}
			continue
		}
		out = append(out, expectDoc(doc))
	}
	return out, nil
}

func expectDoc(doc map[string]any) sampleExpect {
	switch {
	case doc["detail-type"] != nil || doc["source"] != nil:
		detail, _ := doc["detail"].(map[string]any)
		if doc["source"] != "aws.ses" || detail == nil {
			return sampleExpect{skipped: true}
		}
		return expectSES(detail)
	case doc["Type"] != nil:
		return expectSNS(doc)
	}
	return expectSES(doc)
}

func expectBody(body string) sampleExpect {
	var doc map[string]any
	if json.Unmarshal([]byte(body), &doc) != nil {
		return sampleExpect{skipped: true}
	}
	return expectDoc(doc)
}

func expectSNS(sns map[string]any) sampleExpect {
	msg, _ := sns["Message"].(string)
	var doc map[string]any
	if sns["Type"] != "Notification" || json.Unmarshal([]byte(msg), &doc) != nil {
		return sampleExpect{skipped: true}
	}
	return expectSES(doc)
}

// expectSES lists the recipients of SES JSON, as docs/rules.md defines
// them.
func expectSES(doc map[string]any) sampleExpect {
	typ, _ := doc["eventType"].(string)
	if typ == "" {
		typ, _ = doc["notificationType"].(string)
	}
	switch typ {
	case "", "AmazonSnsSubscriptionSucceeded", "Received":
		return sampleExpect{skipped: true}
	}
	obj := func(k string) map[string]any { m, _ := doc[k].(map[string]any); return m }
	addrs := func(list any, key string) []string {
		var out []string
		items, _ := list.([]any)
		for _, it := range items {
			if key == "" {
				s, _ := it.(string)
				out = append(out, s)
				continue
			}
			m, _ := it.(map[string]any)
			s, _ := m[key].(string)
			out = append(out, s)
		}
		return out
	}
	var e sampleExpect
	switch typ {
	case "Bounce":
		e.recipients = addrs(obj("bounce")["bouncedRecipients"], "emailAddress")
	case "Complaint":
		e.recipients = addrs(obj("complaint")["complainedRecipients"], "emailAddress")
	case "Delivery":
		e.recipients = addrs(obj("delivery")["recipients"], "")
	case "DeliveryDelay":
		e.recipients = addrs(obj("deliveryDelay")["delayedRecipients"], "emailAddress")
	default:
		e.recipients = addrs(obj("mail")["destination"], "")
	}
	return e
}

func TestExpectSample(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []sampleExpect
	}{
		{"bare bounce", `{"notificationType":"Bounce","bounce":{"bouncedRecipients":[{"emailAddress":"a@x"},{"emailAddress":"b@x"}]},"mail":{"destination":["a@x","b@x","c@x"]}}`,
			[]sampleExpect{{recipients: []string{"a@x", "b@x"}}}},
		{"event send", `{"eventType":"Send","mail":{"destination":["a@x","c@x"]},"send":{}}`,
			[]sampleExpect{{recipients: []string{"a@x", "c@x"}}}},
		{"lambda sns, two records", `{"Records":[{"Sns":{"Type":"Notification","Message":"{\"notificationType\":\"Delivery\",\"delivery\":{\"recipients\":[\"a@x\"]}}"}},{"Sns":{"Type":"Notification","Message":"hello"}}]}`,
			[]sampleExpect{{recipients: []string{"a@x"}}, {skipped: true}}},
		{"sqs raw", `{"Records":[{"eventSource":"aws:sqs","body":"{\"eventType\":\"DeliveryDelay\",\"deliveryDelay\":{\"delayedRecipients\":[{\"emailAddress\":\"d@x\"}]}}"}]}`,
			[]sampleExpect{{recipients: []string{"d@x"}}}},
		{"subscription confirmation", `{"Type":"SubscriptionConfirmation","Message":"You have chosen"}`, []sampleExpect{{skipped: true}}},
		{"eventbridge", `{"source":"aws.ses","detail-type":"Email Bounced","detail":{"eventType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"c@x"}]}}}`,
			[]sampleExpect{{recipients: []string{"c@x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expectSample([]byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d notifications %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i].skipped != tt.want[i].skipped || !slices.Equal(got[i].recipients, tt.want[i].recipients) {
					t.Errorf("notification %d: got %+v, want %+v", i+1, got[i], tt.want[i])
				}
			}
		})
	}
}
