package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Parts are what carries out actions for real, built once per process:
// they outlive a reload of the rules, so that the pace, the storm state
// and de-duplication carry on.
type Parts struct {
	// Slack is how notifiers are built; its Pacers pace every post.
	Slack slack.SlackConfig
	// CheckSES checks, without making the SES client, that it can be
	// made (a region, credentials): at start, when a rule unsuppresses or
	// suppresses or a sweep reads the list, so that a run fails with one
	// clear line rather than once per action. nil: nothing to check.
	CheckSES func(context.Context) error
	// NewSES makes the SES client, at the first SES call (an unsuppress,
	// a suppress, a sweep's read of the list), once: a run whose rules
	// never call SES never makes it.
	NewSES func(context.Context) (SESAPI, error)
	Seen   *dedup.Seen
	Storm  *storm.Storm
	// State is the fleet state (SESROUTER_STATE_TABLE); nil: per process.
	State  state.Store
	Logger *slog.Logger
	// Timeout bounds the actions of one item.
	Timeout time.Duration
	// Gate decides which items of a Lambda invocation may be acted on;
	// its verifier caches certificates for the process. Nil: all.
	Gate *Gate

	// sesMu guards ses, the client once made.
	sesMu sync.Mutex
	ses   SESAPI
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
	suppression.SESClient
	suppression.SESLister
}

// SES checks that the SES client can be made (CheckSES) and returns it:
// it is made at its first call.
func (p *Parts) SES(ctx context.Context) (SESAPI, error) {
	if p.CheckSES != nil {
		if err := p.CheckSES(ctx); err != nil {
			return nil, err
		}
	}
	return lazySES{p}, nil
}

// sesClient returns the SES client, making it at the first call. Calls
// at once wait for the one making it; a failure is tried again at the
// next call.
func (p *Parts) sesClient(ctx context.Context) (SESAPI, error) {
	p.sesMu.Lock()
	defer p.sesMu.Unlock()
	if p.ses == nil {
		c, err := p.NewSES(ctx)
		if err != nil {
			return nil, err
		}
		p.ses = c
	}
	return p.ses, nil
}

// lazySES is the SES client of Parts, made at its first call.
type lazySES struct{ p *Parts }

// GetSuppressedDestination implements actions.SESClient.
func (l lazySES) GetSuppressedDestination(ctx context.Context, in *sesv2.GetSuppressedDestinationInput, optFns ...func(*sesv2.Options)) (*sesv2.GetSuppressedDestinationOutput, error) {
	c, err := l.p.sesClient(ctx)
	if err != nil {
		return nil, err
	}
	return c.GetSuppressedDestination(ctx, in, optFns...)
}

// DeleteSuppressedDestination implements actions.SESClient.
func (l lazySES) DeleteSuppressedDestination(ctx context.Context, in *sesv2.DeleteSuppressedDestinationInput, optFns ...func(*sesv2.Options)) (*sesv2.DeleteSuppressedDestinationOutput, error) {
	c, err := l.p.sesClient(ctx)
	if err != nil {
		return nil, err
	}
	return c.DeleteSuppressedDestination(ctx, in, optFns...)
}

// PutSuppressedDestination implements actions.SESClient.
func (l lazySES) PutSuppressedDestination(ctx context.Context, in *sesv2.PutSuppressedDestinationInput, optFns ...func(*sesv2.Options)) (*sesv2.PutSuppressedDestinationOutput, error) {
	c, err := l.p.sesClient(ctx)
	if err != nil {
		return nil, err
	}
	return c.PutSuppressedDestination(ctx, in, optFns...)
}

// ListSuppressedDestinations implements actions.SESLister.
func (l lazySES) ListSuppressedDestinations(ctx context.Context, in *sesv2.ListSuppressedDestinationsInput, optFns ...func(*sesv2.Options)) (*sesv2.ListSuppressedDestinationsOutput, error) {
	c, err := l.p.sesClient(ctx)
	if err != nil {
		return nil, err
	}
	return c.ListSuppressedDestinations(ctx, in, optFns...)
}

// Handler builds the Handler of cfg: a notifier per destination and, when
// a rule changes the suppression list, the SES client, checked (CheckSES)
// but made at its first call. The secret of Slack's Vault, if any, is read
// first, once for the process. Every problem is returned, joined; none
// names a secret.
func (p *Parts) Handler(ctx context.Context, cfg *Config) (*Handler, error) {
	if err := p.Slack.Vault.Load(ctx); err != nil {
		return nil, err
	}
	notifiers, err := slack.Notifiers(cfg.Destinations, cfg.Used, p.Slack)
	errs := []error{err}
	var ses actions.Suppressor
	if cfg.UsesSES() {
		c, err := p.SES(ctx)
		errs = append(errs, err)
		if c != nil {
			ses = &suppression.SuppressionList{Client: c}
		}
	}
	h := &Handler{Router: cfg.Router, Seen: p.Seen, Storm: p.Storm, State: p.State, Logger: p.Logger, Timeout: p.Timeout, Gate: p.Gate,
		Dispatcher: &actions.Dispatcher{Destinations: slack.ByName(cfg.Destinations), Notifiers: notifiers,
			SES: ses, Log: actions.SlogLogbook{Logger: p.Logger}}}
	return h, errors.Join(errs...)
}
