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
	secSkip   = "skip" // the reason to skip the scenario, such as a known bug
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
// An archive with a skip section is skipped (and not updated), its text
// being the reason: a known bug, with the golden sections holding the
// output expected once it is fixed.
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
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ar := parseTxtar(src)
	if ar.get(secRules) == nil {
		t.Fatalf("%s: no %s section", path, secRules)
	}
	if reason := ar.get(secSkip); reason != nil {
		t.Skip(strings.TrimSpace(string(reason)))
	}

	work := t.TempDir()
	var inputs []string
	for _, f := range ar.Files {
		switch f.Name {
		case secArgs, secStdin, secStdout, secStderr, secExit, secSkip:
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
	if a := ar.get(secArgs); a != nil {
		args = string(a)
	}
	argv := append([]string{"route", "-rules", secRules}, strings.Fields(args)...)
	argv = append(argv, inputs...)

	t.Chdir(work)
	var stdout, stderr bytes.Buffer
	code := run(argv, bytes.NewReader(ar.get(secStdin)), &stdout, &stderr, testEnv(nil))
	gotErr := normaliseStderr(stderr.String())
	gotExit := strconv.Itoa(code) + "\n"

	if *update {
		ar.set(secStdout, stdout.Bytes())
		ar.set(secStderr, []byte(gotErr))
		ar.set(secExit, []byte(gotExit))
		if err := os.WriteFile(path, ar.format(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := ar.get(secStdout); want == nil {
		t.Errorf("no %s section: run go test -update", secStdout)
	} else if got := stdout.String(); got != string(want) {
		t.Errorf("sesrouter %s\nstdout differs from %s (run go test -update to accept):\n%s",
			strings.Join(argv, " "), secStdout, lineDiff(string(want), got))
	}
	if want := ar.get(secStderr); want != nil && gotErr != string(want) {
		t.Errorf("sesrouter %s\nstderr differs from %s:\n%s", strings.Join(argv, " "), secStderr, lineDiff(string(want), gotErr))
	}
	wantExit := "0\n"
	if e := ar.get(secExit); e != nil {
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

// txtar is a txtar archive: a comment, then files, each introduced by a
// line "-- NAME --". (The format of golang.org/x/tools/txtar, without the
// dependency.)
type txtar struct {
	Comment []byte
	Files   []txtarFile
}

type txtarFile struct {
	Name string
	Data []byte
}

// parseTxtar parses an archive. It never fails: text before the first
// marker is the comment, and every file's data ends with a newline.
func parseTxtar(src []byte) *txtar {
	a := new(txtar)
	var cur *[]byte = &a.Comment
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i+1], src[i+1:]
		} else {
			src = nil
		}
		if name, ok := txtarMarker(line); ok {
			a.Files = append(a.Files, txtarFile{Name: name})
			cur = &a.Files[len(a.Files)-1].Data
			continue
		}
		*cur = append(*cur, line...)
	}
	for i := range a.Files {
		a.Files[i].Data = fixNL(a.Files[i].Data)
	}
	a.Comment = fixNL(a.Comment)
	return a
}

// txtarMarker reports whether line is "-- NAME --" and returns NAME.
func txtarMarker(line []byte) (string, bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	name := strings.TrimSpace(s[3 : len(s)-3])
	return name, name != ""
}

func fixNL(b []byte) []byte {
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return b
	}
	return append(b, '\n')
}

// get returns the data of the named file, or nil when there is none.
func (a *txtar) get(name string) []byte {
	for _, f := range a.Files {
		if f.Name == name {
			if f.Data == nil {
				return []byte{}
			}
			return f.Data
		}
	}
	return nil
}

// set replaces the data of the named file, or appends the file.
func (a *txtar) set(name string, data []byte) {
	for i := range a.Files {
		if a.Files[i].Name == name {
			a.Files[i].Data = fixNL(bytes.Clone(data))
			return
		}
	}
	a.Files = append(a.Files, txtarFile{Name: name, Data: fixNL(bytes.Clone(data))})
}

// format returns the archive's text.
func (a *txtar) format() []byte {
	var b bytes.Buffer
	b.Write(fixNL(a.Comment))
	for _, f := range a.Files {
		fmt.Fprintf(&b, "-- %s --\n", f.Name)
		b.Write(fixNL(f.Data))
	}
	return b.Bytes()
}

func TestTxtarRoundTrip(t *testing.T) {
	tests := []struct {
		name, src string
		comment   string
		files     []string // name=data pairs
	}{
		{"empty", "", "", nil},
		{"comment only", "a comment\n", "a comment\n", nil},
		{"files", "c\n-- a --\nx\ny\n-- b.json --\n{}\n", "c\n", []string{"a=x\ny\n", "b.json={}\n"}},
		{"no final newline", "-- a --\nx", "", []string{"a=x\n"}},
		{"empty file", "-- a --\n-- b --\nz\n", "", []string{"a=", "b=z\n"}},
		{"marker-like text", "-- a --\n--not a marker--\n-- --\n", "", []string{"a=--not a marker--\n-- --\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseTxtar([]byte(tt.src))
			if string(a.Comment) != tt.comment {
				t.Errorf("comment = %q, want %q", a.Comment, tt.comment)
			}
			var got []string
			for _, f := range a.Files {
				got = append(got, f.Name+"="+string(f.Data))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.files) {
				t.Errorf("files = %q, want %q", got, tt.files)
			}
			again := parseTxtar(a.format())
			if !bytes.Equal(again.format(), a.format()) {
				t.Errorf("format is not stable:\n%s\nthen\n%s", a.format(), again.format())
			}
		})
	}
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
