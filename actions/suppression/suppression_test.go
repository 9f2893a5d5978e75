package suppression

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/smithy-go"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// listedAt is when the addresses the tests put on the fake's suppression
// list were listed; whole seconds, as SES's epoch-seconds timestamps keep
// them exactly.
var listedAt = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// accessDenied is the message of the SES fake's AccessDeniedException for
// op.
func accessDenied(op string) string {
	return "AccessDeniedException: User: arn:aws:iam::000000000000:user/sesrouter-test is not authorized to perform: ses:" + op
}

// sesCall is what a test expects of one call the SES fake saw.
type sesCall struct {
	Op      string
	Address string
	Status  int
}

// sesCalls is the calls fake saw, in the shape tests expect.
func sesCalls(t *testing.T, fake *actionstest.SES) []sesCall {
	t.Helper()
	var got []sesCall
	for _, c := range fake.Calls() {
		got = append(got, sesCall{Op: c.Op, Address: c.Address, Status: c.Status})
	}
	return got
}

// sesWant is what a test expects of an SESOutcome: its fields, with the
// error as its text ("" for none).
type sesWant struct {
	Action   rules.ActionKind
	Outcome  actions.Outcome
	Reason   string
	ListedAt time.Time
	Error    string
}

// checkOutcome fails t unless got is want.
func checkOutcome(t *testing.T, what string, got actions.SESOutcome, want sesWant) {
	t.Helper()
	errText := ""
	if got.Err != nil {
		errText = got.Err.Error()
	}
	g := sesWant{Action: got.Action, Outcome: got.Outcome, Reason: got.Reason, ListedAt: got.ListedAt, Error: errText}
	if g != want {
		t.Errorf("%s = %+v\nwant %+v", what, g, want)
	}
	if (got.Outcome == actions.OutcomeFailed) != (got.Err != nil) {
		t.Errorf("%s: outcome %s with error %v", what, got.Outcome, got.Err)
	}
}

// recipient is the recipient of an address as SES wrote it.
func recipient(raw string) *ses.Recipient {
	r := ses.NewRecipient(raw)
	return &r
}

