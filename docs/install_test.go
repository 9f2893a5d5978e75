package docs

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestInstallDocumented holds the README's install section to what it
// names: the release's files as make dist names them, each system the
// release has an archive for, sha256sum -c on checksums.txt, and go
// install of the module's command with the Go that go.mod asks for.
func TestInstallDocumented(t *testing.T) {
	readme := read(t, filepath.Join("..", "README.md"))
	gomod := read(t, filepath.Join("..", "go.mod"))

	module := regexp.MustCompile(`(?m)^module (\S+)$`).FindStringSubmatch(gomod)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if module == nil || goVersion == nil {
		t.Fatalf("go.mod: no module or go line")
	}
	for _, want := range []string{
		"`go install " + module[1] + "/cmd/sesrouter@latest`",
		"Go " + goVersion[1] + " or later",
		"sesrouter_${V}_$P.tar.gz",
		"checksums.txt",
		"sha256sum -c",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md's install section does not say %s", want)
		}
	}

	// The archives make dist would write for v1.2.0: the README names the
	// same form, and every system of them.
	out, err := exec.Command("make", "-s", "-n", "-C", "..", "dist", "VERSION=v1.2.0").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n dist: %v\n%s", err, out)
	}
	archives := regexp.MustCompile(`sesrouter_1\.2\.0_([a-z0-9]+)_([a-z0-9]+)\.tar\.gz`).FindAllStringSubmatch(string(out), -1)
	if len(archives) < 4 || !strings.Contains(string(out), "checksums.txt") {
		t.Fatalf("make -n dist names %d archives and checksums.txt %v:\n%s", len(archives), strings.Contains(string(out), "checksums.txt"), out)
	}
	var systems []string
	for _, a := range archives {
		systems = append(systems, a[1], a[2])
	}
	slices.Sort(systems)
	for _, s := range slices.Compact(systems) {
		if !strings.Contains(readme, "`"+s+"`") {
			t.Errorf("README.md does not name `%s`, for which make dist builds an archive", s)
		}
	}
	if !strings.Contains(readme, "P=linux_amd64") {
		t.Errorf("README.md's example system is not written as make dist names it (OS_ARCH, P=linux_amd64)")
	}
}
