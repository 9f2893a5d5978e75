// Package docs holds sesrouter's documentation, one page per task, and
// the test that runs every command the pages (and the README) show, so
// that they cannot go stale.
package docs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/internal/awstest"
)

// A runnable block is a fenced block whose info string is "sh run" (or
// "sh run exit=N" for a command that must exit N): the test runs it with
// bash, in a fresh copy of the repository with sesrouter on PATH, and, when
// an "output" block follows it, compares what it printed (standard output
// and error together) with that block. In an expected line, "…" matches
// any text (a duration, a path); a line that is only "⋮" matches any
// number of lines, none included, so that a page can show an excerpt of a
// long output. Blocks run in file order, in one copy per file, so a block
// sees what the blocks before it changed. A block that names an S3 object
// (s3://BUCKET/…) runs against moto_server on loopback, where each bucket
// the page's blocks name is made new and versioned before the first
// block: such commands are run too, without AWS.
//
//	```sh run
//	sesrouter check
//	```
//	```output
//	rules.yaml: ok: 3 rules, 1 destination, 2 lists
//	```

// block is one runnable block of a page.
type block struct {
	line   int // of the opening fence
	script string
	exit   int
	output *string // nil: not compared
}

// parseBlocks finds the runnable blocks of a Markdown page, each with
// the output block that directly follows it (blank lines between).
func parseBlocks(t *testing.T, name string, src []byte) []block {
	t.Helper()
	var blocks []block
	fence := regexp.MustCompile("^```(\\S*)\\s*(.*)$")
	var (
		cur     *block // the runnable block being read
		output  bool   // reading the output block of the last runnable one
		inFence bool
		pending bool // the last thing was a runnable block: an output block may follow
		body    strings.Builder
	)
	for i, text := range strings.Split(string(src), "\n") {
		line := i + 1
		m := fence.FindStringSubmatch(text)
		switch {
		case m != nil && inFence: // a closing fence
			inFence = false
			switch {
			case output:
				out := body.String()
				blocks[len(blocks)-1].output = &out
				output = false
			case cur != nil:
				cur.script = body.String()
				blocks = append(blocks, *cur)
				cur, pending = nil, true
				continue
			}
			pending = false
		case m != nil: // an opening fence
			inFence = true
			body.Reset()
			lang, rest := m[1], strings.Fields(m[2])
			switch {
			case lang == "sh" && len(rest) > 0 && rest[0] == "run":
				cur = &block{line: line}
				for _, f := range rest[1:] {
					v, ok := strings.CutPrefix(f, "exit=")
					n, err := strconv.Atoi(v)
					if !ok || err != nil {
						t.Fatalf("%s:%d: unknown %q after sh run (want exit=N)", name, line, f)
					}
					cur.exit = n
				}
			case lang == "output" && pending:
				output = true
			}
			pending = false
		case inFence:
			body.WriteString(text)
			body.WriteByte('\n')
		case strings.TrimSpace(text) != "":
			pending = false
		}
	}
	if inFence {
		t.Fatalf("%s: a fence is never closed", name)
	}
	return blocks
}

// matches reports whether got matches the expected output, line by line;
// "…" in a line stands for any text, and a line that is only "⋮" for any
// number of lines.
func matches(want, got string) bool {
	w := strings.Split(strings.TrimRight(want, "\n"), "\n")
	g := strings.Split(strings.TrimRight(got, "\n"), "\n")
	return matchLines(w, g)
}

// elision is the expected line that stands for any number of lines.
const elision = "⋮"

func matchLines(w, g []string) bool {
	if len(w) == 0 {
		return len(g) == 0
	}
	if strings.TrimSpace(w[0]) == elision {
		for k := 0; k <= len(g); k++ {
			if matchLines(w[1:], g[k:]) {
				return true
			}
		}
		return false
	}
	return len(g) > 0 && matchLine(w[0], g[0]) && matchLines(w[1:], g[1:])
}

// matchLine reports whether one line got matches the expected line want.
func matchLine(want, got string) bool {
	parts := strings.Split(strings.TrimRight(want, " "), "…")
	for k, p := range parts {
		parts[k] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(strings.TrimRight(got, " "))
}

// pages are the README and every page under docs.
func pages(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join("..", "README.md")}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binDir holds the sesrouter binary the tests build, once.
var binDir string

var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sesrouter-docs-")
	if err != nil {
		return "", err
	}
	binDir = dir
	path := filepath.Join(dir, "sesrouter")
	build := exec.Command("go", "build", "-o", path, "./cmd/sesrouter")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return path, nil
})