func TestSuppressionListUnsuppress(t *testing.T) {
	const (
		get = actionstest.OpGetSuppressedDestination
		del = actionstest.OpDeleteSuppressedDestination
		a   = "jane@example.com"
	)
	// The zero Fault lets a request through, so that a fault can be
	// scripted for the second call (Delete) only.
	pass := actionstest.Fault{}
	tests := []struct {
		name       string
		listed     bool // a is on the list, for BOUNCE since listedAt
		faults     []actionstest.Fault
		want       sesWant
		calls      []sesCall
		stillThere bool
	}{
		{
			name:   "listed address is removed with the reason and date SES gave",
			listed: true,
			want:   sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeRemoved, Reason: "BOUNCE", ListedAt: listedAt},
			calls:  []sesCall{{get, a, 200}, {del, a, 200}},
		},
		{
			name:  "address not on the list is not-suppressed, with no Delete",
			want:  sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeNotSuppressed},
			calls: []sesCall{{get, a, 404}},
		},
		{
			name:   "throttled once, the SDK retries, then removed",
			listed: true,
			faults: []actionstest.Fault{actionstest.Fault429()},
			want:   sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeRemoved, Reason: "BOUNCE", ListedAt: listedAt},
			calls:  []sesCall{{get, a, 429}, {get, a, 200}, {del, a, 200}},
		},
		{
			name:   "throttled twice, the SDK retries, then removed",
			listed: true,
			faults: []actionstest.Fault{actionstest.Fault429(), actionstest.Fault429()},
			want:   sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeRemoved, Reason: "BOUNCE", ListedAt: listedAt},
			calls:  []sesCall{{get, a, 429}, {get, a, 429}, {get, a, 200}, {del, a, 200}},
		},
		{
			name:   "Delete throttled once, the SDK retries, then removed",
			listed: true,
			faults: []actionstest.Fault{pass, actionstest.Fault429()},
			want:   sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeRemoved, Reason: "BOUNCE", ListedAt: listedAt},
			calls:  []sesCall{{get, a, 200}, {del, a, 429}, {del, a, 200}},
		},
		{
			name:       "throttled past the SDK's three attempts fails with the throttling error",
			listed:     true,
			faults:     []actionstest.Fault{actionstest.Fault429(), actionstest.Fault429(), actionstest.Fault429()},
			want:       sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeFailed, Error: "SES GetSuppressedDestination: TooManyRequestsException: Too many requests have been made to the operation."},
			calls:      []sesCall{{get, a, 429}, {get, a, 429}, {get, a, 429}},
			stillThere: true,
		},
		{
			name:       "access denied on Get fails, naming the operation and the error",
			listed:     true,
			faults:     []actionstest.Fault{actionstest.FaultAccessDenied()},
			want:       sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeFailed, Error: "SES GetSuppressedDestination: " + accessDenied(get)},
			calls:      []sesCall{{get, a, 403}},
			stillThere: true,
		},
		{
			name:       "access denied on Delete fails, naming the operation and the error",
			listed:     true,
			faults:     []actionstest.Fault{pass, actionstest.FaultAccessDenied()},
			want:       sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeFailed, Reason: "BOUNCE", ListedAt: listedAt, Error: "SES DeleteSuppressedDestination: " + accessDenied(del)},
			calls:      []sesCall{{get, a, 200}, {del, a, 403}},
			stillThere: true,
		},
		{
			name:   "500 then success, the SDK retries, then removed",
			listed: true,
			faults: []actionstest.Fault{actionstest.Fault500()},
			want:   sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeRemoved, Reason: "BOUNCE", ListedAt: listedAt},
			calls:  []sesCall{{get, a, 500}, {get, a, 200}, {del, a, 200}},
		},
		{
			name:   "503 then success, the SDK retries, then removed",
			listed: true,
			faults: []actionstest.Fault{pass, actionstest.Fault503()},
			want:   sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeRemoved, Reason: "BOUNCE", ListedAt: listedAt},
			calls:  []sesCall{{get, a, 200}, {del, a, 503}, {del, a, 200}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSES(t)
			if tt.listed {
				fake.Suppress(a, "BOUNCE", listedAt)
			}
			fake.Script(tt.faults...)
			s := &SuppressionList{Client: fake.Client(t)}

			got := s.Unsuppress(context.Background(), recipient(a))
			checkOutcome(t, "Unsuppress("+a+")", got, tt.want)
			if calls := sesCalls(t, fake); !slices.Equal(calls, tt.calls) {
				t.Errorf("fake saw %v\nwant %v", calls, tt.calls)
			}
			if _, listed := fake.Suppressed(a); listed != tt.stillThere {
				t.Errorf("after Unsuppress, on the list: %v, want %v", listed, tt.stillThere)
			}
			if n := fake.Pending(); n != 0 {
				t.Errorf("%d scripted faults not served", n)
			}
		})
	}
}

