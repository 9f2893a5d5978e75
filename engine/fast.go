package engine

import (
	"regexp"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// The fast path. expr parses, type-checks and optimises every when
// expression; expressions made of the common parts (fields, literals,
// ==, !=, &&, ||, !, in, contains, startsWith, endsWith, matches, integer
// comparisons, glob, inDomain, lower, upper, len of a list, any, all,
// none and one over lists with a predicate on #, tag lists and ??) are then turned into Go
// closures that read the Notification directly, without expr's VM, its
// env map and its reflection: a rule costs a few nanoseconds instead of
// a few hundred. Anything else runs on expr's VM, so the language is
// expr's whole language either way; a test runs both on the same inputs
// and requires the same answers.

// evalCtx is what a compiled expression reads.
type evalCtx struct {
	n *Notification
	r *Recipient
	// elem is the element a predicate of any, all, none or one is
	// looking at (# in the expression).
	elem string
}

type (
	boolFn func(*evalCtx) bool
	strFn  func(*evalCtx) string
	intFn  func(*evalCtx) int
	strsFn func(*evalCtx) []string
	// setFn is a value that `in` can test a string against: a list, or
	// the keys of a map.
	setFn func(*evalCtx, string) bool
)

// compileNode returns a boolFn, strFn, intFn, strsFn or setFn for a
// checked expression tree, or false when the tree uses something the fast
// path does not handle.
func compileNode(node ast.Node) (any, bool) {
	switch n := node.(type) {
	case *ast.BoolNode:
		v := n.Value
		return boolFn(func(*evalCtx) bool { return v }), true
	case *ast.StringNode:
		v := n.Value
		return strFn(func(*evalCtx) string { return v }), true
	case *ast.IntegerNode:
		v := n.Value
		return intFn(func(*evalCtx) int { return v }), true
	case *ast.ConstantNode: // what expr's optimiser folded
		switch v := n.Value.(type) {
		case bool:
			return boolFn(func(*evalCtx) bool { return v }), true
		case string:
			return strFn(func(*evalCtx) string { return v }), true
		case int:
			return intFn(func(*evalCtx) int { return v }), true
		}
		if l, ok := compileList(n); ok {
			return l, true
		}
	case *ast.MemberNode:
		return compileMember(n)
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil, false
		}
		f, ok := compileBool(n.Node)
		if !ok {
			return nil, false
		}
		return boolFn(func(c *evalCtx) bool { return !f(c) }), true
	case *ast.BinaryNode:
		return compileBinary(n)
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || len(n.Arguments) != 2 {
			return nil, false
		}
		a, ok1 := compileStr(n.Arguments[0])
		b, ok2 := compileStr(n.Arguments[1])
		if !ok1 || !ok2 {
			return nil, false
		}
		switch id.Value {
		case "glob":
			return boolFn(func(c *evalCtx) bool { return Glob(a(c), b(c)) }), true
		case "inDomain":
			return boolFn(func(c *evalCtx) bool { return InDomain(a(c), b(c)) }), true
		}
	case *ast.PointerNode:
		if n.Name != "" {
			return nil, false
		}
		return strFn(func(c *evalCtx) string { return c.elem }), true
	case *ast.BuiltinNode:
		if len(n.Arguments) == 2 {
			return compilePredicate(n)
		}
		if len(n.Arguments) != 1 {
			return nil, false
		}
		switch n.Name {
		case "lower", "upper":
			s, ok := compileStr(n.Arguments[0])
			if !ok {
				return nil, false
			}
			if n.Name == "lower" {
				return strFn(func(c *evalCtx) string { return strings.ToLower(s(c)) }), true
			}
			return strFn(func(c *evalCtx) string { return strings.ToUpper(s(c)) }), true
		case "len":
			// Only lists: the length of a string is left to the VM.
			if f, ok := compileList(n.Arguments[0]); ok {
				return intFn(func(c *evalCtx) int { return len(f(c)) }), true
			}
		}
	}
	return nil, false
}