// binary is the path of a sesrouter built from this tree.
func binary(t *testing.T) string {
	t.Helper()
	path, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDocs runs every runnable block of the README and the docs.
func TestDocs(t *testing.T) {
	bin := filepath.Dir(binary(t))
	total := 0
	for _, page := range pages(t) {
		src, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		blocks := parseBlocks(t, page, src)
		total += len(blocks)
		if len(blocks) == 0 {
			continue
		}
		t.Run(filepath.Base(page), func(t *testing.T) {
			dir := copyRepo(t)
			s3 := s3Env(t, blocks)
			for _, b := range blocks {
				runBlock(t, page, dir, bin, b, s3)
			}
		})
	}
	if total < 10 {
		t.Errorf("only %d runnable blocks in the README and docs: the parser missed them", total)
	}
}

// goEnv is the Go environment of the blocks: the build and module caches
// of the go command running the test (HOME is a fresh folder), no
// toolchain download and no module proxy, so that a block's "go run"
// builds from what the test's own build used, offline.
var goEnv = sync.OnceValues(func() ([]string, error) {
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS").Output()
	if err != nil {
		return nil, err
	}
	v := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(v) != 4 {
		return nil, fmt.Errorf("go env printed %q", out)
	}
	return []string{"GOCACHE=" + v[0], "GOMODCACHE=" + v[1], "GOPATH=" + v[2], "GOFLAGS=" + v[3],
		"GOTOOLCHAIN=local", "GOPROXY=off"}, nil
})

func mustGoEnv(t *testing.T) []string {
	t.Helper()
	env, err := goEnv()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	return env
}

// bucketRE finds the buckets a block names.
var bucketRE = regexp.MustCompile(`s3://([a-z0-9][a-z0-9.-]*)/`)

// s3Env makes, in moto_server (internal/awstest), each bucket the
// runnable blocks name in an s3:// URI, new and versioned, and returns
// the environment that points the AWS SDK of a block at moto; nil when no
// block names one. A block that names S3 so talks to moto on loopback,
// never to AWS.
func s3Env(t *testing.T, blocks []block) []string {
	t.Helper()
	buckets := map[string]bool{}
	for _, b := range blocks {
		for _, m := range bucketRE.FindAllStringSubmatch(b.script, -1) {
			buckets[m[1]] = true
		}
	}
	if len(buckets) == 0 {
		return nil
	}
	srv := awstest.Moto(t)
	for name := range buckets {
		srv.NamedBucket(t, name, true)
	}
	var env []string
	for k, v := range srv.Env(os.DevNull) {
		env = append(env, k+"="+v)
	}
	return env
}

// runBlock runs one block in dir and checks its exit status and output.
// A block that names an s3:// object gets s3, the environment of moto.
func runBlock(t *testing.T, page, dir, bin string, b block, s3 []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", b.script)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"LANG=C.UTF-8", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"},
		mustGoEnv(t)...)
	if bucketRE.MatchString(b.script) {
		cmd.Env = append(cmd.Env, s3...)
	}
	// A block that leaves a process behind (a server it forgot to stop)
	// would hold the output open: it fails instead of hanging.
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	code := 0
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Errorf("%s:%d: the block left a process running that holds its output open\n%s", page, b.line, b.script)
		err = nil
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s:%d: %v", page, b.line, err)
	}
	if code != b.exit {
		t.Errorf("%s:%d: exit status %d, want %d\n%s\noutput:\n%s", page, b.line, code, b.exit, b.script, out)
	}
	if b.output != nil && !matches(*b.output, string(out)) {
		t.Errorf("%s:%d: the output differs from the page\n%s\ngot:\n%s\nwant:\n%s", page, b.line, b.script, out, *b.output)
	}
}

