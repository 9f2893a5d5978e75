package rules

import (
	"reflect"
	"strings"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// Env is what a rule's when expression runs against: with the functions
// of envFunctions, the one declaration of the names rules may use. The
// sections of the embedded Notification (event, mail, bounce, …) and the
// fields below are the names; their expr tags say how a rule writes them,
// their doc tags what they hold, and a values tag the closed set of values
// SES sends, where there is one. Rules are type-checked against Env at
// load, explain and check take their names from it (Names), and so do the
// docs' table of names and the compact event form of rule tests.
type Env struct {
	*ses.Notification
	Recipient ses.Recipient       `expr:"recipient" doc:"the recipient the rules are deciding for"`
	Lists     map[string][]string `expr:"lists" doc:"the lists of the rules file, as lists.NAME"`
	// History is history(kind, window), bound to the Env by NewEnv.
	History func(kind, window string) int `expr:"history" doc:"history(kind, window): how many earlier notifications of kind (an event type, or Bounce/Permanent, Bounce/Transient, Bounce/Undetermined) this recipient's address had within window (\"36h\", \"7d\", at most \"90d\"), across every process that shares SESROUTER_STATE_TABLE; not this one"`

	hist History
	seen []HistorySeen
}

// NewEnv returns an Env with the lists set, for one goroutine to reuse
// across evaluations.
func NewEnv(lists map[string][]string) *Env {
	e := &Env{Notification: new(ses.Notification), Lists: lists}
	e.History = e.history
	return e
}

// envFunction is a function rules may call.
type envFunction struct {
	// name is how a rule calls it, doc what it does.
	name, doc string
	// fn is the Go function; call is the same for expr, which checks
	// calls against fn's type.
	fn   any
	call func(args ...any) (any, error)
}

// envFunctions are the functions rules may call, in the order of Names.
// They are given to expr with their types, so that a call is checked at
// load and made without reflection.
func envFunctions() []envFunction {
	return []envFunction{
		{name: "glob", doc: "glob(pattern, s): s matches the shell pattern (*, ?, [a-z]), ignoring case",
			fn: Glob, call: func(args ...any) (any, error) { return Glob(args[0].(string), args[1].(string)), nil }},
		{name: "inDomain", doc: "inDomain(address_or_domain, domain): in the domain or one of its subdomains, ignoring case",
			fn: InDomain, call: func(args ...any) (any, error) { return InDomain(args[0].(string), args[1].(string)), nil }},
	}
}

// Name is one name a rule may use: a section (event), a field of one
// (event.type), a function (glob) or lists.
type Name struct {
	// Path is the name as a rule writes it: "event", "event.type".
	Path string
	// Type is its Go type, as expr sees it: string, int, bool, []string,
	// map[string][]string, a struct for a section, a func for a function.
	Type reflect.Type
	// Doc says what it holds.
	Doc string
	// Values is the closed set of values SES sends, when there is one.
	Values []string
	// Field is the index of the field in its section's struct, for fields;
	// nil for sections and functions.
	Field []int
	// EventType is, for a section that only one event type fills
	// (bounce), that type.
	EventType string
	// Derived says that the field is computed from others
	// (recipient.domain from recipient.raw), not read from SES.
	Derived bool
}

// Names lists every name a rule may use, in the order Env declares them:
// each section, then its fields; then the functions of envFunctions.
func Names() []Name {
	var names []Name
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type.Elem(), prefix)
				continue
			}
			tag := f.Tag.Get("expr")
			if tag == "" || tag == "-" {
				continue
			}
			n := Name{Path: prefix + tag, Type: f.Type, Doc: f.Tag.Get("doc"), EventType: f.Tag.Get("type"), Derived: f.Tag.Get("derived") == "true"}
			if v := f.Tag.Get("values"); v != "" {
				n.Values = strings.Split(v, ",")
			}
			if prefix != "" {
				n.Field = f.Index
			}
			names = append(names, n)
			if prefix == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, tag+".")
			}
		}
	}
	walk(reflect.TypeFor[Env](), "")
	for _, f := range envFunctions() {
		names = append(names, Name{Path: f.name, Type: reflect.TypeOf(f.fn), Doc: f.doc})
	}
	return names
}

// topNames are the names a rule can start with, in Env's order.
func topNames() []string {
	var out []string
	for _, n := range Names() {
		if !strings.Contains(n.Path, ".") {
			out = append(out, n.Path)
		}
	}
	return out
}

// fieldsOf are the field names of the section named section, in order.
func fieldsOf(section string) []string {
	var out []string
	for _, n := range Names() {
		if s, f, ok := strings.Cut(n.Path, "."); ok && s == section {
			out = append(out, f)
		}
	}
	return out
}
