package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/expr-lang/expr/vm"
)

// fastNotifications returns notifications to compare the fast path and
// the VM on: the project's test events, plus variations of a bounce.
func fastNotifications(t testing.TB) []*Notification {
	t.Helper()
	var out []*Notification
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "events", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range Decode(filepath.Base(f), b) {
			if it.Notification != nil {
				out = append(out, it.Notification)
			}
		}
	}
	for _, addr := range []string{"ignore@example.com", "Ignore@Example.com", "x@ignore.domain.jp", "no-suppress-1@example.com",
		"a@no.suppress.domain.jp", "a@sub.no.suppress.domain.jp", "plain@example.org", "名前@例え.jp", "noat", ""} {
		for _, typ := range []string{"Bounce", "Complaint", "Delivery"} {
			doc := `{"notificationType":"` + typ + `","mail":{"timestamp":"2024-01-01T00:00:00.000Z","messageId":"m1","source":"Sender <s@Example.com>",` +
				`"destination":["` + addr + `","other@example.com"],"tags":{"team":["mail"],"ses:configuration-set":["cs"]},` +
				`"headers":[{"name":"Subject","value":"hi"},{"name":"X-Campaign","value":"c1"}],"commonHeaders":{"subject":"hi","to":["a@x.com, b@y.com"]}},` +
				`"bounce":{"bounceType":"Permanent","bounceSubType":"OnAccountSuppressionList","bouncedRecipients":[{"emailAddress":"` + addr + `","status":"5.1.1","action":"failed","diagnosticCode":"smtp; 550"}]},` +
				`"complaint":{"complainedRecipients":[{"emailAddress":"` + addr + `"}],"complaintFeedbackType":"abuse"},` +
				`"delivery":{"recipients":["` + addr + `"],"processingTimeMillis":1234}}`
			items := Decode("variation", []byte(doc))
			if items[0].Notification == nil {
				t.Fatalf("variation %s/%s: %+v", typ, addr, items[0])
			}
			out = append(out, items[0].Notification)
		}
	}
	return out
}

var fastExpressions = []string{
	`true`, `false`, `!false`, `not true`,
	`event.type == "Bounce"`, `event.type != "Bounce"`, `event.type in ["Bounce", "Complaint"]`, `event.type not in ["Bounce"]`,
	`recipient.address in lists.ignored || recipient.domain == "ignore.domain.jp"`,
	`event.type == "Bounce" && (recipient.address contains "no-suppress" || recipient.domain in lists.keep)`,
	`recipient.address startsWith "no-" and recipient.local endsWith "1"`,
	`recipient.address matches "^[a-z]+@example\\.(com|org)$"`,
	`glob("*@*.jp", recipient.address)`, `glob("IGNORE@*", recipient.address)`, `inDomain(recipient.address, "suppress.domain.jp")`,
	`inDomain(mail.source, "example.com")`, `lower(recipient.address) == "ignore@example.com"`, `upper(recipient.domain) == "EXAMPLE.COM"`,
	`"team" in mail.tags`, `"X-Campaign" in mail.headers`, `"nope" in mail.tags`, `"other@example.com" in mail.destination`,
	`recipient.address in mail.destination`, `len(mail.destination) > 1`, `len(mail.to) == 2`, `len(lists.ignored) >= 1`,
	`delivery.processingTimeMillis > 1000`, `delivery.processingTimeMillis <= 1000`, `mail.headersTruncated == false`,
	`bounce.subType == "OnAccountSuppressionList" && recipient.status startsWith "5."`,
	`complaint.feedbackType == "abuse" || complaint.subType == ""`, `recipient.address in []`,
	`recipient.address in lists.empty`,
	`any(lists.keep, inDomain(recipient.domain, #))`, `all(mail.destination, # contains "@")`, `none(mail.destination, # == "")`,
	`one(mail.destination, # endsWith ".com")`, `any(mail.destination, any(lists.ignored, # == "ignore@example.com"))`,
	`"mail" in (mail.tags["team"] ?? [])`, `"x" in (mail.tags["nope"] ?? ["x"])`, `"cs" in mail.tags["ses:configuration-set"]`,
	`len(mail.tags["team"] ?? []) == 1`, `any(mail.tags["team"] ?? [], # startsWith "ma")`,
}

// vmExpressions are left to expr's VM by the fast path.
var vmExpressions = []string{
	`mail.tags["team"][0] == "mail"`, `len(recipient.address) > 5`, `event.type == "Bounce" ? true : false`,
	`mail.headers["Subject"] == "hi"`, `filter(mail.destination, # endsWith ".com") == mail.destination`,
}

// TestFastPathMatchesVM compiles every expression both ways and requires
// the same answer for every recipient of every test notification.
func TestFastPathMatchesVM(t *testing.T) {
	lists := map[string][]string{"ignored": {"ignore@example.com"}, "keep": {"no.suppress.domain.jp"}, "empty": {}}
	c := newCompiler(lists)
	notes := fastNotifications(t)
	for _, src := range fastExpressions {
		t.Run(src, func(t *testing.T) {
			prog, probs := c.compile(src)
			if len(probs) > 0 {
				t.Fatalf("compile: %v", probs)
			}
			fast, ok := compileBool(prog.Node())
			if !ok {
				t.Fatalf("the fast path does not take it")
			}
			if diff, err := compareWithVM(prog, fast, lists, notes); err != nil {
				t.Fatalf("VM: %v", err)
			} else if diff != "" {
				t.Error(diff)
			}
		})
	}
}

