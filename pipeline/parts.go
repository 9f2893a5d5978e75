package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/sesrouter/sesrouter/actions"
)

// Parts are what carries out actions for real, built once per process:
// they outlive a reload of the rules, so that the pace, the storm state
// and de-duplication carry on.
type Parts struct {
	// Slack is how notifiers are built; its Pacers pace every post.
	Slack actions.SlackConfig
	// NewSES builds the SES client the first time it is needed: a rules
	// file that unsuppresses or suppresses, or a sweep.
	NewSES func(context.Context) (SESAPI, error)
	Seen   *actions.Seen
	Storm  *actions.Storm
	Logger *slog.Logger
	// Timeout bounds the actions of one item.
	Timeout time.Duration
	// Gate decides which items of a Lambda invocation may be acted on;
	// its verifier caches certificates for the process. Nil: all.
	Gate *Gate

	ses SESAPI
}

// NewLogger returns the logger of sesrouter: JSON lines to w, at level,
// durations written as Go writes them ("150s"), not as nanoseconds.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}))
}

// SESAPI is the part of the SES v2 API sesrouter calls: the suppression
// list's entries, and its list. *sesv2.Client satisfies it.
type SESAPI interface {
	actions.SESClient
	actions.SESLister
}

// SES returns the SES client, built on first use.
func (p *Parts) SES(ctx context.Context) (SESAPI, error) {
	if p.ses == nil {
		c, err := p.NewSES(ctx)
		if err != nil {
			return nil, err
		}
		p.ses = c
	}
	return p.ses, nil
}

// Handler builds the Handler of cfg: a notifier per destination and, when
// a rule changes the suppression list, the SES client. Every problem is
// returned, joined; none names a secret.
func (p *Parts) Handler(ctx context.Context, cfg *Config) (*Handler, error) {
	notifiers, err := actions.Notifiers(cfg.Destinations, cfg.Used, p.Slack)
	errs := []error{err}
	var ses actions.Suppressor
	if cfg.UsesSES() {
		c, err := p.SES(ctx)
		errs = append(errs, err)
		if c != nil {
			ses = &actions.SuppressionList{Client: c}
		}
	}
	h := &Handler{Router: cfg.Router, Seen: p.Seen, Storm: p.Storm, Logger: p.Logger, Timeout: p.Timeout, Gate: p.Gate,
		Dispatcher: &actions.Dispatcher{Destinations: actions.ByName(cfg.Destinations), Notifiers: notifiers,
			SES: ses, Log: actions.SlogLogbook{Logger: p.Logger}}}
	return h, errors.Join(errs...)
}
