package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/internal/awstest"
)

// TestMain keeps the AWS SDK of every in-process run on loopback: no
// credentials, configuration or instance metadata of the machine running
// the tests is found. A test that needs SES points the SDK at the SES fake
// (actionstest.SES.Setenv); one that needs no credentials gets none.
func TestMain(m *testing.M) {
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_RUNTIME_API", "SESROUTER_RULES"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

// testEnv returns an env whose getenv reads vars, with no executable,
// neither stdout nor stderr a terminal, and signals never delivered.
func testEnv(vars map[string]string) env {
	return env{
		getenv: func(k string) string { return vars[k] },
		notify: func(chan<- os.Signal, ...os.Signal) {},
		stop:   func(chan<- os.Signal) {},
	}
}

// cliResult is what one in-process run of sesrouter gave.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs sesrouter with args in-process.
func runCLI(t testing.TB, e env, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr, e)
	return cliResult{code, stdout.String(), stderr.String()}
}

// writeFile writes a file under dir, making its folder, and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// handlerRules are the rules of the original bounce handler, a fixture
// with the semantics of the shipped rules.yaml (which only the
// shipped-rules test reads), posting without pace.
const handlerRules = "../../testdata/rules/handler.yaml"

// readHandlerRules returns the text of handlerRules.
func readHandlerRules(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(handlerRules)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// minimalRules is a valid rules file with one rule.
const minimalRules = `version: 1
rules:
  - name: drop-all
    when: "true"
    actions: [drop]
`

// badRules has four problems: a misspelt name in an expression, an
// unknown key, an unknown destination and a duplicate rule name.
const badRules = `version: 1

destinations:
  ses-alerts:
    slack:
      channel: C0123456789

rules:
  - name: hard-bounce
    when: event.type == "Bounce" && recipent.domain == "example.com"
    actions: [suppress]

  - name: soft-bounce
    when: event.type == "Bounce"
    priority: 2
    actions: [log]

  - name: complaints
    when: event.type == "Complaint"
    actions: [{notify: ses-alert}]

  - name: hard-bounce
    when: "true"
    actions: [log]
`

const badRulesReport = `bad.yaml:10:37: rule "hard-bounce": unknown name recipent; did you mean recipient? (names: event, mail, bounce, complaint, delivery, delay, reject, failure, open, click, subscription, recipient, lists, history, glob, inDomain)
bad.yaml:15:5: rule "soft-bounce": unknown key "priority" (want name, when, actions or continue)
bad.yaml:20:24: rule "complaints": unknown destination "ses-alert" (defined: ses-alerts)
bad.yaml:22:11: rule "hard-bounce": duplicate rule name (first used at line 9)
bad.yaml: 4 problems
`

// bounceLine is one identity bounce notification for a@example.org, on
// one line.
const bounceLine = `{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"a@example.org"}],"timestamp":"2024-05-01T10:00:02.000Z","feedbackId":"fb-1"},"mail":{"timestamp":"2024-05-01T10:00:00.000Z","source":"shop@example.net","messageId":"m-1","destination":["a@example.org"]}}` + "\n"

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.yaml", badRules)
	writeFile(t, dir, "good.yaml", minimalRules)
	fixture, err := filepath.Abs(handlerRules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // a regular expression, matched against all of stdout
		wantStderr string // exact
	}{
		{
			name:       "the handler's rules are ok",
			args:       []string{"check", "-rules", fixture},
			wantCode:   exitOK,
			wantStdout: `^` + regexp.QuoteMeta(fixture) + `: ok: 3 rules, 1 destination, 2 lists\n$`,
		},
		{
			name:       "counts are singular for one",
			args:       []string{"check", "-rules", "good.yaml"},
			wantCode:   exitOK,
			wantStdout: `^good\.yaml: ok: 1 rule, 0 destinations, 0 lists\n$`,
		},
		{
			name:       "flags after the command's arguments",
			args:       []string{"check", "-strict", "-rules", "good.yaml"},
			wantCode:   exitOK,
			wantStdout: `^good\.yaml: ok: 1 rule, 0 destinations, 0 lists\n$`,
		},
		{
			name:       "four problems, each with FILE:LINE:COL",
			args:       []string{"check", "-rules", "bad.yaml"},
			wantCode:   exitUsage,
			wantStdout: `^$`,
			wantStderr: badRulesReport,
		},
		{
			name:       "route reports the same problems",
			args:       []string{"route", "-dry-run", "-rules", "bad.yaml"},
			wantCode:   exitUsage,
			wantStdout: `^$`,
			wantStderr: badRulesReport,
		},
		{
			name:       "missing rules file",
			args:       []string{"check", "-rules", "nope.yaml"},
			wantCode:   exitUsage,
			wantStdout: `^$`,
			wantStderr: "sesrouter: rules: open nope.yaml: no such file or directory\n",
		},
		{
			name:       "unexpected argument",
			args:       []string{"check", "-rules", "good.yaml", "extra"},
			wantCode:   exitUsage,
			wantStdout: `^$`,
			wantStderr: "sesrouter check: unexpected argument \"extra\"\n",
		},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(nil), "", tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			if !regexp.MustCompile(tt.wantStdout).MatchString(r.stdout) {
				t.Errorf("stdout = %q, want a match for %s", r.stdout, tt.wantStdout)
			}
			if r.stderr != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string // a substring of stdout ("" for none)
		wantStderr string // a substring of stderr ("" for none)
	}{
		{"check -h", []string{"check", "-h"}, "", "Usage: sesrouter check [-rules FILE] [-strict]\n"},
		{"route -h", []string{"route", "-h"}, "", "Usage: sesrouter route [-rules FILE] [-dry-run] [-explain] [-format text|json|html] [FILE ...]\n"},
		{"route -help", []string{"route", "-help"}, "", "  -dry-run\n"},
		{"version -h", []string{"version", "-h"}, "", "Usage: sesrouter version\n"},
		{"-h", []string{"-h"}, "Usage:\n  sesrouter route ", ""},
		{"help", []string{"help"}, "Usage:\n  sesrouter route ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(nil), "", tt.args...)
			if r.code != exitOK {
				t.Errorf("exit status %d, want 0", r.code)
			}
			check := func(stream, got, want string) {
				t.Helper()
				if want == "" && got != "" {
					t.Errorf("%s = %q, want nothing", stream, got)
				}
				if !strings.Contains(got, want) {
					t.Errorf("%s = %q, want it to contain %q", stream, got, want)
				}
			}
			check("stdout", r.stdout, tt.wantStdout)
			check("stderr", r.stderr, tt.wantStderr)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantStderr string // a substring of stderr
	}{
		{"unknown flag of route", []string{"route", "-dry-run", "-bogus"}, nil, "flag provided but not defined: -bogus\nRun 'sesrouter route -h' for its flags.\n"},
		{"unknown flag of route after a file", []string{"route", "x.json", "-bogus"}, nil, "flag provided but not defined: -bogus\nRun 'sesrouter route -h' for its flags.\n"},
		{"unknown flag of check", []string{"check", "-bogus"}, nil, "flag provided but not defined: -bogus\nRun 'sesrouter check -h' for its flags.\n"},
		{"unknown flag of version", []string{"version", "-bogus"}, nil, "flag provided but not defined: -bogus\n"},
		{"unknown command", []string{"frob"}, nil, "sesrouter: unknown command \"frob\"\n\nsesrouter routes Amazon SES feedback"},
		{"route without the webhook URL", []string{"route", "-rules", handlerRules, "-"}, nil,
			"sesrouter route: cannot carry out the actions:\n  destination \"ses-alerts\" posts to the incoming webhook in $SLACK_WEBHOOK_URL, but SLACK_WEBHOOK_URL is not set"},
		{"route with a webhook variable that is not a URL", []string{"route", "-rules", handlerRules, "-"},
			map[string]string{"SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/not-a-url-secret"},
			"destination \"ses-alerts\": $SLACK_WEBHOOK_URL does not hold an http(s) URL"},
		{"bad log level", []string{"route", "-rules", handlerRules, "-"}, map[string]string{"SESROUTER_LOG_LEVEL": "loud"},
			"SESROUTER_LOG_LEVEL is debug, info, warn or error, not \"loud\""},
		{"-format xml", []string{"route", "-dry-run", "-format", "xml"}, nil, "sesrouter route: -format is text, json or html, not \"xml\"\n"},
		{"no arguments", nil, nil, "Usage:\n  sesrouter route "},
		{"no arguments in Lambda runs lambda, whose init fails without rules", nil, map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"},
			"sesrouter: rules: open rules.yaml: no such file or directory"},
		{"lambda in Lambda without rules fails init", []string{"lambda"}, map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"},
			"sesrouter: rules: open rules.yaml: no such file or directory"},
		{"unknown flag of lambda", []string{"lambda", "-bogus"}, nil, "flag provided but not defined: -bogus"},
		{"serve without rules", []string{"serve"}, nil, "sesrouter: rules: open rules.yaml: no such file or directory"},
		{"unknown flag of serve", []string{"serve", "-bogus"}, nil, "flag provided but not defined: -bogus"},
		{"test of a missing file", []string{"test", "x.yaml"}, nil, "sesrouter: test file: open x.yaml: no such file or directory\n"},
		{"test without a file", []string{"test"}, nil, "sesrouter test: no test file given\nUsage: sesrouter test "},
		{"test with a bad -run", []string{"test", "-run", "(", "x.yaml"}, nil, "sesrouter test: -run: error parsing regexp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, testEnv(tt.env), "", tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want %d", r.code, exitUsage)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.wantStderr)
			}
			for name, v := range tt.env {
				if strings.Contains(v, "secret") && strings.Contains(r.stderr, v) {
					t.Errorf("stderr shows the value of %s: %q", name, r.stderr)
				}
			}
		})
	}
}

