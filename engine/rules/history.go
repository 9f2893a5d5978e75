package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// maxHistoryWindow is the longest window history(kind, window) may ask
// for.
const maxHistoryWindow = 90 * 24 * time.Hour

// History answers history(kind, window) for one notification: how many
// earlier notifications of kind the address had within window before it.
// The rules engine performs nothing: whoever routes gives the counts.
type History interface {
	Count(address, kind string, window time.Duration) int
}

// HistorySeen is one history(kind, window) a rule asked for one
// recipient, with the count it saw: what -explain shows.
type HistorySeen struct {
	Kind   string
	Window string
	Count  int
}

// HistoryKinds are the kinds history may count: an event type, or a
// bounce type as Bounce/TYPE.
func HistoryKinds() []string {
	return []string{"Bounce", "Bounce/Permanent", "Bounce/Transient", "Bounce/Undetermined", "Complaint", "Delivery", "Send",
		"Reject", "Open", "Click", "RenderingFailure", "DeliveryDelay", "Subscription"}
}

// parseWindow reads a history window: a number of days ("7d") or a Go
// duration ("36h", "90m"), positive and at most maxHistoryWindow.
func parseWindow(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("window %q is a number of days (\"7d\") or hours (\"36h\")", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("window %q is a number of days (\"7d\") or hours (\"36h\")", s)
		}
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("window %q is not positive", s)
	case d > maxHistoryWindow:
		return 0, fmt.Errorf("window %q is longer than 90 days, the most history keeps", s)
	}
	return d, nil
}

// history is the history(kind, window) of a rule: the count the History
// of the evaluation gives for the recipient's address, 0 without one.
// It records what it saw.
func (e *Env) history(kind, window string) int {
	n := 0
	if e.hist != nil {
		if d, err := parseWindow(window); err == nil {
			n = e.hist.Count(e.Recipient.Address, kind, d)
		}
	}
	e.seen = append(e.seen, HistorySeen{Kind: kind, Window: window, Count: n})
	return n
}

// SetHistory sets the History of the evaluations to come (nil: every
// count is 0).
func (e *Env) SetHistory(h History) { e.hist = h }

// TakeSeen returns the history counts the rules saw since the last call,
// and forgets them.
func (e *Env) TakeSeen() []HistorySeen {
	s := e.seen
	e.seen = nil
	return s
}

// historyUse is one call of history in a when expression.
type historyUse struct {
	kind   string
	window time.Duration
	loc    file.Location
	err    string
}

// historyUses finds the calls of history in node: each must give its
// kind and window as literal strings, a kind history counts and a window
// within maxHistoryWindow.
func historyCall(node ast.Node) (historyUse, bool) {
	call, ok := node.(*ast.CallNode)
	if !ok {
		return historyUse{}, false
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || id.Value != "history" {
		return historyUse{}, false
	}
	u := historyUse{loc: call.Location()}
	if len(call.Arguments) != 2 {
		return u, true // expr says what is wrong
	}
	kind, ok1 := call.Arguments[0].(*ast.StringNode)
	window, ok2 := call.Arguments[1].(*ast.StringNode)
	if !ok1 || !ok2 {
		u.err = `history takes a kind and a window written out, like history("Bounce/Transient", "7d")`
		return u, true
	}
	u.kind = kind.Value
	if !slices.Contains(HistoryKinds(), kind.Value) {
		u.err = fmt.Sprintf("history counts %s, not %q", strings.Join(HistoryKinds(), ", "), kind.Value)
		return u, true
	}
	d, err := parseWindow(window.Value)
	if err != nil {
		u.err = err.Error()
	}
	u.window = d
	return u, true
}

// UsesHistory reports whether some rule calls history, and if so the
// kinds they count and the longest window: what is to be written for
// each notification.
func (r *Rules) UsesHistory() (kinds []string, longest time.Duration, ok bool) {
	return r.historyKinds, r.historyWindow, len(r.historyKinds) > 0
}