func TestSuppressionListSuppress(t *testing.T) {
	const (
		put = actionstest.OpPutSuppressedDestination
		a   = "jane@example.com"
	)
	tests := []struct {
		name       string
		eventType  string
		faults     []actionstest.Fault
		want       sesWant
		calls      []sesCall
		wantReason string // on the list afterwards with this reason; "" for not on it
	}{
		{
			name:       "Bounce is added with reason BOUNCE",
			eventType:  ses.TypeBounce,
			want:       sesWant{Action: rules.ActionSuppress, Outcome: actions.OutcomeAdded, Reason: "BOUNCE"},
			calls:      []sesCall{{put, a, 200}},
			wantReason: "BOUNCE",
		},
		{
			name:       "Complaint is added with reason COMPLAINT",
			eventType:  ses.TypeComplaint,
			want:       sesWant{Action: rules.ActionSuppress, Outcome: actions.OutcomeAdded, Reason: "COMPLAINT"},
			calls:      []sesCall{{put, a, 200}},
			wantReason: "COMPLAINT",
		},
		{
			name:      "Delivery fails without any call",
			eventType: ses.TypeDelivery,
			want:      sesWant{Action: rules.ActionSuppress, Outcome: actions.OutcomeFailed, Error: "suppress needs a Bounce or a Complaint (SES takes reason BOUNCE or COMPLAINT), not a Delivery"},
		},
		{
			name:       "throttled once, the SDK retries, then added",
			eventType:  ses.TypeBounce,
			faults:     []actionstest.Fault{actionstest.Fault429()},
			want:       sesWant{Action: rules.ActionSuppress, Outcome: actions.OutcomeAdded, Reason: "BOUNCE"},
			calls:      []sesCall{{put, "", 429}, {put, a, 200}}, // the fake reads a Put's body only when it serves it
			wantReason: "BOUNCE",
		},
		{
			name:      "access denied fails, naming the operation and the error",
			eventType: ses.TypeComplaint,
			faults:    []actionstest.Fault{actionstest.FaultAccessDenied()},
			want:      sesWant{Action: rules.ActionSuppress, Outcome: actions.OutcomeFailed, Error: "SES PutSuppressedDestination: " + accessDenied(put)},
			calls:     []sesCall{{put, "", 403}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSES(t)
			fake.Script(tt.faults...)
			s := &SuppressionList{Client: fake.Client(t)}

			got := s.Suppress(context.Background(), recipient(a), tt.eventType)
			checkOutcome(t, "Suppress("+a+", "+tt.eventType+")", got, tt.want)
			if calls := sesCalls(t, fake); !slices.Equal(calls, tt.calls) {
				t.Errorf("fake saw %v\nwant %v", calls, tt.calls)
			}
			if reason, _ := fake.Suppressed(a); reason != tt.wantReason {
				t.Errorf("on the list with reason %q, want %q", reason, tt.wantReason)
			}
		})
	}
}

// TestSuppressionListSendsBareEscapedAddresses checks that an address SES
// wrote with a display name goes to SES bare (recipient.address, which the
// recipient is made with), and that characters a URL path must escape
// ('+', '@', '%', '/') reach SES intact.
func TestSuppressionListSendsBareEscapedAddresses(t *testing.T) {
	tests := []struct {
		name     string
		address  string // as SES wrote it
		bare     string // what SES must see
		wirePath string // the Get and Delete path on the wire
	}{
		{
			name:     "display name and plus",
			address:  `"Jane Doe" <jane+tag@example.com>`,
			bare:     "jane+tag@example.com",
			wirePath: "/v2/email/suppression/addresses/jane%2Btag%40example.com",
		},
		{
			name:     "angle brackets only",
			address:  "<john@example.com>",
			bare:     "john@example.com",
			wirePath: "/v2/email/suppression/addresses/john%40example.com",
		},
		{
			name:     "percent and slash",
			address:  "Odd <a%b/c@example.com>",
			bare:     "a%b/c@example.com",
			wirePath: "/v2/email/suppression/addresses/a%25b%2Fc%40example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSES(t)
			fake.Suppress(tt.bare, "COMPLAINT", listedAt)
			s := &SuppressionList{Client: fake.Client(t)}
			ctx := context.Background()

			if got := s.Unsuppress(ctx, recipient(tt.address)); got.Outcome != actions.OutcomeRemoved {
				t.Fatalf("Unsuppress(%q) = %+v, want removed", tt.address, got)
			}
			if got := s.Suppress(ctx, recipient(tt.address), ses.TypeComplaint); got.Outcome != actions.OutcomeAdded {
				t.Fatalf("Suppress(%q) = %+v, want added", tt.address, got)
			}
			calls := fake.Calls()
			if len(calls) != 3 {
				t.Fatalf("fake saw %d calls, want Get, Delete, Put: %+v", len(calls), calls)
			}
			for _, c := range calls {
				if c.Address != tt.bare {
					t.Errorf("%s got address %q, want %q", c.Op, c.Address, tt.bare)
				}
			}
			for _, c := range calls[:2] {
				if c.Path != tt.wirePath {
					t.Errorf("%s path %s, want %s", c.Op, c.Path, tt.wirePath)
				}
			}
			if reason, ok := fake.Suppressed(tt.bare); !ok || reason != "COMPLAINT" {
				t.Errorf("after Suppress: listed %v with reason %q, want COMPLAINT", ok, reason)
			}
			if _, ok := fake.Suppressed(tt.address); ok {
				t.Errorf("%q, display name and all, is on the list", tt.address)
			}
		})
	}
}

