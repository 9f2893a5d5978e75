package ruletest

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"go.yaml.in/yaml/v3"
)

// The compact event form of rule tests: the names rules use, written as
// YAML, from which the notification is built directly.
//
//	event: {type: Bounce, bounce: {type: Permanent, subType: General},
//	        recipients: [a@x.com, {address: "B <b@y.com>", status: 5.1.1}],
//	        mail: {source: s@x.com, subject: Hi, tags: {team: [mail]}}}
//
// The keys are those of rules.Names, so that every name a rule can read
// can be set: event's fields (type, timestamp, envelope, topicArn) at the
// top; recipients, each an address as SES writes it or a mapping of
// address and the recipient's other fields; and a mapping per section
// (mail, bounce, complaint, …) of its fields. Fields derived from others
// (recipient.domain, mail.sourceDomain, …) are computed, as the decoder
// computes them. What is not given gets a plausible default.

// Defaults of the compact form.
const (
	defaultTimestamp = "2024-01-01T00:00:00.000Z"
	defaultMessageID = "0100018cc2a1f000-5e5a0d7e-0000-4000-8000-000000000001-000000"
	defaultFeedback  = "0100018cc2a1f7d0-5e5a0d7e-0000-4000-8000-000000000002-000000"
	defaultSource    = "sender@example.com"
	defaultTopic     = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
	defaultSNSID     = "5e5a0d7e-0000-4000-8000-000000000003"
)

// defaultOf is the value of a field a compact event leaves out, by name
// ("" for none).
func defaultOf(path string) string {
	switch path {
	case "bounce.type":
		return "Permanent"
	case "bounce.subType":
		return "General"
	case "bounce.feedbackId", "complaint.feedbackId":
		return defaultFeedback
	case "delay.type":
		return "General"
	case "reject.reason":
		return "Bad content"
	case "failure.errorMessage":
		return "Attribute 'name' is not present in the rendering data."
	case "failure.templateName":
		return "template"
	}
	return ""
}

// hasOwnRecipients reports whether an event type names its recipients in
// a list of its own, not in mail.destination.
func hasOwnRecipients(typ string) bool {
	switch typ {
	case ses.TypeBounce, ses.TypeComplaint, ses.TypeDelivery, ses.TypeDeliveryDelay:
		return true
	}
	return false
}

// compactEvent builds the notification a compact event describes, or
// returns nil after reporting its problems.
func (l *loader) compactEvent(n *yaml.Node, ctx, input string) *ses.Notification {
	before := len(l.Problems)
	names := rules.Names()
	nt := &ses.Notification{Input: input, Format: "event"}
	v := reflect.ValueOf(nt).Elem()
	var typeNode, topicNode, recipsNode *yaml.Node
	sections := map[string]*yaml.Node{} // section name → its key
	l.EachKey(n, ctx, func(k, val *yaml.Node) {
		switch k.Value {
		case "recipients":
			recipsNode = val
			return
		case "type":
			typeNode = val
		case "topicArn":
			topicNode = val
		}
		if f := find(names, "event."+k.Value); f != nil && !f.Derived {
			l.set(v.FieldByName("Event").FieldByIndex(f.Field), val, ctx, "event."+k.Value)
			return
		}
		if s := find(names, k.Value); s != nil && s.Type.Kind() == reflect.Struct && s.Path != "event" && s.Path != "recipient" {
			sections[k.Value] = k
			l.section(v, names, s, val, ctx)
			return
		}
		l.Problem(k, ctx, "unknown key %q in event (want %s)", k.Value, strings.Join(topKeys(names), ", "))
	})
	typ := strings.ReplaceAll(nt.Event.Type, " ", "")
	nt.Event.Type = typ
	types := find(names, "event.type").Values
	switch {
	case typeNode == nil:
		l.Problem(n, ctx, "missing type in event: %s", orList(types))
		return nil
	case !slices.Contains(types, typ):
		if typ != "" {
			l.Problem(typeNode, ctx, "unknown event type %q (want %s)", typ, orList(types))
		}
		return nil
	}
	for name, k := range sections {
		if s := find(names, name); s.EventType != "" && s.EventType != typ {
			l.Problem(k, ctx, "%s is for events of type %s, not %s", name, s.EventType, typ)
		}
	}
	switch nt.Event.Envelope {
	case "":
		nt.Event.Envelope = ses.EnvelopeFile
	case ses.EnvelopeSNS, ses.EnvelopeSQS, ses.EnvelopeHTTP:
		nt.SNSMessageID = defaultSNSID
		nt.Event.TopicArn = cmp.Or(nt.Event.TopicArn, defaultTopic)
	}
	if topicNode != nil && nt.SNSMessageID == "" {
		l.Problem(topicNode, ctx, "topicArn needs envelope sns, sqs or http (SNS carries the topic), not %s", nt.Event.Envelope)
	}
	if ts := nt.Mail.Timestamp; ts != "" {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			l.Problem(n, ctx, "mail.timestamp must be a time like %s, not %q", defaultTimestamp, ts)
		}
	}
	l.defaults(nt, names)

	own := hasOwnRecipients(typ)
	switch {
	case recipsNode == nil && (own || len(nt.Mail.Destination) == 0):
		l.Problem(n, ctx, "missing recipients in event: a list of addresses")
	case recipsNode != nil && len(nt.Mail.Destination) > 0 && !own:
		l.Problem(recipsNode, ctx, "give recipients or mail.destination, not both: a %s event's recipients are mail.destination", typ)
	case recipsNode != nil:
		nt.Recipients = l.recipients(recipsNode, names, ctx, typ)
		if len(nt.Mail.Destination) == 0 {
			for _, r := range nt.Recipients {
				nt.Mail.Destination = append(nt.Mail.Destination, r.Raw)
			}
		}
	default:
		for _, a := range nt.Mail.Destination {
			nt.Recipients = append(nt.Recipients, ses.NewRecipient(a))
		}
	}
	if len(nt.Mail.To) == 0 {
		nt.Mail.To = nt.Mail.Destination
	}
	if len(l.Problems) > before {
		return nil
	}
	return nt
}

