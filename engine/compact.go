package engine

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The compact event form of rule tests: a few YAML fields, filled out into
// a complete SES event-publishing notification of that type (optionally in
// an envelope), which Decode then reads like any other input.
//
//	event: {type: Bounce, bounce: {type: Permanent, subType: General},
//	        recipients: [a@x.com, b@y.com],
//	        mail: {source: s@x.com, subject: Hi, tags: {team: [mail]}}}

// Defaults of the compact form.
const (
	compactTimestamp = "2024-01-01T00:00:00.000Z"
	compactMessageID = "0100018cc2a1f000-5e5a0d7e-0000-4000-8000-000000000001-000000"
	compactFeedback  = "0100018cc2a1f7d0-5e5a0d7e-0000-4000-8000-000000000002-000000"
	compactSource    = "sender@example.com"
	compactAccount   = "123456789012"
	compactRegion    = "us-east-1"
	compactTopic     = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
	compactSNSID     = "5e5a0d7e-0000-4000-8000-000000000003"
)

// compactType maps a type, as the compact form accepts it, to SES's
// eventType and the EventBridge detail-type; ok is false for an unknown
// type.
func compactType(typ string) (eventType, detailType string, ok bool) {
	switch typ {
	case TypeBounce:
		return "Bounce", "Email Bounced", true
	case TypeComplaint:
		return "Complaint", "Email Complaint Received", true
	case TypeDelivery:
		return "Delivery", "Email Delivered", true
	case TypeSend:
		return "Send", "Email Sent", true
	case TypeReject:
		return "Reject", "Email Rejected", true
	case TypeOpen:
		return "Open", "Email Opened", true
	case TypeClick:
		return "Click", "Email Clicked", true
	case TypeRenderingFailure, "Rendering Failure":
		return "Rendering Failure", "Email Rendering Failed", true
	case TypeDeliveryDelay:
		return "DeliveryDelay", "Email Delivery Delayed", true
	case TypeSubscription:
		return "Subscription", "Email Subscribed", true
	}
	return "", "", false
}

const compactTypeList = "Bounce, Complaint, Delivery, Send, Reject, Open, Click, RenderingFailure, DeliveryDelay or Subscription"

// compactRecipient is one recipient of the compact form.
type compactRecipient struct {
	address, status, action, diagnosticCode string
	node                                    *yaml.Node
}

