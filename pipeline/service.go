package pipeline

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// Service is serve's application: the handler of the rules in force,
// which Reload replaces, and the batch windows, which outlive it.
type Service struct {
	parts   *Parts
	path    string
	cur     atomic.Pointer[Handler]
	windows *Windows
}

// NewService returns a Service routing by cfg, loaded from path, whose
// windows last window.
func NewService(ctx context.Context, parts *Parts, path string, cfg *Config, window time.Duration) (*Service, error) {
	s := &Service{parts: parts, path: path}
	h, err := parts.Handler(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.cur.Store(h)
	s.windows = &Windows{Length: window,
		NewBatch: func() *actions.Batch { return s.cur.Load().NewBatch(true) },
		Flush: func(b *actions.Batch) {
			ctx, cancel := context.WithTimeout(context.Background(), parts.Timeout)
			defer cancel()
			// On the window's timer: a panic is recovered and logged there.
			_, _ = s.cur.Load().FlushDigests(ctx, b, NewTally(), nil)
		}}
	return s, nil
}

// Reload loads the rules file again; when it does not load, or its
// actions cannot be built, the old rules stay and the log says why.
func (s *Service) Reload(ctx context.Context) {
	log := s.parts.Logger.With(slog.String("rules", s.path))
	cfg, err := Load(s.path)
	if err == nil {
		var h *Handler
		if h, err = s.parts.Handler(ctx, cfg); err == nil {
			s.cur.Store(h)
			log.Info("rules reloaded", slog.Int("count", len(cfg.Rules.Rules)))
			return
		}
	}
	log.Error("rules not reloaded; the previous rules stay", slog.String("error", err.Error()))
}

// Handle routes the verified message m and carries out its actions in
// the current window, then logs one line. The actions run to their end
// (or the parts' Timeout) even when ctx ends meanwhile (SNS hung up), so
// that a notification is never left half done. A copy of a notification
// that another request is handling waits for that one's outcome, within
// ctx: a duplicate once it succeeded, acted on once it failed, failed
// when ctx ends first.
func (s *Service) Handle(ctx context.Context, m *ses.SNSMessage) *Job {
	h := s.cur.Load()
	it := ses.DecodeSNS("sns:"+m.MessageID, ses.EnvelopeHTTP, "", m)
	j := h.Prepare(it)
	// A copy of a notification that another request is handling waits
	// for that one's outcome within this request (SNS may hang up
	// meanwhile): it is answered only once that outcome is known, and
	// fails (500, so that SNS delivers it again) if it is not.
	h.settle(ctx, j)
	batch, done := s.windows.Join()
	defer done()
	h.Act(context.WithoutCancel(ctx), j, batch)
	h.Log(ctx, j)
	return j
}

// Close ends the current window and waits until every window's digests
// are posted.
func (s *Service) Close() { s.windows.Close() }
