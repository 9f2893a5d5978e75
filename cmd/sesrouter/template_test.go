package main

// These tests check template.yaml offline, as a reviewer would: every name
// it uses exists in every combination of its parameters, and the
// storm-safe defaults, the topic and queue policies and the sweep schedule
// are what the docs promise (deploy.md, operations.md). cfn-lint and
// `sam validate` need tools and an AWS account; these need only the file.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const cfnTemplateFile = "../../template.yaml"

// The program's defaults and the storm the queue path is sized for
// (10,000 bounces in a minute).
const (
	cfnStormDigestAfter = 10                      // digest_after: messages before a destination folds
	cfnStormPace        = 1100 * time.Millisecond // pace: between two posts to a channel
	cfnStormBounces     = 10000                   // the storm: bounces ...
	cfnStormSeconds     = 60                      // ... arriving over this many seconds
	cfnStormMessages    = 40                      // the most Slack messages it may give
	cfnBounceBytes      = 4 << 10                 // an SNS-wrapped SES bounce in an SQS record
	cfnLambdaPayload    = 6 << 20                 // Lambda's invocation payload limit
)

// cfnTemplate is template.yaml with CloudFormation's short forms spelled
// out: !Ref X is {"Ref": "X"}, !GetAtt A.B is {"Fn::GetAtt": ["A", "B"]},
// !Condition X is {"Condition": "X"} and every other !F is {"Fn::F": ...}.
// Values are map[string]any, []any or string.
type cfnTemplate struct {
	Parameters map[string]map[string]any
	Mappings   map[string]any
	Conditions map[string]any
	Resources  map[string]map[string]any
	Outputs    map[string]map[string]any
	src        string

	// resolved holds each entry as deployed, by section, name and the
	// values of the conditions it reads: thousands of deployments share
	// a few variants of each entry.
	resolved map[cfnVariant]map[string]any
	// reads holds the conditions each entry reads, by section and name.
	reads map[[2]string][]string
}

// cfnVariant names an entry as deployed: its section, its name and the
// values of the conditions it reads.
type cfnVariant struct {
	section, name, conds string
}

// cfnShortForms maps the short-form tags CloudFormation accepts to their
// full names.
var cfnShortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!GetAtt": "Fn::GetAtt",
	"!Sub": "Fn::Sub", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not",
	"!And": "Fn::And", "!Or": "Fn::Or", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64",
	"!Cidr": "Fn::Cidr", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
}

// cfnPseudo are the pseudo parameters !Ref accepts.
var cfnPseudo = []string{
	"AWS::AccountId", "AWS::NoValue", "AWS::NotificationARNs", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}

// cfnYAML11Bools are the plain scalars YAML 1.1, which CloudFormation reads,
// takes for booleans, while YAML 1.2 (yaml.v3) reads them as strings.
var cfnYAML11Bools = []string{"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}

func loadCFNTemplate(t *testing.T) *cfnTemplate {
	t.Helper()
	src, err := os.ReadFile(cfnTemplateFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("%s: %v", cfnTemplateFile, err)
	}
	v, err := cfnValue(&doc)
	if err != nil {
		t.Fatalf("%s:%v", cfnTemplateFile, err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not a mapping", cfnTemplateFile)
	}
	tpl := &cfnTemplate{src: string(src), resolved: map[cfnVariant]map[string]any{}, reads: map[[2]string][]string{}}
	tpl.Conditions, _ = top["Conditions"].(map[string]any)
	tpl.Mappings, _ = top["Mappings"].(map[string]any)
	for name, dst := range map[string]*map[string]map[string]any{
		"Parameters": &tpl.Parameters, "Resources": &tpl.Resources, "Outputs": &tpl.Outputs,
	} {
		*dst = map[string]map[string]any{}
		section, _ := top[name].(map[string]any)
		for k, e := range section {
			m, ok := e.(map[string]any)
			if !ok {
				t.Fatalf("%s: %s.%s is not a mapping", cfnTemplateFile, name, k)
			}
			(*dst)[k] = m
		}
	}
	return tpl
}

// cfnValue converts n, spelling out the short forms; it refuses what
// CloudFormation would read otherwise than yaml.v3 does.
func cfnValue(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return cfnValue(n.Content[0])
	case yaml.ScalarNode:
		if n.Style == 0 && n.Tag == "!!str" && slices.Contains(cfnYAML11Bools, n.Value) {
			return nil, fmt.Errorf("%d:%d: plain %s is a boolean to CloudFormation: quote it", n.Line, n.Column, n.Value)
		}
		v = n.Value
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			e, err := cfnValue(c)
			if err != nil {
				return nil, err
			}
			l = append(l, e)
		}
		v = l
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("%d:%d: key %s again", k.Line, k.Column, k.Value)
			}
			e, err := cfnValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = e
		}
		v = m
	default:
		return nil, fmt.Errorf("%d:%d: an alias: CloudFormation has none", n.Line, n.Column)
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	fn, ok := cfnShortForms[n.Tag]
	if !ok {
		return nil, fmt.Errorf("%d:%d: unknown tag %s", n.Line, n.Column, n.Tag)
	}
	if s, ok := v.(string); ok && fn == "Fn::GetAtt" {
		res, attr, _ := strings.Cut(s, ".")
		v = []any{res, attr}
	}
	return map[string]any{fn: v}, nil
}

// cfnSubVar matches a ${Name} or ${Resource.Attribute} of Fn::Sub, not
// the literal ${!...}.
var cfnSubVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// cfnRefs calls f for every name v refers to; kind is "Ref", "GetAtt",
// "Sub" (a name or Resource.Attribute), "If" or "Condition" (a condition).
func cfnRefs(v any, f func(kind, name string)) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			cfnRefs(e, f)
		}
	case map[string]any:
		if fn, arg, ok := cfnIntrinsic(v); ok {
			switch fn {
			case "Ref", "Condition":
				if s, ok := arg.(string); ok {
					f(fn, s)
					return
				}
			case "Fn::GetAtt", "Fn::If":
				if l, ok := arg.([]any); ok && len(l) > 1 {
					if s, ok := l[0].(string); ok {
						f(strings.TrimPrefix(fn, "Fn::"), s)
					}
					cfnRefs(l[1:], f)
					return
				}
			case "Fn::Sub":
				tmpl, vars := arg, map[string]any{}
				if l, ok := arg.([]any); ok && len(l) == 2 {
					tmpl = l[0]
					vars, _ = l[1].(map[string]any)
					cfnRefs(l[1], f)
				}
				if s, ok := tmpl.(string); ok {
					for _, m := range cfnSubVar.FindAllStringSubmatch(s, -1) {
						if _, local := vars[m[1]]; !local {
							f("Sub", m[1])
						}
					}
					return
				}
			}
		}
		for _, e := range v {
			cfnRefs(e, f)
		}
	}
}

// cfnIntrinsic reports whether m is an intrinsic function: one key, Ref,
// Condition or Fn::*.
func cfnIntrinsic(m map[string]any) (fn string, arg any, ok bool) {
	if len(m) != 1 {
		return "", nil, false
	}
	for k, v := range m {
		fn, arg = k, v
	}
	return fn, arg, fn == "Ref" || fn == "Condition" || strings.HasPrefix(fn, "Fn::")
}

// refTarget returns the resource a reference names, if it names one.
func (tpl *cfnTemplate) refTarget(kind, name string) (string, bool) {
	if kind == "Sub" {
		name, _, _ = strings.Cut(name, ".")
	}
	_, ok := tpl.Resources[name]
	return name, ok && kind != "If" && kind != "Condition"
}

// undefined says what is wrong with a reference, or "".
func (tpl *cfnTemplate) undefined(kind, name string, inConditions bool) string {
	_, isParam := tpl.Parameters[name]
	_, isResource := tpl.Resources[name]
	_, isCondition := tpl.Conditions[name]
	isPseudo := slices.Contains(cfnPseudo, name)
	switch {
	case kind == "If" || kind == "Condition":
		if !isCondition {
			return "no condition " + name
		}
	case kind == "GetAtt" || (kind == "Sub" && strings.Contains(name, ".")):
		res, _, _ := strings.Cut(name, ".")
		if _, ok := tpl.Resources[res]; !ok {
			return "no resource " + res
		}
	case inConditions:
		if !isParam && !isPseudo {
			return "no parameter " + name + " (conditions can name only parameters)"
		}
	case !isParam && !isResource && !isPseudo:
		return "no parameter, resource or pseudo parameter " + name
	}
	return ""
}

// cfnEnv is one deployment: a value for each parameter the conditions
// read, and the conditions' value with them.
type cfnEnv struct {
	params map[string]string
	conds  map[string]bool
	tpl    *cfnTemplate
}