// section sets the fields of one section from its mapping.
func (l *loader) section(v reflect.Value, names []rules.Name, s *rules.Name, n *yaml.Node, ctx string) {
	if n.Kind != yaml.MappingNode {
		l.Problem(n, ctx, "%s must be a mapping of %s, not %s", s.Path, orList(fieldKeys(names, s.Path)), rules.NodeText(n))
		return
	}
	sec := v.FieldByName(s.Type.Name())
	l.EachKey(n, ctx, func(k, val *yaml.Node) {
		f := find(names, s.Path+"."+k.Value)
		if f == nil || f.Derived {
			l.Problem(k, ctx, "unknown key %q in %s (want %s)", k.Value, s.Path, orList(fieldKeys(names, s.Path)))
			return
		}
		l.set(sec.FieldByIndex(f.Field), val, ctx, f.Path)
	})
}

// recipients reads the recipients list: addresses as SES writes them, or
// mappings of address and the recipient's other fields.
func (l *loader) recipients(n *yaml.Node, names []rules.Name, ctx, typ string) []ses.Recipient {
	if n.Kind != yaml.SequenceNode {
		l.Problem(n, ctx, "recipients must be a list of addresses, not %s", rules.NodeText(n))
		return nil
	}
	keys := []string{"address"}
	for _, k := range fieldKeys(names, "recipient") {
		if k != "raw" {
			keys = append(keys, k)
		}
	}
	var out []ses.Recipient
	for _, it := range n.Content {
		if it.Kind != yaml.MappingNode {
			out = append(out, ses.NewRecipient(l.Str(it, ctx, "a recipient")))
			continue
		}
		var r ses.Recipient
		rv := reflect.ValueOf(&r).Elem()
		hasAddress, hasDSN := false, false
		l.EachKey(it, ctx, func(k, val *yaml.Node) {
			if k.Value == "address" {
				hasAddress = true
				r = withDSN(ses.NewRecipient(l.Str(val, ctx, "recipient.address")), r)
				return
			}
			f := find(names, "recipient."+k.Value)
			if f == nil || f.Derived || k.Value == "raw" {
				l.Problem(k, ctx, "unknown key %q in recipient (want %s)", k.Value, orList(keys))
				return
			}
			hasDSN = true
			l.set(rv.FieldByIndex(f.Field), val, ctx, f.Path)
		})
		if !hasAddress {
			l.Problem(it, ctx, "missing address in recipient")
		}
		if hasDSN && typ != ses.TypeBounce && typ != ses.TypeDeliveryDelay {
			l.Problem(it, ctx, "%s are for recipients of Bounce and DeliveryDelay events, not %s", orList(keys[1:]), typ)
		}
		out = append(out, r)
	}
	return out
}

// withDSN is r with the DSN fields of dsn.
func withDSN(r, dsn ses.Recipient) ses.Recipient {
	r.Status, r.Action, r.DiagnosticCode = dsn.Status, dsn.Action, dsn.DiagnosticCode
	return r
}

