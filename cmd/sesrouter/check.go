package main

import (
	"fmt"
	"io"

	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/rulestore"
)

const checkText = `Loads the rules and reports every problem, each as FILE:LINE:COL, then runs
every rule on built-in synthetic events (each SES type, ordinary and odd
recipients) and reports a rule that fails on one: in production it would
fail closed. Warnings: a rule that can never decide, an unused destination,
a value SES never sends, a rule whose compiled expression may cost over a
million steps (some 10 ms) for one recipient. Exit status: 0 fine; 2 not
fine (with -strict, warnings too).`

func cmdCheck(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("check", "check [-rules FILE] [-strict]", checkText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` (default $SESROUTER_RULES, else rules.yaml)")
	strict := fs.Bool("strict", false, "count warnings as errors")
	if code := parseNoArgs(fs, args); code >= 0 {
		return code
	}
	cfg, _, ok := loadRules(rulestore.NewStore(), pipeline.RulesPath(*rulesFlag, e.getenv, e.executable), stderr)
	if !ok {
		return exitUsage
	}
	if err := cfg.NeedsState(e.getenv("SESROUTER_STATE_TABLE") != ""); err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	lines, verdict, ok := cfg.Check(*strict)
	for _, l := range lines {
		fmt.Fprintln(stderr, l)
	}
	if !ok {
		fmt.Fprintln(stderr, verdict)
		return exitUsage
	}
	fmt.Fprintln(stdout, verdict)
	return exitOK
}
