// Command sesrouter routes Amazon SES feedback (bounces, complaints and the
// other SES event types) by the rules of a YAML file: it posts to Slack,
// takes addresses off the SES account suppression list or puts them on,
// logs, or drops, per recipient.
//
// Usage:
//
//	sesrouter route  [-rules FILE] [-dry-run] [-explain] [-format text|json] [FILE ...]
//	sesrouter check  [-rules FILE]
//	sesrouter test   [-rules FILE] [-run REGEXP] [-junit FILE] TESTFILE ...
//	sesrouter serve  [-rules FILE] [-addr HOST:PORT] [-topic ARN]... [-sns-cert-dir DIR]
//	sesrouter lambda [-rules FILE]
//	sesrouter version
//
// Run "sesrouter COMMAND -h" for a command's flags. Exit status: 0 all
// good; 1 some event or action failed; 2 bad usage or bad rules.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/actions"
)

// Exit statuses, as SPEC fixes them.
const (
	exitOK     = 0
	exitFailed = 1 // some event or action failed
	exitUsage  = 2 // bad usage or bad rules
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, newEnv()))
}

// env is what the process gets from its surroundings: environment
// variables, the executable's folder and whether stderr is a terminal.
// Tests build their own.
type env struct {
	getenv                   func(string) string
	executable               string
	stdoutIsTTY, stderrIsTTY bool
	// start is when the process started, for lambda's init duration.
	start time.Time
	// slackPace is the pace of every Slack destination; zero is
	// actions.DefaultPace. Tests set a faster one.
	slackPace actions.Pace
	// actionTimeout bounds the actions of one notification in route;
	// zero is defaultTimeout. Tests shorten it.
	actionTimeout time.Duration
}

func newEnv() env {
	exe, _ := os.Executable()
	return env{getenv: os.Getenv, executable: exe, stdoutIsTTY: isTerminal(os.Stdout), stderrIsTTY: isTerminal(os.Stderr), start: time.Now()}
}

// isTerminal reports whether f is a terminal: a character device that is
// not /dev/null (which is one too).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

const usage = `sesrouter routes Amazon SES feedback by the rules of a YAML file.

Usage:
  sesrouter route  [-rules FILE] [-dry-run] [-explain] [-format text|json] [FILE ...]
  sesrouter check  [-rules FILE]
  sesrouter test   [-rules FILE] [-run REGEXP] [-junit FILE] TESTFILE ...
  sesrouter serve  [-rules FILE] [-addr HOST:PORT] [-topic ARN]... [-sns-cert-dir DIR]
  sesrouter lambda [-rules FILE]
  sesrouter version

Run "sesrouter COMMAND -h" for the flags of a command.

The rules file is -rules, else $SESROUTER_RULES, else rules.yaml in the
working directory, else rules.yaml beside the executable.

Exit status: 0 all good; 1 some event or action failed; 2 bad usage or bad rules.
`

// run is the whole program; main only wires it to the process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, e env) int {
	if len(args) == 0 {
		if e.getenv("AWS_LAMBDA_RUNTIME_API") != "" {
			return cmdLambda(nil, stdout, stderr, e)
		}
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "route":
		return cmdRoute(rest, stdin, stdout, stderr, e)
	case "check":
		return cmdCheck(rest, stdout, stderr, e)
	case "version":
		return cmdVersion(rest, stdout, stderr)
	case "lambda":
		return cmdLambda(rest, stdout, stderr, e)
	case "test":
		return cmdTest(rest, stdout, stderr, e)
	case "serve":
		return cmdServe(rest, stdout, stderr, e)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "sesrouter: unknown command %q\n\n%s", cmd, usage)
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

// parseFlags parses args, returning the exit status to stop with (0 for
// -h, 2 for a bad flag) or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return -1
}

// rulesPath finds the rules file: the -rules flag, $SESROUTER_RULES,
// rules.yaml in the working directory, $LAMBDA_TASK_ROOT/rules.yaml (in
// Lambda), rules.yaml beside the executable.
func rulesPath(flagValue string, e env) string {
	if flagValue != "" {
		return flagValue
	}
	if p := e.getenv("SESROUTER_RULES"); p != "" {
		return p
	}
	if _, err := os.Stat("rules.yaml"); err == nil {
		return "rules.yaml"
	}
	if root := e.getenv("LAMBDA_TASK_ROOT"); root != "" {
		if p := filepath.Join(root, "rules.yaml"); fileExists(p) {
			return p
		}
	}
	if e.executable != "" {
		p := filepath.Join(filepath.Dir(e.executable), "rules.yaml")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "rules.yaml"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version", "Prints the version of sesrouter and of Go it was built with.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sesrouter version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	version, goVersion := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && version == "(devel)" {
				version = "(devel " + s.Value[:min(12, len(s.Value))] + ")"
			}
		}
	}
	fmt.Fprintf(stdout, "sesrouter %s %s\n", version, goVersion)
	return exitOK
}