// TestRulesLookup checks the order in which the rules file is found:
// -rules, then $SESROUTER_RULES, then rules.yaml in the working folder,
// then rules.yaml beside the executable. check prints the file it loaded.
func TestRulesLookup(t *testing.T) {
	tests := []struct {
		name     string
		flag     bool // pass -rules flag.yaml
		envVar   bool // set SESROUTER_RULES to env.yaml
		cwd      bool // rules.yaml in the working folder
		exe      bool // rules.yaml beside the executable
		want     string
		wantCode int
	}{
		{"flag first", true, true, true, true, "flag.yaml", exitOK},
		{"then SESROUTER_RULES", false, true, true, true, "env.yaml", exitOK},
		{"then the working folder", false, false, true, true, "rules.yaml", exitOK},
		{"then beside the executable", false, false, false, true, "EXE/rules.yaml", exitOK},
		{"none: rules.yaml in the working folder is missing", false, false, false, false, "", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			cwd := filepath.Join(root, "work")
			exeDir := filepath.Join(root, "bin")
			for _, d := range []string{cwd, exeDir} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// The flag and variable files exist in every case, so that only
			// the lookup order decides.
			writeFile(t, cwd, "flag.yaml", minimalRules)
			writeFile(t, cwd, "env.yaml", minimalRules)
			if tt.cwd {
				writeFile(t, cwd, "rules.yaml", minimalRules)
			}
			if tt.exe {
				writeFile(t, exeDir, "rules.yaml", minimalRules)
			}
			vars := map[string]string{}
			if tt.envVar {
				vars["SESROUTER_RULES"] = "env.yaml"
			}
			e := testEnv(vars)
			e.executable = filepath.Join(exeDir, "sesrouter")
			args := []string{"check"}
			if tt.flag {
				args = append(args, "-rules", "flag.yaml")
			}
			t.Chdir(cwd)

			r := runCLI(t, e, "", args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit status %d, want %d\nstderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantCode != exitOK {
				want := "sesrouter: rules: open rules.yaml: no such file or directory\n"
				if r.stderr != want {
					t.Errorf("stderr = %q, want %q", r.stderr, want)
				}
				return
			}
			want := strings.Replace(tt.want, "EXE", exeDir, 1) + ": ok: 1 rule, 0 destinations, 0 lists\n"
			if r.stdout != want {
				t.Errorf("stdout = %q, want %q", r.stdout, want)
			}
		})
	}
}