func (e cfnEnv) String() string {
	var s []string
	for k, v := range e.params {
		s = append(s, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// cfnReport gathers what is wrong across deployments: each problem is
// reported once, with the first deployment that shows it.
type cfnReport struct {
	t     *testing.T
	order []string
	first map[string]cfnEnv
	count map[string]int
}

func newCFNReport(t *testing.T) *cfnReport {
	return &cfnReport{t: t, first: map[string]cfnEnv{}, count: map[string]int{}}
}

func (r *cfnReport) errorf(e cfnEnv, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.count[msg]++; r.count[msg] == 1 {
		r.first[msg] = e
		r.order = append(r.order, msg)
	}
}

// done reports the problems gathered.
func (r *cfnReport) done() {
	r.t.Helper()
	for _, msg := range r.order {
		r.t.Errorf("%s\n\twith %s (and %d other combinations)", msg, r.first[msg], r.count[msg]-1)
	}
}

// envs returns every deployment that differs in a condition: each
// parameter the conditions read takes each of its AllowedValues, or
// else empty and not.
func (tpl *cfnTemplate) envs(t *testing.T) []cfnEnv {
	t.Helper()
	var names []string
	cfnRefs(tpl.Conditions, func(kind, name string) {
		if _, ok := tpl.Parameters[name]; ok && kind == "Ref" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	})
	slices.Sort(names)
	envs := []cfnEnv{{params: map[string]string{}}}
	for _, name := range names {
		values := []string{"", "set"}
		if allowed, ok := tpl.Parameters[name]["AllowedValues"].([]any); ok {
			values = nil
			for _, a := range allowed {
				values = append(values, a.(string))
			}
		}
		var next []cfnEnv
		for _, e := range envs {
			for _, v := range values {
				p := maps.Clone(e.params)
				p[name] = v
				next = append(next, cfnEnv{params: p})
			}
		}
		envs = next
	}
	for i := range envs {
		envs[i].tpl = tpl
		envs[i].conds = map[string]bool{}
		for name := range tpl.Conditions {
			envs[i].conds[name] = tpl.eval(t, envs[i].params, tpl.Conditions[name])
		}
	}
	return envs
}

// eval evaluates a condition expression. (No t.Helper: it runs for
// every condition of thousands of deployments.)
func (tpl *cfnTemplate) eval(t *testing.T, params map[string]string, expr any) bool {
	m, _ := expr.(map[string]any)
	fn, arg, _ := cfnIntrinsic(m)
	args, _ := arg.([]any)
	switch fn {
	case "Condition":
		return tpl.eval(t, params, tpl.Conditions[arg.(string)])
	case "Fn::Not":
		return !tpl.eval(t, params, args[0])
	case "Fn::And", "Fn::Or":
		for _, a := range args {
			if tpl.eval(t, params, a) == (fn == "Fn::Or") {
				return fn == "Fn::Or"
			}
		}
		return fn == "Fn::And"
	case "Fn::Equals":
		str := func(v any) string {
			if m, ok := v.(map[string]any); ok {
				if p, ok := m["Ref"].(string); ok {
					return params[p]
				}
			}
			s, ok := v.(string)
			if !ok {
				t.Fatalf("condition: cannot compare %v", v)
			}
			return s
		}
		return str(args[0]) == str(args[1])
	}
	t.Fatalf("condition: cannot evaluate %v", expr)
	return false
}

// cfnResolve returns v as deployed in e: each Fn::If replaced by its branch,
// AWS::NoValue dropped (ok false for v itself).
func cfnResolve(v any, e cfnEnv) (any, bool) {
	switch v := v.(type) {
	case []any:
		l := []any{}
		for _, x := range v {
			if r, ok := cfnResolve(x, e); ok {
				l = append(l, r)
			}
		}
		return l, true
	case map[string]any:
		if fn, arg, ok := cfnIntrinsic(v); ok {
			if fn == "Ref" && arg == "AWS::NoValue" {
				return nil, false
			}
			if l, ok := arg.([]any); ok && fn == "Fn::If" && len(l) == 3 {
				if e.conds[l[0].(string)] {
					return cfnResolve(l[1], e)
				}
				return cfnResolve(l[2], e)
			}
		}
		m := map[string]any{}
		for k, x := range v {
			if r, ok := cfnResolve(x, e); ok {
				m[k] = r
			}
		}
		return m, true
	}
	return v, true
}

// cfnDeployed returns the entries of a section (resources or outputs)
// there in e, resolved, by name. The entries are shared between
// deployments: read them, do not change them.
func cfnDeployed(section map[string]map[string]any, e cfnEnv) map[string]map[string]any {
	tpl := e.tpl
	sectionName := "Outputs"
	if reflect.ValueOf(section).Pointer() == reflect.ValueOf(tpl.Resources).Pointer() {
		sectionName = "Resources"
	}
	out := map[string]map[string]any{}
	for name, entry := range section {
		if c, ok := entry["Condition"].(string); ok && !e.conds[c] {
			continue
		}
		reads, ok := tpl.reads[[2]string{sectionName, name}]
		if !ok {
			cfnRefs(entry, func(kind, c string) {
				if (kind == "If" || kind == "Condition") && !slices.Contains(reads, c) {
					reads = append(reads, c)
				}
			})
			slices.Sort(reads)
			tpl.reads[[2]string{sectionName, name}] = reads
		}
		var conds strings.Builder
		for _, c := range reads {
			fmt.Fprintf(&conds, "%s=%t,", c, e.conds[c])
		}
		key := cfnVariant{sectionName, name, conds.String()}
		v, ok := tpl.resolved[key]
		if !ok {
			r, _ := cfnResolve(entry, e)
			v = r.(map[string]any)
			tpl.resolved[key] = v
		}
		out[name] = v
	}
	return out
}

// cfnOfType returns the names of the resources of type typ in rs, sorted.
func cfnOfType(rs map[string]map[string]any, typ string) []string {
	var names []string
	for name, r := range rs {
		if r["Type"] == typ {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// cfnDig returns the value at path in v, or nil.
func cfnDig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// cfnList returns v as a list: a single value is a list of one.
func cfnList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func cfnRef(name string) map[string]any { return map[string]any{"Ref": name} }

func cfnGetAtt(res, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{res, attr}}
}

// defaultNumber returns the default of a Number parameter.
func (tpl *cfnTemplate) defaultNumber(t *testing.T, name string) float64 {
	t.Helper()
	s, _ := tpl.Parameters[name]["Default"].(string)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parameter %s: default %q is not a number", name, s)
	}
	return n
}

// function returns the name of the one function of the template.
func (tpl *cfnTemplate) function(t *testing.T) string {
	t.Helper()
	fns := cfnOfType(tpl.Resources, "AWS::Serverless::Function")
	if len(fns) != 1 {
		t.Fatalf("functions %v, want one", fns)
	}
	return fns[0]
}

// cfnEffectiveTopic is what every use of the topic must be in e: the topic
// the stack makes, else the TopicArn parameter, else nil (no topic).
func cfnEffectiveTopic(rs map[string]map[string]any, e cfnEnv) any {
	if topics := cfnOfType(rs, "AWS::SNS::Topic"); len(topics) == 1 {
		return cfnRef(topics[0])
	}
	if e.params["TopicArn"] != "" {
		return cfnRef("TopicArn")
	}
	return nil
}

// TestTemplateReferences checks that every name the template uses is
// defined, and that in every combination of parameters a resource refers
// only to resources that are made in it.
func TestTemplateReferences(t *testing.T) {
	tpl := loadCFNTemplate(t)
	var problems []string
	check := func(where string, inConditions bool) func(kind, name string) {
		return func(kind, name string) {
			if p := tpl.undefined(kind, name, inConditions); p != "" {
				problems = append(problems, where+": "+p)
			}
		}
	}
	for name, c := range tpl.Conditions {
		cfnRefs(c, check("Conditions."+name, true))
	}
	for name := range tpl.Parameters {
		if _, ok := tpl.Resources[name]; ok {
			problems = append(problems, name+": both a parameter and a resource")
		}
	}
	for section, entries := range map[string]map[string]map[string]any{"Resources": tpl.Resources, "Outputs": tpl.Outputs} {
		for name, r := range entries {
			where := section + "." + name
			if _, ok := tpl.Parameters[name]; ok && section == "Outputs" {
				problems = append(problems, where+": also a parameter")
			}
			if _, ok := tpl.Resources[name]; ok && section == "Outputs" {
				problems = append(problems, where+": also a resource")
			}
			if c, ok := r["Condition"].(string); ok {
				check(where+".Condition", false)("Condition", c)
			}
			for _, d := range cfnList(r["DependsOn"]) {
				if _, ok := tpl.Resources[d.(string)]; !ok {
					problems = append(problems, where+".DependsOn: no resource "+d.(string))
				}
			}
			for k, v := range r {
				if k != "Condition" && k != "DependsOn" {
					cfnRefs(v, check(where+"."+k, false))
				}
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("%s:\n%s", cfnTemplateFile, strings.Join(problems, "\n"))
	}

	r := newCFNReport(t)
	// The resources each resolved entry refers to, by the entry (shared
	// between deployments).
	targets := map[uintptr][]string{}
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		outs := cfnDeployed(tpl.Outputs, e)
		for section, entries := range map[string]map[string]map[string]any{"Resources": rs, "Outputs": outs} {
			for name, entry := range entries {
				for _, d := range cfnList(entry["DependsOn"]) {
					if _, ok := rs[d.(string)]; !ok {
						r.errorf(e, "%s.%s depends on %s, which is not made", section, name, d)
					}
				}
				id := reflect.ValueOf(entry).Pointer()
				if _, ok := targets[id]; !ok {
					refs := []string{}
					cfnRefs(entry, func(kind, target string) {
						if res, ok := tpl.refTarget(kind, target); ok {
							refs = append(refs, res)
						}
					})
					targets[id] = refs
				}
				for _, res := range targets[id] {
					if _, made := rs[res]; !made {
						r.errorf(e, "%s.%s refers to %s, which is not made", section, name, res)
					}
				}
			}
		}
	}
	r.done()
}

// TestTemplateStormSafeDefaults checks the storm-safe defaults: the
// queue path, its batch, window and maximum concurrency, the same number
// as SESROUTER_CONCURRENCY, and a timeout and visibility timeout to fit.
func TestTemplateStormSafeDefaults(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	params := tpl.Parameters
	if got := params["UseQueue"]["Default"]; got != "true" {
		t.Errorf("UseQueue defaults to %v, want true", got)
	}
	mc := params["QueueMaximumConcurrency"]
	if mc["Type"] != "Number" || mc["Default"] != "2" || mc["MinValue"] != "2" || mc["MaxValue"] != "1000" {
		t.Errorf("QueueMaximumConcurrency is %v, want a Number, default 2, from 2 to 1000", mc)
	}

	concurrency := tpl.defaultNumber(t, "QueueMaximumConcurrency")
	timeout := tpl.defaultNumber(t, "Timeout")
	visibility := tpl.defaultNumber(t, "QueueVisibilityTimeout")
	window := tpl.defaultNumber(t, "QueueBatchingWindow")
	batch := tpl.defaultNumber(t, "QueueBatchSize")

	// A container's first storming invocation posts digest_after messages
	// and a digest, each pace x (concurrency+1) after the one before
	// (actions.NewPacers): that must leave at least half the timeout to
	// the SES calls and retries.
	apart := cfnStormPace.Seconds() * (concurrency + 1)
	posting := (cfnStormDigestAfter + 1) * apart
	if posting > timeout/2 {
		t.Errorf("Timeout defaults to %gs: posting %d messages %.1fs apart takes %.1fs, more than half of it",
			timeout, cfnStormDigestAfter+1, apart, posting)
	}
	if want := 6*timeout + window; visibility < want {
		t.Errorf("QueueVisibilityTimeout defaults to %g, want at least 6 x Timeout + QueueBatchingWindow = %g", visibility, want)
	}
	if batch > 10 && window < 1 {
		t.Errorf("QueueBatchSize %g needs a QueueBatchingWindow of at least 1, not %g", batch, window)
	}
	if batch*cfnBounceBytes > cfnLambdaPayload {
		t.Errorf("QueueBatchSize defaults to %g: %g bytes of bounces, over Lambda's %d-byte payload", batch, batch*cfnBounceBytes, cfnLambdaPayload)
	}
	// The storm: each container posts digest_after messages, then one
	// digest per invocation. Invocations: full batches, or, while batches
	// are not full, one per window per container.
	invocations := math.Max(math.Ceil(cfnStormBounces/batch), concurrency*math.Ceil(cfnStormSeconds/window))
	if msgs := concurrency*cfnStormDigestAfter + invocations; msgs > cfnStormMessages {
		t.Errorf("a storm of %d bounces in %ds gives about %g messages with the defaults, want at most %d", cfnStormBounces, cfnStormSeconds, msgs, cfnStormMessages)
	}

	fn := tpl.function(t)
	if got := cfnDig(tpl.Resources[fn], "Properties", "MemorySize"); got != "128" {
		t.Errorf("MemorySize %v, want 128", got)
	}
	if got := cfnDig(tpl.Resources[fn], "Properties", "Timeout"); !reflect.DeepEqual(got, cfnRef("Timeout")) {
		t.Errorf("Timeout is %v, want the Timeout parameter", got)
	}
	queueRuns := false
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		esms := cfnOfType(rs, "AWS::Lambda::EventSourceMapping")
		subs := cfnOfType(rs, "AWS::SNS::Subscription")
		concurrencyVar := cfnDig(rs[fn], "Properties", "Environment", "Variables", "SESROUTER_CONCURRENCY")
		if cfnEffectiveTopic(rs, e) != nil && e.params["UseQueue"] == "true" && len(esms) == 0 {
			r.errorf(e, "a topic and UseQueue, but no event source mapping")
		}
		if len(subs) > 1 {
			r.errorf(e, "subscriptions %v, want the queue or the function, not both", subs)
		}
		if len(esms) == 0 {
			if concurrencyVar != "1" {
				r.errorf(e, "no queue, SESROUTER_CONCURRENCY is %v, want 1", concurrencyVar)
			}
			continue
		}
		queueRuns = true
		p := rs[esms[0]]["Properties"]
		for key, want := range map[string]any{
			"BatchSize":                      cfnRef("QueueBatchSize"),
			"MaximumBatchingWindowInSeconds": cfnRef("QueueBatchingWindow"),
			"ScalingConfig":                  map[string]any{"MaximumConcurrency": cfnRef("QueueMaximumConcurrency")},
			"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
			"FunctionName":                   cfnRef(fn),
		} {
			if got := cfnDig(p, key); !reflect.DeepEqual(got, want) {
				r.errorf(e, "event source %s is %v, want %v", key, got, want)
			}
		}
		if !reflect.DeepEqual(concurrencyVar, cfnRef("QueueMaximumConcurrency")) {
			r.errorf(e, "SESROUTER_CONCURRENCY is %v, want QueueMaximumConcurrency", concurrencyVar)
		}
	}
	r.done()
	if !queueRuns {
		t.Error("no combination of parameters makes the queue's event source")
	}
}

// TestTemplateTopic checks the SES topic: made with CreateTopic unless
// TopicArn is given, every use of the topic is that one, and its policy
// lets only SES of this account publish, as the comment at the top of the
// template, which the docs quote, says.
func TestTemplateTopic(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	if got := tpl.Parameters["CreateTopic"]["Default"]; got != "false" {
		t.Errorf("CreateTopic defaults to %v, want false", got)
	}
	made := 0
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		topics := cfnOfType(rs, "AWS::SNS::Topic")
		want := 0
		if e.params["CreateTopic"] == "true" && e.params["TopicArn"] == "" {
			want = 1
		}
		if len(topics) != want {
			r.errorf(e, "topics %v, want one only with CreateTopic and no TopicArn", topics)
			continue
		}
		made += len(topics)
		topic := cfnEffectiveTopic(rs, e)
		uses := map[string]any{}
		for _, name := range cfnOfType(rs, "AWS::SNS::Subscription") {
			uses[name+".TopicArn"] = cfnDig(rs[name], "Properties", "TopicArn")
		}
		for _, name := range cfnOfType(rs, "AWS::Lambda::Permission") {
			if cfnDig(rs[name], "Properties", "Principal") == "sns.amazonaws.com" {
				uses[name+".SourceArn"] = cfnDig(rs[name], "Properties", "SourceArn")
			}
		}
		// The queue policy: the statement that lets SNS send, and the
		// Deny's first exception (the second, with UseEventBridge, is
		// the rule's: TestTemplateQueuePolicy).
		for _, name := range cfnOfType(rs, "AWS::SQS::QueuePolicy") {
			for i, s := range cfnList(cfnDig(rs[name], "Properties", "PolicyDocument", "Statement")) {
				where := fmt.Sprintf("%s statement %d aws:SourceArn", name, i)
				switch {
				case reflect.DeepEqual(cfnDig(s, "Principal"), map[string]any{"Service": "sns.amazonaws.com"}):
					uses[where] = cfnDig(s, "Condition", "ArnEquals", "aws:SourceArn")
				case cfnDig(s, "Effect") == "Deny" && topic != nil:
					uses[where+" first exception"] = cfnList(cfnDig(s, "Condition", "ArnNotEquals", "aws:SourceArn"))[0]
				}
			}
		}
		if topic != nil {
			uses["SESROUTER_TOPICS"] = cfnDig(rs[tpl.function(t)], "Properties", "Environment", "Variables", "SESROUTER_TOPICS")
		}
		if out, ok := cfnDeployed(tpl.Outputs, e)["NotificationTopicArn"]; ok || topic != nil {
			uses["output NotificationTopicArn"] = out["Value"]
		}
		if topic != nil && len(uses) < 3 {
			r.errorf(e, "the topic is used only by %v", uses)
		}
		for where, got := range uses {
			if !reflect.DeepEqual(got, topic) {
				r.errorf(e, "%s is %v, want %v", where, got, topic)
			}
		}
		var policies []string
		for _, name := range cfnOfType(rs, "AWS::SNS::TopicPolicy") {
			if reflect.DeepEqual(cfnDig(rs[name], "Properties", "Topics"), []any{topic}) {
				policies = append(policies, name)
			}
		}
		if len(topics) == 1 && len(policies) != 1 {
			r.errorf(e, "the topic has policies %v, want one", policies)
		}
	}
	r.done()
	if made == 0 {
		t.Fatal("no combination of parameters makes the topic")
	}

	for _, name := range cfnOfType(tpl.Resources, "AWS::SNS::TopicPolicy") {
		doc := cfnDig(tpl.Resources[name], "Properties", "PolicyDocument")
		statements := cfnList(cfnDig(doc, "Statement"))
		if len(statements) == 0 {
			t.Errorf("%s: no statement", name)
		}
		for i, s := range statements {
			if cfnDig(s, "Effect") != "Allow" ||
				!reflect.DeepEqual(cfnDig(s, "Principal"), map[string]any{"Service": "ses.amazonaws.com"}) ||
				!reflect.DeepEqual(cfnList(cfnDig(s, "Action")), []any{"sns:Publish"}) ||
				!reflect.DeepEqual(cfnDig(s, "Condition", "StringEquals", "aws:SourceAccount"), cfnRef("AWS::AccountId")) {
				t.Errorf("%s statement %d is %v, want: allow ses.amazonaws.com sns:Publish, with aws:SourceAccount the account", name, i, s)
			}
		}
		// The comment at the top of the template gives the same policy
		// for a topic passed in.
		var documented any
		if err := json.Unmarshal([]byte(cfnTopComment(tpl.src)), &documented); err != nil {
			t.Fatalf("the policy in the comment at the top of the template: %v", err)
		}
		if got := cfnPlaceholders(doc); !reflect.DeepEqual(got, documented) {
			g, _ := json.MarshalIndent(got, "", "  ")
			t.Errorf("%s differs from the policy in the comment at the top of the template; as JSON it is\n%s", name, g)
		}
	}
}

// cfnTopComment returns the indented block of the comment at the top of src.
func cfnTopComment(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if rest, ok := strings.CutPrefix(line, "#   "); ok {
			b.WriteString(rest + "\n")
		}
	}
	return b.String()
}

// cfnPlaceholders renders a policy as the comment at the top of the
// template writes it: the account, region and topic as placeholders.
func cfnPlaceholders(v any) any {
	names := strings.NewReplacer("${AWS::Partition}", "aws", "${AWS::Region}", "REGION", "${AWS::AccountId}", "ACCOUNT_ID")
	switch v := v.(type) {
	case string:
		return v
	case []any:
		l := []any{}
		for _, e := range v {
			l = append(l, cfnPlaceholders(e))
		}
		return l
	case map[string]any:
		if fn, arg, ok := cfnIntrinsic(v); ok {
			switch fn {
			case "Fn::Sub":
				if s, ok := arg.(string); ok {
					return names.Replace(s)
				}
			case "Ref":
				if s, ok := arg.(string); ok && strings.HasPrefix(s, "AWS::") {
					return names.Replace("${" + s + "}")
				}
				return "arn:aws:sns:REGION:ACCOUNT_ID:TOPIC_NAME"
			}
		}
		m := map[string]any{}
		for k, e := range v {
			m[k] = cfnPlaceholders(e)
		}
		return m
	}
	return v
}

// TestTemplateQueuePolicy checks that only the topic and the EventBridge
// rule may send to the queue, in every combination of parameters that
// makes the queue: SNS is allowed for the topic when there is one,
// EventBridge for the rule when there is one, and every other sender is
// denied, explicitly, so that no IAM policy of the account can let one of
// its principals send.
func TestTemplateQueuePolicy(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	checked := 0
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		esms := cfnOfType(rs, "AWS::Lambda::EventSourceMapping")
		if len(esms) == 0 {
			continue
		}
		queueArn := cfnDig(rs[esms[0]], "Properties", "EventSourceArn")
		queue := cfnDig(queueArn, "Fn::GetAtt").([]any)[0].(string)
		var policies []string
		for _, name := range cfnOfType(rs, "AWS::SQS::QueuePolicy") {
			if reflect.DeepEqual(cfnDig(rs[name], "Properties", "Queues"), []any{cfnRef(queue)}) {
				policies = append(policies, name)
			}
		}
		if len(policies) != 1 {
			r.errorf(e, "queue %s has policies %v, want one", queue, policies)
			continue
		}
		var want, senders []any
		if topic := cfnEffectiveTopic(rs, e); topic != nil {
			want = append(want, map[string]any{
				"Sid":       "FromTheTopic",
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": "sns.amazonaws.com"},
				"Action":    "sqs:SendMessage",
				"Resource":  queueArn,
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": topic}},
			})
			senders = append(senders, topic)
		}
		if rules := cfnOfType(rs, "AWS::Events::Rule"); len(rules) == 1 {
			rule := cfnGetAtt(rules[0], "Arn")
			want = append(want, map[string]any{
				"Sid":       "FromTheRule",
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": "events.amazonaws.com"},
				"Action":    "sqs:SendMessage",
				"Resource":  queueArn,
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": rule}},
			})
			senders = append(senders, rule)
		}
		if len(senders) == 0 {
			r.errorf(e, "queue %s is made with nothing to send to it", queue)
			continue
		}
		want = append(want, map[string]any{
			"Sid":       "NothingElseSends",
			"Effect":    "Deny",
			"Principal": "*",
			"Action":    "sqs:SendMessage",
			"Resource":  queueArn,
			"Condition": map[string]any{"ArnNotEquals": map[string]any{"aws:SourceArn": senders}},
		})
		got := cfnDig(rs[policies[0]], "Properties", "PolicyDocument", "Statement")
		if !reflect.DeepEqual(got, want) {
			r.errorf(e, "the queue policy's statements are %v, want only %v", got, want)
		}
		checked++
	}
	r.done()
	if checked == 0 {
		t.Fatal("no combination of parameters makes the queue")
	}
}

// TestTemplateWhatTheFunctionActsOn checks, in every combination of
// parameters, what the function is told to act on: no subscription turns
// raw message delivery on (a raw body carries no signature), signatures
// are verified (SESROUTER_VERIFY_SNS is left at on), SESROUTER_TOPICS
// names the topic when there is one, and SESROUTER_QUEUES names the queue
// exactly when the EventBridge rule sends to it (its events carry no
// signature), and no queue otherwise: the function must then trust none.
func TestTemplateWhatTheFunctionActsOn(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	fn := tpl.function(t)
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		for _, name := range cfnOfType(rs, "AWS::SNS::Subscription") {
			if raw := cfnDig(rs[name], "Properties", "RawMessageDelivery"); raw != nil && raw != "false" {
				r.errorf(e, "%s has RawMessageDelivery %v, want it off", name, raw)
			}
		}
		vars, _ := cfnDig(rs[fn], "Properties", "Environment", "Variables").(map[string]any)
		if v, ok := vars["SESROUTER_VERIFY_SNS"]; ok && v != "on" {
			r.errorf(e, "SESROUTER_VERIFY_SNS is %v, want it on (or unset)", v)
		}
		if got, want := vars["SESROUTER_TOPICS"], cfnEffectiveTopic(rs, e); !reflect.DeepEqual(got, want) {
			r.errorf(e, "SESROUTER_TOPICS is %v, want %v", got, want)
		}
		var ruleToQueue any
		for _, name := range cfnOfType(rs, "AWS::Events::Rule") {
			for _, target := range cfnList(cfnDig(rs[name], "Properties", "Targets")) {
				if arn, _ := cfnDig(target, "Arn", "Fn::GetAtt").([]any); len(arn) == 2 && rs[arn[0].(string)]["Type"] == "AWS::SQS::Queue" {
					ruleToQueue = cfnDig(target, "Arn")
				}
			}
		}
		got, ok := vars["SESROUTER_QUEUES"]
		switch {
		case ruleToQueue == nil && ok:
			r.errorf(e, "SESROUTER_QUEUES is %v, want it unset: the queue carries only signed envelopes", got)
		case ruleToQueue != nil && !reflect.DeepEqual(got, ruleToQueue):
			r.errorf(e, "SESROUTER_QUEUES is %v, want %v, the queue the EventBridge rule sends to", got, ruleToQueue)
		}
	}
	r.done()
}