// compactEvent reads the compact form n and returns the JSON it fills out
// to, or nil after reporting its problems under context ctx.
func (l *loader) compactEvent(n *yaml.Node, ctx string) []byte {
	before := len(l.problems)
	var (
		typ, envelope, topicArn string
		typeNode, topicNode     *yaml.Node
		recips                  []compactRecipient
		recipsNode              *yaml.Node
		mailNode                *yaml.Node
		subKey                  = map[string]*yaml.Node{} // bounce, complaint, …: the key
		subVal                  = map[string]*yaml.Node{} // and its value
	)
	l.eachKey(n, ctx, func(k, v *yaml.Node) {
		switch k.Value {
		case "type":
			typeNode, typ = v, l.str(v, ctx, "type")
		case "recipients":
			recipsNode = v
			recips = l.compactRecipients(v, ctx)
		case "mail":
			mailNode = v
		case "bounce", "complaint", "delay", "reject", "failure":
			subKey[k.Value], subVal[k.Value] = k, v
		case "envelope":
			envelope = l.str(v, ctx, "envelope")
			switch envelope {
			case "", EnvelopeSNS, EnvelopeSQS, EnvelopeEventBridge, EnvelopeHTTP, EnvelopeFile:
			default:
				l.problem(v, ctx, "unknown envelope %q (want sns, sqs, eventbridge, http or file)", envelope)
			}
		case "topicArn":
			topicNode, topicArn = v, l.str(v, ctx, "topicArn")
		default:
			l.problem(k, ctx, "unknown key %q in event (want type, recipients, mail, bounce, complaint, delay, reject, failure, envelope or topicArn)", k.Value)
		}
	})
	if envelope == "" {
		envelope = EnvelopeFile
	}
	if topicNode != nil && envelope != EnvelopeSNS && envelope != EnvelopeSQS && envelope != EnvelopeHTTP {
		l.problem(topicNode, ctx, "topicArn needs envelope sns, sqs or http (SNS carries the topic), not %s", envelope)
	}
	if topicArn == "" {
		topicArn = compactTopic
	}
	eventType, detailType, ok := compactType(typ)
	switch {
	case typeNode == nil:
		l.problem(n, ctx, "missing type in event: %s", compactTypeList)
		return nil
	case !ok:
		if typ != "" {
			l.problem(typeNode, ctx, "unknown event type %q (want %s)", typ, compactTypeList)
		}
		return nil
	}
	modelType := strings.ReplaceAll(eventType, " ", "")

	// Which sub-object goes with which type.
	owner := map[string]string{"bounce": TypeBounce, "complaint": TypeComplaint, "delay": TypeDeliveryDelay, "reject": TypeReject, "failure": TypeRenderingFailure}
	for _, name := range []string{"bounce", "complaint", "delay", "reject", "failure"} {
		if k := subKey[name]; k != nil && owner[name] != modelType {
			l.problem(k, ctx, "%s is for events of type %s, not %s", name, owner[name], modelType)
		}
	}
	hasOwnRecipients := modelType == TypeBounce || modelType == TypeComplaint || modelType == TypeDelivery || modelType == TypeDeliveryDelay
	for _, r := range recips {
		if (r.status != "" || r.action != "" || r.diagnosticCode != "") && modelType != TypeBounce && modelType != TypeDeliveryDelay {
			l.problem(r.node, ctx, "status, action and diagnosticCode are for recipients of Bounce and DeliveryDelay events, not %s", modelType)
		}
	}

	mail, destination := l.compactMail(mailNode, ctx)
	switch {
	case recipsNode == nil && (hasOwnRecipients || destination == nil):
		l.problem(n, ctx, "missing recipients in event: a list of addresses")
	case recipsNode != nil && destination != nil && !hasOwnRecipients:
		l.problem(recipsNode, ctx, "give recipients or mail.destination, not both: a %s event's recipients are mail.destination", modelType)
	}
	if len(l.problems) > before {
		return nil
	}
	if destination == nil {
		destination = make([]string, len(recips))
		for i, r := range recips {
			destination[i] = r.address
		}
	}
	mail["destination"] = destination
	commonHeaders := mail["commonHeaders"].(map[string]any)
	commonHeaders["to"] = destination

	mailTime, _ := time.Parse(time.RFC3339Nano, mail["timestamp"].(string))
	later := func(d time.Duration) string { return mailTime.Add(d).UTC().Format("2006-01-02T15:04:05.000Z") }
	dsn := func() []map[string]any {
		out := make([]map[string]any, len(recips))
		for i, r := range recips {
			m := map[string]any{"emailAddress": r.address}
			for k, v := range map[string]string{"status": r.status, "action": r.action, "diagnosticCode": r.diagnosticCode} {
				if v != "" {
					m[k] = v
				}
			}
			out[i] = m
		}
		return out
	}
	addresses := func() []string {
		out := make([]string, len(recips))
		for i, r := range recips {
			out[i] = r.address
		}
		return out
	}

	ses := map[string]any{"eventType": eventType, "mail": mail}
	switch modelType {
	case TypeBounce:
		f := l.compactFields(subVal["bounce"], ctx, "bounce", "type", "subType")
		ses["bounce"] = map[string]any{
			"bounceType":        cmp.Or(f["type"], "Permanent"),
			"bounceSubType":     cmp.Or(f["subType"], "General"),
			"bouncedRecipients": dsn(),
			"timestamp":         later(2 * time.Second),
			"feedbackId":        compactFeedback,
			"reportingMTA":      "dns; a1-2.smtp-out.amazonses.com",
		}
	case TypeComplaint:
		f := l.compactFields(subVal["complaint"], ctx, "complaint", "feedbackType", "subType")
		c := map[string]any{
			"complainedRecipients": dsn(),
			"timestamp":            later(time.Hour),
			"feedbackId":           compactFeedback,
			"complaintSubType":     nil,
			"userAgent":            "Mozilla/5.0",
			"arrivalDate":          later(time.Hour - time.Minute),
		}
		if f["feedbackType"] != "" {
			c["complaintFeedbackType"] = f["feedbackType"]
		}
		if f["subType"] != "" {
			c["complaintSubType"] = f["subType"]
		}
		ses["complaint"] = c
	case TypeDelivery:
		ses["delivery"] = map[string]any{
			"timestamp":            later(2 * time.Second),
			"processingTimeMillis": 2000,
			"recipients":           addresses(),
			"smtpResponse":         "250 2.6.0 Message received",
			"reportingMTA":         "a1-2.smtp-out.amazonses.com",
			"remoteMtaIp":          "192.0.2.25",
		}
	case TypeDeliveryDelay:
		f := l.compactFields(subVal["delay"], ctx, "delay", "type")
		ses["deliveryDelay"] = map[string]any{
			"timestamp":         later(time.Hour),
			"delayType":         cmp.Or(f["type"], "General"),
			"expirationTime":    later(24 * time.Hour),
			"delayedRecipients": dsn(),
			"reportingMTA":      "a1-2.smtp-out.amazonses.com",
		}
	case TypeSend:
		ses["send"] = map[string]any{}
	case TypeReject:
		f := l.compactFields(subVal["reject"], ctx, "reject", "reason")
		ses["reject"] = map[string]any{"reason": cmp.Or(f["reason"], "Bad content")}
	case TypeOpen:
		ses["open"] = map[string]any{"ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0", "timestamp": later(time.Hour)}
	case TypeClick:
		ses["click"] = map[string]any{"ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0", "timestamp": later(time.Hour),
			"link": "https://example.com/", "linkTags": map[string][]string{}}
	case TypeRenderingFailure:
		f := l.compactFields(subVal["failure"], ctx, "failure", "errorMessage", "templateName")
		ses["failure"] = map[string]any{
			"errorMessage": cmp.Or(f["errorMessage"], "Attribute 'name' is not present in the rendering data."),
			"templateName": cmp.Or(f["templateName"], "template"),
		}
	case TypeSubscription:
		prefs := func(all bool, status string) map[string]any {
			return map[string]any{"unsubscribeAll": all, "topicSubscriptionStatus": []map[string]any{{"topicName": "news", "subscriptionStatus": status}}}
		}
		ses["subscription"] = map[string]any{
			"contactList": "contacts", "timestamp": later(time.Hour), "source": "UnsubscribeHeader",
			"newTopicPreferences": prefs(true, "OptOut"), "oldTopicPreferences": prefs(false, "OptIn"),
		}
	}
	if len(l.problems) > before {
		return nil
	}
	return wrapCompact(ses, envelope, topicArn, detailType, later(3*time.Second))
}