// TestVersion checks the version command and its two flag spellings at
// the top: one line on stdout, the same for all three.
func TestVersion(t *testing.T) {
	var first string
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		r := runCLI(t, testEnv(nil), "", args...)
		if r.code != exitOK {
			t.Errorf("%s: exit status %d, want 0", args[0], r.code)
		}
		if !strings.HasPrefix(r.stdout, "sesrouter ") || strings.Count(r.stdout, "\n") != 1 || !strings.HasSuffix(r.stdout, "\n") {
			t.Errorf("%s: stdout = %q, want one line starting with %q", args[0], r.stdout, "sesrouter ")
		}
		if first == "" {
			first = r.stdout
		} else if r.stdout != first {
			t.Errorf("%s: stdout = %q, want what version prints, %q", args[0], r.stdout, first)
		}
		if r.stderr != "" {
			t.Errorf("%s: stderr = %q, want nothing", args[0], r.stderr)
		}
	}
}

// TestRouteInputs checks which inputs route reads and how it names them:
// files in order, "-" and no FILE for standard input, flags after the
// files, "--" before a file whose name starts with "-", and a file that
// cannot be opened, which stops the run before anything is read.
func TestRouteInputs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "rules.yaml", minimalRules)
	writeFile(t, dir, "a.json", bounceLine)
	writeFile(t, dir, "b.ndjson", bounceLine+"\n"+bounceLine)
	writeFile(t, dir, "-dashfile", bounceLine)
	if err := os.Mkdir(filepath.Join(dir, "folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantInputs []string
		wantStderr string // a substring of stderr
	}{
		{"no FILE reads stdin", nil, bounceLine + bounceLine, exitOK, []string{"stdin:1", "stdin:2"}, "2 notifications"},
		{"- reads stdin", []string{"-"}, bounceLine, exitOK, []string{"stdin:1"}, "1 notification"},
		{"- between files", []string{"a.json", "-", "b.ndjson"}, bounceLine, exitOK,
			[]string{"a.json:1", "stdin:1", "b.ndjson:1", "b.ndjson:3"}, "4 notifications"},
		{"flags after the files", []string{"a.json", "-format", "json", "b.ndjson", "-dry-run"}, "", exitOK,
			[]string{"a.json:1", "b.ndjson:1", "b.ndjson:3"}, "3 notifications"},
		{"-- ends the flags", []string{"a.json", "--", "-dashfile"}, "", exitOK, []string{"a.json:1", "-dashfile:1"}, "2 notifications"},
		{"empty stdin", nil, "", exitOK, nil, "0 notifications (0 recipients), 0 skipped, 0 failed"},
		{"missing file: nothing is read", []string{"a.json", "missing.json", "b.ndjson"}, "", exitUsage, nil,
			"sesrouter route: open missing.json: no such file or directory\n"},
		{"a file that fails while read has a line of its own; the others are read", []string{"a.json", "folder", "b.ndjson"}, "", exitFailed,
			[]string{"a.json:1", "folder", "b.ndjson:1", "b.ndjson:3"}, "3 notifications (3 recipients), 0 skipped, 1 failed"},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"route", "-dry-run", "-format", "json"}, tt.args...)
			r := runCLI(t, testEnv(nil), tt.stdin, args...)
			if r.code != tt.wantCode {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
				if m := regexp.MustCompile(`^\{"input":"([^"]*)"`).FindStringSubmatch(line); m != nil {
					got = append(got, m[1])
				} else if line != "" {
					t.Errorf("unexpected stdout line %q", line)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.wantInputs, " ") {
				t.Errorf("inputs %q, want %q", got, tt.wantInputs)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.wantStderr)
			}
		})
	}
}