// TestTemplateSweep checks the sweep's schedule: made only with
// SweepSchedule, invoking the function with {"sesrouter":"sweep"} through
// a role that may invoke that function only, and the function allowed
// ses:ListSuppressedDestinations only then.
func TestTemplateSweep(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	if got := tpl.Parameters["SweepSchedule"]["Default"]; got != "" {
		t.Errorf("SweepSchedule defaults to %q, want empty (no sweep)", got)
	}
	fn := tpl.function(t)
	made := 0
	lists := map[uintptr]bool{} // whether a resolved resource names ses:ListSuppressedDestinations
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		schedules := cfnOfType(rs, "AWS::Scheduler::Schedule")
		want := e.params["SweepSchedule"] != ""
		var listing []string
		for name, r := range rs {
			id := reflect.ValueOf(r).Pointer()
			if _, ok := lists[id]; !ok {
				lists[id] = strings.Contains(fmt.Sprint(r), "ses:ListSuppressedDestinations")
			}
			if lists[id] {
				listing = append(listing, name)
			}
		}
		if !want {
			if len(schedules) != 0 || len(listing) != 0 {
				r.errorf(e, "schedules %v, ses:ListSuppressedDestinations in %v; want none without SweepSchedule", schedules, listing)
			}
			continue
		}
		if len(schedules) != 1 || !reflect.DeepEqual(listing, []string{fn}) {
			r.errorf(e, "schedules %v, ses:ListSuppressedDestinations in %v; want one, and in %s", schedules, listing, fn)
			continue
		}
		made++
		for _, s := range cfnList(cfnDig(rs[fn], "Properties", "Policies")) {
			for _, st := range cfnList(cfnDig(s, "Statement")) {
				if slices.Contains(cfnList(cfnDig(st, "Action")), "ses:ListSuppressedDestinations") &&
					(cfnDig(st, "Effect") != "Allow" || cfnDig(st, "Resource") != "*") {
					r.errorf(e, "the sweep's statement is %v, want allow ses:ListSuppressedDestinations on *", st)
				}
			}
		}
		p := rs[schedules[0]]["Properties"]
		for _, c := range []struct {
			path []string
			want any
		}{
			{[]string{"ScheduleExpression"}, cfnRef("SweepSchedule")},
			{[]string{"FlexibleTimeWindow"}, map[string]any{"Mode": "OFF"}},
			{[]string{"Target", "Arn"}, cfnGetAtt(fn, "Arn")},
			{[]string{"Target", "Input"}, `{"sesrouter":"sweep"}`},
		} {
			if got := cfnDig(p, c.path...); !reflect.DeepEqual(got, c.want) {
				r.errorf(e, "schedule %s is %v, want %v", strings.Join(c.path, "."), got, c.want)
			}
		}
		roleArn, _ := cfnDig(p, "Target", "RoleArn", "Fn::GetAtt").([]any)
		if len(roleArn) != 2 || roleArn[1] != "Arn" || rs[roleArn[0].(string)]["Type"] != "AWS::IAM::Role" {
			r.errorf(e, "schedule RoleArn is %v, want the Arn of a role of the stack", cfnDig(p, "Target", "RoleArn"))
			continue
		}
		role := rs[roleArn[0].(string)]["Properties"]
		trust := map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "scheduler.amazonaws.com"},
			"Action":    "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": cfnRef("AWS::AccountId")}},
		}
		if got := cfnDig(role, "AssumeRolePolicyDocument", "Statement"); !reflect.DeepEqual(got, []any{trust}) {
			r.errorf(e, "the schedule role's trust is %v, want only %v", got, trust)
		}
		invoke := map[string]any{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": cfnGetAtt(fn, "Arn")}
		policies := cfnList(cfnDig(role, "Policies"))
		if len(policies) != 1 || !reflect.DeepEqual(cfnDig(policies[0], "PolicyDocument", "Statement"), []any{invoke}) ||
			cfnDig(role, "ManagedPolicyArns") != nil {
			r.errorf(e, "the schedule role may do %v, want only %v", policies, invoke)
		}
	}
	r.done()
	if made == 0 {
		t.Fatal("no combination of parameters makes the schedule")
	}
}

