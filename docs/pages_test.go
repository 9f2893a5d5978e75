package docs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/storm"
	"go.yaml.in/yaml/v3"
)

// These tests hold the pages to the code where a page states what the
// code defines: the names rules may use, Slack's error codes, the
// commands, the metrics, the template's parameters and outputs. Each
// fails when the two differ, saying what to change.

var update = flag.Bool("update", false, "rewrite the generated parts of the pages (the table of names in rules.md)")

// read returns a page's text.
func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The table of names in rules.md sits between these two lines.
const (
	namesBegin = "<!-- names: generated from rules.Names() by `go test ./docs -run TestNamesTable -update`; do not edit by hand -->"
	namesEnd   = "<!-- end of names -->"
)

// namesTable is the Markdown table of the names rules may use, one row
// per rules.Names() entry: its path, its type and what it holds.
func namesTable() string {
	var b strings.Builder
	b.WriteString("| name | type | what it holds |\n| --- | --- | --- |\n")
	for _, n := range rules.Names() {
		typ := "`" + n.Type.String() + "`"
		switch n.Type.Kind() {
		case reflect.Struct:
			typ = "section"
		case reflect.Func:
			typ = "function"
		}
		doc := strings.ReplaceAll(n.Doc, "|", `\|`)
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", n.Path, typ, doc)
	}
	return b.String()
}

