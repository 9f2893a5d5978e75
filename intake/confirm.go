package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// confirm confirms a verified subscription by a GET of its SubscribeURL.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request, m *ses.SNSMessage) {
	if err := checkSNSURL(m.SubscribeURL, m.TopicArn); err != nil {
		s.refuse(r, w, http.StatusForbidden, "SubscribeURL refused", err, msgAttrs(m)...)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.confirmTimeout)
	defer cancel()
	err := s.get(ctx, m.SubscribeURL)
	if err != nil {
		s.refuse(r, w, http.StatusBadGateway, "subscription not confirmed", err, msgAttrs(m)...)
		return
	}
	s.logger.LogAttrs(r.Context(), slog.LevelInfo, "subscription confirmed", msgAttrs(m)...)
	io.WriteString(w, "ok\n")
}

// get fetches u and wants a 2xx answer.
func (s *Server) get(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL, token included; keep
		// the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET SubscribeURL: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET SubscribeURL: %s", resp.Status)
	}
	return nil
}
