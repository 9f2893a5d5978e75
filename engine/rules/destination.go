package rules

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Destination is a Slack destination of the rules file: a channel, posted
// to with chat.postMessage and the bot token, or an incoming webhook whose
// URL is in an environment variable. Exactly one of Channel and
// WebhookEnv is set.
//
//	destinations:
//	  ses-alerts:
//	    slack:
//	      channel: C0123456789
//	      mention: "<!subteam^S0123ABCD>"
//	      digest_after: 10
//	      digest_window: 5m
//	      pace: 1.1s
//	      burst: 1
//	      thread: storm
//	      buttons: [unsuppress]
//	      allow_users: [U0123ABCD]
//	      allow_groups: [S0123ABCD]
type Destination struct {
	Name string
	// Pos is where the destination is named in the file.
	Pos Pos
	// Index is the destination's place in the rules file, from 0.
	Index      int
	Channel    string
	WebhookEnv string
	// Mention is put in the first message of every notice to the
	// destination: <!here>, <!channel>, a user group <!subteam^ID> or a
	// user <@ID>, several separated by spaces. Nothing from an event can
	// mention.
	Mention string
	// DigestAfter is how many messages the destination takes within
	// DigestWindow before its later notifications are folded into
	// digests.
	DigestAfter  int
	DigestWindow time.Duration
	// Pace is the time between two posts to the channel or webhook (0:
	// no wait); Burst how many may go at once after a quiet spell.
	Pace  time.Duration
	Burst int
	// Thread is threadStorm (a storm's messages go in the thread of one
	// root message, edited in place with the running counts) or
	// threadNone (flat messages). A channel's default is threadStorm; a
	// webhook, which cannot thread or edit, is always threadNone.
	Thread string
	// Buttons are the buttons every message to the destination carries
	// (ButtonUnsuppress), in the order of the file.
	Buttons []string
	// AllowUsers are the Slack user ids (U…, W…) allowed to press the
	// buttons, and AllowGroups the user groups (S…) whose members are.
	AllowUsers, AllowGroups []string
	// ThreadPos, ButtonsPos, AllowUsersPos and AllowGroupsPos are where
	// those keys' values are in the file (zero: not set).
	ThreadPos, ButtonsPos, AllowUsersPos, AllowGroupsPos Pos
}

// Values of a destination's thread key, and its buttons.
const (
	threadStorm = "storm"
	threadNone  = "none"

	// ButtonUnsuppress takes a recipient of a Bounce or Complaint off the
	// SES account suppression list.
	ButtonUnsuppress = "unsuppress"
)

// Threads reports whether a storm of d's messages goes into a thread.
func (d *Destination) Threads() bool { return d.Channel != "" && d.Thread != threadNone }

// HasButton reports whether d's messages carry the button named b.
func (d *Destination) HasButton(b string) bool {
	for _, x := range d.Buttons {
		if x == b {
			return true
		}
	}
	return false
}

// Allows reports whether the Slack user id may press d's buttons by
// being named in allow_users; membership of allow_groups is looked up
// by the caller.
func (d *Destination) Allows(user string) bool {
	for _, u := range d.AllowUsers {
		if u == user {
			return true
		}
	}
	return false
}

// Defaults of a destination's settings.
const (
	defaultDigestAfter  = 10
	defaultDigestWindow = 5 * time.Minute
	// defaultPace keeps clear of Slack's limit of about one message per
	// second per channel, even when the network delays one post and not
	// the next.
	defaultPace  = 1100 * time.Millisecond
	defaultBurst = 1
)

// Describe says where the destination posts, without any secret.
func (d *Destination) Describe() string {
	if d.Channel != "" {
		return "Slack channel " + d.Channel
	}
	return "Slack webhook $" + d.WebhookEnv
}

// Target is the channel or webhook the destination posts to: destinations
// with the same target share its pace.
func (d *Destination) Target() string {
	if d.Channel != "" {
		return "channel " + d.Channel
	}
	return "webhook $" + d.WebhookEnv
}