// set sets a field from a YAML value, by the field's type.
func (l *loader) set(f reflect.Value, n *yaml.Node, ctx, what string) {
	switch f.Kind() {
	case reflect.String:
		f.SetString(l.Str(n, ctx, what))
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			l.Problem(n, ctx, "%s must be a whole number, not %s", what, rules.NodeText(n))
		}
		f.SetInt(int64(i))
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			l.Problem(n, ctx, "%s must be true or false, not %s", what, rules.NodeText(n))
		}
		f.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Slice:
		f.Set(reflect.ValueOf(l.strList(n, ctx, what)))
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			l.Problem(n, ctx, "%s must be a mapping, not %s", what, rules.NodeText(n))
			return
		}
		m := reflect.MakeMap(f.Type())
		l.EachKey(n, ctx, func(k, val *yaml.Node) {
			ev := reflect.New(f.Type().Elem()).Elem()
			l.set(ev, val, ctx, what+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		})
		f.Set(m)
	}
}

// strList reads a list of strings (a single string is a list of one).
func (l *loader) strList(n *yaml.Node, ctx, what string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{l.Str(n, ctx, what)}
	}
	if n.Kind != yaml.SequenceNode {
		l.Problem(n, ctx, "%s must be a list of strings, not %s", what, rules.NodeText(n))
		return nil
	}
	out := []string{}
	for _, it := range n.Content {
		out = append(out, l.Str(it, ctx, what+" item"))
	}
	return out
}

// defaults fills in what a compact event leaves out, and the fields
// derived from others.
func (l *loader) defaults(nt *ses.Notification, names []rules.Name) {
	m := &nt.Mail
	m.Timestamp = cmp.Or(m.Timestamp, defaultTimestamp)
	m.MessageID = cmp.Or(m.MessageID, defaultMessageID)
	m.Source = cmp.Or(m.Source, defaultSource)
	m.SourceAddress = ses.BareAddress(m.Source)
	if at := strings.LastIndexByte(m.SourceAddress, '@'); at >= 0 {
		m.SourceDomain = strings.ToLower(m.SourceAddress[at+1:])
	}
	if len(m.From) == 0 {
		m.From = []string{m.Source}
	}
	if m.Subject == "" && m.Headers["Subject"] != "" {
		m.Subject = m.Headers["Subject"]
	}
	sent, _ := time.Parse(time.RFC3339Nano, m.Timestamp)
	later := sent.Add(2 * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
	v := reflect.ValueOf(nt).Elem()
	for _, n := range names {
		sec, field, ok := strings.Cut(n.Path, ".")
		if !ok || n.Field == nil {
			continue
		}
		s := find(names, sec)
		if s.EventType != nt.Event.Type {
			continue
		}
		f := v.FieldByName(s.Type.Name()).FieldByIndex(n.Field)
		if f.Kind() != reflect.String || f.String() != "" {
			continue
		}
		switch {
		case defaultOf(n.Path) != "":
			f.SetString(defaultOf(n.Path))
		case field == "timestamp":
			f.SetString(later)
		}
	}
	nt.Event.Timestamp = cmp.Or(nt.Event.Timestamp, later)
}

// find returns the name with path, or nil.
func find(names []rules.Name, path string) *rules.Name {
	for i := range names {
		if names[i].Path == path {
			return &names[i]
		}
	}
	return nil
}

// topKeys are the keys of a compact event.
func topKeys(names []rules.Name) []string {
	keys := fieldKeys(names, "event")
	keys = append(keys, "recipients")
	for _, n := range names {
		if !strings.Contains(n.Path, ".") && n.Type.Kind() == reflect.Struct && n.Path != "event" && n.Path != "recipient" {
			keys = append(keys, n.Path)
		}
	}
	return keys
}

// fieldKeys are the fields of a section a compact event may set.
func fieldKeys(names []rules.Name, section string) []string {
	var keys []string
	for _, n := range names {
		if s, f, ok := strings.Cut(n.Path, "."); ok && s == section && !n.Derived {
			keys = append(keys, f)
		}
	}
	return keys
}

func orList(keys []string) string {
	switch len(keys) {
	case 0:
		return ""
	case 1:
		return keys[0]
	case 2:
		return keys[0] + " or " + keys[1]
	}
	return fmt.Sprintf("%s or %s", strings.Join(keys[:len(keys)-1], ", "), keys[len(keys)-1])
}
