package rules

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

type compiler struct {
	lists map[string][]string
	env   *Env
	// history are the calls of history in the expression compiled last.
	history []historyUse
}

func newCompiler(lists map[string][]string) *compiler {
	return &compiler{lists: lists, env: NewEnv(lists)}
}

// exprProblem is a problem in an expression, at an offset (in runes)
// into the expression.
type exprProblem struct {
	offset int
	msg    string
}

// compile compiles one when expression against the typed environment.
func (c *compiler) compile(src string) (*vm.Program, []exprProblem) {
	lp := &listPatcher{lists: c.lists}
	prog, err := expr.Compile(src, c.options(lp)...)
	c.history = lp.history
	var probs []exprProblem
	for _, u := range lp.unknown {
		msg := "unknown list " + quote(u.name)
		if near := nearest(u.name, slices.Sorted(maps.Keys(c.lists))); near != "" {
			msg += "; did you mean lists." + near + "?"
		}
		probs = append(probs, exprProblem{u.loc.From, msg + c.knownLists()})
	}
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			probs = append(probs, exprProblem{fe.From, explain(fe.Message)})
		} else {
			probs = append(probs, exprProblem{0, err.Error()})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return prog, nil
}

// options are expr's options for a when expression. The environment is
// given as a struct, not a pointer, so that expr reads a name by its
// field's index rather than looks it up by name; the program then runs
// against an *Env all the same. Each function is given with its type.
func (c *compiler) options(lp *listPatcher) []expr.Option {
	opts := []expr.Option{expr.Env(*c.env), expr.AsBool(), expr.Patch(lp), expr.Optimize(true)}
	for _, f := range envFunctions() {
		opts = append(opts, expr.Function(f.name, f.call, f.fn))
	}
	return opts
}

func (c *compiler) knownLists() string {
	if len(c.lists) == 0 {
		return " (no lists are defined)"
	}
	return " (defined: " + strings.Join(slices.Sorted(maps.Keys(c.lists)), ", ") + ")"
}

// explain rewrites expr's messages about unknown names and fields in the
// rules' own terms, listing what there is.
func explain(msg string) string {
	// A function is a name like the others.
	if name, ok := strings.CutPrefix(msg, "cannot redeclare function "); ok {
		return "cannot redeclare " + name
	}
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		names := topNames()
		if near := nearest(name, names); near != "" {
			msg += "; did you mean " + near + "?"
		}
		return msg + " (names: " + strings.Join(names, ", ") + ")"
	}
	// "type ses.Recipient has no field adress"
	if rest, ok := strings.CutPrefix(msg, "type ses."); ok {
		typeName, field, ok := strings.Cut(rest, " has no field ")
		if !ok {
			return msg
		}
		for _, n := range Names() {
			if n.Field != nil || n.Type.Kind() != reflect.Struct || n.Type.Name() != typeName {
				continue
			}
			fields := fieldsOf(n.Path)
			if near := nearest(field, fields); near != "" {
				return fmt.Sprintf("%s has no field %s; did you mean %s.%s? (fields: %s)", n.Path, field, n.Path, near, strings.Join(fields, ", "))
			}
			return fmt.Sprintf("%s has no field %s (fields: %s)", n.Path, field, strings.Join(fields, ", "))
		}
	}
	return msg
}

func quote(s string) string { return `"` + s + `"` }

// listPatcher replaces lists.NAME by the list's literal items, as if the
// rule had written ["a", "b"]: expr then compiles `x in lists.NAME` into a
// set lookup. An unknown list is recorded (and replaced by an empty list so
// that checking goes on). It also makes $env.glob (a function) glob.
type listPatcher struct {
	lists   map[string][]string
	unknown []struct {
		name string
		loc  file.Location
	}
	history []historyUse
}