// StormLimits are d's digest_after and digest_window, the defaults for a
// destination that has none (one not loaded from a rules file).
func (d *Destination) StormLimits() (int, time.Duration) {
	after, window := d.DigestAfter, d.DigestWindow
	if after < 1 {
		after = defaultDigestAfter
	}
	if window <= 0 {
		window = defaultDigestWindow
	}
	return after, window
}

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	userIDRE  = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	groupIDRE = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	mentionRE = regexp.MustCompile(`^(<!here>|<!channel>|<!everyone>|<!subteam\^[A-Z0-9]+(\|[^<>]*)?>|<@[UW][A-Z0-9]+>)( +(<!here>|<!channel>|<!everyone>|<!subteam\^[A-Z0-9]+(\|[^<>]*)?>|<@[UW][A-Z0-9]+>))*$`)
)

// isSecretKey reports whether a key would hold a credential: such a key
// is refused outright.
func isSecretKey(k string) bool {
	switch k {
	case "webhook_url", "url", "webhook", "token":
		return true
	}
	return false
}

// slackKeys are the keys of a destination's slack mapping.
const slackKeys = "channel, webhook_env, mention, digest_after, digest_window, pace, burst, thread, buttons, allow_users or allow_groups"

// parseDestination reads and checks one destination of the rules file,
// the mapping v named name at pos; nil when it is not a mapping with
// slack settings (its problems are reported). A value that looks like a
// credential is never repeated in a problem.
func parseDestination(y *YAML, name string, pos Pos, v *yaml.Node, index int) *Destination {
	ctx := fmt.Sprintf("destination %q", name)
	if v.Kind != yaml.MappingNode {
		y.Problem(v, ctx, "a destination is a mapping with slack: {channel: …} or slack: {webhook_env: …}")
		return nil
	}
	var slackNode *yaml.Node
	y.EachKey(v, ctx, func(k, v2 *yaml.Node) {
		switch k.Value {
		case "slack":
			slackNode = v2
		default:
			y.Problem(k, ctx, "unknown key %q (want slack)", k.Value)
		}
	})
	if slackNode == nil {
		y.Problem(v, ctx, "missing slack: {channel: …} or slack: {webhook_env: …}")
		return nil
	}
	if slackNode.Kind != yaml.MappingNode {
		y.Problem(slackNode, ctx, "slack must be a mapping with channel or webhook_env")
		return nil
	}
	d := &Destination{Name: name, Pos: pos, Index: index, DigestAfter: defaultDigestAfter, DigestWindow: defaultDigestWindow,
		Pace: defaultPace, Burst: defaultBurst}
	secretKey := false
	y.EachKey(slackNode, ctx, func(k, v3 *yaml.Node) {
		if what := looksLikeCredential(v3.Value); what != "" && v3.Kind == yaml.ScalarNode && !isSecretKey(k.Value) {
			secretKey = true
			if k.Value == "webhook_env" {
				y.Problem(v3, ctx, "webhook_env must name an environment variable; this value looks like %s: put the URL in an environment variable and name it here", what)
			} else {
				y.Problem(v3, ctx, "%s must not hold a credential; this value looks like %s: credentials go in environment variables (SLACK_BOT_TOKEN, or the variable webhook_env names)", k.Value, what)
			}
			return
		}
		switch k.Value {
		case "channel":
			d.Channel = y.Str(v3, ctx, "channel")
		case "webhook_env":
			d.WebhookEnv = y.Str(v3, ctx, "webhook_env")
			if d.WebhookEnv != "" && !envNameRE.MatchString(d.WebhookEnv) {
				y.Problem(v3, ctx, "webhook_env names an environment variable (letters, digits, '_'), not %q", d.WebhookEnv)
			}
		case "mention":
			d.Mention = y.Str(v3, ctx, "mention")
			if d.Mention != "" && !mentionRE.MatchString(d.Mention) {
				y.Problem(v3, ctx, "mention is <!here>, <!channel>, a user group <!subteam^ID> or a user <@ID> (several separated by spaces), not %q", d.Mention)
			}
		case "digest_after":
			d.DigestAfter = positive(y, v3, ctx, "digest_after", "a positive whole number of messages")
		case "burst":
			d.Burst = positive(y, v3, ctx, "burst", "a positive whole number of posts")
		case "digest_window":
			d.DigestWindow = duration(y, v3, ctx, "digest_window", false)
		case "pace":
			d.Pace = duration(y, v3, ctx, "pace", true)
		case "thread":
			d.ThreadPos = nodePos(v3)
			switch d.Thread = y.Str(v3, ctx, "thread"); d.Thread {
			case threadStorm, threadNone, "":
			default:
				y.Problem(v3, ctx, "thread is storm (a storm's messages in one thread) or none (flat messages), not %q", d.Thread)
			}
		case "buttons":
			d.ButtonsPos = nodePos(v3)
			d.Buttons = idList(y, v3, ctx, "buttons", "unsuppress", func(s string) bool { return s == ButtonUnsuppress })
		case "allow_users":
			d.AllowUsersPos = nodePos(v3)
			d.AllowUsers = idList(y, v3, ctx, "allow_users", "Slack user ids (U… or W…)", userIDRE.MatchString)
		case "allow_groups":
			d.AllowGroupsPos = nodePos(v3)
			d.AllowGroups = idList(y, v3, ctx, "allow_groups", "Slack user group ids (S…)", groupIDRE.MatchString)
		case "webhook_url", "url", "webhook", "token": // isSecretKey
			secretKey = true
			y.Problem(k, ctx, "%s is not allowed: secrets never go in the rules file; put the URL in an environment variable and name it with webhook_env", k.Value)
		default:
			y.Problem(k, ctx, "unknown key %q (want %s)", k.Value, slackKeys)
		}
	})
	switch {
	case d.Channel != "" && d.WebhookEnv != "":
		y.Problem(slackNode, ctx, "set channel or webhook_env, not both")
	case d.Channel == "" && d.WebhookEnv == "" && !secretKey: // a secret key has said enough
		y.Problem(slackNode, ctx, "missing channel (bot token) or webhook_env (incoming webhook)")
	}
	switch {
	case d.WebhookEnv != "" && d.Thread == threadStorm:
		y.ProblemAt(d.ThreadPos, ctx, "thread: storm needs a channel and the bot token: an incoming webhook cannot thread or edit its messages (leave thread out, or post to a channel)")
	case d.Thread == "" && d.Channel != "":
		d.Thread = threadStorm
	case d.Thread == "":
		d.Thread = threadNone
	}
	if len(d.Buttons) > 0 && len(d.AllowUsers) == 0 && len(d.AllowGroups) == 0 {
		y.ProblemAt(d.ButtonsPos, ctx, "buttons need allow_users or allow_groups: nobody would be allowed to press them")
	}
	return d
}

