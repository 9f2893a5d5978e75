package actions

import (
	"time"

	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/slack-go/slack"
)

// Notice is what one notify step tells one destination: the notification,
// and every recipient of it routed there, with the rule that decided and
// the outcomes of the recipient's SES actions.
type Notice struct {
	Notification *ses.Notification
	// Mention is the destination's mention ("" for none): the only
	// mention a message can carry.
	Mention    string
	Recipients []NoticeRecipient
	// Destination and Unsuppress: with Unsuppress, each recipient of a
	// Bounce or Complaint gets a button that takes its address off the
	// suppression list; its value names Destination, whose allow lists
	// say who may press it.
	Destination string
	Unsuppress  bool
	// Total, when more than len(Recipients), is how many recipients the
	// notice has when Recipients are only its first (the others folded
	// into a digest): the messages count them out of Total.
	Total int
}

// NoticeRecipient is one recipient of a Notice.
type NoticeRecipient struct {
	Recipient *ses.Recipient
	// Rule is the rule that decided for the recipient (or, when only
	// continue rules matched, the last of them).
	Rule string
	// SES are the outcomes of the recipient's unsuppress and suppress
	// actions, in order; empty when it had none.
	SES []SESOutcome
}

// SESOutcome is the outcome of one SES suppression-list action.
type SESOutcome struct {
	// Action is rules.ActionUnsuppress or rules.ActionSuppress.
	Action rules.ActionKind
	// Outcome is OutcomeRemoved, OutcomeNotSuppressed, OutcomeAdded,
	// OutcomeFailed or OutcomeDryRun.
	Outcome Outcome
	// Reason and ListedAt say, for OutcomeRemoved, why and since when the
	// address had been on the list (Reason BOUNCE or COMPLAINT); empty
	// when SES did not say.
	Reason   string
	ListedAt time.Time
	// Err says why, for OutcomeFailed.
	Err error
}

// Message is one Slack message: the one-line fallback text and the Block
// Kit blocks. A Notice becomes one Message, or several when its recipients
// do not fit in one.
type Message struct {
	Text   string
	Blocks []slack.Block
	// ThreadTS, when set, is the ts of the root message in whose thread
	// the message is posted (a storm's thread).
	ThreadTS string
}
