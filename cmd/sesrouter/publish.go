package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/ruletest"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/rulestore"
)

const publishText = `Uploads the rules to the S3 object that lambda and serve read them from
(SESROUTER_RULES=s3://BUCKET/KEY), once they pass check -strict and every
-test file (run against these rules, whatever rules: the test file names).
The object's ETag is read first; the upload is a conditional write that S3
refuses when the object is no longer the version read (someone else
published meanwhile), so that nobody's rules are overwritten unseen. Prints
the new ETag, and the version id in a versioned bucket. Exit status: 0
published; 1 a rule test failed, the object changed meanwhile, or S3
failed; 2 bad usage, or rules that check -strict refuses. Nothing is
uploaded unless the status is 0.`

func cmdPublish(args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlags("publish", "publish [-rules FILE] [-test TESTFILE]... s3://BUCKET/KEY", publishText, stderr)
	rulesFlag := fs.String("rules", "", "the rules `FILE` to publish (default $SESROUTER_RULES, else rules.yaml)")
	var tests []string
	fs.Func("test", "run the rule tests of `TESTFILE` against the rules before uploading (repeatable)", func(s string) error {
		tests = append(tests, s)
		return nil
	})
	rest, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintf(stderr, "sesrouter publish: want one s3://BUCKET/KEY to publish to, got %d arguments\n", len(rest))
		return exitUsage
	}
	loc, err := rulestore.Parse(rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter publish: %v\n", err)
		return exitUsage
	}
	path := pipeline.RulesPath(*rulesFlag, e.getenv, e.executable)
	store := rulestore.NewStore()
	ctx, cancel := context.WithTimeout(context.Background(), 2*rulestore.Timeout)
	defer cancel()

	// The version the checks are made against: what the upload may
	// replace, and nothing newer.
	before, err := store.Head(ctx, loc)
	switch {
	case errors.Is(err, rulestore.ErrNotFound):
		before = &rulestore.Object{}
	case err != nil:
		fmt.Fprintf(stderr, "sesrouter publish: %v; nothing uploaded\n", err)
		return exitFailed
	}

	cfg, obj, ok := loadRules(store, path, stderr)
	if !ok {
		fmt.Fprintln(stderr, "sesrouter publish: nothing uploaded")
		return exitUsage
	}
	lines, verdict, ok := cfg.Check(true)
	for _, l := range lines {
		fmt.Fprintln(stderr, l)
	}
	if !ok {
		fmt.Fprintln(stderr, verdict)
		fmt.Fprintln(stderr, "sesrouter publish: check -strict refuses the rules: nothing uploaded")
		return exitUsage
	}
	fmt.Fprintln(stdout, verdict)

	if len(tests) > 0 {
		suite := ruletest.Suite{Rules: path,
			Load:    func(string) (*route.Router, error) { return cfg.Router, nil },
			Problem: func(p string, err error) { printProblems(stderr, p, err) }}
		rep, ok := suite.RunFiles(tests)
		if !ok {
			fmt.Fprintln(stderr, "sesrouter publish: nothing uploaded")
			return exitUsage
		}
		fmt.Fprint(stdout, rep.Text())
		fmt.Fprintf(stdout, "%d passed, %d failed\n", rep.Passed, rep.Failed)
		if rep.Failed > 0 {
			fmt.Fprintln(stderr, "sesrouter publish: a rule test failed: nothing uploaded")
			return exitFailed
		}
	}

	after, err := store.Put(ctx, loc, obj.Body, before.ETag)
	switch {
	case errors.Is(err, rulestore.ErrChanged):
		read := "there was no object"
		if before.ETag != "" {
			read = "it had ETag " + before.ETag
		}
		fmt.Fprintf(stderr, "sesrouter publish: %s changed while the rules were checked (%s): someone else published to it; nothing uploaded. See what changed, then publish again.\n", loc, read)
		return exitFailed
	case err != nil:
		fmt.Fprintf(stderr, "sesrouter publish: %v; nothing uploaded\n", err)
		return exitFailed
	}
	replaced := "a new object"
	if before.ETag != "" {
		replaced = "it replaced ETag " + before.Version()
	}
	fmt.Fprintf(stdout, "published %s to %s: ETag %s; %s\n", path, loc, after.Version(), replaced)
	return exitOK
}