// nodePos is where n is in the file.
func nodePos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// idList reads a list of distinct strings, each of which must pass ok
// (want says what they are).
func idList(y *YAML, n *yaml.Node, ctx, key, want string, ok func(string) bool) []string {
	if n.Kind != yaml.SequenceNode {
		y.Problem(n, ctx, "%s is a list of %s, not %s", key, want, NodeText(n))
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, it := range n.Content {
		s := y.Str(it, ctx, key+" entry")
		switch {
		case s == "":
		case !ok(s):
			y.Problem(it, ctx, "%s is a list of %s, not %q", key, want, s)
		case seen[s]:
			y.Problem(it, ctx, "%s names %q twice", key, s)
		default:
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// positive reads a positive whole number.
func positive(y *YAML, n *yaml.Node, ctx, key, want string) int {
	i, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || i < 1 {
		y.Problem(n, ctx, "%s is %s, not %s", key, want, NodeText(n))
		return 1
	}
	return i
}

// duration reads a Go duration (1.1s, 5m); zero is allowed when zeroOK.
func duration(y *YAML, n *yaml.Node, ctx, key string, zeroOK bool) time.Duration {
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || d < 0 || (d == 0 && !zeroOK) {
		want := "a positive duration, like 5m or 90s"
		if zeroOK {
			want = "a duration, like 1.1s or 500ms (0s: no wait)"
		}
		y.Problem(n, ctx, "%s is %s, not %s", key, want, NodeText(n))
		return 0
	}
	return d
}
