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
)

// Exit statuses, as SPEC fixes them; a signal exits 128 + its number.
const (
	exitOK     = 0
	exitFailed = 1 // some event or action failed
	exitUsage  = 2 // bad usage or bad rules
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, newEnv()))
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
  sesrouter version        (also -version, --version)

Run "sesrouter COMMAND -h" for the flags of a command. Flags may come
before or after the files; -- ends the flags; - alone is standard input.

The rules file is -rules, else $SESROUTER_RULES, else rules.yaml in the
working directory, else rules.yaml beside the executable.

Exit status: 0 all good; 1 some event or action failed; 2 bad usage or bad rules.
`

// command returns the command named, or nil.
func command(name string) func(args []string, stdin io.Reader, stdout, stderr io.Writer, e env) int {
	return map[string]func([]string, io.Reader, io.Writer, io.Writer, env) int{
		"route":   cmdRoute,
		"check":   func(a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdCheck(a, o, r, e) },
		"test":    func(a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdTest(a, o, r, e) },
		"serve":   func(a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdServe(a, o, r, e) },
		"sweep":   func(a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdSweep(a, o, r, e) },
		"lambda":  func(a []string, _ io.Reader, o, r io.Writer, e env) int { return cmdLambda(a, o, r, e) },
		"version": func(a []string, _ io.Reader, o, r io.Writer, _ env) int { return cmdVersion(a, o, r) },
	}[name]
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
	if cmd := command(args[0]); cmd != nil {
		return cmd(args[1:], stdin, stdout, stderr, e)
	}
	fmt.Fprintf(stderr, "sesrouter: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
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

// loadRules loads the rules file, printing every problem to stderr.
func loadRules(path string, stderr io.Writer) (*pipeline.Config, bool) {
	cfg, err := pipeline.Load(path)
	if err == nil {
		return cfg, true
	}
	printProblems(stderr, path, err)
	return nil, false
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
	fmt.Fprintln(stdout, pipeline.Version())
	return exitOK
}
