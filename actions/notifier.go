package actions

import "context"

// Notifier posts messages to one destination.
type Notifier interface {
	// Post sends one message, retrying what Slack asks to be retried
	// within ctx's deadline, and says what became of it: OutcomePosted,
	// or OutcomeDryRun for a notifier that only renders.
	Post(ctx context.Context, m Message) (Outcome, error)
	// Payload is the exact JSON body Post would send, compact.
	Payload(m Message) []byte
}

// Threader is a Notifier that can post in a thread and edit what it
// posted: a bot-token destination. A storm's root message is posted and
// edited through it, and the storm's other messages go in the root's
// thread (Message.ThreadTS).
type Threader interface {
	Notifier
	// PostTS posts m as Post does and returns its ts, the message's id in
	// the channel.
	PostTS(ctx context.Context, m Message) (string, error)
	// Update replaces the message ts with m (chat.update).
	Update(ctx context.Context, ts string, m Message) error
}

// dryRun is a Notifier that posts nothing: it only renders.
type dryRun struct{ Notifier }

var _ Notifier = dryRun{}

// DryRun returns a Notifier that renders the payloads of n and posts
// nothing: every Post is OutcomeDryRun.
func DryRun(n Notifier) Notifier { return dryRun{n} }

// Post implements Notifier: it posts nothing.
func (dryRun) Post(context.Context, Message) (Outcome, error) { return OutcomeDryRun, nil }
