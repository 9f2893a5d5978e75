package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/slack-go/slack"
)

// Interactions answers Slack's interactivity requests: a press of the
// unsuppress button. A press is acted on only when its signature
// verifies with the signing secret (v0, timestamp within 5 minutes) and
// the user is in the destination's allow_users or a member of one of its
// allow_groups; then the address is taken off the suppression list once,
// the message is edited through its response_url to say who did it and
// when, and one audit line is logged. Anything else changes nothing: 401
// for a bad signature or an old timestamp, an ephemeral "not allowed"
// for a user who is not allowed.
//
// It acts, then answers: taking one address off the list and editing one
// message take well under Slack's 3 seconds, the whole press is bounded
// by PressTimeout, and answering first would leave a press whose action
// failed looking done.
type Interactions struct {
	// Secret is SLACK_SIGNING_SECRET.
	Secret Secret
	// Destinations returns the destination named (nil: none), from the
	// rules in force.
	Destinations func(name string) *rules.Destination
	// SES takes the address off the list.
	SES actions.Suppressor
	// Client looks up user groups (usergroups.users.list), with the bot
	// token; nil: only allow_users can allow.
	Client *slack.Client
	// HTTP posts to response_urls.
	HTTP *http.Client
	// Logger takes the audit line; Pressed counts a press acted on.
	Logger  *slog.Logger
	Pressed func()
	// Once, when set, makes a press acted on once across the fleet: the
	// button's value is claimed in it (pipeline/state's Store is one).
	// nil: once per process.
	Once Claimer

	mu     sync.Mutex
	done   map[string]string          // address+message id -> who took it off, and when
	groups map[string]groupMembership // user group -> its members, briefly
}

// Claimer claims keys once across every process that shares it.
type Claimer interface {
	// Claim claims key until ttl passes; held reports whether the claim
	// is this call's, with token to Complete or Release it.
	Claim(ctx context.Context, key string, ttl time.Duration) (token string, held bool, err error)
	// Complete keeps the claim of key, done, for keep.
	Complete(ctx context.Context, key, token string, keep time.Duration) error
	// Release gives the claim of key up, so that the next claim is held.
	Release(ctx context.Context, key, token string) error
}

// pressKeep is how long a press done is remembered across the fleet: a
// message in Slack stays, and its button with it.
const pressKeep = 400 * 24 * time.Hour

// PressTimeout bounds the handling of one press, within Slack's 3 s.
const PressTimeout = 2500 * time.Millisecond

// groupCache is how long a user group's members are remembered.
const groupCache = time.Minute

type groupMembership struct {
	members []string
	at      time.Time
}

// MaxInteraction bounds the body of an interaction request.
const MaxInteraction = 64 << 10

// ServeHTTP implements http.Handler.
func (h *Interactions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxInteraction+1))
	if err != nil || len(body) > MaxInteraction {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	status, answer := h.Handle(r.Context(), r.Header, body)
	if answer != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// Handle handles one interaction request, its headers and raw body, and
// returns the HTTP status and body to answer with: for serve's handler
// and the Lambda function URL alike.
func (h *Interactions) Handle(ctx context.Context, header http.Header, body []byte) (int, []byte) {
	if h.Secret == "" {
		// An empty key would let anyone sign.
		return http.StatusUnauthorized, nil
	}
	sv, err := slack.NewSecretsVerifier(header, h.Secret.Reveal())
	if err != nil {
		return http.StatusUnauthorized, nil
	}
	if _, err := sv.Write(body); err != nil || sv.Ensure() != nil {
		return http.StatusUnauthorized, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return http.StatusBadRequest, nil
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		return http.StatusBadRequest, nil
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		return http.StatusOK, nil
	}
	ctx, cancel := context.WithTimeout(ctx, PressTimeout)
	defer cancel()
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID == actions.UnsuppressActionID {
			return http.StatusOK, h.press(ctx, &cb, a.Value)
		}
	}
	return http.StatusOK, nil
}