// cfnPseudoValues are the values cfnEval gives the pseudo parameters.
var cfnPseudoValues = map[string]string{
	"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333",
	"AWS::StackName": "ses", "AWS::URLSuffix": "amazonaws.com",
}

// cfnEval carries out the intrinsic functions of v, which cfnResolve has
// resolved for a deployment (no Fn::If is left): a Ref or an Fn::GetAtt
// is vals[NAME] or vals[RESOURCE.ATTRIBUTE] (a pseudo parameter its
// cfnPseudoValues), else "<NAME>"; Fn::Sub, Fn::Join, Fn::Select,
// Fn::Split and Fn::FindInMap are carried out. The result is a string, a
// list or a mapping.
func (tpl *cfnTemplate) cfnEval(v any, vals map[string]string) (any, error) {
	name := func(n string) string {
		if s, ok := vals[n]; ok {
			return s
		}
		if s, ok := cfnPseudoValues[n]; ok {
			return s
		}
		return "<" + n + ">"
	}
	str := func(v any) (string, error) {
		r, err := tpl.cfnEval(v, vals)
		if err != nil {
			return "", err
		}
		s, ok := r.(string)
		if !ok {
			return "", fmt.Errorf("%v is not a string", r)
		}
		return s, nil
	}
	switch v := v.(type) {
	case []any:
		l := []any{}
		for _, e := range v {
			r, err := tpl.cfnEval(e, vals)
			if err != nil {
				return nil, err
			}
			l = append(l, r)
		}
		return l, nil
	case map[string]any:
		fn, arg, ok := cfnIntrinsic(v)
		if !ok {
			m := map[string]any{}
			for k, e := range v {
				r, err := tpl.cfnEval(e, vals)
				if err != nil {
					return nil, err
				}
				m[k] = r
			}
			return m, nil
		}
		args, _ := arg.([]any)
		switch fn {
		case "Ref":
			return name(arg.(string)), nil
		case "Fn::GetAtt":
			return name(args[0].(string) + "." + args[1].(string)), nil
		case "Fn::Sub":
			tmpl, vars := arg, map[string]any{}
			if len(args) == 2 {
				tmpl, vars = args[0], args[1].(map[string]any)
			}
			var err error
			out := regexp.MustCompile(`\$\{([^}]*)\}`).ReplaceAllStringFunc(tmpl.(string), func(m string) string {
				n := m[2 : len(m)-1]
				if strings.HasPrefix(n, "!") {
					return "${" + n[1:] + "}"
				}
				if local, ok := vars[n]; ok {
					s, e := str(local)
					if e != nil {
						err = e
					}
					return s
				}
				return name(n)
			})
			return out, err
		case "Fn::Join":
			list, err := tpl.cfnEval(args[1], vals)
			if err != nil {
				return nil, err
			}
			var parts []string
			for _, e := range list.([]any) {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("Fn::Join of %v", e)
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, args[0].(string)), nil
		case "Fn::Split":
			s, err := str(args[1])
			if err != nil {
				return nil, err
			}
			var l []any
			for _, p := range strings.Split(s, args[0].(string)) {
				l = append(l, p)
			}
			return l, nil
		case "Fn::Select":
			i, err := strconv.Atoi(fmt.Sprint(args[0]))
			if err != nil {
				return nil, err
			}
			list, err := tpl.cfnEval(args[1], vals)
			if err != nil {
				return nil, err
			}
			l, _ := list.([]any)
			if i < 0 || i >= len(l) {
				return nil, fmt.Errorf("Fn::Select %d of %v", i, l)
			}
			return l[i], nil
		case "Fn::FindInMap":
			var keys []string
			for _, a := range args {
				s, err := str(a)
				if err != nil {
					return nil, err
				}
				keys = append(keys, s)
			}
			r := cfnDig(tpl.Mappings, keys...)
			if r == nil {
				return nil, fmt.Errorf("no mapping %v", keys)
			}
			return r, nil
		}
		return nil, fmt.Errorf("cannot evaluate %s", fn)
	}
	return v, nil
}

