package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/sesrouter/sesrouter/engine"
)

const checkText = `Loads and compiles the rules file and reports every problem in it, each as
FILE:LINE:COL: rule "NAME": message. Exit status 0 when the rules load, 2
when they do not.

It also warns, on standard error and with exit status 0, about a rule that
can never decide (an earlier rule that does not continue always matches
first, or has the same condition) and about a destination no rule notifies.`

func cmdCheck(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("check", "check [-rules FILE]", checkText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sesrouter check: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	rules, ok := loadRules(rulesPath(*rulesFlag, e), stderr)
	if !ok {
		return exitUsage
	}
	warnings := rules.Warnings()
	for _, w := range warnings {
		fmt.Fprintln(stderr, w)
	}
	summary := fmt.Sprintf("%s, %s, %s", plural(len(rules.Rules), "rule"), plural(len(rules.Destinations), "destination"), plural(len(rules.Lists), "list"))
	if len(warnings) > 0 {
		summary += ", " + plural(len(warnings), "warning")
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", rules.File, summary)
	return exitOK
}

// loadRules loads the rules file, printing every problem to stderr.
func loadRules(path string, stderr io.Writer) (*engine.Rules, bool) {
	rules, err := engine.LoadFile(path)
	if err == nil {
		return rules, true
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		errs := joined.Unwrap()
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "%s: %s\n", path, plural(len(errs), "problem"))
	} else {
		fmt.Fprintln(stderr, "sesrouter:", err)
	}
	return nil, false
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