// compilePredicate handles any, all, none and one over a list of strings,
// with a predicate on # (the element).
func compilePredicate(n *ast.BuiltinNode) (any, bool) {
	switch n.Name {
	case "any", "all", "none", "one":
	default:
		return nil, false
	}
	pred, ok := n.Arguments[1].(*ast.PredicateNode)
	if !ok {
		return nil, false
	}
	list, ok := compileList(n.Arguments[0])
	if !ok {
		return nil, false
	}
	test, ok := compileBool(pred.Node)
	if !ok {
		return nil, false
	}
	count := func(c *evalCtx, stopAt int, want bool) int {
		outer := c.elem
		k := 0
		for _, e := range list(c) {
			c.elem = e
			if test(c) == want {
				if k++; k == stopAt {
					break
				}
			}
		}
		c.elem = outer
		return k
	}
	switch n.Name {
	case "any":
		return boolFn(func(c *evalCtx) bool { return count(c, 1, true) > 0 }), true
	case "all":
		return boolFn(func(c *evalCtx) bool { return count(c, 1, false) == 0 }), true
	case "none":
		return boolFn(func(c *evalCtx) bool { return count(c, 1, true) == 0 }), true
	}
	return boolFn(func(c *evalCtx) bool { return count(c, 2, true) == 1 }), true
}

// compileList handles a list of strings: a list field, a literal (or an
// inlined lists.NAME), a tag's values (mail.tags["team"], nil when the
// tag is absent), or LIST ?? [literal].
func compileList(node ast.Node) (strsFn, bool) {
	switch n := node.(type) {
	case *ast.ConstantNode:
		var items []string
		switch v := n.Value.(type) {
		case []string:
			items = v
		case []any:
			items = make([]string, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, false
				}
				items[i] = s
			}
		default:
			return nil, false
		}
		return func(*evalCtx) []string { return items }, true
	case *ast.ArrayNode:
		items := make([]string, len(n.Nodes))
		for i, it := range n.Nodes {
			s, ok := it.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			items[i] = s.Value
		}
		return func(*evalCtx) []string { return items }, true
	case *ast.MemberNode:
		if inner, ok := n.Node.(*ast.MemberNode); ok && !n.Optional && !n.Method {
			key, ok := n.Property.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			tags, ok := compileTags(inner)
			if !ok {
				return nil, false
			}
			k := key.Value
			return func(c *evalCtx) []string { return tags(c)[k] }, true
		}
		f, ok := compileMember(n)
		if !ok {
			return nil, false
		}
		l, ok := f.(strsFn)
		return l, ok
	case *ast.BinaryNode:
		if n.Operator != "??" {
			return nil, false
		}
		a, ok1 := compileList(n.Left)
		b, ok2 := compileList(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		return func(c *evalCtx) []string {
			if v := a(c); v != nil {
				return v
			}
			return b(c)
		}, true
	}
	return nil, false
}

// compileTags handles the maps of lists: mail.tags and click.linkTags.
func compileTags(n *ast.MemberNode) (func(*evalCtx) map[string][]string, bool) {
	id, ok := n.Node.(*ast.IdentifierNode)
	prop, ok2 := n.Property.(*ast.StringNode)
	if !ok || !ok2 || n.Optional || n.Method {
		return nil, false
	}
	switch id.Value + "." + prop.Value {
	case "mail.tags":
		return func(c *evalCtx) map[string][]string { return c.n.Mail.Tags }, true
	case "click.linkTags":
		return func(c *evalCtx) map[string][]string { return c.n.Click.LinkTags }, true
	}
	return nil, false
}

// compileBool returns the closure of a boolean expression tree (a rule's
// when, or a part of one), or false when the fast path does not handle it.
func compileBool(n ast.Node) (boolFn, bool) { return compileAs[boolFn](n) }

// compileStr returns the closure of a string expression tree.
func compileStr(n ast.Node) (strFn, bool) { return compileAs[strFn](n) }

