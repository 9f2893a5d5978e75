package actions

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// Where a notification comes from, as a message says it: the AWS account
// and region of the sending identity, the configuration set and the
// event-publishing tags, and a link to the address's entry in the SES
// console's suppression list.

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

// Origin is the account and region a notification's mail was sent from,
// read from mail.sourceArn (arn:PARTITION:ses:REGION:ACCOUNT:identity/…),
// the account falling back to mail.sendingAccountId. Each is empty when
// the notification does not say it in a valid form.
type Origin struct {
	Partition, Region, Account string
}

// originOf reads n's Origin.
func originOf(n *ses.Notification) Origin {
	var o Origin
	parts := strings.SplitN(n.Mail.SourceArn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "ses" {
		if regionRE.MatchString(parts[3]) {
			o.Partition, o.Region = parts[1], parts[3]
		}
		if accountRE.MatchString(parts[4]) {
			o.Account = parts[4]
		}
	}
	if o.Account == "" && accountRE.MatchString(n.Mail.SendingAccountID) {
		o.Account = n.Mail.SendingAccountID
	}
	return o
}

// consoleHost is the host of the AWS console of partition in region; ""
// for a partition it does not know.
func consoleHost(partition, region string) string {
	switch partition {
	case "aws":
		return region + ".console.aws.amazon.com"
	case "aws-cn":
		return region + ".console.amazonaws.cn"
	case "aws-us-gov":
		return "console.amazonaws-us-gov.com"
	}
	return ""
}

// SuppressionEntryURL is the SES console page of address's entry in the
// account-level suppression list of o's region:
// https://us-east-1.console.aws.amazon.com/ses/home?region=us-east-1#/suppression-list/a%40example.com.
// "" when o has no region, or address is empty or too long to link.
func (o Origin) SuppressionEntryURL(address string) string {
	host := consoleHost(o.Partition, o.Region)
	if host == "" || blank(address) || len(address) > capAddress {
		return ""
	}
	// QueryEscape leaves only letters, digits and -_.~ as they are, so
	// the URL holds none of the characters that end a Slack link (<, >,
	// |) and no space.
	escaped := strings.ReplaceAll(url.QueryEscape(address), "+", "%20")
	return "https://" + host + "/ses/home?region=" + o.Region + "#/suppression-list/" + escaped
}

// configurationSetTag is the tag in which SES names the configuration
// set the mail was sent with; tags under the ses: prefix are SES's own
// (ses:source-ip, ses:from-domain, …) and are not shown as tags.
const (
	configurationSetTag = "ses:configuration-set"
	sesTagPrefix        = "ses:"
	capTags             = 600 // the tags of one message, in characters
)

// originElements are the context elements that say where n comes from,
// as mrkdwn: the account and region, the configuration set and the tags,
// each when n has it.
func originElements(n *ses.Notification) []string {
	var elems []string
	o := originOf(n)
	var where []string
	if o.Account != "" {
		where = append(where, "*Account:* "+codeSpan(o.Account, capMessageID))
	}
	if o.Region != "" {
		where = append(where, "*Region:* "+codeSpan(o.Region, capMessageID))
	}
	if len(where) > 0 {
		elems = append(elems, strings.Join(where, " · "))
	}
	if cs := n.Mail.Tags[configurationSetTag]; len(cs) > 0 && !blank(cs[0]) {
		elems = append(elems, "*Configuration set:* "+codeSpan(cs[0], capRule))
	}
	var tags []string
	for _, k := range slices.Sorted(maps.Keys(n.Mail.Tags)) {
		if strings.HasPrefix(k, sesTagPrefix) {
			continue
		}
		tags = append(tags, k+"="+strings.Join(n.Mail.Tags[k], ","))
	}
	if len(tags) > 0 {
		elems = append(elems, "*Tags:* "+codeSpan(strings.Join(tags, " "), capTags))
	}
	return elems
}

// suppressionLink is the line of a recipient of a Bounce or Complaint
// that links to its suppression-list entry in the SES console, as
// mrkdwn; "" for other types or when there is no link to make.
func suppressionLink(n *ses.Notification, address string) string {
	if n.Event.Type != ses.TypeBounce && n.Event.Type != ses.TypeComplaint {
		return ""
	}
	u := originOf(n).SuppressionEntryURL(address)
	if u == "" {
		return ""
	}
	return "<" + u + "|suppression list entry in the SES console>"
}