// cfnSpecParameters are the template's parameters as the docs name them:
// those kept, and the new ones with their type and default.
var (
	cfnKeptParameters = []string{
		"TopicArn", "CreateTopic", "UseQueue", "UseEventBridge", "SweepSchedule",
		"SlackWebhookUrl", "SlackBotToken", "SlackSecretArn", "LogLevel", "Timeout",
		"QueueVisibilityTimeout", "QueueBatchSize", "QueueBatchingWindow",
		"QueueMaximumConcurrency", "QueueMaxReceiveCount", "LogRetentionInDays",
	}
	cfnNewParameters = map[string][2]string{
		"RulesS3Uri":    {"String", ""},
		"EventTypes":    {"CommaDelimitedList", "Bounce,Complaint"},
		"AlarmTopicArn": {"String", ""},
		"StateTable":    {"String", "false"},
		"Interactivity": {"String", "false"},
		"AllowSuppress": {"String", "false"},
	}
)

// TestTemplateParameters checks the parameters against the documented names:
// each kept one is there, each new one with its type and default (the
// switches true or false), and no other; the patterns take what the
// descriptions say and refuse the rest; the parameters that put a Slack
// credential in the environment say so and point to SlackSecretArn.
func TestTemplateParameters(t *testing.T) {
	tpl := loadCFNTemplate(t)
	want := slices.Clone(cfnKeptParameters)
	for name, td := range cfnNewParameters {
		want = append(want, name)
		p := tpl.Parameters[name]
		if p["Type"] != td[0] || p["Default"] != td[1] {
			t.Errorf("parameter %s is %v %q, want %s defaulting to %q", name, p["Type"], p["Default"], td[0], td[1])
		}
		if td[1] == "false" && !reflect.DeepEqual(p["AllowedValues"], []any{"true", "false"}) {
			t.Errorf("parameter %s allows %v, want true and false", name, p["AllowedValues"])
		}
	}
	got := slices.Sorted(maps.Keys(tpl.Parameters))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("parameters %v, want %v", got, want)
	}

	for _, c := range []struct {
		param string
		ok    []string
		bad   []string
	}{
		{"RulesS3Uri",
			[]string{"", "s3://sesrouter-config/rules.yaml", "s3://my.bucket-1/prod/rules.yaml"},
			[]string{"s3://sesrouter-config", "s3://sesrouter-config/", "https://sesrouter-config.s3.amazonaws.com/rules.yaml", "s3://sesrouter-config/*", "s3://Bucket/rules.yaml", "rules.yaml"}},
		{"SlackSecretArn",
			[]string{"", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:sesrouter/slack-AbC123"},
			[]string{"sesrouter/slack", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:sesrouter/slack", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:*"}},
		{"AlarmTopicArn",
			[]string{"", "arn:aws:sns:eu-west-1:111122223333:alarms"},
			[]string{"alarms", "arn:aws:sqs:eu-west-1:111122223333:alarms"}},
	} {
		pattern, _ := tpl.Parameters[c.param]["AllowedPattern"].(string)
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Errorf("parameter %s: AllowedPattern %q: %v", c.param, pattern, err)
			continue
		}
		for _, v := range c.ok {
			if !re.MatchString(v) {
				t.Errorf("parameter %s refuses %q", c.param, v)
			}
		}
		for _, v := range c.bad {
			if re.MatchString(v) {
				t.Errorf("parameter %s takes %q", c.param, v)
			}
		}
	}

	for _, name := range []string{"SlackWebhookUrl", "SlackBotToken"} {
		p := tpl.Parameters[name]
		d, _ := p["Description"].(string)
		if p["NoEcho"] != "true" || !strings.Contains(d, "lambda:GetFunctionConfiguration") || !strings.Contains(d, "prefer SlackSecretArn") {
			t.Errorf("parameter %s: NoEcho %v, description %q; want NoEcho, and to say the credential is readable with lambda:GetFunctionConfiguration and to prefer SlackSecretArn", name, p["NoEcho"], d)
		}
	}
}

// cfnStatements returns the statements of the function's policies, and
// the SAM policy templates (such as SQSPollerPolicy) by name.
func cfnStatements(fn map[string]any) (statements []any, templates map[string]any) {
	templates = map[string]any{}
	for _, p := range cfnList(cfnDig(fn, "Properties", "Policies")) {
		m, _ := p.(map[string]any)
		if st, ok := m["Statement"]; ok {
			statements = append(statements, cfnList(st)...)
			continue
		}
		for k, v := range m {
			templates[k] = v
		}
	}
	return statements, templates
}

// cfnSampleRulesURI and cfnSampleRulesARN are a RulesS3Uri and the ARN
// of its object.
const (
	cfnSampleRulesURI = "s3://sesrouter-config/prod/rules.yaml"
	cfnSampleRulesARN = "arn:aws:s3:::sesrouter-config/prod/rules.yaml"
)

// TestTemplateFunctionPermissions checks, in every combination of
// parameters, what the function's role allows: each statement an Allow
// of named actions on one resource; "*" only for the suppression list's
// actions, which support no resource-level permission; and exactly these:
// GetSuppressedDestination and DeleteSuppressedDestination,
// PutSuppressedDestination only with AllowSuppress,
// ListSuppressedDestinations only with SweepSchedule, s3:GetObject and
// s3:GetObjectVersion on the RulesS3Uri object only, secretsmanager:GetSecretValue on the
// SlackSecretArn secret only, the item-level DynamoDB calls on the state
// table only, and the queue's poller policy on the queue.
func TestTemplateFunctionPermissions(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	fn := tpl.function(t)
	suppression := []string{"ses:GetSuppressedDestination", "ses:DeleteSuppressedDestination", "ses:PutSuppressedDestination", "ses:ListSuppressedDestinations"}
	vals := map[string]string{"RulesS3Uri": cfnSampleRulesURI}
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		statements, templates := cfnStatements(rs[fn])
		got := map[string]any{} // action: resource
		for _, st := range statements {
			res := cfnDig(st, "Resource")
			if cfnDig(st, "Effect") != "Allow" || cfnDig(st, "NotAction") != nil || cfnDig(st, "NotResource") != nil || cfnDig(st, "Condition") != nil {
				r.errorf(e, "statement %v: want a plain Allow", st)
			}
			if _, many := res.([]any); many || res == nil {
				r.errorf(e, "statement %v: want one resource", st)
			}
			for _, a := range cfnList(cfnDig(st, "Action")) {
				action, _ := a.(string)
				if strings.Contains(action, "*") {
					r.errorf(e, "statement %v: action %q has a wildcard", st, action)
				}
				if res == "*" && !slices.Contains(suppression, action) {
					r.errorf(e, "statement %v: %s on *, want it on one resource", st, action)
				}
				if _, again := got[action]; again {
					r.errorf(e, "%s is allowed twice", action)
				}
				got[action] = res
				if strings.HasPrefix(action, "s3:") {
					arn, err := tpl.cfnEval(res, vals)
					if err != nil || arn != cfnSampleRulesARN {
						r.errorf(e, "%s is on %v (%v, %v with RulesS3Uri %s), want %s", action, res, arn, err, cfnSampleRulesURI, cfnSampleRulesARN)
					}
					got[action] = cfnSampleRulesARN
				}
			}
		}
		want := map[string]any{"ses:GetSuppressedDestination": "*", "ses:DeleteSuppressedDestination": "*"}
		if e.params["AllowSuppress"] == "true" {
			want["ses:PutSuppressedDestination"] = "*"
		}
		if e.params["SweepSchedule"] != "" {
			want["ses:ListSuppressedDestinations"] = "*"
		}
		if e.params["RulesS3Uri"] != "" {
			want["s3:GetObject"] = cfnSampleRulesARN
			want["s3:GetObjectVersion"] = cfnSampleRulesARN
		}
		if e.params["SlackSecretArn"] != "" {
			want["secretsmanager:GetSecretValue"] = cfnRef("SlackSecretArn")
		}
		if tables := cfnOfType(rs, "AWS::DynamoDB::Table"); len(tables) == 1 {
			for _, a := range []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"} {
				want["dynamodb:"+a] = cfnGetAtt(tables[0], "Arn")
			}
		}
		if !reflect.DeepEqual(got, want) {
			r.errorf(e, "the function may do %v, want %v", got, want)
		}
		wantTemplates := map[string]any{}
		if queues := cfnOfType(rs, "AWS::Lambda::EventSourceMapping"); len(queues) == 1 {
			queue := cfnDig(rs[queues[0]], "Properties", "EventSourceArn", "Fn::GetAtt").([]any)[0].(string)
			wantTemplates["SQSPollerPolicy"] = map[string]any{"QueueName": cfnGetAtt(queue, "QueueName")}
		}
		if !reflect.DeepEqual(templates, wantTemplates) {
			r.errorf(e, "the function's policy templates are %v, want %v", templates, wantTemplates)
		}
	}
	r.done()
}

