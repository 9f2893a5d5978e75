package actions

import (
	"github.com/go-json-experiment/json"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/slack-go/slack"
)

// The unsuppress button. Its value says which address, from which
// message, and which destination's allow lists decide who may press it:
// nothing secret, and nothing a press can use unless Slack signed it.

// UnsuppressActionID is the action_id of the unsuppress button.
const UnsuppressActionID = "sesrouter_unsuppress"

// ButtonValue is the value of an unsuppress button.
type ButtonValue struct {
	Destination string `json:"d"`
	Address     string `json:"a"`
	MessageID   string `json:"m,omitempty"`
}

// maxButtonValue is Slack's limit on a button's value, in characters.
const maxButtonValue = 2000

// unsuppressButton is the accessory that takes address off the
// suppression list; nil for a type other than Bounce and Complaint, or
// an address that would not fit.
func unsuppressButton(n *ses.Notification, dest, address string) *slack.Accessory {
	if (n.Event.Type != ses.TypeBounce && n.Event.Type != ses.TypeComplaint) || blank(address) {
		return nil
	}
	value, err := json.Marshal(ButtonValue{Destination: dest, Address: address, MessageID: n.Mail.MessageID})
	if err != nil || len(value) > maxButtonValue {
		return nil
	}
	b := slack.NewButtonBlockElement(UnsuppressActionID, string(value),
		slack.NewTextBlockObject(slack.PlainTextType, "Take off the suppression list", false, false))
	b.Confirm = slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, "Take it off?", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "SES will send to "+plainText(address, 200)+" again.", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Take it off", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
	return slack.NewAccessory(b)
}
