package main

import (
	"slices"
	"strings"
	"testing"
)

// A command line that cannot misfire, tried live: the fakes of Slack and
// SES are up and sesrouter has every credential it needs, so that any
// argument taken the wrong way would act for real.

// flagRules unsuppress and notify every bounce; the rule's name says
// which rules file routed it.
const flagRules = `version: 1
destinations:
  hook:
    slack:
      webhook_env: SLACK_WEBHOOK_TEST
      pace: 0s
rules:
  - name: RULENAME
    when: event.type == "Bounce"
    actions: [unsuppress, {notify: hook}]
`

// TestRouteLiveFlagsAnywhere runs route live with flags after the file,
// "--", "-", an unknown flag and a file that cannot be opened, and checks
// the exit status, which rules routed what, and what the fakes saw.
func TestRouteLiveFlagsAnywhere(t *testing.T) {
	tests := []struct {
		name  string
		args  []string // in the folder with rules.yaml, other.yaml, events.ndjson and -dashfile
		stdin string
		code  int
		// rules is the rule every line was routed by; "" when none is
		// routed.
		rules string
		// posts is how many posts Slack gets, and SES calls how many.
		posts, sesCalls int
		stderr          string // a substring of stderr
	}{
		{"-dry-run after the file acts on nothing", []string{"events.ndjson", "-dry-run", "-format", "json"}, "",
			exitOK, "default", 0, 0, "; dry-run 4, in "},
		{"-rules after the file is the rules", []string{"events.ndjson", "-rules", "other.yaml", "-format", "json"}, "",
			exitOK, "other", 2, 2, "; not-suppressed 2, posted 2, in "},
		{"an unknown flag after the file acts on nothing", []string{"events.ndjson", "-nope"}, "",
			exitUsage, "", 0, 0, "flag provided but not defined: -nope\n"},
		{"-- ends the flags: -dashfile is a file", []string{"-format", "json", "--", "-dashfile"}, "",
			exitOK, "default", 1, 1, "1 notification"},
		{"- is standard input", []string{"-format", "json", "-"}, liveBounce(t, "m-stdin", "stdin@example.com"),
			exitOK, "default", 1, 1, "1 notification"},
		{"a missing file among several stops the run before it acts", []string{"events.ndjson", "missing.json", "--", "-dashfile"}, "",
			exitUsage, "", 0, 0, "sesrouter route: open missing.json: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startLiveFakes(t)
			dir := t.TempDir()
			writeFile(t, dir, "rules.yaml", strings.ReplaceAll(flagRules, "RULENAME", "default"))
			writeFile(t, dir, "other.yaml", strings.ReplaceAll(flagRules, "RULENAME", "other"))
			writeFile(t, dir, "events.ndjson", liveBounce(t, "m-1", "a@example.com")+liveBounce(t, "m-2", "b@example.com"))
			writeFile(t, dir, "-dashfile", liveBounce(t, "m-dash", "dash@example.com"))
			t.Chdir(dir)
			r := runCLI(t, testEnv(f.vars), tt.stdin, append([]string{"route"}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr:\n%s\nwant it to contain %q", r.stderr, tt.stderr)
			}
			if tt.rules == "" && r.stdout != "" {
				t.Errorf("stdout:\n%s\nwant nothing", r.stdout)
			}
			if tt.rules != "" && strings.Contains(strings.Join(tt.args, " "), "json") {
				for _, l := range parseLines(t, r.stdout) {
					for _, rc := range l.Recipients {
						if rc.Rules == nil || !slices.Equal(rc.Rules, []string{tt.rules}) {
							t.Errorf("%s: %s routed by %q, want %q", l.Input, rc.Address, rc.Rules, tt.rules)
						}
					}
				}
			}
			if n := len(f.slack.Posts()); n != tt.posts {
				t.Errorf("Slack got %d posts, want %d", n, tt.posts)
			}
			if n := len(f.ses.Calls()); n != tt.sesCalls {
				t.Errorf("SES got %d calls %q, want %d", n, sesOps(f), tt.sesCalls)
			}
			checkNoSecrets(t, r, f.secrets()...)
		})
	}
}

// TestRouteLiveNoCredentials runs route live with rules that unsuppress
// and no AWS credentials anywhere (no keys, no profile, IMDS disabled, a
// region): one line names the missing credentials, exit status 2, before
// any post to Slack.
func TestRouteLiveNoCredentials(t *testing.T) {
	f := startLiveFakes(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_SESV2"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "eu-west-1")
	empty := writeFile(t, t.TempDir(), "empty", "")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	r := routeLive(t, f, strings.ReplaceAll(flagRules, "RULENAME", "keep"), liveBounce(t, "m-1", "a@example.com"))
	if r.code != exitUsage {
		t.Errorf("exit status %d, want 2", r.code)
	}
	var named []string
	for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
		if strings.Contains(l, "no AWS credentials") {
			named = append(named, l)
		}
	}
	if len(named) != 1 || strings.Count(r.stderr, "\n") > 2 || r.stdout != "" {
		t.Errorf("stdout %q, stderr:\n%s\nwant one line naming the missing credentials (under the one saying the actions cannot be carried out)", r.stdout, r.stderr)
	}
	if n := len(f.slack.Posts()) + len(f.ses.Calls()); n != 0 {
		t.Errorf("%d posts and SES calls, want none", n)
	}
}

// TestRouteLiveReadsAWSOnlyForSES runs route live with an AWS
// configuration file the SDK cannot read: rules that never call SES run
// (nothing of AWS is read), rules that unsuppress stop at start with the
// reason, exit status 2, before any post or SES call.
func TestRouteLiveReadsAWSOnlyForSES(t *testing.T) {
	f := startLiveFakes(t)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()) // a folder, not a file
	noSES := strings.ReplaceAll(strings.ReplaceAll(flagRules, "RULENAME", "notify"), "unsuppress, ", "")
	r := routeLive(t, f, noSES, liveBounce(t, "m-1", "a@example.com"))
	if r.code != exitOK || len(f.slack.Posts()) != 1 {
		t.Errorf("rules without SES: exit status %d, %d posts, stderr:\n%s\nwant 0 and 1 post", r.code, len(f.slack.Posts()), r.stderr)
	}
	r = routeLive(t, f, strings.ReplaceAll(flagRules, "RULENAME", "keep"), liveBounce(t, "m-2", "b@example.com"))
	if r.code != exitUsage || !strings.Contains(r.stderr, "SES is needed") || !strings.Contains(r.stderr, "the AWS configuration cannot be read") {
		t.Errorf("rules that unsuppress: exit status %d, stderr:\n%s\nwant 2 and the AWS configuration named", r.code, r.stderr)
	}
	if n, m := len(f.slack.Posts()), len(f.ses.Calls()); n != 1 || m != 0 {
		t.Errorf("%d posts and %d SES calls in all, want 1 and 0", n, m)
	}
}
