package ruletest

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// Text says what went wrong in a failed test, one block per recipient:
//
//	rules_test.yaml:12: dummy addresses are dropped: recipient ignore@example.com
//	    want: [drop]
//	    got:  [notify:ses-alerts]
//	    rules matched: notify-bounces-and-complaints (decided)
//
// Addresses are quoted when they hold control or bidi characters.
func (r *Result) Text() string {
	var b strings.Builder
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "%s:%d: %s: recipient %s\n", r.File.Name, r.Test.Pos.Line, r.Test.Name, ses.Safe(f.Recipient))
		b.WriteString(failureDetails(f))
	}
	return b.String()
}

// failureDetails is the indented part of a recipient's failure.
func failureDetails(f Failure) string {
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

// WriteJUnit writes results (those of each test file) as JUnit XML to
// path: one testsuite per test file.
func WriteJUnit(path string, all [][]Result) error {
	report := junitSuites{}
	for _, results := range all {
		if len(results) == 0 {
			continue
		}
		name := results[0].File.Name
		s := junitSuite{Name: name}
		for _, r := range results {
			c := junitCase{Name: r.Test.Name, Classname: name}
			if !r.Passed() {
				recips := make([]string, len(r.Failures))
				for j, f := range r.Failures {
					recips[j] = f.Recipient
				}
				c.Failure = &junitFailure{
					Message: "unexpected actions for " + strings.Join(recips, ", "),
					Text:    r.Text(),
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