// TestNamesTable checks that the table of names in rules.md is the one
// rules.Names() gives; with -update it rewrites the table.
func TestNamesTable(t *testing.T) {
	const page = "rules.md"
	src := read(t, page)
	i, j := strings.Index(src, namesBegin), strings.Index(src, namesEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: the table of names must sit between the lines\n%s\nand\n%s", page, namesBegin, namesEnd)
	}
	start := i + len(namesBegin) + 1
	want := namesTable()
	if src[start:j] == want {
		return
	}
	if *update {
		if err := os.WriteFile(page, []byte(src[:start]+want+src[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the table of names differs from rules.Names(); regenerate it with\n\tgo test ./docs -run TestNamesTable -update\nwant:\n%s", page, want)
}

// TestSlackHints checks that the troubleshooting page names every Slack
// error code sesrouter has a hint for.
func TestSlackHints(t *testing.T) {
	const page = "troubleshooting.md"
	src := read(t, page)
	for _, code := range slices.Sorted(maps.Keys(slack.SlackHints("SLACK_BOT_TOKEN"))) {
		if !strings.Contains(src, "`"+code+"`") {
			t.Errorf("%s does not name the Slack error `%s` (actions.SlackHints has a hint for it): say what it means and what to do", page, code)
		}
	}
}

// TestCommandsPage checks that commands.md shows the -h of every command
// that sesrouter -h lists, as a runnable block (which TestDocs compares
// with what the command prints).
func TestCommandsPage(t *testing.T) {
	const page = "commands.md"
	out, err := exec.Command(binary(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("sesrouter -h: %v\n%s", err, out)
	}
	scripts := map[string]bool{}
	for _, b := range parseBlocks(t, page, []byte(read(t, page))) {
		scripts[strings.TrimSpace(b.script)] = true
	}
	cmdRE := regexp.MustCompile(`^  sesrouter (\w+)`)
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		m := cmdRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		if want := "sesrouter " + m[1] + " -h"; !scripts[want] {
			t.Errorf("%s has no runnable block `%s` (sesrouter -h lists the command %s)", page, want, m[1])
		}
	}
	if n < 7 {
		t.Errorf("found %d commands in sesrouter -h:\n%s", n, out)
	}
}

// TestMetricsDocumented checks that operations.md names every metric
// sesrouter writes.
func TestMetricsDocumented(t *testing.T) {
	const page = "operations.md"
	src := read(t, page)
	tally := pipeline.NewTally()
	tally.Types["Bounce"], tally.Rules["r"], tally.Actions[[2]string{"notify", "posted"}] = 1, 1, 1
	tally.RuleErrors, tally.Digested["d"], tally.Digests, tally.DigestsFailed = 1, 1, 1, 1
	dest := []*rules.Destination{{Name: "d"}}
	extra := append(pipeline.StormMetrics(storm.New(), dest, time.Now()), pipeline.SweepMetrics(pipeline.SweepResult{Result: pipeline.Result{Tally: pipeline.NewTally()}})...)
	extra = append(extra, pipeline.RulesRefusedMetric())
	var buf bytes.Buffer
	if err := pipeline.WriteMetrics(&buf, time.Now(), tally, extra...); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var doc struct {
			AWS struct {
				CloudWatchMetrics []struct{ Metrics []struct{ Name string } }
			} `json:"_aws"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, d := range doc.AWS.CloudWatchMetrics {
			for _, m := range d.Metrics {
				names[m.Name] = true
			}
		}
	}
	if len(names) < 10 {
		t.Errorf("only %d metrics written: %v", len(names), names)
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if !strings.Contains(src, "`"+name+"`") {
			t.Errorf("%s does not name the metric `%s`", page, name)
		}
	}
}

// TestTemplateDocumented checks deploy.md against template.yaml: a row of
// the parameters table for every parameter, with its default; every
// output named; and the topic policy quoted from the template's top
// comment.
func TestTemplateDocumented(t *testing.T) {
	const page = "deploy.md"
	src := read(t, page)
	tmplSrc := read(t, filepath.Join("..", "template.yaml"))
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(tmplSrc), &root); err != nil {
		t.Fatal(err)
	}
	section := func(name string) *yaml.Node {
		doc := root.Content[0]
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == name {
				return doc.Content[i+1]
			}
		}
		t.Fatalf("template.yaml has no %s", name)
		return nil
	}

	// The parameters table: | `Name` | default | meaning |, "empty" for "".
	rows := map[string]string{}
	rowRE := regexp.MustCompile("^\\| `(\\w+)` \\| ([^|]*) \\|")
	for _, line := range strings.Split(src, "\n") {
		if m := rowRE.FindStringSubmatch(line); m != nil {
			v := strings.Trim(strings.TrimSpace(m[2]), "`")
			if v == "empty" {
				v = ""
			}
			rows[m[1]] = v
		}
	}
	params := section("Parameters")
	for i := 0; i+1 < len(params.Content); i += 2 {
		name, def := params.Content[i].Value, ""
		p := params.Content[i+1]
		for k := 0; k+1 < len(p.Content); k += 2 {
			if p.Content[k].Value == "Default" {
				def = p.Content[k+1].Value
			}
		}
		got, ok := rows[name]
		switch {
		case !ok:
			t.Errorf("%s: no row | `%s` | … | for the template's parameter %s", page, name, name)
		case got != def:
			t.Errorf("%s: parameter %s: the table says the default is %q, the template %q", page, name, got, def)
		}
	}

	outputs := section("Outputs")
	for i := 0; i+1 < len(outputs.Content); i += 2 {
		if name := outputs.Content[i].Value; !strings.Contains(src, "`"+name+"`") {
			t.Errorf("%s does not name the template's output `%s`", page, name)
		}
	}

	// The policy: the indented JSON of the comment at the top.
	var policy []string
	in := false
	for _, line := range strings.Split(tmplSrc, "\n") {
		body, ok := strings.CutPrefix(line, "#   ")
		switch {
		case ok && body == "{":
			in = true
		case !ok:
			in = false
		}
		if in {
			policy = append(policy, body)
		}
		if in && body == "}" {
			break
		}
	}
	if len(policy) < 5 {
		t.Fatalf("template.yaml: no topic policy found in the top comment")
	}
	if quoted := strings.Join(policy, "\n"); !strings.Contains(src, "```json\n"+quoted+"\n```") {
		t.Errorf("%s does not quote the topic policy of template.yaml's top comment; want a json block with\n%s", page, quoted)
	}
}

// TestPythonMapping checks that the lines from-python-handler.md quotes
// from rules.yaml, in the last column of its table, are in rules.yaml.
func TestPythonMapping(t *testing.T) {
	const page = "from-python-handler.md"
	rules := read(t, filepath.Join("..", "rules.yaml"))
	spanRE := regexp.MustCompile("`([^`]+)`")
	n := 0
	for _, line := range strings.Split(read(t, page), "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if !strings.HasPrefix(line, "| ") || len(cells) != 3 || strings.HasPrefix(cells[0], "---") || cells[0] == "the handler" {
			continue
		}
		for _, m := range spanRE.FindAllStringSubmatch(cells[2], -1) {
			n++
			if !strings.Contains(rules, m[1]) {
				t.Errorf("%s quotes `%s` as a line of rules.yaml, which does not hold it", page, m[1])
			}
		}
	}
	if n < 10 {
		t.Errorf("%s: found %d quotes of rules.yaml in its table", page, n)
	}
}

// TestREADMELength keeps the README short: the rest is in docs/.
func TestREADMELength(t *testing.T) {
	src := read(t, filepath.Join("..", "README.md"))
	if n := strings.Count(src, "\n"); n > 200 {
		t.Errorf("README.md has %d lines; at most 200: move the details to a page in docs/", n)
	}
}

// TestLinks checks that every relative link of the README, the changelog
// and the docs leads to a file that exists and, with a #fragment into a
// Markdown file, to one of its headings.
func TestLinks(t *testing.T) {
	files := append(pages(t), filepath.Join("..", "CHANGELOG.md"))
	linkRE := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, file := range files {
		src := read(t, file)
		for _, m := range linkRE.FindAllStringSubmatch(stripCode(src), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: %v", file, target, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") && !slices.Contains(anchors(read(t, dest)), frag) {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", file, target, dest, frag)
			}
		}
	}
}

var idRE = regexp.MustCompile(`<a id="([^"]+)"></a>`)

// stripCode blanks out fenced blocks, where a ]( is not a link.
func stripCode(src string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(line)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// anchors are the anchors GitHub gives a page's headings, and those of
// its <a id="…"></a> tags.
func anchors(src string) []string {
	var out []string
	seen := map[string]int{}
	for _, line := range strings.Split(stripCode(src), "\n") {
		for _, m := range idRE.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", a, n))
		} else {
			out = append(out, a)
		}
		seen[a]++
	}
	return out
}

// TestEnvironmentDocumented checks that the environment table of
// commands.md names every variable the program reads by name (a
// getenv("NAME") in a non-test file outside internal/), GOGC, Go's own,
// aside.
func TestEnvironmentDocumented(t *testing.T) {
	const page = "commands.md"
	text := read(t, page)
	getenvRE := regexp.MustCompile(`[gG]etenv\("([A-Z0-9_]+)"\)`)
	found := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "internal" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range getenvRE.FindAllStringSubmatch(string(b), -1) {
			found[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(found, "GOGC")
	if !found["SESROUTER_SECRETS"] || !found["SLACK_BOT_TOKEN"] {
		t.Fatalf("found %v: the search missed the variables the program reads", slices.Sorted(maps.Keys(found)))
	}
	for _, name := range slices.Sorted(maps.Keys(found)) {
		if !strings.Contains(text, "| `"+name+"`") && !strings.Contains(text, ", `"+name+"`") {
			t.Errorf("%s's environment table does not name %s, which the program reads: add a row saying what it does", page, name)
		}
	}
}
