package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the golden sections of testdata/scenarios/*.txtar")

// scenarioDir holds the scenario archives, relative to this package.
const scenarioDir = "../../testdata/scenarios"

// The sections of a scenario archive that are not route inputs.
const (
	secRules  = "rules.yaml"
	secArgs   = "args"
	secStdin  = "stdin"
	secStdout = "stdout.golden"
	secStderr = "stderr.golden"
	secExit   = "exit"
)

const defaultArgs = "-dry-run -format json"

// TestScenarios runs every testdata/scenarios/*.txtar archive: it extracts
// the archive into a temporary folder, changes into it, runs
//
//	sesrouter route -rules rules.yaml ARGS INPUT...
//
// in-process, where ARGS is the args section (default "-dry-run -format
// json") and the INPUTs are the other sections in archive order (the
// stdin section, if any, is standard input), and compares standard output,
// standard error (its duration normalised) and the exit status with the
// golden sections. With -update it rewrites the golden sections instead.
func TestScenarios(t *testing.T) {
	dir, err := filepath.Abs(scenarioDir)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no scenarios in %s", dir)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		t.Run(name, func(t *testing.T) {
			runScenario(t, path)
		})
	}
}

func runScenario(t *testing.T, path string) {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if section(ar, secRules) == nil {
		t.Fatalf("%s: no %s section", path, secRules)
	}

	work := t.TempDir()
	var inputs []string
	for _, f := range ar.Files {
		switch f.Name {
		case secArgs, secStdin, secStdout, secStderr, secExit:
			continue
		case secRules:
		default:
			inputs = append(inputs, f.Name)
		}
		p := filepath.Join(work, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := defaultArgs
	if a := section(ar, secArgs); a != nil {
		args = string(a)
	}
	argv := append([]string{"route", "-rules", secRules}, strings.Fields(args)...)
	argv = append(argv, inputs...)

	t.Chdir(work)
	var stdout, stderr bytes.Buffer
	code := run(argv, bytes.NewReader(section(ar, secStdin)), &stdout, &stderr, testEnv(nil))
	gotErr := normaliseStderr(stderr.String())
	gotExit := strconv.Itoa(code) + "\n"

	if *update {
		setSection(ar, secStdout, stdout.Bytes())
		setSection(ar, secStderr, []byte(gotErr))
		setSection(ar, secExit, []byte(gotExit))
		if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := section(ar, secStdout); want == nil {
		t.Errorf("no %s section: run go test -update", secStdout)
	} else if got := stdout.String(); got != string(want) {
		t.Errorf("sesrouter %s\nstdout differs from %s (run go test -update to accept):\n%s",
			strings.Join(argv, " "), secStdout, lineDiff(string(want), got))
	}
	if want := section(ar, secStderr); want != nil && gotErr != string(want) {
		t.Errorf("sesrouter %s\nstderr differs from %s:\n%s", strings.Join(argv, " "), secStderr, lineDiff(string(want), gotErr))
	}
	wantExit := "0\n"
	if e := section(ar, secExit); e != nil {
		wantExit = strings.TrimSpace(string(e)) + "\n"
	}
	if gotExit != wantExit {
		t.Errorf("sesrouter %s: exit status %s, want %s", strings.Join(argv, " "), strings.TrimSpace(gotExit), strings.TrimSpace(wantExit))
	}
}

// durationRE matches the duration at the end of route's summary line.
var durationRE = regexp.MustCompile(`(?m)(, in )[0-9][0-9.]*(ns|µs|us|ms|s|m[0-9.]+s|h[0-9m.]+s)$`)

// normaliseStderr replaces the run time in route's summary line ("in
// 3ms") by "in DURATION", so that the summary can be compared.
func normaliseStderr(s string) string {
	return durationRE.ReplaceAllString(s, "${1}DURATION")
}

// lineDiff shows where want and got part: the first differing line with a
// little context, and both lengths.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d (want %d lines, got %d)\n", i+1, len(wl), len(gl))
	for j := max(0, i-2); j < i; j++ {
		fmt.Fprintf(&b, "    %s\n", wl[j])
	}
	for j := i; j < min(i+3, len(wl)); j++ {
		fmt.Fprintf(&b, "  - %s\n", wl[j])
	}
	for j := i; j < min(i+3, len(gl)); j++ {
		fmt.Fprintf(&b, "  + %s\n", gl[j])
	}
	return b.String()
}

// section returns the data of the archive's file name, or nil when there
// is none (an empty file's data is empty, not nil).
func section(ar *txtar.Archive, name string) []byte {
	for _, f := range ar.Files {
		if f.Name == name {
			if f.Data == nil {
				return []byte{}
			}
			return f.Data
		}
	}
	return nil
}

// setSection replaces the data of the archive's file name, or appends the
// file, ending the data with a newline as txtar.Format would.
func setSection(ar *txtar.Archive, name string, data []byte) {
	data = bytes.Clone(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}

func TestNormaliseStderr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sesrouter route: 1 notification (1 recipient), 0 skipped, 0 failed, in 3ms\n",
			"sesrouter route: 1 notification (1 recipient), 0 skipped, 0 failed, in DURATION\n"},
		{"x, in 0s\n", "x, in DURATION\n"},
		{"x, in 1.234s\n", "x, in DURATION\n"},
		{"x, in 2m3.5s\n", "x, in DURATION\n"},
		{"error: in 3ms of reading\n", "error: in 3ms of reading\n"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.in), func(t *testing.T) {
			if got := normaliseStderr(tt.in); got != tt.want {
				t.Errorf("normaliseStderr(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