// copyRepo copies the repository into a temporary folder, as a clone or
// a source archive holds it: every file under its root but .git and what
// its .gitignore ignores (build output such as dist/). It walks the tree
// rather than asking git, so that it works in a source archive too.
func copyRepo(t *testing.T) string {
	t.Helper()
	const root = ".."
	ignored, err := readGitignore(filepath.Join(root, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	err = filepath.WalkDir(root, func(src string, d fs.DirEntry, err error) error {
		if err != nil || src == root {
			return err
		}
		rel, err := filepath.Rel(root, src)
		if err != nil {
			return err
		}
		if d.Name() == ".git" || ignored(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(dir, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: neither a file, a folder nor a symbolic link", src)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying the repository: %v", err)
	}
	return dir
}

// readGitignore reads a .gitignore file (none: nothing is ignored) into a
// function that reports whether a path of the repository, slash-separated
// and relative to its root, is ignored. It knows the part of git's syntax
// the repository's .gitignore uses: comments, a pattern with a slash
// before its end anchored at the root (any other matches a name at any
// depth), a trailing slash for folders only, and the wildcards of
// path.Match. It refuses the rest (negation, "**", escapes), so that the
// copy cannot quietly differ from what git ignores.
func readGitignore(name string) (func(rel string, isDir bool) bool, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	type pattern struct {
		glob              string
		anchored, dirOnly bool
	}
	var patterns []pattern
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, " \r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.Contains(line, "**") || strings.Contains(line, `\`) {
			return nil, fmt.Errorf("%s:%d: %q: negation, ** and escapes are not understood here; extend readGitignore", name, i+1, line)
		}
		var p pattern
		p.glob, p.dirOnly = strings.CutSuffix(line, "/")
		if strings.Contains(p.glob, "/") {
			p.anchored, p.glob = true, strings.TrimPrefix(p.glob, "/")
		}
		if _, err := path.Match(p.glob, ""); err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w", name, i+1, line, err)
		}
		patterns = append(patterns, p)
	}
	return func(rel string, isDir bool) bool {
		for _, p := range patterns {
			subject := path.Base(rel)
			if p.anchored {
				subject = rel
			}
			if ok, _ := path.Match(p.glob, subject); ok && (isDir || !p.dirOnly) {
				return true
			}
		}
		return false
	}, nil
}

// TestReadGitignore pins what readGitignore ignores, with the patterns of
// the repository's .gitignore.
func TestReadGitignore(t *testing.T) {
	name := filepath.Join(t.TempDir(), ".gitignore")
	if err := os.WriteFile(name, []byte("# build output\nengine.test\n*.test\n/dist/\n.aws-sam/\n/cmd/sesrouter/sesrouter\n/sesrouter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ignored, err := readGitignore(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"dist", true, true},
		{"dist", false, false}, // /dist/ is a folder
		{"docs/dist", true, false},
		{"engine.test", false, true},
		{"engine/engine.test", false, true},
		{"pipeline/pipeline.test", false, true},
		{"testdata", true, false},
		{"a/.aws-sam", true, true},
		{"sesrouter", false, true},
		{"cmd/sesrouter", true, false},
		{"cmd/sesrouter/sesrouter", false, true},
		{"cmd/sesrouter/main.go", false, false},
		{"# build output", false, false},
	} {
		if got := ignored(tt.rel, tt.isDir); got != tt.want {
			t.Errorf("ignored(%q, folder %v) = %v, want %v", tt.rel, tt.isDir, got, tt.want)
		}
	}
	for _, bad := range []string{"!keep.test\n", "**/x\n", "\\#x\n", "[\n"} {
		if err := os.WriteFile(name, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readGitignore(name); err == nil {
			t.Errorf("readGitignore accepted %q", bad)
		}
	}
	if _, err := readGitignore(filepath.Join(t.TempDir(), ".gitignore")); err != nil {
		t.Errorf("no .gitignore: %v, want nothing ignored", err)
	}
}

// TestMatches pins the output comparison.
func TestMatches(t *testing.T) {
	for _, tt := range []struct {
		want, got string
		ok        bool
	}{
		{"a\nb\n", "a\nb\n", true},
		{"in …\n", "in 12ms\n", true},
		{"x … y\n", "x 1 2 y\n", true},
		{"a\n", "a\nb\n", false},
		{"a.b\n", "axb\n", false},
		{"a\n⋮\nz\n", "a\nb\nc\nz\n", true},
		{"a\n⋮\nz\n", "a\nz\n", true},
		{"a\n⋮\nz\n", "a\nb\n", false},
		{"⋮\nlast …\n", "x\ny\nlast 3ms\n", true},
		{"a\n⋮\n", "b\nc\n", false},
	} {
		if got := matches(tt.want, tt.got); got != tt.ok {
			t.Errorf("matches(%q, %q) = %v", tt.want, tt.got, got)
		}
	}
}
