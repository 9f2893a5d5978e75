package ruletest

import (
	"os"
	"regexp"
	"strings"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
)

// Suite runs rule test files as "sesrouter test" does: every test file
// is loaded first, so that all of their problems show at once, then each
// runs against its rules file, each rules file loaded once.
type Suite struct {
	// Rules is the rules file of every test file; when it is empty, a
	// test file's rules: key names it, else Default.
	Rules, Default string
	// Run, when set, runs only the tests whose name it matches.
	Run *regexp.Regexp
	// History, when set, gives the history of a test that gives no
	// history: (sesrouter test reads the fleet state, when there is one,
	// and never writes it); nil: every count of such a test is 0.
	History HistoryFunc
	// Load loads a rules file.
	Load func(path string) (*route.Router, error)
	// Problem is told why a test file or a rules file cannot be used:
	// the error of LoadFile or Load, which may join several problems.
	Problem func(path string, err error)
}

// Report is what a Suite came to.
type Report struct {
	// Results holds the results of each test file, in order.
	Results        [][]Result
	Passed, Failed int
}

// Text says what went wrong in each failed test, in order (Result.Text).
func (r *Report) Text() string {
	var b strings.Builder
	for _, results := range r.Results {
		for i := range results {
			if !results[i].Passed() {
				b.WriteString(results[i].Text())
			}
		}
	}
	return b.String()
}

// RunFiles runs the test files at paths. When a test file or a rules
// file cannot be used, it tells Problem why and reports false.
func (s *Suite) RunFiles(paths []string) (*Report, bool) {
	var files []*File
	ok := true
	for _, path := range paths {
		f, err := LoadFile(path)
		if err != nil {
			s.Problem(path, err)
			ok = false
			continue
		}
		files = append(files, f)
	}
	if !ok {
		return nil, false
	}
	routers := map[string]*route.Router{}
	rep := &Report{}
	for _, f := range files {
		path := s.Rules
		if path == "" {
			path = f.RulesPath()
			if _, err := os.Stat(path); path != "" && !IsS3(path) && err != nil {
				s.Problem(f.Name, rules.JoinProblems([]*rules.Problem{{File: f.Name, Pos: f.RulesPos,
					Message: "rules file " + path + " does not exist (rules: is relative to the test file)"}}))
				return nil, false
			}
		}
		if path == "" {
			path = s.Default
		}
		router, ok := routers[path]
		if !ok {
			var err error
			if router, err = s.Load(path); err != nil {
				s.Problem(path, err)
				return nil, false
			}
			routers[path] = router
		}
		results, err := RunWith(router, f, s.Run, s.History)
		if err != nil {
			s.Problem(f.Name, err)
			return nil, false
		}
		for _, r := range results {
			if r.Passed() {
				rep.Passed++
			} else {
				rep.Failed++
			}
		}
		rep.Results = append(rep.Results, results)
	}
	return rep, true
}