// Visit implements ast.Visitor.
func (p *listPatcher) Visit(node *ast.Node) {
	if u, ok := historyCall(*node); ok {
		p.history = append(p.history, u)
		return
	}
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if ok && id.Value == "$env" {
		// $env.glob is glob: a function is a name of the environment
		// like the others.
		if prop, isString := m.Property.(*ast.StringNode); isString && slices.ContainsFunc(envFunctions(), func(f envFunction) bool { return f.name == prop.Value }) {
			ast.Patch(node, &ast.IdentifierNode{Value: prop.Value})
		}
		return
	}
	if !ok || id.Value != "lists" {
		return
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	items, known := p.lists[prop.Value]
	if !known {
		p.unknown = append(p.unknown, struct {
			name string
			loc  file.Location
		}{prop.Value, prop.Location()})
	}
	arr := &ast.ArrayNode{Nodes: make([]ast.Node, len(items))}
	for i, s := range items {
		arr.Nodes[i] = &ast.StringNode{Value: s}
	}
	ast.Patch(node, arr)
}

// Glob reports whether s matches the shell pattern, ignoring case: '*'
// matches any run of characters, '?' one character, [abc] and [a-z] one
// of a set ([!abc] or [^abc] one not in it), and '\' quotes the next
// character. A malformed pattern matches nothing. It allocates nothing.
func Glob(pattern, s string) bool {
	// Iterative matching with backtracking to the last '*'.
	var starP, starS = -1, -1
	p, i := 0, 0
	for i < len(s) {
		if p < len(pattern) {
			pc, pw := utf8.DecodeRuneInString(pattern[p:])
			sc, sw := utf8.DecodeRuneInString(s[i:])
			switch pc {
			case '*':
				starP, starS = p, i
				p += pw
				continue
			case '?':
				p += pw
				i += sw
				continue
			case '[':
				ok, width, valid := matchClass(pattern[p:], sc)
				if !valid {
					return false
				}
				if ok {
					p += width
					i += sw
					continue
				}
			case '\\':
				if p+pw < len(pattern) {
					qc, qw := utf8.DecodeRuneInString(pattern[p+pw:])
					if foldEq(qc, sc) {
						p += pw + qw
						i += sw
						continue
					}
				} else if sc == '\\' {
					p += pw
					i += sw
					continue
				}
			default:
				if foldEq(pc, sc) {
					p += pw
					i += sw
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' take one more character.
		_, sw := utf8.DecodeRuneInString(s[starS:])
		starS += sw
		p, i = starP+1, starS
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the class at the start of pattern ("[...]").
// It returns whether c is in it, the width of the class, and whether the
// class is well formed.
func matchClass(pattern string, c rune) (matched bool, width int, valid bool) {
	i := 1
	negate := false
	if i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(pattern) {
		if pattern[i] == ']' && !first {
			return matched != negate, i + 1, true
		}
		first = false
		lo, w := utf8.DecodeRuneInString(pattern[i:])
		if lo == '\\' && i+w < len(pattern) {
			i += w
			lo, w = utf8.DecodeRuneInString(pattern[i:])
		}
		i += w
		hi := lo
		if i+1 < len(pattern) && pattern[i] == '-' && pattern[i+1] != ']' {
			var w2 int
			hi, w2 = utf8.DecodeRuneInString(pattern[i+1:])
			i += 1 + w2
		}
		lc := unicode.ToLower(c)
		uc := unicode.ToUpper(c)
		if (lo <= c && c <= hi) || (lo <= lc && lc <= hi) || (lo <= uc && uc <= hi) {
			matched = true
		}
	}
	return false, 0, false
}

func foldEq(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return a == b
	}
	return unicode.ToLower(a) == unicode.ToLower(b)
}

// InDomain reports whether an address (or a bare domain) is in domain or
// one of its subdomains, ignoring case: InDomain("a@mx.example.com",
// "example.com") is true, InDomain("a@badexample.com", "example.com") is
// false. It allocates nothing.
func InDomain(addressOrDomain, domain string) bool {
	d := addressOrDomain
	if at := strings.LastIndexByte(d, '@'); at >= 0 {
		d = d[at+1:]
	}
	d = strings.TrimSuffix(strings.TrimRight(d, ">"), ".")
	domain = strings.TrimSuffix(strings.TrimPrefix(domain, "@"), ".")
	if domain == "" || len(d) < len(domain) {
		return false
	}
	if !strings.EqualFold(d[len(d)-len(domain):], domain) {
		return false
	}
	return len(d) == len(domain) || d[len(d)-len(domain)-1] == '.'
}

// nearest returns the candidate within two edits of word (ignoring case),
// or "" when there is none or it is word itself.
func nearest(word string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestDist && c != word {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
