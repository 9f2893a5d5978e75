package slack

import (
	"errors"
	"strconv"
	"strings"

	"github.com/slack-go/slack"
)

// HintedError is a Slack error with what to do about it.
type HintedError struct {
	Err error
	// Code is Slack's error code (channel_not_found, no_service, 404).
	Code string
	// Hint says what to do.
	Hint string
}

// Error is Slack's error, then the hint.
func (e *HintedError) Error() string { return e.Err.Error() + " (" + e.Hint + ")" }

// Unwrap returns Slack's error.
func (e *HintedError) Unwrap() error { return e.Err }

// hinted adds to a Slack error the hint for its code, when there is one.
// where names where the credential comes from (SLACK_BOT_TOKEN, or the
// webhook's variable). webhook says whether err is a webhook's: only a
// webhook's HTTP status is a code with a hint. The Web API answers its
// errors with 200 and a code, so an HTTP status from it (a 404 when
// SLACK_API_URL leads elsewhere) says nothing about a webhook.
func hinted(err error, where string, webhook bool) error {
	code := slackCode(err, webhook)
	if h := SlackHint(code, where); h != "" {
		return &HintedError{Err: err, Code: code, Hint: h}
	}
	return err
}

// slackCode is Slack's error code in err: a Web API error
// (channel_not_found), or, for a webhook, its one-word reason
// (no_service) or its HTTP status (404).
func slackCode(err error, webhook bool) string {
	var api slack.SlackErrorResponse
	if errors.As(err, &api) {
		return api.Err
	}
	var sc slack.StatusCodeError
	if webhook && errors.As(err, &sc) {
		if _, reason, ok := strings.Cut(sc.Status, ": "); ok {
			return reason
		}
		return strconv.Itoa(sc.Code)
	}
	return ""
}

// SlackHints are the Slack errors a user can meet and what to do about
// each, for the troubleshooting page; where names the credential.
func SlackHints(where string) map[string]string {
	out := map[string]string{}
	for _, code := range []string{"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
		"token_revoked", "token_expired", "account_inactive", "missing_scope", "no_service", "invalid_token",
		"no_team", "team_disabled", "action_prohibited", "posting_to_general_channel_denied", "restricted_action",
		"404", "403", "410", "invalid_blocks", "msg_too_long", "msg_blocks_too_long"} {
		out[code] = SlackHint(code, where)
	}
	return out
}

// SlackHint says what to do about a Slack error code, or "" when there is
// nothing to add. where names the credential: SLACK_BOT_TOKEN, or the
// webhook's variable.
func SlackHint(code, where string) string {
	switch code {
	case "channel_not_found", "not_in_channel":
		return "invite the app to the channel (/invite @app) and give the channel's ID (C…) in channel:, not its name"
	case "is_archived":
		return "the channel is archived: unarchive it or name another channel"
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return "the bot token in " + where + " is not valid: reinstall the app and set " + where + " to its bot token (xoxb-…)"
	case "missing_scope":
		return "the app lacks the chat:write scope: add it under OAuth & Permissions and reinstall the app"
	case "no_service", "invalid_token", "no_team", "team_disabled", "404", "410":
		return "the incoming webhook in " + where + " was removed or disabled: create a new one and put its URL in " + where
	case "action_prohibited", "posting_to_general_channel_denied", "restricted_action", "403":
		return "the workspace does not let the app post there: ask a workspace admin, or post to another channel"
	case "invalid_blocks", "msg_too_long", "msg_blocks_too_long":
		return "Slack refused the message's layout: this is a bug in sesrouter, please report it with the event"
	}
	return ""
}

// credentialRefused reports whether err is Slack refusing the credential
// itself as not valid: the codes whose hint says to replace the bot
// token or the webhook. A credential from a vault is read again then.
func credentialRefused(err error) bool {
	var h *HintedError
	if !errors.As(err, &h) {
		return false
	}
	switch h.Code {
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
		"no_service", "invalid_token", "no_team", "team_disabled", "404", "410":
		return true
	}
	return false
}