// TestVMExpressionsStayOnTheVM pins what the fast path leaves to the VM,
// and that a router with such a rule routes as the VM says.
func TestVMExpressionsStayOnTheVM(t *testing.T) {
	for _, src := range vmExpressions {
		t.Run(src, func(t *testing.T) {
			c := newCompiler(nil)
			prog, probs := c.compile(src)
			if len(probs) > 0 {
				t.Fatalf("compile: %v", probs)
			}
			if _, ok := compileBool(prog.Node()); ok {
				t.Fatalf("the fast path takes it; move it to fastExpressions")
			}
		})
	}
	rules, err := Load("vm.yaml", []byte("version: 1\nrules:\n  - name: first-tag\n    when: 'mail.tags[\"team\"][0] == \"mail\"'\n    actions: [log]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fastNotifications(t) {
		p := NewRouter(rules).Route(n)
		for _, d := range p.Recipients {
			team := n.Mail.Tags["team"]
			switch {
			case len(team) == 0:
				if d.Err == nil {
					t.Errorf("%s: indexing a missing tag should fail the rule at run time", n.Input)
				}
			case (team[0] == "mail") != (len(d.Matched) == 1):
				t.Errorf("%s: team tag %v, matched %v", n.Input, team, d.Matched)
			}
		}
	}
}

func FuzzFastPathMatchesVM(f *testing.F) {
	for _, s := range fastExpressions {
		f.Add(s)
	}
	lists := map[string][]string{"ignored": {"ignore@example.com"}, "keep": {"no.suppress.domain.jp"}, "empty": {}}
	notes := fastNotifications(f)
	f.Fuzz(func(t *testing.T, src string) {
		c := newCompiler(lists)
		prog, probs := c.compile(src)
		if len(probs) > 0 {
			return
		}
		fast, ok := compileBool(prog.Node())
		if !ok {
			return
		}
		// A VM failure at run time has no fast-path twin: nothing to compare.
		if diff, err := compareWithVM(prog, fast, lists, notes); err == nil && diff != "" {
			t.Fatalf("%q: %s", src, diff)
		}
	})
}

// compareWithVM runs an expression on the VM and on the fast path for
// every recipient of notes, and describes the first difference.
func compareWithVM(prog *vm.Program, fast boolFn, lists map[string][]string, notes []*Notification) (string, error) {
	var ev evaluator
	ev.env = newEnv(lists)
	for _, n := range notes {
		setNotification(ev.env, n.vars)
		for i := range n.Recipients {
			ev.env[varRecipient] = n.vars.recipients[i]
			want, err := ev.vm.Run(prog, ev.env)
			if err != nil {
				return "", fmt.Errorf("%s recipient %q: %w", n.Input, n.Recipients[i].Address, err)
			}
			if got := fast(&evalCtx{n: n, r: &n.Recipients[i]}); got != want {
				return fmt.Sprintf("%s recipient %q: fast path %v, VM %v", n.Input, n.Recipients[i].Address, got, want), nil
			}
		}
	}
	return "", nil
}

// TestFastAccessorsCoverEveryField checks that every name a rule may use
// has a fast accessor that reads the right field.
func TestFastAccessorsCoverEveryField(t *testing.T) {
	notes := fastNotifications(t)
	n := notes[len(notes)-1]
	vars := map[string]reflect.Value{
		"event": reflect.ValueOf(n.Event), "mail": reflect.ValueOf(n.Mail), "bounce": reflect.ValueOf(n.Bounce),
		"complaint": reflect.ValueOf(n.Complaint), "delivery": reflect.ValueOf(n.Delivery), "delay": reflect.ValueOf(n.Delay),
		"reject": reflect.ValueOf(n.Reject), "failure": reflect.ValueOf(n.Failure), "open": reflect.ValueOf(n.Open),
		"click": reflect.ValueOf(n.Click), "subscription": reflect.ValueOf(n.Subscription), "recipient": reflect.ValueOf(n.Recipients[0]),
	}
	env := newEnv(nil)
	for name := range env {
		if _, ok := vars[name]; !ok && name != varLists && name != "glob" && name != "inDomain" {
			t.Errorf("env name %q is not covered by this test", name)
		}
	}
	c := &evalCtx{n: n, r: &n.Recipients[0]}
	for name, v := range vars {
		typ := v.Type()
		for i := range typ.NumField() {
			field := typ.Field(i).Tag.Get("expr")
			t.Run(name+"."+field, func(t *testing.T) {
				acc, ok := fieldAccessor(name, field)
				if !ok {
					t.Fatalf("no fast accessor for %s.%s", name, field)
				}
				want := v.Field(i).Interface()
				var got any
				switch f := acc.(type) {
				case strFn:
					got = f(c)
				case strsFn:
					got = f(c)
				case intFn:
					got = f(c)
				case boolFn:
					got = f(c)
				case setFn:
					m := reflect.ValueOf(want)
					for _, k := range m.MapKeys() {
						if !f(c, k.String()) {
							t.Errorf("key %q of %s.%s not found by the accessor", k, name, field)
						}
					}
					if f(c, "\x00no such key") {
						t.Errorf("accessor of %s.%s finds a key that is not there", name, field)
					}
					return
				default:
					t.Fatalf("accessor of unexpected type %T", acc)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("accessor gives %#v, field holds %#v", got, want)
				}
			})
		}
	}
}

// TestShippedRulesTakeTheFastPath pins that every rule of the shipped
// rules files compiles to the fast path, which the routing benchmark and
// its zero allocations rely on.
func TestShippedRulesTakeTheFastPath(t *testing.T) {
	for _, file := range []string{"../rules.yaml", "../rules.example.yaml"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			rules, err := LoadFile(file)
			if os.IsNotExist(err) || (err != nil && strings.Contains(err.Error(), "no such file")) {
				t.Skipf("%s is not there", file)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rules.Rules {
				if r.fast == nil {
					t.Errorf("rule %q runs on expr's VM: %s", r.Name, r.When)
				}
			}
		})
	}
}
