// Command sesrouter routes Amazon SES feedback (bounces, complaints and the
// other SES event types) by the rules of a YAML file: it posts to Slack,
// takes addresses off the SES account suppression list or puts them on,
// logs, or drops, per recipient. Run "sesrouter -h" for the commands.
//
// This package is thin: flags, the environment, building clients, signals,
// and mapping what package pipeline says onto exit codes, HTTP answers and
// Lambda responses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/internal/words"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/storm"
	"github.com/sesrouter/sesrouter/rulestore"
)

// Exit statuses, as docs/commands.md documents them; a signal exits 128 +
// its number.
const (
	exitOK     = 0
	exitFailed = 1 // some event or action failed
	exitUsage  = 2 // bad usage or bad rules
)

// version is the release version the build stamps into the binary, with
// the linker flag -X main.version=VERSION (make does, from git describe);
// empty in a plain go build or go install, where pipeline.Version finds
// the version in the build information instead. Only the linker sets it:
// the program never writes it.
var version string

func main() {
	stdin, restore := stoppable(os.Stdin)
	code := run(os.Args[1:], stdin, os.Stdout, os.Stderr, newEnv())
	restore()
	os.Exit(code)
}

// env is what the process gets from its surroundings. Tests build their
// own.
type env struct {
	getenv                   func(string) string
	executable               string
	stdoutIsTTY, stderrIsTTY bool
	// notify relays signals to c, as signal.Notify; stop undoes it.
	notify func(c chan<- os.Signal, sig ...os.Signal)
	stop   func(c chan<- os.Signal)
	// actionTimeout bounds the actions of one notification; zero is
	// defaultTimeout. Tests shorten it.
	actionTimeout time.Duration
	// drain is how long route's notifications in flight get after a
	// signal; zero is drainTime. Tests shorten it.
	drain time.Duration
	// outbound, when set, carries serve's requests to the outside world
	// (signing certificates, subscription confirmations) instead of the
	// network, for tests; nil is the network.
	outbound http.RoundTripper
	// slackClient and sesClient, when set, carry every request to Slack
	// and to SES instead of clients of their own: tests give the clients
	// of in-memory fakes, to run on a testing/synctest bubble's clock.
	slackClient, sesClient *http.Client
}

func newEnv() env {
	exe, _ := os.Executable()
	return env{getenv: os.Getenv, executable: exe, stdoutIsTTY: pipeline.IsTerminal(os.Stdout), stderrIsTTY: pipeline.IsTerminal(os.Stderr),
		notify: signal.Notify, stop: signal.Stop}
}

const usage = `sesrouter routes Amazon SES feedback by the rules of a YAML file.

Usage:
  sesrouter route  [-rules FILE] [-dry-run] [-explain] [-format text|json|html] [FILE ...]
  sesrouter check  [-rules FILE] [-strict]
  sesrouter test   [-rules FILE] [-run REGEXP] [-junit FILE] TESTFILE ...
  sesrouter serve  [-rules FILE] [-addr HOST:PORT] [-topic ARN]... [-sns-cert-dir DIR] [-max-age DURATION] [-signature-version 1|2]
  sesrouter sweep  [-rules FILE] [-dry-run] [-format text|json] [-reason BOUNCE|COMPLAINT] [-since DURATION] [-rate N]
  sesrouter lambda [-rules FILE]
  sesrouter publish [-rules FILE] [-test TESTFILE]... s3://BUCKET/KEY
  sesrouter version        (also -version, --version)

Run "sesrouter COMMAND -h" for the flags of a command. Flags may come
before or after the files; -- ends the flags; - alone is standard input.

The rules file is -rules, else $SESROUTER_RULES, else rules.yaml in the
working directory, else rules.yaml beside the executable. Either may name
an S3 object, s3://BUCKET/KEY.

Exit status: 0 all good; 1 some event or action failed; 2 bad usage or bad rules.
`

// cmdFunc is a command. sig is the process's signals for a command that
// runs until done or stopped, nil for the others.
type cmdFunc func(sig *signals, args []string, stdin io.Reader, stdout, stderr io.Writer, e env) int

