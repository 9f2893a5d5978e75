package actions_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/actionstest"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// mustParseDestinations loads src as a rules file named rules.yaml, which
// must load, and returns its destinations in file order.
func mustParseDestinations(t *testing.T, src string) []*rules.Destination {
	t.Helper()
	rs, err := rules.Load("rules.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rules.Load: %v", err)
	}
	return rs.DestinationList()
}

// testChannel is the channel the bot-token tests post to.
const testChannel = "C0123456789"

// fastRetry keeps the retry tests fast: 4 attempts, 5 ms of backoff
// doubling up to 20 ms.
var fastRetry = slack.Retry{Attempts: 4, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// newHTTPClient is an HTTP client of the test's own, whose idle
// connections are closed when the test ends.
func newHTTPClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// listedAt is when the fake SES says an address was put on the list.
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

// recipient is the recipient of an address as SES wrote it.
func recipient(raw string) *ses.Recipient {
	r := ses.NewRecipient(raw)
	return &r
}

// testMessage is the message of a one-recipient bounce whose text needs
// escaping (<, >, &), as BuildMessages makes it.
func testMessage(t *testing.T) actions.Message {
	t.Helper()
	nt := &ses.Notification{
		Event:  ses.Event{Type: ses.TypeBounce, Timestamp: "2024-05-02T10:00:05.123Z"},
		Mail:   ses.Mail{Source: "Shop <billing@shop.example.org>", MessageID: "0102018f-0000", Subject: "Invoice <#1042> & more"},
		Bounce: ses.Bounce{Type: "Permanent", SubType: "General"},
	}
	r := ses.NewRecipient("jane@example.com")
	r.Status, r.Action, r.DiagnosticCode = "5.1.1", "failed", "smtp; 550 5.1.1 <jane@example.com> <!channel> unknown"
	nt.Recipients = []ses.Recipient{r}
	msgs := actions.BuildMessages(actions.Notice{
		Notification: nt,
		Recipients:   []actions.NoticeRecipient{{Recipient: &nt.Recipients[0], Rule: "hard-bounce"}},
	})
	if len(msgs) != 1 {
		t.Fatalf("BuildMessages made %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// hintChannel is the hint a channel_not_found error carries.
const hintChannel = "invite the app to the channel (/invite @app) and give the channel's ID (C…) in channel:, not its name"