// TestTemplateSecrets checks that no secret is resolved into the
// template (no dynamic reference at all), and, in every combination of
// parameters, that SlackSecretArn reaches the function as the ARN in
// SESROUTER_SECRETS with no Slack credential beside it, while without it
// SlackWebhookUrl and SlackBotToken still reach it as before.
func TestTemplateSecrets(t *testing.T) {
	tpl := loadCFNTemplate(t)
	for _, s := range []string{"resolve:secretsmanager", "{{resolve:"} {
		if strings.Contains(tpl.src, s) {
			t.Errorf("the template holds %q: a secret resolved at deployment lands in the function's configuration", s)
		}
	}
	r := newCFNReport(t)
	fn := tpl.function(t)
	for _, e := range tpl.envs(t) {
		vars, _ := cfnDig(cfnDeployed(tpl.Resources, e)[fn], "Properties", "Environment", "Variables").(map[string]any)
		want := map[string]any{}
		if e.params["SlackSecretArn"] != "" {
			want["SESROUTER_SECRETS"] = cfnRef("SlackSecretArn")
		} else {
			if e.params["SlackWebhookUrl"] != "" {
				want["SLACK_WEBHOOK_URL"] = cfnRef("SlackWebhookUrl")
			}
			if e.params["SlackBotToken"] != "" {
				want["SLACK_BOT_TOKEN"] = cfnRef("SlackBotToken")
			}
		}
		for _, k := range []string{"SESROUTER_SECRETS", "SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} {
			if got, want := vars[k], want[k]; !reflect.DeepEqual(got, want) {
				r.errorf(e, "%s is %v, want %v", k, got, want)
			}
		}
		// No other variable carries a NoEcho parameter.
		for k, v := range vars {
			cfnRefs(v, func(kind, name string) {
				if tpl.Parameters[name]["NoEcho"] == "true" && want[k] == nil {
					r.errorf(e, "%s carries the NoEcho parameter %s", k, name)
				}
			})
		}
	}
	r.done()
}

// cfnAlarmMetrics describes the metrics an alarm watches, one
// "NAMESPACE NAME DIM=VALUE..." each, sorted.
func cfnAlarmMetrics(p any) []string {
	describe := func(m any) string {
		s := fmt.Sprintf("%v %v", cfnDig(m, "Namespace"), cfnDig(m, "MetricName"))
		var dims []string
		for _, d := range cfnList(cfnDig(m, "Dimensions")) {
			dims = append(dims, fmt.Sprintf("%v=%v", cfnDig(d, "Name"), cfnValueString(cfnDig(d, "Value"))))
		}
		slices.Sort(dims)
		return strings.TrimSpace(s + " " + strings.Join(dims, " "))
	}
	if ms := cfnList(cfnDig(p, "Metrics")); len(ms) > 0 {
		var out []string
		for _, m := range ms {
			if stat := cfnDig(m, "MetricStat", "Metric"); stat != nil {
				out = append(out, describe(stat))
			}
		}
		slices.Sort(out)
		return out
	}
	return []string{describe(p)}
}

// cfnValueString writes a Ref or an Fn::GetAtt as Ref:NAME or
// GetAtt:RESOURCE.ATTRIBUTE, anything else as fmt does.
func cfnValueString(v any) string {
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["Ref"].(string); ok {
			return "Ref:" + s
		}
		if l, ok := m["Fn::GetAtt"].([]any); ok && len(l) == 2 {
			return fmt.Sprintf("GetAtt:%v.%v", l[0], l[1])
		}
	}
	return fmt.Sprint(v)
}

// AWS's review thresholds for an SES account's reputation: a bounce rate
// of 5% and a complaint rate of 0.1%.
const (
	cfnReviewBounceRate    = 0.05
	cfnReviewComplaintRate = 0.001
)

// TestTemplateAlarms checks, in every combination of parameters, the
// alarms: none without AlarmTopicArn; with it, exactly these, each
// telling the topic when it fires and when it clears: the function's
// Errors and Throttles, the dead-letter queues' depth and the queue's
// age (with the queue), the failed actions (notify, unsuppress, suppress
// together), RuleErrors, DigestsFailed, refused inputs, RulesRefused
// (with RulesS3Uri), and SES's bounce and complaint rates, which fire
// below AWS's review thresholds.
func TestTemplateAlarms(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	fn := tpl.function(t)
	type want struct {
		threshold any
		op        string
	}
	const over = "GreaterThanThreshold"
	made := 0
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		alarms := cfnOfType(rs, "AWS::CloudWatch::Alarm")
		if e.params["AlarmTopicArn"] == "" {
			if len(alarms) > 0 {
				r.errorf(e, "alarms %v without AlarmTopicArn, want none", alarms)
			}
			continue
		}
		made++
		wants := map[string]want{
			"AWS/Lambda Errors FunctionName=Ref:" + fn:                                                {"0", over},
			"AWS/Lambda Throttles FunctionName=Ref:" + fn:                                             {"0", over},
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=GetAtt:AsyncFailureQueue.QueueName": {"0", over},
			"sesrouter Actions Action=notify Outcome=failed,sesrouter Actions Action=suppress Outcome=failed,sesrouter Actions Action=unsuppress Outcome=failed": {"0", over},
			"sesrouter RuleErrors":                   {"0", over},
			"sesrouter DigestsFailed":                {"0", over},
			"sesrouter Notifications Type=(refused)": {"0", over},
			"AWS/SES Reputation.BounceRate":          {cfnReviewBounceRate, "GreaterThanOrEqualToThreshold"},
			"AWS/SES Reputation.ComplaintRate":       {cfnReviewComplaintRate, "GreaterThanOrEqualToThreshold"},
		}
		if esms := cfnOfType(rs, "AWS::Lambda::EventSourceMapping"); len(esms) == 1 {
			queue := cfnDig(rs[esms[0]], "Properties", "EventSourceArn", "Fn::GetAtt").([]any)[0].(string)
			dlq, _ := cfnDig(rs[queue], "Properties", "RedrivePolicy", "deadLetterTargetArn", "Fn::GetAtt").([]any)
			if len(dlq) != 2 {
				r.errorf(e, "queue %s has no dead-letter queue", queue)
				continue
			}
			wants["AWS/SQS ApproximateNumberOfMessagesVisible QueueName=GetAtt:"+dlq[0].(string)+".QueueName"] = want{"0", over}
			wants["AWS/SQS ApproximateAgeOfOldestMessage QueueName=GetAtt:"+queue+".QueueName"] = want{cfnRef("QueueVisibilityTimeout"), over}
		}
		if e.params["RulesS3Uri"] != "" {
			wants["sesrouter RulesRefused"] = want{"0", over}
		}
		got := map[string]bool{}
		for _, name := range alarms {
			p := rs[name]["Properties"]
			key := strings.Join(cfnAlarmMetrics(p), ",")
			got[key] = true
			w, ok := wants[key]
			if !ok {
				r.errorf(e, "alarm %s watches %s, which no alarm should", name, key)
				continue
			}
			topic := []any{cfnRef("AlarmTopicArn")}
			if !reflect.DeepEqual(cfnDig(p, "AlarmActions"), topic) || !reflect.DeepEqual(cfnDig(p, "OKActions"), topic) {
				r.errorf(e, "alarm %s tells %v when it fires and %v when it clears, want AlarmTopicArn both times", name, cfnDig(p, "AlarmActions"), cfnDig(p, "OKActions"))
			}
			if cfnDig(p, "ComparisonOperator") != w.op {
				r.errorf(e, "alarm %s compares %v, want %s", name, cfnDig(p, "ComparisonOperator"), w.op)
			}
			threshold := cfnDig(p, "Threshold")
			if review, ok := w.threshold.(float64); ok {
				v, err := tpl.cfnEval(threshold, nil)
				f, perr := strconv.ParseFloat(fmt.Sprint(v), 64)
				if err != nil || perr != nil || f <= review/2 || f >= review {
					r.errorf(e, "alarm %s fires at %v (%v, %v), want below AWS's review threshold %g (and above half of it)", name, v, err, perr, review)
				}
			} else if !reflect.DeepEqual(threshold, w.threshold) {
				r.errorf(e, "alarm %s fires over %v, want %v", name, threshold, w.threshold)
			}
			if ms := cfnList(cfnDig(p, "Metrics")); len(ms) > 0 {
				// The one expression returned adds up every metric.
				var exprs []any
				for _, m := range ms {
					if cfnDig(m, "ReturnData") == "true" {
						exprs = append(exprs, cfnDig(m, "Expression"))
					}
				}
				expr := ""
				if len(exprs) == 1 {
					expr, _ = exprs[0].(string)
				}
				for _, m := range ms {
					if id, _ := cfnDig(m, "Id").(string); cfnDig(m, "MetricStat") != nil && !regexp.MustCompile(`\b`+id+`\b`).MatchString(expr) {
						r.errorf(e, "alarm %s: its expression %q leaves out %s", name, expr, id)
					}
				}
				if len(exprs) != 1 || !strings.HasPrefix(expr, "SUM(") {
					r.errorf(e, "alarm %s returns %v, want one SUM of its metrics", name, exprs)
				}
			}
		}
		for key := range wants {
			if !got[key] {
				r.errorf(e, "no alarm watches %s", key)
			}
		}
	}
	r.done()
	if made == 0 {
		t.Fatal("no combination of parameters makes the alarms")
	}
	for _, c := range []struct {
		metric string
		review float64
	}{{"BounceRate", cfnReviewBounceRate}, {"ComplaintRate", cfnReviewComplaintRate}} {
		if got := cfnDig(tpl.Mappings, "Reputation", "Review", c.metric); got != strconv.FormatFloat(c.review, 'g', -1, 64) {
			t.Errorf("the Reputation mapping's review %s is %v, want AWS's %g", c.metric, got, c.review)
		}
	}
}

