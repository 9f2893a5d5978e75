package main

// TestMakeDist runs make dist as a user or CI would, for this machine's
// platform and Lambda's of this architecture (CI builds all four
// platforms, twice), and checks what a user downloads.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

// repoRoot is the repository's root, from this package's folder.
const repoRoot = "../.."

// distZipBudget is the largest Lambda zip a release may hold (9 MiB).
const distZipBudget = 9 << 20

// distArchived is what each tar archive of the release holds, in order.
var distArchived = []string{"sesrouter", "LICENSE", "README.md", "CHANGELOG.md"}

// distTime is the time of every file in the archives and zips.
var distTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TestMakeDist runs make dist twice: in a copy of the repository at
// another path, without git and without VERSION (so stamped devel, as in
// a source archive), and in the repository itself with VERSION=devel, in
// another time zone and under umask 077. Both must give the same
// checksums.txt, byte for byte. It checks the files of the release, that
// sha256sum -c passes, what the archives and zips hold (names, modes,
// owners and times fixed), that the binary prints the stamped version, and
// that the SBOM names the Go and every module linked into the binaries.
func TestMakeDist(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make dist needs make: %v", err)
	}
	host := runtime.GOOS + "_" + runtime.GOARCH
	platforms := []string{host}
	if lambda := "linux_" + runtime.GOARCH; lambda != host {
		platforms = append(platforms, lambda)
	}
	vars := []string{"PLATFORMS=" + strings.Join(platforms, " "), "LAMBDA_ARCHES=" + runtime.GOARCH}

	copyDist := filepath.Join(t.TempDir(), "dist")
	runMake(t, copyTree(t, repoRoot), "", append(vars, "DIST="+copyDist)...)
	repoDist := filepath.Join(t.TempDir(), "dist")
	runMake(t, repoRoot, "umask 077; TZ=Pacific/Kiritimati; export TZ; ", append(vars, "DIST="+repoDist, "VERSION=devel")...)

	first, err := os.ReadFile(filepath.Join(copyDist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(filepath.Join(repoDist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("make dist is not reproducible: a copy elsewhere gives\n%s\nthe repository, in another time zone and umask,\n%s", first, second)
	}

	// The files: an archive per platform, a Lambda zip, the SBOM and
	// checksums.txt, named as goreleaser names them.
	var want []string
	for _, p := range platforms {
		want = append(want, "sesrouter_devel_"+p+".tar.gz")
	}
	want = append(want, "sesrouter_devel_lambda_"+runtime.GOARCH+".zip", "sesrouter_devel_sbom.cdx.json")
	slices.Sort(want)
	entries, err := os.ReadDir(copyDist)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if wantAll := append(slices.Clone(want), "checksums.txt"); !slices.Equal(got, slices.Sorted(slices.Values(wantAll))) {
		t.Fatalf("make dist wrote %q, want %q", got, wantAll)
	}

	// checksums.txt: one line per file, in name order, as sha256sum
	// writes it, and sha256sum -c agrees.
	var lines []string
	for _, name := range want {
		b, err := os.ReadFile(filepath.Join(copyDist, name))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%x  %s\n", sha256.Sum256(b), name))
	}
	if got, want := string(first), strings.Join(lines, ""); got != want {
		t.Errorf("checksums.txt =\n%s\nwant\n%s", got, want)
	}
	check := exec.Command("sha256sum", "-c", "checksums.txt")
	check.Dir = copyDist
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c checksums.txt: %v\n%s", err, out)
	}

	// The archives, and the binary of this machine's.
	bins := map[string][]byte{}
	for _, p := range platforms {
		bins[p] = checkDistArchive(t, filepath.Join(copyDist, "sesrouter_devel_"+p+".tar.gz"))
	}
	exe := filepath.Join(t.TempDir(), "sesrouter")
	if err := os.WriteFile(exe, bins[host], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "version").CombinedOutput()
	if want := "sesrouter devel " + runtime.Version() + "\n"; err != nil || string(out) != want {
		t.Errorf("sesrouter version: %v, printed %q, want %q", err, out, want)
	}

	// The Lambda zip: bootstrap alone (no rules), the linux binary.
	if bootstrap := checkDistZip(t, filepath.Join(copyDist, "sesrouter_devel_lambda_"+runtime.GOARCH+".zip")); !bytes.Equal(bootstrap, bins["linux_"+runtime.GOARCH]) {
		t.Errorf("the Lambda zip's bootstrap is not the linux/%s binary of the archive", runtime.GOARCH)
	}

	// The SBOM.
	var paths []string
	for _, p := range platforms {
		path := filepath.Join(t.TempDir(), "sesrouter")
		if err := os.WriteFile(path, bins[p], 0o755); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	checkDistSBOM(t, filepath.Join(copyDist, "sesrouter_devel_sbom.cdx.json"), paths)
}

// runMake runs make dist with vars in dir, after the shell commands
// prefix, and fails t with what it printed if it fails.
func runMake(t *testing.T, dir, prefix string, vars ...string) {
	t.Helper()
	args := []string{"-c", prefix + `exec make dist "$@"`, "make"}
	cmd := exec.Command("sh", append(args, vars...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: make dist %s: %v\n%s", dir, strings.Join(vars, " "), err, out)
	}
}

// walkRepo calls fn for each file of the repository at root, as a source
// archive holds it: without .git, dist or .aws-sam, and without compiled
// test binaries. rel is slash-separated, relative to root.
func walkRepo(t *testing.T, root string, fn func(rel string, data []byte, mode fs.FileMode) error) {
	t.Helper()
	err := filepath.WalkDir(root, func(src string, d fs.DirEntry, err error) error {
		if err != nil || src == root {
			return err
		}
		rel, err := filepath.Rel(root, src)
		if err != nil {
			return err
		}
		switch {
		case d.Name() == ".git" || d.Name() == ".aws-sam" || rel == "dist":
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir() || strings.HasSuffix(d.Name(), ".test"):
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: neither a file nor a folder", src)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("reading the repository: %v", err)
	}
}

// copyTree copies the repository at root, as walkRepo reads it, into a
// new temporary folder.
func copyTree(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	walkRepo(t, root, func(rel string, data []byte, mode fs.FileMode) error {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, mode)
	})
	return dir
}

// checkDistArchive checks a tar.gz of the release: gzip without a name or
// a time; distArchived, in order, regular files of owner and group 0 with
// the fixed time, the binary 0755 and the rest 0644, as in the
// repository. It returns the binary.
func checkDistArchive(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("%s: the gzip header holds the name %q and the time %v, want neither", name, zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	var bin []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		names = append(names, h.Name)
		mode := int64(0o644)
		if h.Name == "sesrouter" {
			mode = 0o755
		}
		if h.Typeflag != tar.TypeReg || h.Mode != mode || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(distTime) {
			t.Errorf("%s: %s: type %q, mode %o, owner %d:%d (%q:%q), time %v; want a file, mode %o, owner 0:0, time %v",
				name, h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime, mode, distTime)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, h.Name, err)
		}
		if h.Name == "sesrouter" {
			bin = b
			continue
		}
		if src, err := os.ReadFile(filepath.Join(repoRoot, h.Name)); err != nil || !bytes.Equal(b, src) {
			t.Errorf("%s: %s differs from the repository's (%v)", name, h.Name, err)
		}
	}
	if !slices.Equal(names, distArchived) {
		t.Errorf("%s holds %q, want %q", name, names, distArchived)
	}
	return bin
}

// checkDistZip checks a Lambda zip of the release: bootstrap alone, mode
// 0755, with the fixed time, no extra fields, within the budget. It
// returns bootstrap.
func checkDistZip(t *testing.T, name string) []byte {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > distZipBudget {
		t.Errorf("%s: %d bytes, over the budget of %d", name, fi.Size(), distZipBudget)
	}
	zr, err := zip.OpenReader(name)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		t.Fatalf("%s holds %q, want bootstrap alone (the rules come from S3 or a layer)", name, names)
	}
	f := zr.File[0]
	if f.Mode() != 0o755 || !f.Modified.Equal(distTime) || len(f.Extra) != 0 {
		t.Errorf("%s: bootstrap: mode %v, time %v, %d bytes of extra fields; want -rwxr-xr-x, %v, none", name, f.Mode(), f.Modified, len(f.Extra), distTime)
	}
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cdxComponent is a component of a CycloneDX SBOM, as far as these tests
// read it.
type cdxComponent struct {
	BOMRef  string `json:"bom-ref"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl"`
	Hashes  []struct {
		Alg     string `json:"alg"`
		Content string `json:"content"`
	} `json:"hashes"`
}

// checkDistSBOM checks the release's SBOM against the build information
// of the binaries at paths: the sesrouter module at the stamped version,
// the Go that built them as std, and each module linked into them, with
// its version and the SHA-256 of its go.sum hash; nothing else.
func checkDistSBOM(t *testing.T, name string, paths []string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component cdxComponent `json:"component"`
		} `json:"metadata"`
		Components   []cdxComponent `json:"components"`
		Dependencies []struct {
			Ref       string   `json:"ref"`
			DependsOn []string `json:"dependsOn"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	mainRef := "pkg:golang/github.com/sesrouter/sesrouter@devel?type=module"
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || bom.Metadata.Component.Name != "github.com/sesrouter/sesrouter" ||
		bom.Metadata.Component.Version != "devel" || bom.Metadata.Component.PURL != mainRef || bom.Metadata.Component.Type != "application" {
		t.Errorf("%s: format %q %q, component %+v; want CycloneDX 1.6 of the application github.com/sesrouter/sesrouter devel", name, bom.BOMFormat, bom.SpecVersion, bom.Metadata.Component)
	}

	// What the binaries say: "path version sha256" a module.
	want := map[string]bool{}
	for _, path := range paths {
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want["std "+bi.GoVersion+" "] = true
		for _, d := range bi.Deps {
			sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(d.Sum, "h1:"))
			if err != nil || d.Replace != nil {
				t.Fatalf("%s: module %s: sum %q (%v), replaced by %v", path, d.Path, d.Sum, err, d.Replace)
			}
			want[d.Path+" "+d.Version+" "+hex.EncodeToString(sum)] = true
		}
	}
	got := map[string]bool{}
	var refs []string
	for _, c := range bom.Components {
		purl := "pkg:golang/" + c.Name + "@" + c.Version + "?type=module"
		if c.Type != "library" || c.PURL != purl || c.BOMRef != purl {
			t.Errorf("%s: component %s: type %q, purl %q, bom-ref %q; want library, %s", name, c.Name, c.Type, c.PURL, c.BOMRef, purl)
		}
		sum := ""
		for _, h := range c.Hashes {
			if h.Alg == "SHA-256" {
				sum = h.Content
			}
		}
		got[c.Name+" "+c.Version+" "+sum] = true
		refs = append(refs, c.BOMRef)
	}
	for k := range want {
		if !got[k] {
			t.Errorf("%s: no component %q (path, version, SHA-256), which the binaries link", name, k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("%s: component %q (path, version, SHA-256) is linked into no binary", name, k)
		}
	}
	if len(bom.Dependencies) != 1 || bom.Dependencies[0].Ref != mainRef || !slices.Equal(bom.Dependencies[0].DependsOn, refs) {
		t.Errorf("%s: dependencies %+v; want %s depending on every component", name, bom.Dependencies, mainRef)
	}
}

// TestDistGoInstall runs what the README offers second,
// go install github.com/sesrouter/sesrouter/cmd/sesrouter@latest, against
// a module proxy of its own that serves this tree as the module's only
// version, v0.0.0-installtest, and the module cache's downloads for
// everything else, offline. So the module, as a user's go command gets
// it, builds without the repository: its path, its go.mod (no replace or
// exclude directive, which go install refuses), its go.sum and its tool's
// requirements. The binary prints the module's version. Offline, the
// checksum database is off: the module's go.sum is what the downloads are
// checked against. The build flags are make dist's (-trimpath, no cgo,
// lambda.norpc) only so that it finds the packages compiled; they change
// nothing of how the module resolves.
func TestDistGoInstall(t *testing.T) {
	const (
		module  = "github.com/sesrouter/sesrouter"
		version = "v0.0.0-installtest"
	)
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	downloads := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")

	// The proxy: list, .info, .mod and the module zip, whose files sit
	// under module@version/.
	proxy := t.TempDir()
	at := filepath.Join(proxy, filepath.FromSlash(module), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	walkRepo(t, repoRoot, func(rel string, data []byte, _ fs.FileMode) error {
		w, err := zw.Create(module + "@" + version + "/" + rel)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": []byte(`{"Version":"` + version + `","Time":"2000-01-01T00:00:00Z"}`),
		version + ".mod":  goMod,
		version + ".zip":  buf.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	bin := t.TempDir()
	cmd := exec.Command("go", "install", module+"/cmd/sesrouter@latest")
	cmd.Dir = t.TempDir() // outside any module
	cmd.Env = append(os.Environ(),
		"GOPROXY=file://"+filepath.ToSlash(proxy)+",file://"+filepath.ToSlash(downloads),
		"GOMODCACHE="+t.TempDir(), "GOFLAGS=-modcacherw -trimpath -tags=lambda.norpc", "CGO_ENABLED=0",
		"GOSUMDB=off", "GOTOOLCHAIN=local", "GOBIN="+bin, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s/cmd/sesrouter@latest: %v\n%s", module, err, out)
	}
	out, err = exec.Command(filepath.Join(bin, "sesrouter"), "version").CombinedOutput()
	if want := "sesrouter " + version + " " + runtime.Version() + "\n"; err != nil || string(out) != want {
		t.Errorf("sesrouter version: %v, printed %q, want %q", err, out, want)
	}
}
