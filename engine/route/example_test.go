package route_test

import (
	"fmt"

	"github.com/sesrouter/sesrouter/engine/route"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
)

func ExampleRouter_Route() {
	rules, err := rules.Load("rules.yaml", []byte(`
version: 1
destinations:
  ses-alerts:
    slack:
      webhook_env: SLACK_WEBHOOK_URL
lists:
  ignored: [ignore@example.com]
rules:
  - name: ignore-dummies
    when: recipient.address in lists.ignored
    actions: [drop]
  - name: keep-deliverable
    when: event.type == "Bounce" && recipient.address contains "no-suppress"
    actions: [unsuppress, {notify: ses-alerts}]
  - name: notify-bounces
    when: event.type == "Bounce"
    actions: [{notify: ses-alerts}]
`))
	if err != nil {
		fmt.Println(err)
		return
	}

	// An SNS HTTP body: the SES notification is a string in Message.
	body := `{"Type":"Notification","MessageId":"5d2a1c7e-0000-4000-8000-000000000001",
"TopicArn":"arn:aws:sns:eu-west-1:111122223333:ses-feedback",
"Message":"{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":\"General\",\"bouncedRecipients\":[{\"emailAddress\":\"no-suppress-1@example.com\"},{\"emailAddress\":\"jane@example.org\"}],\"timestamp\":\"2024-05-02T10:00:01.000Z\",\"feedbackId\":\"fb-1\"},\"mail\":{\"timestamp\":\"2024-05-02T10:00:00.000Z\",\"source\":\"news@example.net\",\"messageId\":\"0102018f-1\",\"destination\":[\"no-suppress-1@example.com\",\"jane@example.org\"]}}"}`

	router := route.NewRouter(rules)
	for _, item := range ses.Decode("bounce.json", []byte(body)) {
		if item.Notification == nil {
			fmt.Println(item.Input, "skipped:", item.Skipped, "error:", item.Err)
			continue
		}
		plan := router.Route(item.Notification)
		fmt.Println(item.Input, item.Envelope, item.Notification.Event.Type)
		for _, d := range plan.Recipients {
			fmt.Printf("  %s: rule %s, actions %v\n", d.Recipient.Address, d.Decider.Name, d.Actions)
		}
		for _, step := range plan.Steps() {
			if step.Recipient != nil {
				fmt.Printf("  step %s for %s\n", step.Action, step.Recipient.Address)
			} else {
				fmt.Printf("  step %s for %d recipients\n", step.Action, len(step.Recipients))
			}
		}
	}
	// Output:
	// bounce.json http Bounce
	//   no-suppress-1@example.com: rule keep-deliverable, actions [unsuppress notify:ses-alerts]
	//   jane@example.org: rule notify-bounces, actions [notify:ses-alerts]
	//   step unsuppress for no-suppress-1@example.com
	//   step notify:ses-alerts for 2 recipients
}

func ExampleLoad() {
	_, err := rules.Load("rules.yaml", []byte(`version: 1
rules:
  - name: hard-bounce
    when: bounce.type == "Permanent" && recipent.domain == "example.com"
    actions: [suppress, {notify: ses-alerts}]
`))
	fmt.Println(err)
	// Output:
	// rules.yaml:4:41: rule "hard-bounce": unknown name recipent; did you mean recipient? (names: event, mail, bounce, complaint, delivery, delay, reject, failure, open, click, subscription, recipient, lists, history, glob, inDomain)
	// rules.yaml:5:34: rule "hard-bounce": unknown destination "ses-alerts" (no destinations are defined)
}
