package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/sesrouter/sesrouter/engine"
)

const testText = `Runs rule unit tests: each test routes one event by the rules and compares,
for every recipient, the actions decided with those expected.

  rules: ../rules.yaml                 # relative to this file; -rules overrides
  tests:
    - name: dummy addresses are dropped
      event: events/bounce-ignore.json # a file, relative to this file
      expect:
        ignore@example.com: [drop]
    - name: hard bounce keeps no-suppress addresses deliverable
      event: {type: Bounce, bounce: {type: Permanent}, recipients: [no-suppress-1@example.com]}
      expect:
        no-suppress-1@example.com: [unsuppress, "notify:ses-alerts"]

An event is a file, inline SES JSON (event_json:), or the compact form: type,
recipients, mail {source, subject, messageId, timestamp, destination, tags,
headers}, bounce {type, subType}, complaint {feedbackType, subType},
delay {type}, reject {reason}, failure {errorMessage, templateName},
envelope (sns, sqs, eventbridge, http, file) and topicArn. Every recipient
must be listed; [] expects no action.

The rules are -rules, else the test file's rules:, else $SESROUTER_RULES,
else rules.yaml. Every failure is printed, then "N passed, N failed".
Exit status 0 when all pass, 1 when some fail, 2 when a test file or the
rules are wrong.`

func cmdTest(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("test", "test [-rules FILE] [-run REGEXP] [-junit FILE] TESTFILE ...", testText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default the test file's rules:, else $SESROUTER_RULES, else rules.yaml)")
	runFlag := fs.String("run", "", "run only the tests whose name matches `REGEXP`")
	junitFlag := fs.String("junit", "", "write a JUnit XML report to `FILE`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "sesrouter test: no test file given")
		fs.Usage()
		return exitUsage
	}
	var run *regexp.Regexp
	if *runFlag != "" {
		var err error
		if run, err = regexp.Compile(*runFlag); err != nil {
			fmt.Fprintf(stderr, "sesrouter test: -run: %v\n", err)
			return exitUsage
		}
	}

	// Load every test file first, so that all of their problems show at once.
	var files []*engine.TestFile
	bad := false
	for _, path := range fs.Args() {
		tf, err := engine.LoadTestFile(path)
		if err != nil {
			printProblems(stderr, path, err)
			bad = true
			continue
		}
		files = append(files, tf)
	}
	if bad {
		return exitUsage
	}

	routers := map[string]*engine.Router{}
	var all [][]engine.TestResult
	for _, tf := range files {
		path := *rulesFlag
		if path == "" {
			if path = tf.RulesPath(); path != "" && !fileExists(path) {
				fmt.Fprintf(stderr, "%s:%d:%d: rules file %s does not exist (rules: is relative to the test file)\n",
					tf.File, tf.RulesPos.Line, tf.RulesPos.Col, path)
				return exitUsage
			}
		}
		if path == "" {
			path = rulesPath("", e)
		}
		router, ok := routers[path]
		if !ok {
			rules, ok := loadRules(path, stderr)
			if !ok {
				return exitUsage
			}
			router = engine.NewRouter(rules)
			routers[path] = router
		}
		all = append(all, engine.RunTests(router, tf, run))
	}

	passed, failed := 0, 0
	for _, results := range all {
		for _, r := range results {
			if r.Passed() {
				passed++
				continue
			}
			failed++
			fmt.Fprint(stdout, failureText(&r))
		}
	}
	if passed+failed == 0 && run != nil {
		fmt.Fprintf(stderr, "sesrouter test: no test matches -run %s\n", *runFlag)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if *junitFlag != "" {
		if err := writeJUnit(*junitFlag, files, all); err != nil {
			fmt.Fprintf(stderr, "sesrouter test: -junit: %v\n", err)
			return exitFailed
		}
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// printProblems prints every problem of a test file that did not load.
func printProblems(stderr io.Writer, path string, err error) {
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		fmt.Fprintln(stderr, "sesrouter:", err)
		return
	}
	errs := joined.Unwrap()
	for _, e := range errs {
		fmt.Fprintln(stderr, e)
	}
	fmt.Fprintf(stderr, "%s: %s\n", path, plural(len(errs), "problem"))
}

// failureText says what went wrong in a failed test, one block per
// recipient:
//
//	rules_test.yaml:12: dummy addresses are dropped: recipient ignore@example.com
//	    want: [drop]
//	    got:  [notify:ses-alerts]
//	    rules matched: notify-bounces-and-complaints (decided)
func failureText(r *engine.TestResult) string {
	var b strings.Builder
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "%s:%d: %s: recipient %s\n", r.File, r.Test.Pos.Line, r.Test.Name, f.Recipient)
		b.WriteString(failureDetails(f))
	}
	return b.String()
}

// failureDetails is the indented part of a recipient's failure.
func failureDetails(f engine.RecipientFailure) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    want: %s\n", actionList(f.Want))
	fmt.Fprintf(&b, "    got:  %s\n", actionList(f.Got))
	b.WriteString("    rules matched: ")
	switch {
	case len(f.Matched) == 0:
		b.WriteString("none")
	case f.Decider == "":
		b.WriteString(strings.Join(f.Matched, ", ") + " (all continue; none decided)")
	default:
		b.WriteString(strings.Join(f.Matched, ", ") + " (decided)")
	}
	b.WriteByte('\n')
	if f.Err != nil {
		fmt.Fprintf(&b, "    error: %v\n", f.Err)
	}
	return b.String()
}

func actionList(actions []string) string {
	return "[" + strings.Join(actions, ", ") + "]"
}

// JUnit XML, as CI systems read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes the results as JUnit XML: one testsuite per test file.
func writeJUnit(path string, files []*engine.TestFile, all [][]engine.TestResult) error {
	report := junitSuites{}
	for i, results := range all {
		s := junitSuite{Name: files[i].File}
		for _, r := range results {
			c := junitCase{Name: r.Test.Name, Classname: files[i].File}
			if !r.Passed() {
				recips := make([]string, len(r.Failures))
				for j, f := range r.Failures {
					recips[j] = f.Recipient
				}
				c.Failure = &junitFailure{
					Message: "unexpected actions for " + strings.Join(recips, ", "),
					Text:    failureText(&r),
				}
				s.Failures++
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		report.Tests += s.Tests
		report.Failures += s.Failures
		report.Suites = append(report.Suites, s)
	}
	out, err := xml.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(out, '\n')...), 0o644)
}
