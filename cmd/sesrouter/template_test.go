package main

// These tests check template.yaml offline, as a reviewer would: every name
// it uses exists in every combination of its parameters, and the
// storm-safe defaults, the topic and queue policies and the sweep schedule
// are what the docs promise (deploy.md, operations.md). cfn-lint and
// `sam validate` need tools and an AWS account; these need only the file.

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
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
	Conditions map[string]any
	Resources  map[string]map[string]any
	Outputs    map[string]map[string]any
	src        string
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
	tpl := &cfnTemplate{src: string(src)}
	tpl.Conditions, _ = top["Conditions"].(map[string]any)
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
		envs[i].conds = map[string]bool{}
		for name := range tpl.Conditions {
			envs[i].conds[name] = tpl.eval(t, envs[i].params, tpl.Conditions[name])
		}
	}
	return envs
}

// eval evaluates a condition expression.
func (tpl *cfnTemplate) eval(t *testing.T, params map[string]string, expr any) bool {
	t.Helper()
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
// there in e, resolved, by name.
func cfnDeployed(section map[string]map[string]any, e cfnEnv) map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, entry := range section {
		if c, ok := entry["Condition"].(string); ok && !e.conds[c] {
			continue
		}
		v, _ := cfnResolve(entry, e)
		out[name] = v.(map[string]any)
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
				cfnRefs(entry, func(kind, target string) {
					if res, ok := tpl.refTarget(kind, target); ok {
						if _, made := rs[res]; !made {
							r.errorf(e, "%s.%s refers to %s, which is not made", section, name, res)
						}
					}
				})
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
		for _, name := range cfnOfType(rs, "AWS::SQS::QueuePolicy") {
			for i, s := range cfnList(cfnDig(rs[name], "Properties", "PolicyDocument", "Statement")) {
				op := "ArnEquals"
				if cfnDig(s, "Effect") == "Deny" {
					op = "ArnNotEquals"
				}
				uses[fmt.Sprintf("%s statement %d aws:SourceArn", name, i)] = cfnDig(s, "Condition", op, "aws:SourceArn")
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

// TestTemplateQueuePolicy checks that only the topic may send to the
// queue, in every combination of parameters that makes the queue: SNS is
// allowed for the topic, and every other sender is denied, explicitly, so
// that no IAM policy of the account can let one of its principals send.
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
		allow := map[string]any{
			"Sid":       "FromTheTopic",
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "sns.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueArn,
			"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": cfnEffectiveTopic(rs, e)}},
		}
		deny := map[string]any{
			"Sid":       "NothingElseSends",
			"Effect":    "Deny",
			"Principal": "*",
			"Action":    "sqs:SendMessage",
			"Resource":  queueArn,
			"Condition": map[string]any{"ArnNotEquals": map[string]any{"aws:SourceArn": cfnEffectiveTopic(rs, e)}},
		}
		got := cfnDig(rs[policies[0]], "Properties", "PolicyDocument", "Statement")
		if !reflect.DeepEqual(got, []any{allow, deny}) {
			r.errorf(e, "the queue policy's statements are %v, want only %v and %v", got, allow, deny)
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
// names the topic when there is one, and SESROUTER_QUEUES names no queue:
// nothing the template wires puts an unsigned body in its queue, so the
// function must trust none.
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
		if got, ok := vars["SESROUTER_QUEUES"]; ok {
			r.errorf(e, "SESROUTER_QUEUES is %v, want it unset: the queue carries only signed envelopes", got)
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
	for _, e := range tpl.envs(t) {
		rs := cfnDeployed(tpl.Resources, e)
		schedules := cfnOfType(rs, "AWS::Scheduler::Schedule")
		want := e.params["SweepSchedule"] != ""
		var listing []string
		for name, r := range rs {
			if strings.Contains(fmt.Sprint(r), "ses:ListSuppressedDestinations") {
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