// command returns the command named, or nil. stops says that it runs
// until done or stopped by a signal: it gets the process's signals (see
// watchSignals); the others keep the signals' default action, so that
// Ctrl-C ends them at once.
func command(name string) (cmd cmdFunc, stops bool) {
	switch name {
	case "route":
		return cmdRoute, true
	case "sweep":
		return cmdSweep, true
	case "serve":
		return cmdServe, true
	case "check":
		return func(_ *signals, a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdCheck(a, o, r, e) }, false
	case "test":
		return func(_ *signals, a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdTest(a, o, r, e) }, false
	case "lambda":
		// In Lambda the runtime owns the process's life: an invocation
		// ends at its deadline, and a SIGTERM at shutdown ends the
		// process as it would without sesrouter.
		return func(_ *signals, a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdLambda(a, o, r, e) }, false
	case "publish":
		return func(_ *signals, a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdPublish(a, o, r, e) }, false
	case "version":
		return func(_ *signals, a []string, _ io.Reader, o, r io.Writer, _ env) int { return cmdVersion(a, o, r) }, false
	}
	return nil, false
}

// run is the whole program; main only wires it to the process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, e env) int {
	switch {
	case len(args) == 0 && e.getenv("AWS_LAMBDA_RUNTIME_API") != "":
		return cmdLambda(nil, stdout, stderr, e)
	case len(args) == 0:
		fmt.Fprint(stderr, usage)
		return exitUsage
	case args[0] == "-version" || args[0] == "--version":
		return cmdVersion(args[1:], stdout, stderr)
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, stops := command(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "sesrouter: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	var sig *signals
	if stops {
		sig = watchSignals(e, args[0] == "serve")
		defer sig.stop()
	}
	return cmd(sig, args[1:], stdin, stdout, stderr, e)
}

// digestLine writes a line on stderr for each digest of a run of route
// or sweep (a sweep's summaries are its digests).
func digestLine(name string, stderr io.Writer) func(storm.DigestResult) {
	return func(r storm.DigestResult) { fmt.Fprintf(stderr, "sesrouter %s: %s\n", name, r) }
}

// finish reports how a run of route or sweep ended, on stderr, and
// returns its exit status: that of the signal that stopped it (ctx's),
// else 1 when it failed, else 0. The same for both commands.
func finish(name string, res pipeline.Result, summary string, start time.Time, ctx context.Context, stderr io.Writer) int {
	if res.WriteErr != nil {
		fmt.Fprintf(stderr, "sesrouter %s: writing the output: %v\n", name, res.WriteErr)
	}
	fmt.Fprintf(stderr, "sesrouter %s: %s, in %s\n", name, summary, time.Since(start).Round(time.Millisecond))
	if s, ok := stoppedBy(ctx); ok {
		return signalCode(s)
	}
	if res.Failed() {
		return exitFailed
	}
	return exitOK
}

// newFlags returns a FlagSet whose -h prints synopsis, text and flags.
func newFlags(name, synopsis, text string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sesrouter %s\n\n%s\n", synopsis, strings.TrimSpace(text))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(stderr, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseArgs parses the flags of fs wherever they are among args and
// returns the other arguments, in order: flags may follow files, "--"
// ends the flags, and "-" alone is an argument (standard input). An
// argument that starts with "-" and is no flag of fs is a usage error.
// code is -1 to go on, else the exit status to stop with (0 for -h).
func parseArgs(fs *flag.FlagSet, args []string) (rest []string, code int) {
	// A usage error is one line (the flag package's) and where to look;
	// only -h prints the whole help.
	help := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = help }()
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help()
				return nil, exitOK
			}
			fmt.Fprintf(fs.Output(), "Run 'sesrouter %s -h' for its flags.\n", fs.Name())
			return nil, exitUsage
		}
		left := fs.Args()
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), -1
		}
		if len(left) == 0 {
			return rest, -1
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

// parseNoArgs is parseArgs for a command that takes no arguments: one
// is a usage error.
func parseNoArgs(fs *flag.FlagSet, args []string) (code int) {
	args, code = parseArgs(fs, args)
	if code < 0 && len(args) > 0 {
		fmt.Fprintf(fs.Output(), "sesrouter %s: unexpected argument %q\n", fs.Name(), args[0])
		return exitUsage
	}
	return code
}

// loadRules loads the rules file (a file, or an S3 object read through
// store), printing every problem to stderr; obj is what was read.
func loadRules(store *rulestore.Store, path string, stderr io.Writer) (*pipeline.Config, *rulestore.Object, bool) {
	cfg, obj, err := pipeline.LoadFrom(context.Background(), store, path)
	if err == nil {
		return cfg, obj, true
	}
	printProblems(stderr, path, err)
	return nil, nil, false
}

// printProblems prints each problem of a file on a line, then how many.
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
	fmt.Fprintf(stderr, "%s: %s\n", path, words.Plural(len(errs), "problem", "problems"))
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version", "Prints the version of sesrouter and of Go it was built with.", stderr)
	if code := parseNoArgs(fs, args); code >= 0 {
		return code
	}
	fmt.Fprintln(stdout, pipeline.Version(version))
	return exitOK
}