// cfnDashboardMetrics returns the metrics a dashboard body draws, as
// "NAMESPACE NAME" (a SEARCH expression: the namespace and metric name
// it searches), with the dimension values of each, and the values of its
// horizontal annotations.
func cfnDashboardMetrics(t *testing.T, body string) (metrics map[string][][]string, annotations []float64) {
	t.Helper()
	var d struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Region      string
				Metrics     [][]any
				Annotations struct {
					Horizontal []struct{ Value float64 }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("the dashboard body is not JSON: %v\n%s", err, body)
	}
	search := regexp.MustCompile(`^SEARCH\('\{([^,}]+)[^}]*\} MetricName="([^"]+)"'`)
	metrics = map[string][][]string{}
	for _, w := range d.Widgets {
		if w.Type != "metric" || w.Properties.Region != cfnPseudoValues["AWS::Region"] {
			t.Errorf("dashboard widget %+v: want a metric widget of the stack's region", w)
		}
		for _, a := range w.Properties.Annotations.Horizontal {
			annotations = append(annotations, a.Value)
		}
		for _, m := range w.Properties.Metrics {
			var strs []string
			for _, e := range m {
				if s, ok := e.(string); ok {
					strs = append(strs, s)
				}
			}
			if len(strs) >= 2 {
				metrics[strs[0]+" "+strs[1]] = append(metrics[strs[0]+" "+strs[1]], strs[2:])
				continue
			}
			expr, _ := cfnDig(m[0], "expression").(string)
			if g := search.FindStringSubmatch(expr); g != nil {
				metrics[g[1]+" "+g[2]] = append(metrics[g[1]+" "+g[2]], nil)
				continue
			}
			t.Errorf("dashboard metric %v: neither a metric nor a SEARCH", m)
		}
	}
	return metrics, annotations
}

// TestTemplateDashboard checks the dashboard in every combination of
// parameters: its body is JSON, and it draws the function's invocations,
// errors, throttles and duration, the sesrouter metrics, the queues
// there are, the SES reputation with the alarm and review thresholds
// drawn in, and every metric an alarm watches.
func TestTemplateDashboard(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	type drawn struct {
		metrics     map[string][][]string
		annotations []float64
	}
	bodies := map[uintptr]drawn{} // what the body draws, by dashboard variant
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		dashboards := cfnOfType(rs, "AWS::CloudWatch::Dashboard")
		if len(dashboards) != 1 {
			r.errorf(e, "dashboards %v, want one", dashboards)
			continue
		}
		id := reflect.ValueOf(rs[dashboards[0]]).Pointer()
		d, ok := bodies[id]
		if !ok {
			v, err := tpl.cfnEval(cfnDig(rs[dashboards[0]], "Properties", "DashboardBody"), nil)
			if err != nil {
				t.Fatalf("the dashboard body: %v", err)
			}
			d.metrics, d.annotations = cfnDashboardMetrics(t, v.(string))
			bodies[id] = d
		}
		metrics, annotations := d.metrics, slices.Clone(d.annotations)
		fn := "<" + tpl.function(t) + ">"
		want := map[string][]string{
			"AWS/Lambda Invocations": {fn}, "AWS/Lambda Errors": {fn}, "AWS/Lambda Throttles": {fn}, "AWS/Lambda Duration": {fn},
			"sesrouter Notifications": nil, "sesrouter Actions": nil, "sesrouter Recipients": nil,
			"sesrouter RuleErrors": nil, "sesrouter RulesRefused": nil, "sesrouter DigestsFailed": nil,
			"sesrouter Digests": nil, "sesrouter Digested": nil, "sesrouter Storming": nil,
			"AWS/SES Reputation.BounceRate": nil, "AWS/SES Reputation.ComplaintRate": nil,
			"AWS/SQS ApproximateNumberOfMessagesVisible": {"<AsyncFailureQueue.QueueName>"},
		}
		if esms := cfnOfType(rs, "AWS::Lambda::EventSourceMapping"); len(esms) == 1 {
			queue := cfnDig(rs[esms[0]], "Properties", "EventSourceArn", "Fn::GetAtt").([]any)[0].(string)
			want["AWS/SQS ApproximateAgeOfOldestMessage"] = []string{"<" + queue + ".QueueName>"}
			want["AWS/SQS ApproximateNumberOfMessagesVisible"] = append(want["AWS/SQS ApproximateNumberOfMessagesVisible"], "<"+queue+".QueueName>", "<DeadLetterQueue.QueueName>")
		}
		for key, values := range want {
			drawn, ok := metrics[key]
			if !ok {
				r.errorf(e, "the dashboard does not draw %s", key)
			}
			for _, v := range values {
				found := false
				for _, dims := range drawn {
					found = found || slices.Contains(dims, v)
				}
				if !found {
					r.errorf(e, "the dashboard draws %s for %v, not for %s", key, drawn, v)
				}
			}
		}
		for _, name := range cfnOfType(rs, "AWS::CloudWatch::Alarm") {
			for _, m := range cfnAlarmMetrics(rs[name]["Properties"]) {
				f := strings.Fields(m)
				if _, ok := metrics[f[0]+" "+f[1]]; !ok {
					r.errorf(e, "alarm %s watches %s, which the dashboard does not draw", name, m)
				}
			}
		}
		var wantAnnotations []float64
		for _, level := range []string{"Warn", "Review"} {
			for _, metric := range []string{"BounceRate", "ComplaintRate"} {
				f, err := strconv.ParseFloat(fmt.Sprint(cfnDig(tpl.Mappings, "Reputation", level, metric)), 64)
				if err != nil {
					t.Fatalf("the Reputation mapping: %v", err)
				}
				wantAnnotations = append(wantAnnotations, f)
			}
		}
		slices.Sort(annotations)
		slices.Sort(wantAnnotations)
		if !slices.Equal(annotations, wantAnnotations) {
			r.errorf(e, "the dashboard draws lines at %v, want the alarm and review thresholds %v", annotations, wantAnnotations)
		}
	}
	r.done()
}

// cfnSNSBodyMatches reports whether SNS delivers a message of this body
// to a subscription with this filter policy of scope MessageBody: the
// body is a JSON object, and every key of the policy matches, a list of
// strings when the body's value is one of them, "$or" when one of its
// policies matches.
func cfnSNSBodyMatches(policy map[string]any, body map[string]any) bool {
	for k, v := range policy {
		if k == "$or" {
			one := false
			for _, p := range v.([]any) {
				one = one || cfnSNSBodyMatches(p.(map[string]any), body)
			}
			if !one {
				return false
			}
			continue
		}
		s, ok := body[k].(string)
		if !ok || !slices.Contains(v.([]any), any(s)) {
			return false
		}
	}
	return true
}

// cfnEventMatches reports whether an EventBridge pattern matches an
// event: every key's value is one of the pattern's list, or matches its
// nested pattern.
func cfnEventMatches(pattern map[string]any, event map[string]any) bool {
	for k, v := range pattern {
		switch v := v.(type) {
		case map[string]any:
			sub, ok := event[k].(map[string]any)
			if !ok || !cfnEventMatches(v, sub) {
				return false
			}
		case []any:
			s, ok := event[k].(string)
			if !ok || !slices.Contains(v, any(s)) {
				return false
			}
		}
	}
	return true
}

// cfnReadJSON reads a JSON object from a file of the repository.
func cfnReadJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestTemplateEventTypes checks the filtering at the source, in every
// combination of parameters: each SNS subscription has the filter policy
// on the message body built from EventTypes, and the EventBridge rule a
// pattern on the same; then, with the policy and the pattern as
// deployed, that the identity notifications and the event-publishing
// records of the listed types get through and the others do not.
func TestTemplateEventTypes(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	types := cfnRef("EventTypes")
	wantPolicy := map[string]any{"$or": []any{
		map[string]any{"notificationType": types},
		map[string]any{"eventType": types},
	}}
	var policy, pattern any
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		for _, name := range cfnOfType(rs, "AWS::SNS::Subscription") {
			p := rs[name]["Properties"]
			if cfnDig(p, "FilterPolicyScope") != "MessageBody" || !reflect.DeepEqual(cfnDig(p, "FilterPolicy"), wantPolicy) {
				r.errorf(e, "subscription %s filters %v on %v, want %v on MessageBody", name, cfnDig(p, "FilterPolicy"), cfnDig(p, "FilterPolicyScope"), wantPolicy)
			}
			policy = cfnDig(p, "FilterPolicy")
		}
		for _, name := range cfnOfType(rs, "AWS::Events::Rule") {
			p := cfnDig(rs[name], "Properties", "EventPattern")
			if !reflect.DeepEqual(cfnDig(p, "detail", "eventType"), types) || !reflect.DeepEqual(cfnDig(p, "source"), []any{"aws.ses"}) {
				r.errorf(e, "rule %s has the pattern %v, want source aws.ses and detail.eventType the EventTypes", name, p)
			}
			pattern = p
		}
	}
	r.done()
	if policy == nil || pattern == nil {
		t.Fatalf("no combination of parameters subscribes to the topic (%v) or makes the rule (%v)", policy, pattern)
	}

	def, _ := tpl.Parameters["EventTypes"]["Default"].(string)
	for _, c := range []struct {
		eventTypes string
		file       string // an SNS body, a bare SES record or an EventBridge event
		want       bool
	}{
		{def, "../../testdata/samples/events/01_identity_bounce_permanent_general_simulator_sns_http.json", true},
		{def, "../../testdata/samples/events/02_identity_complaint_simulator_sns_http.json", true},
		{def, "../../testdata/samples/events/03_identity_delivery_sns_http.json", false},
		{def, "../../testdata/samples/events/15_event_bounce_permanent_general_gmail_sns_http.json", true},
		{def, "../../testdata/samples/events/44_doc_event_complaint.json", true},
		{def, "../../testdata/samples/events/18_event_open_sns_http.json", false},
		{def, "../../testdata/samples/events/19_sns_notification_successfully_validated_topic_non_json_message.json", false},
		{def, "../../testdata/events/amazon-sns-subscription-succeeded.json", false},
		{def, "../../testdata/events/send.json", false},
		{def, "../../testdata/events/rendering-failure.json", false},
		{"Bounce, Complaint, Rendering Failure", "../../testdata/events/rendering-failure.json", true},
		{"Delivery", "../../testdata/samples/events/03_identity_delivery_sns_http.json", true},
		{"Delivery", "../../testdata/samples/events/01_identity_bounce_permanent_general_simulator_sns_http.json", false},
		{def, "../../testdata/events/bounce-eventbridge.json", true},
		{def, "../../testdata/events/eventbridge-sending-status.json", false},
		{"Open,Click", "../../testdata/events/bounce-eventbridge.json", false},
	} {
		// A CommaDelimitedList, as CloudFormation splits it: at the
		// commas, each value trimmed.
		var list []string
		for v := range strings.SplitSeq(c.eventTypes, ",") {
			list = append(list, strings.TrimSpace(v))
		}
		vals := map[string]string{}
		eval := func(v any) map[string]any {
			// Ref EventTypes becomes the list: evaluate with a marker
			// and put the list in its place.
			vals["EventTypes"] = "\x00types"
			out, err := tpl.cfnEval(v, vals)
			if err != nil {
				t.Fatal(err)
			}
			var put func(any) any
			put = func(v any) any {
				switch v := v.(type) {
				case string:
					if v == "\x00types" {
						var l []any
						for _, s := range list {
							l = append(l, s)
						}
						return l
					}
				case []any:
					for i := range v {
						v[i] = put(v[i])
					}
				case map[string]any:
					for k := range v {
						v[k] = put(v[k])
					}
				}
				return v
			}
			return put(out).(map[string]any)
		}
		doc := cfnReadJSON(t, c.file)
		var got bool
		if doc["source"] != nil {
			got = cfnEventMatches(eval(pattern), doc)
		} else {
			body := doc
			if doc["Type"] == "Notification" { // SNS filters the Message, not the envelope
				body = nil
				msg, _ := doc["Message"].(string)
				_ = json.Unmarshal([]byte(msg), &body)
			}
			got = body != nil && cfnSNSBodyMatches(eval(policy), body)
		}
		if got != c.want {
			t.Errorf("EventTypes %q: %s gets through: %t, want %t", c.eventTypes, filepath.Base(c.file), got, c.want)
		}
	}
}

