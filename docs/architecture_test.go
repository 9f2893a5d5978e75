package docs

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is the import path of the repository's root.
const module = "github.com/sesrouter/sesrouter"

// TestArchitectureLayers holds the code to the layers architecture.md
// lists, top to bottom: every package of the module is listed, and no
// package imports one listed above it (the arrows point one way, down).
// Test files are left out: a test may reach across to build a scenario.
func TestArchitectureLayers(t *testing.T) {
	layers := pageLayers(t)
	rank := map[string]int{}
	for i, p := range layers {
		rank[p] = i
	}
	imports := moduleImports(t, "..")
	var unlisted []string
	for pkg := range imports {
		if _, ok := rank[pkg]; !ok {
			unlisted = append(unlisted, pkg)
		}
	}
	slices.Sort(unlisted)
	if len(unlisted) > 0 {
		t.Errorf("architecture.md's layers do not list %s", strings.Join(unlisted, ", "))
	}
	for _, p := range layers {
		if _, ok := imports[p]; !ok {
			t.Errorf("architecture.md lists %s, which is no package with code", p)
		}
	}
	for pkg, deps := range imports {
		for _, dep := range deps {
			if r, ok := rank[dep]; ok && rank[pkg] >= r {
				t.Errorf("%s imports %s, which architecture.md lists above it (an import that climbs)", pkg, dep)
			}
		}
	}
}

// pageLayers reads the fenced block that follows "## Layers" in
// architecture.md: one package directory a line, top layer first.
func pageLayers(t *testing.T) []string {
	t.Helper()
	page := read(t, "architecture.md")
	m := regexp.MustCompile("(?s)## Layers\n.*?```text\n(.*?)```").FindStringSubmatch(page)
	if m == nil {
		t.Fatal("architecture.md has no ## Layers section with a ```text block")
	}
	var out []string
	for line := range strings.SplitSeq(m[1], "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// moduleImports maps each package directory of the module under root
// (relative, with slashes) that has non-test Go code to the module
// packages its non-test files import.
func moduleImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		deps := out[pkg]
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if dep, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(deps, dep) {
				deps = append(deps, dep)
			}
		}
		out[pkg] = deps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return out
}
