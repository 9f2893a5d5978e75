package slack

import (
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// Secret is a credential (a bot token, a webhook URL). It prints as
// <secret> everywhere: fmt, slog and JSON; only Reveal gives the value.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "<secret>" }

// GoString implements fmt.GoStringer, for %#v.
func (Secret) GoString() string { return "<secret>" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("<secret>") }

// MarshalText implements encoding.TextMarshaler, for JSON and the like.
func (Secret) MarshalText() ([]byte, error) { return []byte("<secret>"), nil }

// Reveal returns the secret itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// redact returns err with every secret's text replaced by name: a
// *url.Error names its URL, and a webhook URL is a credential.
func redact(err error, name string, secrets ...Secret) error {
	if err == nil {
		return nil
	}
	msg, cause := err.Error(), err
	var hide []string
	var ue *url.Error
	if errors.As(err, &ue) {
		hide = append(hide, ue.URL)
		cause = ue.Err // below the *url.Error, nothing names the URL
	}
	for _, s := range secrets {
		hide = append(hide, s.Reveal())
	}
	for _, h := range hide {
		for _, form := range textForms(h) {
			msg = strings.ReplaceAll(msg, form, name)
		}
	}
	for _, s := range secrets {
		for _, form := range textForms(s.Reveal()) {
			if cause != nil && strings.Contains(cause.Error(), form) {
				cause = nil // a cause that names a secret is not kept at all
			}
		}
	}
	return &redactedError{msg: msg, err: cause}
}

// textForms are the ways s can appear in an error's text: as it is, and
// escaped as %q writes it (a *url.Error quotes its URL, so a URL holding a
// newline or a quote appears escaped). None for an empty s.
func textForms(s string) []string {
	if s == "" {
		return nil
	}
	q := strconv.Quote(s)
	if q = q[1 : len(q)-1]; q != s {
		return []string{q, s}
	}
	return []string{s}
}

// redactedError keeps the cause for errors.Is and errors.As (a context
// deadline, Slack's rate limit) without the text that named a secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
