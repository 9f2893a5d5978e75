package main

import (
	"fmt"
	"io"

	"github.com/sesrouter/sesrouter/engine"
)

const checkText = `Loads the rules and reports every problem, each as FILE:LINE:COL, then runs
every rule on built-in synthetic events (each SES type, ordinary and odd
recipients) and reports a rule that fails on one: in production it would
fail closed. Warnings: a rule that can never decide, an unused destination,
a value SES never sends, a rule over 10 ms for one recipient. Exit status:
0 fine; 2 not fine (with -strict, warnings too).`

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
