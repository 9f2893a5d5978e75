package pipeline

import (
	"cmp"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// metricsNamespace is the CloudWatch namespace of sesrouter's metrics.
const metricsNamespace = "sesrouter"

// WriteMetrics writes t as CloudWatch Embedded Metric Format lines, one
// per metric and dimension value: Notifications by Type, Recipients by
// Rule, Actions by Action and Outcome, RuleErrors, Digested and Digests
// by Destination, and extra (a sweep's SweepEntries, SweepRemoved, or a
// destination's storm state), each a count.
func WriteMetrics(w io.Writer, at time.Time, t *Tally, extra ...Metric) error {
	var ms []Metric
	for _, k := range slices.Sorted(maps.Keys(t.Types)) {
		ms = append(ms, Metric{Name: "Notifications", Dims: map[string]string{"Type": k}, Count: t.Types[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(t.Rules)) {
		ms = append(ms, Metric{Name: "Recipients", Dims: map[string]string{"Rule": k}, Count: t.Rules[k]})
	}
	keys := slices.SortedFunc(maps.Keys(t.Actions), func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		ms = append(ms, Metric{Name: "Actions", Dims: map[string]string{"Action": k[0], "Outcome": k[1]}, Count: t.Actions[k]})
	}
	if t.RuleErrors > 0 {
		ms = append(ms, Metric{Name: "RuleErrors", Count: t.RuleErrors})
	}
	for _, k := range slices.Sorted(maps.Keys(t.Digested)) {
		ms = append(ms, Metric{Name: "Digested", Dims: map[string]string{"Destination": k}, Count: t.Digested[k]})
	}
	if t.Digests+t.DigestsFailed > 0 {
		ms = append(ms, Metric{Name: "Digests", Count: t.Digests}, Metric{Name: "DigestsFailed", Count: t.DigestsFailed})
	}
	ms = append(ms, extra...)
	for _, m := range ms {
		if err := m.write(w, at); err != nil {
			return err
		}
	}
	return nil
}

// Metric is one count with its dimensions.
type Metric struct {
	Name  string
	Dims  map[string]string
	Count int
}

// emfMetrics is the _aws member of an Embedded Metric Format document.
type emfMetrics struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// write writes m as one EMF document: the directive under _aws, and the
// metric's value and dimension values as members of their own names.
func (m Metric) write(w io.Writer, at time.Time) error {
	dims := slices.Sorted(maps.Keys(m.Dims))
	if dims == nil {
		dims = []string{}
	}
	doc := map[string]any{
		"_aws": emfMetrics{Timestamp: at.UnixMilli(), CloudWatchMetrics: []emfDirective{{
			Namespace: metricsNamespace, Dimensions: [][]string{dims}, Metrics: []emfMetric{{Name: m.Name, Unit: "Count"}},
		}}},
		m.Name: m.Count,
	}
	for k, v := range m.Dims {
		doc[k] = v
	}
	// Members in the order of their names; a dimension's value (an event
	// type, a rule's name) written as encoding/json wrote it.
	b, err := json.Marshal(doc, json.Deterministic(true), jsontext.EscapeForJS(true), jsontext.AllowInvalidUTF8(true))
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// StormMetrics are a Storming metric per destination: 1 while its
// notifies are being folded into digests, else 0.
func StormMetrics(s *storm.Storm, dests []*rules.Destination, now time.Time) []Metric {
	var ms []Metric
	for _, d := range dests {
		v := 0
		if s.Storming(d, now) {
			v = 1
		}
		ms = append(ms, Metric{Name: "Storming", Dims: map[string]string{"Destination": d.Name}, Count: v})
	}
	return ms
}
