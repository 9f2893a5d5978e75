package actions

import (
	"strings"
	"testing"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// TestOriginAndConsoleLink reads the account and region from
// mail.sourceArn and links each partition's console, and makes no link
// from a region it cannot trust.
func TestOriginAndConsoleLink(t *testing.T) {
	tests := []struct {
		arn, account, want string
	}{
		{"arn:aws:ses:us-east-1:123456789012:identity/example.com", "", "https://us-east-1.console.aws.amazon.com/ses/home?region=us-east-1#/suppression-list/a%2Bb%40example.com"},
		{"arn:aws-cn:ses:cn-north-1:123456789012:identity/example.com", "", "https://cn-north-1.console.amazonaws.cn/ses/home?region=cn-north-1#/suppression-list/a%2Bb%40example.com"},
		{"arn:aws-us-gov:ses:us-gov-west-1:123456789012:identity/example.com", "", "https://console.amazonaws-us-gov.com/ses/home?region=us-gov-west-1#/suppression-list/a%2Bb%40example.com"},
		{"arn:aws:ses:evil.com/x:123456789012:identity/example.com", "", ""},
		{"", "123456789012", ""},
	}
	for _, tt := range tests {
		n := &ses.Notification{Mail: ses.Mail{SourceArn: tt.arn, SendingAccountID: tt.account}}
		o := originOf(n)
		if o.Account != "123456789012" {
			t.Errorf("originOf(%q).Account = %q", tt.arn, o.Account)
		}
		if got := o.SuppressionEntryURL("a+b@example.com"); got != tt.want {
			t.Errorf("SuppressionEntryURL under %q = %q, want %q", tt.arn, got, tt.want)
		}
	}
	o := Origin{Partition: "aws", Region: "eu-west-1"}
	if u := o.SuppressionEntryURL("x <y>|z@example.com"); strings.ContainsAny(u, "<>| ") {
		t.Errorf("the link %q holds a character that ends a Slack link", u)
	}
	// Only Bounce and Complaint link the suppression list.
	n := &ses.Notification{Event: ses.Event{Type: ses.TypeDelivery}, Mail: ses.Mail{SourceArn: tests[0].arn}}
	if l := suppressionLink(n, "a@example.com"); l != "" {
		t.Errorf("a Delivery links %q", l)
	}
}