// wrapCompact returns the SES JSON ses in the envelope named.
func wrapCompact(ses map[string]any, envelope, topicArn, detailType, at string) []byte {
	sesJSON := mustJSON(ses)
	snsHTTP := func() map[string]any {
		return map[string]any{
			"Type": "Notification", "MessageId": compactSNSID, "TopicArn": topicArn,
			"Subject": "Amazon SES Email Event Notification", "Message": string(sesJSON) + "\n",
			"Timestamp": at, "SignatureVersion": "1", "Signature": "",
			"SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
			"UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topicArn + ":sub",
		}
	}
	switch envelope {
	case EnvelopeSNS:
		msg := snsHTTP()
		msg["SigningCertUrl"], msg["UnsubscribeUrl"] = msg["SigningCertURL"], msg["UnsubscribeURL"]
		delete(msg, "SigningCertURL")
		delete(msg, "UnsubscribeURL")
		msg["MessageAttributes"] = map[string]any{}
		return mustJSON(map[string]any{"Records": []any{map[string]any{
			"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": topicArn + ":sub", "Sns": msg,
		}}})
	case EnvelopeSQS:
		return mustJSON(map[string]any{"Records": []any{map[string]any{
			"messageId": "5e5a0d7e-0000-4000-8000-000000000004", "receiptHandle": "AQEB",
			"body": string(mustJSON(snsHTTP())), "attributes": map[string]any{"ApproximateReceiveCount": "1"},
			"messageAttributes": map[string]any{}, "md5OfBody": "", "eventSource": "aws:sqs",
			"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ses-feedback", "awsRegion": compactRegion,
		}}})
	case EnvelopeHTTP:
		return mustJSON(snsHTTP())
	case EnvelopeEventBridge:
		return mustJSON(map[string]any{
			"version": "0", "id": "5e5a0d7e-0000-4000-8000-000000000005", "detail-type": detailType,
			"source": "aws.ses", "account": compactAccount, "time": at[:19] + "Z", "region": compactRegion,
			"resources": []string{"arn:aws:ses:us-east-1:123456789012:configuration-set/sesrouter-test"},
			"detail":    json.RawMessage(sesJSON),
		})
	}
	return sesJSON
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps, slices and strings: cannot fail
	}
	return b
}

// compactRecipients reads the recipients list: addresses, or mappings
// {address, status, action, diagnosticCode}.
func (l *loader) compactRecipients(n *yaml.Node, ctx string) []compactRecipient {
	if n.Kind != yaml.SequenceNode {
		l.problem(n, ctx, "recipients must be a list of addresses, not %s", nodeText(n))
		return nil
	}
	var out []compactRecipient
	for _, it := range n.Content {
		r := compactRecipient{node: it}
		if it.Kind == yaml.MappingNode {
			f := l.compactFields(it, ctx, "recipient", "address", "status", "action", "diagnosticCode")
			r.address, r.status, r.action, r.diagnosticCode = f["address"], f["status"], f["action"], f["diagnosticCode"]
			if _, ok := f["address"]; !ok {
				l.problem(it, ctx, "missing address in recipient")
			}
		} else {
			r.address = l.str(it, ctx, "a recipient")
		}
		out = append(out, r)
	}
	return out
}

