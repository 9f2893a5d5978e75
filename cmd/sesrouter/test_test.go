package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ruleTestRules is the rules file the test-command tests run against.
const ruleTestRules = `version: 1
destinations:
  ses-alerts:
    slack: {channel: C0123456789}
rules:
  - name: ignore-dummies
    when: recipient.domain == "ignore.example"
    actions: [drop]
  - name: keep-deliverable
    when: event.type == "Bounce" && recipient.local contains "no-suppress"
    actions: [unsuppress, {notify: ses-alerts}]
  - name: notify
    when: event.type in ["Bounce", "Complaint"]
    actions: [{notify: ses-alerts}]
`

// passingTests is a test file for ruleTestRules in which every test passes.
const passingTests = `rules: rules.yaml
tests:
  - name: dummies are dropped
    event: events/bounce.json
    expect:
      a@ignore.example: [drop]
  - name: no-suppress stays deliverable
    event: {type: Bounce, recipients: [no-suppress@x.com, b@x.com]}
    expect:
      no-suppress@x.com: [unsuppress, "notify:ses-alerts"]
      b@x.com: ["notify:ses-alerts"]
  - name: deliveries get nothing
    event: {type: Delivery, envelope: sns, recipients: [c@x.com]}
    expect:
      c@x.com: []
`

// ruleTestDir writes the rules, an event file and the passing test file
// into a new folder and returns it.
func ruleTestDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "rules.yaml", ruleTestRules)
	writeFile(t, dir, "events/bounce.json", `{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"a@ignore.example"}]},"mail":{"timestamp":"2024-05-01T10:00:00.000Z","source":"s@x.com","messageId":"m-1","destination":["a@ignore.example"]}}`)
	writeFile(t, dir, "rules_test.yaml", passingTests)
	return dir
}

func TestTestCommand(t *testing.T) {
	dir := ruleTestDir(t)
	file := filepath.Join(dir, "rules_test.yaml")
	failing := writeFile(t, dir, "failing_test.yaml", strings.Replace(passingTests,
		`b@x.com: ["notify:ses-alerts"]`, `b@x.com: [suppress, "notify:ses-alerts"]`, 1))
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"all pass", []string{"test", file}, exitOK, "3 passed, 0 failed\n", ""},
		{"one expectation changed", []string{"test", failing}, exitFailed, failing + `:7: no-suppress stays deliverable: recipient b@x.com
    want: [suppress, notify:ses-alerts]
    got:  [notify:ses-alerts]
    rules matched: notify (decided)
2 passed, 1 failed
`, ""},
		{"-run selects", []string{"test", "-run", "dropped|deliveries", failing}, exitOK, "2 passed, 0 failed\n", ""},
		{"-run selecting nothing", []string{"test", "-run", "^nothing$", file}, exitOK, "0 passed, 0 failed\n", "sesrouter test: no test matches -run ^nothing$\n"},
		{"several files", []string{"test", file, failing}, exitFailed, "", ""},
		{"-rules overrides rules:", []string{"test", "-rules", writeFile(t, dir, "other.yaml", minimalRules), file}, exitFailed, "", ""},
		{"rules: names a missing file", []string{"test", writeFile(t, dir, "norules_test.yaml", strings.Replace(passingTests, "rules: rules.yaml", "rules: nope.yaml", 1))},
			exitUsage, "", filepath.Join(dir, "norules_test.yaml") + ":1:8: rules file " + filepath.Join(dir, "nope.yaml") + " does not exist (rules: is relative to the test file)\n" +
				filepath.Join(dir, "norules_test.yaml") + ": 1 problem\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(nil), "", tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if tt.wantStdout != "" && r.stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.wantStdout)
			}
			if r.stderr != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestTestCommandBadTestFile(t *testing.T) {
	dir := ruleTestDir(t)
	bad := writeFile(t, dir, "bad_test.yaml", `rules: rules.yaml
tests:
  - name: unknown key
    event: events/bounce.json
    expected: {}
  - name: missing file
    event: events/missing.json
    expect: {}
  - name: not a recipient
    event: events/bounce.json
    expect:
      a@ignore.example: [drop]
      z@x.com: []
  - name: recipient without expectation
    event: {type: Complaint, recipients: [a@x.com, b@x.com]}
    expect:
      a@x.com: ["notify:ses-alerts"]
`)
	r := runCLI(t, testEnv(nil), "", "test", bad)
	want := strings.ReplaceAll(`F:3:5: test "unknown key": missing expect: for every recipient of the event, the actions in order ([] for none)
F:5:5: test "unknown key": unknown key "expected" (want name, event, event_json, history or expect)
F:7:12: test "missing file": event file D/events/missing.json does not exist (event files are relative to the test file)
F:13:7: test "not a recipient": expect: z@x.com is not a recipient of the event (recipients: a@ignore.example)
F:16:5: test "recipient without expectation": expect: no expectation for recipient b@x.com: list every recipient ([] for no action)
F: 5 problems
`, "F", bad)
	want = strings.ReplaceAll(want, "D/", dir+"/")
	if r.code != exitUsage || r.stdout != "" || r.stderr != want {
		t.Errorf("exit status %d, stdout %q, stderr:\n%s\nwant status 2 and stderr:\n%s", r.code, r.stdout, r.stderr, want)
	}
}

func TestTestCommandJUnit(t *testing.T) {
	dir := ruleTestDir(t)
	failing := writeFile(t, dir, "failing_test.yaml", strings.Replace(passingTests,
		`a@ignore.example: [drop]`, `a@ignore.example: [log]`, 1))
	report := filepath.Join(dir, "report.xml")
	r := runCLI(t, testEnv(nil), "", "test", "-junit", report, filepath.Join(dir, "rules_test.yaml"), failing)
	if r.code != exitFailed {
		t.Fatalf("exit status %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &got); err != nil {
		t.Fatalf("the report does not parse: %v\n%s", err, raw)
	}
	if got.Tests != 6 || got.Failures != 1 || len(got.Suites) != 2 || got.Suites[0].Tests != 3 || got.Suites[0].Failures != 0 ||
		got.Suites[1].Name != failing || got.Suites[1].Tests != 3 || got.Suites[1].Failures != 1 {
		t.Fatalf("report counts wrong:\n%s", raw)
	}
	c := got.Suites[1].Cases[0]
	if c.Name != "dummies are dropped" || c.Failure == nil || c.Failure.Message != "unexpected actions for a@ignore.example" ||
		!strings.Contains(c.Failure.Text, "want: [log]\n    got:  [drop]\n    rules matched: ignore-dummies (decided)") {
		t.Errorf("failing case = %+v", c)
	}
	if got.Suites[1].Cases[1].Failure != nil {
		t.Errorf("a passing case has a failure: %+v", got.Suites[1].Cases[1])
	}
}

func TestTestCommandHelp(t *testing.T) {
	r := runCLI(t, testEnv(nil), "", "test", "-h")
	if r.code != exitOK || !strings.HasPrefix(r.stderr, "Usage: sesrouter test [-rules FILE] [-run REGEXP] [-junit FILE] TESTFILE ...") ||
		!strings.Contains(r.stderr, "-junit FILE") {
		t.Errorf("exit status %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runCLI(t, testEnv(nil), "", "help")
	if !strings.Contains(r.stdout, "sesrouter test   [-rules FILE] [-run REGEXP] [-junit FILE] TESTFILE ...\n") {
		t.Errorf("usage:\n%s", r.stdout)
	}
}