// ephemeral is an answer only the presser sees.
func ephemeral(text string) []byte {
	b, _ := json.Marshal(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": text})
	return b
}

// press acts on one press of the unsuppress button whose value is v.
func (h *Interactions) press(ctx context.Context, cb *slack.InteractionCallback, v string) []byte {
	var value actions.ButtonValue
	user := cb.User.ID
	if err := json.Unmarshal([]byte(v), &value); err != nil || value.Address == "" {
		return ephemeral("This button is not one sesrouter made.")
	}
	var dest *rules.Destination
	if h.Destinations != nil {
		dest = h.Destinations(value.Destination)
	}
	if dest == nil || !dest.HasButton(rules.ButtonUnsuppress) || !h.allowed(ctx, dest, user) {
		h.Logger.LogAttrs(ctx, slog.LevelWarn, "button refused", slog.String("user", user),
			slog.String("destination", value.Destination), slog.String("address", value.Address))
		return ephemeral("You are not allowed to take addresses off the suppression list from here.")
	}
	now := time.Now().UTC()
	by := "taken off the suppression list by <@" + user + "> at " + now.Format("2006-01-02 15:04:05 UTC")
	done, undo, answer := h.claim(ctx, v, value, by)
	if answer != nil {
		return answer
	}
	o := h.SES.Unsuppress(ctx, &ses.Recipient{Address: value.Address})
	if o.Outcome == actions.OutcomeFailed {
		undo() // nothing changed: a later press may try again
		h.Logger.LogAttrs(ctx, slog.LevelError, "button failed", slog.String("user", user),
			slog.String("address", value.Address), slog.Any("error", o.Err))
		return ephemeral("Taking the address off the suppression list failed; nothing changed.")
	}
	done()
	h.Logger.LogAttrs(ctx, slog.LevelInfo, "button pressed", slog.String("action", "unsuppress"), slog.String("user", user),
		slog.String("destination", dest.Name), slog.String("address", value.Address), slog.String("messageId", value.MessageID),
		slog.String("outcome", string(o.Outcome)))
	if h.Pressed != nil {
		h.Pressed()
	}
	h.edit(ctx, cb, value.Address, by)
	return nil
}

// claim claims the press of the button whose value is v: across the
// fleet with Once, else in this process. It returns what to call once
// the address is off the list, and once that failed; or, when the press
// must change nothing, the answer to give.
func (h *Interactions) claim(ctx context.Context, v string, value actions.ButtonValue, by string) (done, undo func(), answer []byte) {
	if h.Once != nil {
		key := pressKey(v)
		token, held, err := h.Once.Claim(ctx, key, 2*PressTimeout)
		switch {
		case err != nil:
			h.Logger.LogAttrs(ctx, slog.LevelError, "button: the fleet state cannot be read", slog.String("address", value.Address), slog.Any("error", err))
			return nil, nil, ephemeral("The press could not be checked against the other presses; nothing changed. Try again.")
		case !held:
			return nil, nil, ephemeral("Already done.")
		}
		done = func() {
			if err := h.Once.Complete(context.WithoutCancel(ctx), key, token, pressKeep); err != nil {
				h.Logger.LogAttrs(ctx, slog.LevelWarn, "button: recording the press", slog.String("address", value.Address), slog.Any("error", err))
			}
		}
		undo = func() { _ = h.Once.Release(context.WithoutCancel(ctx), key, token) }
		return done, undo, nil
	}
	key := value.Address + "\x00" + value.MessageID
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		h.done = map[string]string{}
	}
	if by, ok := h.done[key]; ok {
		return nil, nil, ephemeral("Already done: " + by + ".")
	}
	h.done[key] = by
	undo = func() {
		h.mu.Lock()
		delete(h.done, key)
		h.mu.Unlock()
	}
	return func() {}, undo, nil
}

// pressKey is the fleet-wide claim key of a button's value v: v itself
// when short, else its digest.
func pressKey(v string) string {
	if len(v) <= 512 {
		return "button:" + v
	}
	sum := sha256.Sum256([]byte(v))
	return "button:sha256:" + hex.EncodeToString(sum[:])
}

// edit replaces the pressed message, through its response_url, with the
// message as it was and a line saying who did it and when.
func (h *Interactions) edit(ctx context.Context, cb *slack.InteractionCallback, address, by string) {
	if cb.ResponseURL == "" || h.HTTP == nil {
		return
	}
	blocks := slices.Clone(cb.Message.Blocks.BlockSet)
	line := "`" + actions.CodeText(address) + "` " + by
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, line, false, true)))
	msg := map[string]any{"replace_original": true, "text": cb.Message.Text, "blocks": blocks}
	body, err := json.Marshal(msg)
	if err != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.ResponseURL, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if resp, err := h.HTTP.Do(req); err == nil {
		resp.Body.Close()
	}
}

// allowed reports whether user may press dest's buttons.
func (h *Interactions) allowed(ctx context.Context, dest *rules.Destination, user string) bool {
	if user == "" {
		return false
	}
	if dest.Allows(user) {
		return true
	}
	for _, g := range dest.AllowGroups {
		if slices.Contains(h.members(ctx, g), user) {
			return true
		}
	}
	return false
}

// members are the members of user group g, remembered for groupCache.
func (h *Interactions) members(ctx context.Context, g string) []string {
	h.mu.Lock()
	m, ok := h.groups[g]
	h.mu.Unlock()
	if ok && time.Since(m.at) < groupCache {
		return m.members
	}
	if h.Client == nil {
		return nil
	}
	users, err := h.Client.GetUserGroupMembersContext(ctx, g)
	if err != nil {
		h.Logger.LogAttrs(ctx, slog.LevelWarn, "looking up a user group", slog.String("group", g), slog.Any("error", err))
		return nil
	}
	h.mu.Lock()
	if h.groups == nil {
		h.groups = map[string]groupMembership{}
	}
	h.groups[g] = groupMembership{members: users, at: time.Now()}
	h.mu.Unlock()
	return users
}

// NewUserGroupClient is the client Interactions looks user groups up
// with: the bot token, apiURL as for NewSlackBot.
func NewUserGroupClient(token Secret, apiURL string, httpClient *http.Client) *slack.Client {
	opts := []slack.Option{slack.OptionHTTPClient(httpClient)}
	if apiURL != "" {
		if apiURL[len(apiURL)-1] != '/' {
			apiURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return slack.New(token.Reveal(), opts...)
}