// compactFields reads a mapping whose keys are all among keys and whose
// values are strings. A nil n gives no fields.
func (l *loader) compactFields(n *yaml.Node, ctx, what string, keys ...string) map[string]string {
	out := map[string]string{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		l.problem(n, ctx, "%s must be a mapping with %s, not %s", what, orList(keys), nodeText(n))
		return out
	}
	l.eachKey(n, ctx, func(k, v *yaml.Node) {
		if !slices.Contains(keys, k.Value) {
			l.problem(k, ctx, "unknown key %q in %s (want %s)", k.Value, what, orList(keys))
			return
		}
		out[k.Value] = l.str(v, ctx, what+"."+k.Value)
	})
	return out
}

// compactMail reads the mail mapping (n may be nil) into SES's mail
// object, all but destination, and returns mail.destination when given.
func (l *loader) compactMail(n *yaml.Node, ctx string) (map[string]any, []string) {
	f := map[string]string{}
	var destination []string
	tags := map[string][]string{}
	var headers []map[string]string
	if n != nil && n.Kind != yaml.MappingNode {
		l.problem(n, ctx, "mail must be a mapping, not %s", nodeText(n))
		n = nil
	}
	if n != nil {
		l.eachKey(n, ctx, func(k, v *yaml.Node) {
			switch k.Value {
			case "source", "subject", "messageId":
				f[k.Value] = l.str(v, ctx, "mail."+k.Value)
			case "timestamp":
				f[k.Value] = l.str(v, ctx, "mail.timestamp")
				if _, err := time.Parse(time.RFC3339Nano, f[k.Value]); err != nil && f[k.Value] != "" {
					l.problem(v, ctx, "mail.timestamp must be a time like %s, not %q", compactTimestamp, f[k.Value])
				}
			case "destination":
				destination = l.strList(v, ctx, "mail.destination")
			case "tags":
				if v.Kind != yaml.MappingNode {
					l.problem(v, ctx, "mail.tags must be a mapping of name to a list of values, not %s", nodeText(v))
					return
				}
				l.eachKey(v, ctx, func(tk, tv *yaml.Node) {
					tags[tk.Value] = l.strList(tv, ctx, "mail.tags."+tk.Value)
				})
			case "headers":
				if v.Kind != yaml.MappingNode {
					l.problem(v, ctx, "mail.headers must be a mapping of header name to value, not %s", nodeText(v))
					return
				}
				headers = []map[string]string{}
				l.eachKey(v, ctx, func(hk, hv *yaml.Node) {
					headers = append(headers, map[string]string{"name": hk.Value, "value": l.str(hv, ctx, "mail.headers."+hk.Value)})
				})
			default:
				l.problem(k, ctx, "unknown key %q in mail (want source, subject, messageId, timestamp, destination, tags or headers)", k.Value)
			}
		})
	}
	source := cmp.Or(f["source"], compactSource)
	messageID := cmp.Or(f["messageId"], compactMessageID)
	domain := "example.com"
	if at := strings.LastIndexByte(BareAddress(source), '@'); at >= 0 {
		domain = strings.ToLower(BareAddress(source)[at+1:])
	}
	allTags := map[string][]string{
		"ses:configuration-set": {"sesrouter-test"},
		"ses:source-ip":         {"192.0.2.10"},
		"ses:from-domain":       {domain},
		"ses:caller-identity":   {"sesrouter-test"},
	}
	for k, v := range tags {
		allTags[k] = v
	}
	common := map[string]any{"from": []string{source}, "messageId": "<" + messageID + "@" + domain + ">"}
	if f["subject"] != "" {
		common["subject"] = f["subject"]
	}
	mail := map[string]any{
		"timestamp":        cmp.Or(f["timestamp"], compactTimestamp),
		"messageId":        messageID,
		"source":           source,
		"sourceArn":        "arn:aws:ses:us-east-1:" + compactAccount + ":identity/" + domain,
		"sourceIp":         "192.0.2.10",
		"sendingAccountId": compactAccount,
		"callerIdentity":   "sesrouter-test",
		"tags":             allTags,
		"commonHeaders":    common,
	}
	if headers != nil {
		mail["headersTruncated"] = false
		mail["headers"] = headers
	}
	return mail, destination
}

// strList reads a list of strings (a single string is a list of one).
func (l *loader) strList(n *yaml.Node, ctx, what string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{l.str(n, ctx, what)}
	}
	if n.Kind != yaml.SequenceNode {
		l.problem(n, ctx, "%s must be a list of strings, not %s", what, nodeText(n))
		return nil
	}
	out := []string{}
	for _, it := range n.Content {
		out = append(out, l.str(it, ctx, what+" item"))
	}
	return out
}

func orList(keys []string) string {
	switch len(keys) {
	case 1:
		return keys[0]
	case 2:
		return keys[0] + " or " + keys[1]
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " or " + keys[len(keys)-1]
}
