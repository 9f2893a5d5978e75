package main

import (
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/sesrouter/sesrouter/engine"
	"github.com/sesrouter/sesrouter/engine/ruletest"
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
	var run *regexp.Regexp
	if *runFlag != "" {
		var err error
		if run, err = regexp.Compile(*runFlag); err != nil {
			fmt.Fprintf(stderr, "sesrouter test: -run: %v\n", err)
			return exitUsage
		}
	}

	// Load every test file first, so that all of their problems show at once.
	var tests []*ruletest.File
	bad := false
	for _, path := range files {
		tf, err := ruletest.LoadFile(path)
		if err != nil {
			printProblems(stderr, path, err)
			bad = true
			continue
		}
		tests = append(tests, tf)
	}
	if bad {
		return exitUsage
	}

	routers := map[string]*engine.Router{}
	var all [][]ruletest.Result
	for _, tf := range tests {
		path := *rulesFlag
		if path == "" {
			if path = tf.RulesPath(); path != "" && !exists(path) {
				fmt.Fprintf(stderr, "%s:%d:%d: rules file %s does not exist (rules: is relative to the test file)\n",
					tf.Name, tf.RulesPos.Line, tf.RulesPos.Col, path)
				return exitUsage
			}
		}
		if path == "" {
			path = rulesPath("", e)
		}
		router, ok := routers[path]
		if !ok {
			cfg, ok := loadRules(path, stderr)
			if !ok {
				return exitUsage
			}
			router = cfg.Router
			routers[path] = router
		}
		all = append(all, ruletest.Run(router, tf, run))
	}

	passed, failed := 0, 0
	for _, results := range all {
		for _, r := range results {
			if r.Passed() {
				passed++
				continue
			}
			failed++
			fmt.Fprint(stdout, r.Text())
		}
	}
	if passed+failed == 0 && run != nil {
		fmt.Fprintf(stderr, "sesrouter test: no test matches -run %s\n", *runFlag)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if *junitFlag != "" {
		if err := ruletest.WriteJUnit(*junitFlag, all); err != nil {
			fmt.Fprintf(stderr, "sesrouter test: -junit: %v\n", err)
			return exitFailed
		}
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