// TestTemplateEventBridgeThroughQueue checks the EventBridge rule in
// every combination of parameters: with UseQueue it sends to the queue
// the function reads (and the function cannot be invoked by EventBridge
// at all), without it to the function, with a permission for that rule
// only.
func TestTemplateEventBridgeThroughQueue(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	fn := tpl.function(t)
	through := 0
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		rules := cfnOfType(rs, "AWS::Events::Rule")
		if (e.params["UseEventBridge"] == "true") != (len(rules) == 1) {
			r.errorf(e, "rules %v, want one exactly with UseEventBridge", rules)
			continue
		}
		var invokers []any
		for _, name := range cfnOfType(rs, "AWS::Lambda::Permission") {
			if cfnDig(rs[name], "Properties", "Principal") == "events.amazonaws.com" {
				invokers = append(invokers, cfnDig(rs[name], "Properties", "SourceArn"))
			}
		}
		if len(rules) == 0 {
			if len(invokers) > 0 {
				r.errorf(e, "EventBridge may invoke the function for %v, and there is no rule", invokers)
			}
			continue
		}
		targets := cfnList(cfnDig(rs[rules[0]], "Properties", "Targets"))
		var target any
		if len(targets) == 1 {
			target = cfnDig(targets[0], "Arn")
		}
		if e.params["UseQueue"] == "true" {
			through++
			esms := cfnOfType(rs, "AWS::Lambda::EventSourceMapping")
			if len(esms) != 1 {
				r.errorf(e, "EventBridge with UseQueue, and no queue the function reads")
				continue
			}
			if queue := cfnDig(rs[esms[0]], "Properties", "EventSourceArn"); !reflect.DeepEqual(target, queue) {
				r.errorf(e, "the rule sends to %v, want only the queue %v", targets, queue)
			}
			if len(invokers) > 0 {
				r.errorf(e, "EventBridge may invoke the function for %v, want the queue only", invokers)
			}
		} else {
			if !reflect.DeepEqual(target, cfnGetAtt(fn, "Arn")) {
				r.errorf(e, "the rule sends to %v, want only the function", targets)
			}
			if want := []any{cfnGetAtt(rules[0], "Arn")}; !reflect.DeepEqual(invokers, want) {
				r.errorf(e, "EventBridge may invoke the function for %v, want %v", invokers, want)
			}
		}
	}
	r.done()
	if through == 0 {
		t.Fatal("no combination of parameters sends EventBridge through the queue")
	}
}

// TestTemplateLogging checks the function's logging: JSON lines, which
// the function writes with a "level" Lambda reads, filtered by Lambda at
// the level the function honours (SESROUTER_LOG_LEVEL, which it takes
// for each LogLevel), except that Lambda never drops INFO, the level it
// gives the metric lines, which carry none.
func TestTemplateLogging(t *testing.T) {
	tpl := loadCFNTemplate(t)
	props := tpl.Resources[tpl.function(t)]["Properties"]
	if got := cfnDig(props, "Environment", "Variables", "SESROUTER_LOG_LEVEL"); !reflect.DeepEqual(got, cfnRef("LogLevel")) {
		t.Errorf("SESROUTER_LOG_LEVEL is %v, want LogLevel", got)
	}
	if got := cfnDig(props, "LoggingConfig", "LogFormat"); got != "JSON" {
		t.Errorf("LogFormat is %v, want JSON: Lambda filters by level only JSON lines", got)
	}
	order := []string{"DEBUG", "INFO", "WARN", "ERROR"}
	levels, _ := tpl.Parameters["LogLevel"]["AllowedValues"].([]any)
	if len(levels) == 0 {
		t.Fatal("LogLevel has no AllowedValues")
	}
	for _, l := range levels {
		level := l.(string)
		var buf strings.Builder
		logger, err := newLogger(&buf, env{getenv: func(k string) string {
			if k == "SESROUTER_LOG_LEVEL" {
				return level
			}
			return ""
		}})
		if err != nil {
			t.Errorf("LogLevel %s: the function refuses it: %v", level, err)
			continue
		}
		// What the function writes at its level, Lambda reads as that level.
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			t.Fatal(err)
		}
		logger.Log(t.Context(), lv, "probe")
		var line struct{ Level string }
		if err := json.Unmarshal([]byte(buf.String()), &line); err != nil || line.Level != strings.ToUpper(level) {
			t.Errorf("LogLevel %s: the function wrote %q (%v), want a JSON line with \"level\":%q", level, buf.String(), err, strings.ToUpper(level))
		}
		v, err := tpl.cfnEval(cfnDig(props, "LoggingConfig", "ApplicationLogLevel"), map[string]string{"LogLevel": level})
		want := min(slices.Index(order, strings.ToUpper(level)), slices.Index(order, "INFO"))
		if err != nil || slices.Index(order, fmt.Sprint(v)) != want {
			t.Errorf("LogLevel %s: Lambda filters at %v (%v), want %s", level, v, err, order[want])
		}
	}
}

// TestTemplateStateAndInteractivity checks, in every combination of
// parameters, StateTable (the fleet-state table as documented, its
// name in SESROUTER_STATE_TABLE and the StateTableName output) and
// Interactivity (a function URL without IAM auth, that may invoke the
// function only through the URL, in the InteractivityUrl output).
func TestTemplateStateAndInteractivity(t *testing.T) {
	tpl := loadCFNTemplate(t)
	r := newCFNReport(t)
	fn := tpl.function(t)
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		outs := cfnDeployed(tpl.Outputs, e)
		vars, _ := cfnDig(rs[fn], "Properties", "Environment", "Variables").(map[string]any)

		tables := cfnOfType(rs, "AWS::DynamoDB::Table")
		if (e.params["StateTable"] == "true") != (len(tables) == 1) || len(tables) > 1 {
			r.errorf(e, "tables %v, want one exactly with StateTable", tables)
		} else if len(tables) == 1 {
			want := map[string]any{
				"BillingMode": "PAY_PER_REQUEST",
				"AttributeDefinitions": []any{
					map[string]any{"AttributeName": "pk", "AttributeType": "S"},
					map[string]any{"AttributeName": "sk", "AttributeType": "S"},
				},
				"KeySchema": []any{
					map[string]any{"AttributeName": "pk", "KeyType": "HASH"},
					map[string]any{"AttributeName": "sk", "KeyType": "RANGE"},
				},
				"TimeToLiveSpecification": map[string]any{"AttributeName": "expires", "Enabled": "true"},
			}
			if got := rs[tables[0]]["Properties"]; !reflect.DeepEqual(got, want) {
				r.errorf(e, "the table is %v, want %v", got, want)
			}
			if got := vars["SESROUTER_STATE_TABLE"]; !reflect.DeepEqual(got, cfnRef(tables[0])) {
				r.errorf(e, "SESROUTER_STATE_TABLE is %v, want the table", got)
			}
			if got := outs["StateTableName"]["Value"]; !reflect.DeepEqual(got, cfnRef(tables[0])) {
				r.errorf(e, "output StateTableName is %v, want the table", got)
			}
		} else if v, ok := vars["SESROUTER_STATE_TABLE"]; ok {
			r.errorf(e, "SESROUTER_STATE_TABLE is %v without StateTable", v)
		}

		urls := cfnOfType(rs, "AWS::Lambda::Url")
		var public []any
		for _, name := range cfnOfType(rs, "AWS::Lambda::Permission") {
			if p := rs[name]["Properties"]; cfnDig(p, "Principal") == "*" {
				public = append(public, p)
			}
		}
		if (e.params["Interactivity"] == "true") != (len(urls) == 1) || len(urls) > 1 {
			r.errorf(e, "function URLs %v, want one exactly with Interactivity", urls)
			continue
		}
		if len(urls) == 0 {
			if len(public) > 0 || outs["InteractivityUrl"] != nil {
				r.errorf(e, "without Interactivity, anyone may invoke the function: %v, output %v", public, outs["InteractivityUrl"])
			}
			continue
		}
		if got, want := rs[urls[0]]["Properties"], map[string]any{"TargetFunctionArn": cfnGetAtt(fn, "Arn"), "AuthType": "NONE"}; !reflect.DeepEqual(got, want) {
			r.errorf(e, "the function URL is %v, want %v", got, want)
		}
		// In the order of their names, as cfnOfType gives them.
		wantPublic := []any{
			map[string]any{"Action": "lambda:InvokeFunction", "FunctionName": cfnRef(fn), "Principal": "*", "InvokedViaFunctionUrl": "true"},
			map[string]any{"Action": "lambda:InvokeFunctionUrl", "FunctionName": cfnRef(fn), "Principal": "*", "FunctionUrlAuthType": "NONE"},
		}
		if !reflect.DeepEqual(public, wantPublic) {
			r.errorf(e, "anyone may %v, want only %v", public, wantPublic)
		}
		if got := outs["InteractivityUrl"]["Value"]; !reflect.DeepEqual(got, cfnGetAtt(urls[0], "FunctionUrl")) {
			r.errorf(e, "output InteractivityUrl is %v, want the function URL", got)
		}
	}
	r.done()
}
