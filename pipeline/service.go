package pipeline

import (
	"context"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Service is serve's application: the rules in force, which Reload and
// Refresh renew, and the batch windows, which outlive them.
type Service struct {
	live    *Live
	windows *Windows
}

// NewService returns a Service routing by the rules of live, whose
// windows last window.
func NewService(live *Live, window time.Duration) *Service {
	s := &Service{live: live}
	s.windows = &Windows{Length: window,
		NewBatch: func() *storm.Batch { return s.live.Current().Handler.NewBatch(true) },
		Flush: func(b *storm.Batch) {
			ctx, cancel := context.WithTimeout(context.Background(), live.parts.Timeout)
			defer cancel()
			// On the window's timer: a panic is recovered and logged there.
			_, _ = s.live.Current().Handler.FlushDigests(ctx, b, NewTally(), nil)
		}}
	return s
}

// Reload reads the rules again (Live.Reload); when they do not load, or
// their actions cannot be built, the old rules stay and the log says why.
func (s *Service) Reload(ctx context.Context) { s.live.Reload(ctx) }

// Handle routes the verified message m by the rules in force (looking for
// new ones first when a look is due: Live.Refresh) and carries out its
// actions in the current window, then logs one line. The message is
// handled by those rules to its end, whatever comes into force
// meanwhile. The actions run to their end (or the parts' Timeout) even
// when ctx ends meanwhile (SNS hung up), so that a notification is never
// left half done. A copy of a notification that another request is
// handling waits for that one's outcome, within ctx: a duplicate once it
// succeeded, acted on once it failed, failed when ctx ends first.
func (s *Service) Handle(ctx context.Context, m *ses.SNSMessage) *Job {
	h := s.live.Refresh(ctx).Handler
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
