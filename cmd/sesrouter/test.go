package main

import (
	"context"
	"fmt"
	"io"
	"regexp"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ruletest"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/rulestore"
)

const testText = `Runs rule unit tests: each test routes one event by the rules and compares,
for every recipient, the actions decided with those expected.

  rules: ../rules.yaml          # relative to this file; -rules overrides
  tests:
    - name: hard bounce keeps no-suppress addresses deliverable
      event: {type: Bounce, recipients: [no-suppress-1@example.com]}
      expect:
        no-suppress-1@example.com: [unsuppress, "notify:ses-alerts"]

An event is a file, inline JSON (event_json:) or the compact form: the
names rules use, as YAML. Exit status: 0 all pass; 1 some fail; 2 a test
file or the rules are wrong.`

func cmdTest(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("test", "test [-rules FILE] [-run REGEXP] [-junit FILE] TESTFILE ...", testText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default the test file's rules:, else $SESROUTER_RULES, else rules.yaml)")
	runFlag := fs.String("run", "", "run only the tests whose name matches `REGEXP`")
	junitFlag := fs.String("junit", "", "write a JUnit XML report to `FILE`")
	files, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "sesrouter test: no test file given")
		fs.Usage()
		return exitUsage
	}
	// A test that gives history: counts that; one that gives none reads
	// the state table when there is one, and never writes it; else 0.
	st, err := stateTable(e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter test: %v\n", err)
		return exitUsage
	}
	store := rulestore.NewStore()
	suite := ruletest.Suite{Rules: *rulesFlag, Default: pipeline.RulesPath("", e.getenv, e.executable),
		Load: func(path string) (*route.Router, error) {
			cfg, _, err := pipeline.LoadFrom(context.Background(), store, path)
			if err != nil {
				return nil, err
			}
			return cfg.Router, nil
		},
		Problem: func(path string, err error) { printProblems(stderr, path, err) }}
	if st != nil {
		suite.History = func(r *route.Router, n *ses.Notification) (rules.History, error) {
			return pipeline.ReadHistory(context.Background(), st, r, n)
		}
	}
	if *runFlag != "" {
		var err error
		if suite.Run, err = regexp.Compile(*runFlag); err != nil {
			fmt.Fprintf(stderr, "sesrouter test: -run: %v\n", err)
			return exitUsage
		}
	}
	rep, ok := suite.RunFiles(files)
	if !ok {
		return exitUsage
	}
	fmt.Fprint(stdout, rep.Text())
	if rep.Passed+rep.Failed == 0 && suite.Run != nil {
		fmt.Fprintf(stderr, "sesrouter test: no test matches -run %s\n", *runFlag)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", rep.Passed, rep.Failed)
	if *junitFlag != "" {
		if err := ruletest.WriteJUnit(*junitFlag, rep.Results); err != nil {
			fmt.Fprintf(stderr, "sesrouter test: -junit: %v\n", err)
			return exitFailed
		}
	}
	if rep.Failed > 0 {
		return exitFailed
	}
	return exitOK
}