// compileAs compiles n and requires a closure of type F.
func compileAs[F boolFn | strFn](n ast.Node) (F, bool) {
	f, ok := compileNode(n)
	if !ok {
		return nil, false
	}
	c, ok := f.(F)
	return c, ok
}

func compileBinary(n *ast.BinaryNode) (any, bool) {
	switch n.Operator {
	case "&&", "and", "||", "or":
		a, ok1 := compileBool(n.Left)
		b, ok2 := compileBool(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		if n.Operator == "&&" || n.Operator == "and" {
			return boolFn(func(c *evalCtx) bool { return a(c) && b(c) }), true
		}
		return boolFn(func(c *evalCtx) bool { return a(c) || b(c) }), true
	case "in":
		return compileIn(n)
	}
	l, ok1 := compileNode(n.Left)
	r, ok2 := compileNode(n.Right)
	if !ok1 || !ok2 {
		return nil, false
	}
	switch a := l.(type) {
	case strFn:
		b, ok := r.(strFn)
		if !ok {
			return nil, false
		}
		if f, ok := equality(n.Operator, a, b); ok {
			return f, true
		}
		switch n.Operator {
		case "contains":
			return boolFn(func(c *evalCtx) bool { return strings.Contains(a(c), b(c)) }), true
		case "startsWith":
			return boolFn(func(c *evalCtx) bool { return strings.HasPrefix(a(c), b(c)) }), true
		case "endsWith":
			return boolFn(func(c *evalCtx) bool { return strings.HasSuffix(a(c), b(c)) }), true
		case "matches":
			lit, ok := n.Right.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			re, err := regexp.Compile(lit.Value)
			if err != nil {
				return nil, false
			}
			return boolFn(func(c *evalCtx) bool { return re.MatchString(a(c)) }), true
		}
	case intFn:
		b, ok := r.(intFn)
		if !ok {
			return nil, false
		}
		if f, ok := equality(n.Operator, a, b); ok {
			return f, true
		}
		switch n.Operator {
		case "<":
			return boolFn(func(c *evalCtx) bool { return a(c) < b(c) }), true
		case "<=":
			return boolFn(func(c *evalCtx) bool { return a(c) <= b(c) }), true
		case ">":
			return boolFn(func(c *evalCtx) bool { return a(c) > b(c) }), true
		case ">=":
			return boolFn(func(c *evalCtx) bool { return a(c) >= b(c) }), true
		}
	case boolFn:
		b, ok := r.(boolFn)
		if !ok {
			return nil, false
		}
		return equality(n.Operator, a, b)
	}
	return nil, false
}

// equality compiles == and != between two closures of one type.
func equality[T comparable, F ~func(*evalCtx) T](op string, a, b F) (any, bool) {
	switch op {
	case "==":
		return boolFn(func(c *evalCtx) bool { return a(c) == b(c) }), true
	case "!=":
		return boolFn(func(c *evalCtx) bool { return a(c) != b(c) }), true
	}
	return nil, false
}

// compileIn handles `STRING in SET`, where SET is a list literal (expr's
// optimiser has made it a constant set), a lists.NAME (inlined as a
// literal), a list field, or a map field (its keys).
func compileIn(n *ast.BinaryNode) (any, bool) {
	needle, ok := compileStr(n.Left)
	if !ok {
		return nil, false
	}
	var set setFn
	switch r := n.Right.(type) {
	case *ast.ConstantNode:
		m, ok := r.Value.(map[string]struct{})
		if !ok {
			return nil, false
		}
		set = func(_ *evalCtx, s string) bool { _, ok := m[s]; return ok }
	default:
		if list, ok := compileList(r); ok {
			set = func(c *evalCtx, s string) bool { return contains(list(c), s) }
			break
		}
		m, ok := r.(*ast.MemberNode)
		if !ok {
			return nil, false
		}
		f, ok := compileMember(m)
		if !ok {
			return nil, false
		}
		if set, ok = f.(setFn); !ok {
			return nil, false
		}
	}
	return boolFn(func(c *evalCtx) bool { return set(c, needle(c)) }), true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compileMember handles VAR.FIELD. A map field (mail.tags, mail.headers,
// click.linkTags) gives a setFn of its keys, for `in`; indexing into maps
// and lists goes to the VM, whose nil for a missing key the fast path
// does not model.
func compileMember(n *ast.MemberNode) (any, bool) {
	id, ok := n.Node.(*ast.IdentifierNode)
	if !ok || n.Optional || n.Method {
		return nil, false
	}
	prop, ok := n.Property.(*ast.StringNode)
	if !ok {
		return nil, false
	}
	return fieldAccessor(id.Value, prop.Value)
}

func accStr(f func(*evalCtx) string) any    { return strFn(f) }
func accStrs(f func(*evalCtx) []string) any { return strsFn(f) }
func accKeys[V any](f func(*evalCtx) map[string]V) any {
	return setFn(func(c *evalCtx, s string) bool { _, ok := f(c)[s]; return ok })
}

// fieldAccessor returns the accessor of VAR.FIELD (by their expression
// names). TestFastAccessorsCoverEveryField checks it against the expr
// tags of the model.
func fieldAccessor(v, field string) (any, bool) {
	var f any
	switch v + "." + field {
	case "event.type":
		f = accStr(func(c *evalCtx) string { return c.n.Event.Type })
	case "event.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Event.Timestamp })
	case "event.envelope":
		f = accStr(func(c *evalCtx) string { return c.n.Event.Envelope })
	case "event.topicArn":
		f = accStr(func(c *evalCtx) string { return c.n.Event.TopicArn })

	case "mail.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.Timestamp })
	case "mail.messageId":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.MessageID })
	case "mail.source":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.Source })
	case "mail.sourceAddress":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.SourceAddress })
	case "mail.sourceDomain":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.SourceDomain })
	case "mail.sourceArn":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.SourceArn })
	case "mail.sourceIp":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.SourceIP })
	case "mail.sendingAccountId":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.SendingAccountID })
	case "mail.callerIdentity":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.CallerIdentity })
	case "mail.subject":
		f = accStr(func(c *evalCtx) string { return c.n.Mail.Subject })
	case "mail.destination":
		f = accStrs(func(c *evalCtx) []string { return c.n.Mail.Destination })
	case "mail.from":
		f = accStrs(func(c *evalCtx) []string { return c.n.Mail.From })
	case "mail.to":
		f = accStrs(func(c *evalCtx) []string { return c.n.Mail.To })
	case "mail.cc":
		f = accStrs(func(c *evalCtx) []string { return c.n.Mail.Cc })
	case "mail.replyTo":
		f = accStrs(func(c *evalCtx) []string { return c.n.Mail.ReplyTo })
	case "mail.tags":
		f = accKeys(func(c *evalCtx) map[string][]string { return c.n.Mail.Tags })
	case "mail.headers":
		f = accKeys(func(c *evalCtx) map[string]string { return c.n.Mail.Headers })
	case "mail.headersTruncated":
		f = boolFn(func(c *evalCtx) bool { return c.n.Mail.HeadersTruncated })

	case "bounce.type":
		f = accStr(func(c *evalCtx) string { return c.n.Bounce.Type })
	case "bounce.subType":
		f = accStr(func(c *evalCtx) string { return c.n.Bounce.SubType })
	case "bounce.reportingMTA":
		f = accStr(func(c *evalCtx) string { return c.n.Bounce.ReportingMTA })
	case "bounce.remoteMtaIp":
		f = accStr(func(c *evalCtx) string { return c.n.Bounce.RemoteMtaIP })
	case "bounce.feedbackId":
		f = accStr(func(c *evalCtx) string { return c.n.Bounce.FeedbackID })
	case "bounce.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Bounce.Timestamp })

	case "complaint.feedbackType":
		f = accStr(func(c *evalCtx) string { return c.n.Complaint.FeedbackType })
	case "complaint.subType":
		f = accStr(func(c *evalCtx) string { return c.n.Complaint.SubType })
	case "complaint.userAgent":
		f = accStr(func(c *evalCtx) string { return c.n.Complaint.UserAgent })
	case "complaint.arrivalDate":
		f = accStr(func(c *evalCtx) string { return c.n.Complaint.ArrivalDate })
	case "complaint.feedbackId":
		f = accStr(func(c *evalCtx) string { return c.n.Complaint.FeedbackID })
	case "complaint.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Complaint.Timestamp })

	case "delivery.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Delivery.Timestamp })
	case "delivery.processingTimeMillis":
		f = intFn(func(c *evalCtx) int { return c.n.Delivery.ProcessingTimeMillis })
	case "delivery.smtpResponse":
		f = accStr(func(c *evalCtx) string { return c.n.Delivery.SMTPResponse })
	case "delivery.reportingMTA":
		f = accStr(func(c *evalCtx) string { return c.n.Delivery.ReportingMTA })
	case "delivery.remoteMtaIp":
		f = accStr(func(c *evalCtx) string { return c.n.Delivery.RemoteMtaIP })

	case "delay.type":
		f = accStr(func(c *evalCtx) string { return c.n.Delay.Type })
	case "delay.expirationTime":
		f = accStr(func(c *evalCtx) string { return c.n.Delay.ExpirationTime })
	case "delay.reportingMTA":
		f = accStr(func(c *evalCtx) string { return c.n.Delay.ReportingMTA })
	case "delay.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Delay.Timestamp })

	case "reject.reason":
		f = accStr(func(c *evalCtx) string { return c.n.Reject.Reason })

	case "failure.errorMessage":
		f = accStr(func(c *evalCtx) string { return c.n.Failure.ErrorMessage })
	case "failure.templateName":
		f = accStr(func(c *evalCtx) string { return c.n.Failure.TemplateName })

	case "open.ipAddress":
		f = accStr(func(c *evalCtx) string { return c.n.Open.IPAddress })
	case "open.userAgent":
		f = accStr(func(c *evalCtx) string { return c.n.Open.UserAgent })
	case "open.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Open.Timestamp })

	case "click.ipAddress":
		f = accStr(func(c *evalCtx) string { return c.n.Click.IPAddress })
	case "click.userAgent":
		f = accStr(func(c *evalCtx) string { return c.n.Click.UserAgent })
	case "click.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Click.Timestamp })
	case "click.link":
		f = accStr(func(c *evalCtx) string { return c.n.Click.Link })
	case "click.linkTags":
		f = accKeys(func(c *evalCtx) map[string][]string { return c.n.Click.LinkTags })

	case "subscription.contactList":
		f = accStr(func(c *evalCtx) string { return c.n.Subscription.ContactList })
	case "subscription.source":
		f = accStr(func(c *evalCtx) string { return c.n.Subscription.Source })
	case "subscription.timestamp":
		f = accStr(func(c *evalCtx) string { return c.n.Subscription.Timestamp })
	case "subscription.unsubscribeAll":
		f = boolFn(func(c *evalCtx) bool { return c.n.Subscription.UnsubscribeAll })

	case "recipient.address":
		f = accStr(func(c *evalCtx) string { return c.r.Address })
	case "recipient.local":
		f = accStr(func(c *evalCtx) string { return c.r.Local })
	case "recipient.domain":
		f = accStr(func(c *evalCtx) string { return c.r.Domain })
	case "recipient.status":
		f = accStr(func(c *evalCtx) string { return c.r.Status })
	case "recipient.action":
		f = accStr(func(c *evalCtx) string { return c.r.Action })
	case "recipient.diagnosticCode":
		f = accStr(func(c *evalCtx) string { return c.r.DiagnosticCode })
	default:
		return nil, false
	}
	return f, true
}
