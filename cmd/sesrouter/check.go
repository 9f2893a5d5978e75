package main

import (
	"fmt"
	"io"

	"github.com/sesrouter/sesrouter/engine"
)

const checkText = `Loads and compiles the rules file and reports every problem in it, each as
FILE:LINE:COL: rule "NAME": message. It then runs every rule against a
built-in set of synthetic events (one of each SES type, with ordinary and
odd recipients) and reports a rule that fails on any of them: in
production such a rule gives the recipient no action and fails the
notification.

It also warns about a rule that can never decide (an earlier rule that
does not continue always matches first, or has the same condition), a
destination no rule notifies, a comparison with a value SES never sends
(bounce.type == "permanent"), and a rule that takes over 10 ms for one
recipient. Warnings leave the exit status 0 unless -strict.

Exit status: 0 the rules are fine; 2 they are not (or, with -strict, they
have warnings).`

func cmdCheck(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("check", "check [-rules FILE] [-strict]", checkText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	strict := fs.Bool("strict", false, "count warnings as errors")
	args, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	if !noArgs("check", args, stderr) {
		return exitUsage
	}
	path := rulesPath(*rulesFlag, e)
	cfg, ok := loadRules(path, stderr)
	if !ok {
		return exitUsage
	}
	rules := cfg.Rules
	errs, slow := rules.Probe(engine.SlowRule)
	warnings := append(rules.Warnings(), slow...)
	for _, p := range append(errs, warnings...) {
		fmt.Fprintln(stderr, p)
	}
	if len(errs) > 0 || (*strict && len(warnings) > 0) {
		fmt.Fprintf(stderr, "%s: %s, %s\n", path, plural(len(errs), "problem"), plural(len(warnings), "warning"))
		return exitUsage
	}
	summary := fmt.Sprintf("%s, %s, %s", plural(len(rules.Rules), "rule"), plural(len(rules.Destinations), "destination"), plural(len(rules.Lists), "list"))
	if len(warnings) > 0 {
		summary += ", " + plural(len(warnings), "warning")
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", rules.File, summary)
	return exitOK
}