// TestSuppressionListNoMailbox: a recipient that holds no valid mailbox
// gets no SES action at all, not even a dry one: the action fails with
// ErrNotMailbox and SES sees no request.
func TestSuppressionListNoMailbox(t *testing.T) {
	tests := []struct {
		raw, why string
	}{
		{"a@b@c", "not a mailbox: more than one @"},
		{"no-at-sign", "not a mailbox: no @"},
		{strings.Repeat("x", 388) + "@example.com", "not a mailbox: longer than 320 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.raw[:min(len(tt.raw), 20)], func(t *testing.T) {
			fake := actionstest.NewSES(t)
			fake.Suppress(tt.raw, "BOUNCE", listedAt) // even if SES had such an entry
			rc := recipient(tt.raw)
			if rc.Invalid != tt.why {
				t.Fatalf("NewRecipient(%.20q).Invalid = %q, want %q", tt.raw, rc.Invalid, tt.why)
			}
			ctx := context.Background()
			list, dry := &SuppressionList{Client: fake.Client(t)}, DryRun()
			for what, got := range map[string]actions.SESOutcome{
				"Unsuppress":         list.Unsuppress(ctx, rc),
				"Suppress":           list.Suppress(ctx, rc, ses.TypeBounce),
				"dry-run Unsuppress": dry.Unsuppress(ctx, rc),
				"dry-run Suppress":   dry.Suppress(ctx, rc, ses.TypeComplaint),
			} {
				if got.Outcome != actions.OutcomeFailed || !errors.Is(got.Err, ErrNotMailbox) {
					t.Errorf("%s = %s, %v; want failed with ErrNotMailbox", what, got.Outcome, got.Err)
				}
				if want := "no SES action: " + tt.why; fmt.Sprint(got.Err) != want {
					t.Errorf("%s error %v\nwant %s", what, got.Err, want)
				}
			}
			if c := fake.Counts(); c.Requests != 0 {
				t.Errorf("SES saw %d requests (%+v), want none", c.Requests, fake.Calls())
			}
			if _, ok := fake.Suppressed(tt.raw); !ok {
				t.Error("the entry was taken off the list")
			}
		})
	}
}

// TestSuppressionListActsOnTheAddress: SES gets exactly
// recipient.address, the bare mailbox with the domain in lower case and
// the local part as written, whatever display name SES wrote around it.
// Before recipient.address was the bare mailbox, the domain went to SES
// in the case SES wrote it.
func TestSuppressionListActsOnTheAddress(t *testing.T) {
	for raw, want := range map[string]string{
		`"no-suppress" <ceo@bank.example>`: "ceo@bank.example",
		`"No-Suppress" <CEO@Bank.Example>`: "CEO@bank.example",
		`ceo@BANK.example (the boss)`:      "ceo@bank.example",
	} {
		t.Run(raw, func(t *testing.T) {
			fake := actionstest.NewSES(t)
			fake.Suppress(want, "BOUNCE", listedAt)
			s := &SuppressionList{Client: fake.Client(t)}
			rc := recipient(raw)
			if rc.Address != want {
				t.Fatalf("recipient.address = %q, want %q", rc.Address, want)
			}
			got := s.Unsuppress(context.Background(), rc)
			checkOutcome(t, "Unsuppress", got, sesWant{Action: rules.ActionUnsuppress, Outcome: actions.OutcomeRemoved, Reason: "BOUNCE", ListedAt: listedAt})
			got = s.Suppress(context.Background(), rc, ses.TypeBounce)
			checkOutcome(t, "Suppress", got, sesWant{Action: rules.ActionSuppress, Outcome: actions.OutcomeAdded, Reason: "BOUNCE"})
			for _, c := range fake.Calls() {
				if c.Address != want {
					t.Errorf("%s for %q, want exactly %q", c.Op, c.Address, want)
				}
			}
			if n := len(fake.Calls()); n != 3 {
				t.Errorf("%d calls, want Get, Delete, Put", n)
			}
		})
	}
}

// TestSESErrorShort: an SES error is one short line for a Slack message
// (the operation and SES's code, or the innermost cause when SES did not
// answer), while Error keeps the whole story for the log; errors.As
// finds the SDK's error through it.
func TestSESErrorShort(t *testing.T) {
	t.Run("SES answered", func(t *testing.T) {
		fake := actionstest.NewSES(t)
		fake.Script(actionstest.FaultAccessDenied())
		got := (&SuppressionList{Client: fake.Client(t)}).Unsuppress(context.Background(), recipient("jane@example.com"))
		var se *SESError
		if !errors.As(got.Err, &se) {
			t.Fatalf("error %T %v is no *SESError", got.Err, got.Err)
		}
		if se.Op != "GetSuppressedDestination" || se.Code != "AccessDeniedException" {
			t.Errorf("SESError op %q code %q", se.Op, se.Code)
		}
		if want := "SES GetSuppressedDestination: " + accessDenied(actionstest.OpGetSuppressedDestination); got.Err.Error() != want {
			t.Errorf("Error() = %s\nwant %s", got.Err, want)
		}
		if want := "SES GetSuppressedDestination: AccessDeniedException"; se.Short() != want || actions.ShortError(got.Err) != want {
			t.Errorf("Short() = %q, ShortError = %q; want %q", se.Short(), actions.ShortError(got.Err), want)
		}
		var api smithy.APIError
		if !errors.As(got.Err, &api) || api.ErrorCode() != "AccessDeniedException" {
			t.Errorf("errors.As(err, smithy.APIError) does not find the SDK's error")
		}
	})
	t.Run("SES did not answer", func(t *testing.T) {
		fake := actionstest.NewSES(t)
		client := fake.Client(t, func(o *sesv2.Options) { o.BaseEndpoint = aws.String("http://" + closedPort(t)) })
		got := (&SuppressionList{Client: client}).Suppress(context.Background(), recipient("jane@example.com"), ses.TypeBounce)
		short := actions.ShortError(got.Err)
		if !strings.HasPrefix(short, "SES PutSuppressedDestination: ") || !strings.Contains(short, "connection refused") || strings.Contains(short, "\n") {
			t.Errorf("ShortError = %q, want the operation and the innermost cause on one line", short)
		}
		if full := got.Err.Error(); len(full) <= len(short) || !strings.Contains(full, "PutSuppressedDestination") {
			t.Errorf("Error() = %q: want the whole story, longer than %q", full, short)
		}
	})
	t.Run("other errors", func(t *testing.T) {
		if got := actions.ShortError(errors.New("first line\nsecond line")); got != "first line" {
			t.Errorf("ShortError = %q, want the first line", got)
		}
		if got := actions.ShortError(errors.New(strings.Repeat("é", 300))); utf8.RuneCountInString(got) != 200 || !strings.HasSuffix(got, "…") {
			t.Errorf("ShortError of 300 characters = %d characters", utf8.RuneCountInString(got))
		}
	})
}
