package intake_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

func TestServerIdleConnectionsMakeRoom(t *testing.T) {
	// The reproduction: 1,024 idle keep-alive connections (one GET
	// /healthz each) fill the connection limit. A genuine delivery gets
	// its connection at once: the connection idle the longest is closed
	// to make room, and only it.
	sg := intaketest.NewSigner(t)
	synctest.Test(t, func(t *testing.T) {
		ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{MaxAge: time.Hour})
		ln, _ := serveHTTPServer(t, ts.srv, intake.DefaultMaxConnections)
		start := time.Now()
		idle := make([]net.Conn, intake.DefaultMaxConnections)
		for i := range idle {
			idle[i] = ln.dial()
			req, _ := http.NewRequest(http.MethodGet, "http://sesrouter/healthz", nil)
			go req.Write(idle[i])
			resp, err := http.ReadResponse(bufio.NewReader(idle[i]), req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /healthz %d: %v %v", i, resp, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// The server marks the connection idle after it has written the
			// response: wait for it, so that the connections go idle in the
			// order they were opened, whatever the scheduler does.
			synctest.Wait()
		}
		var closed sync.Map // of the idle connections the server closed
		for i, c := range idle {
			go func() {
				if _, err := c.Read(make([]byte, 1)); err != nil {
					closed.Store(i, true)
				}
			}()
		}
		synctest.Wait()

		resp := postOn(t, ln.dial(), intaketest.Body(sg.Notification(t, testTopic, "genuine", "{}")))
		if resp.StatusCode != http.StatusOK || time.Since(start) != 0 {
			t.Fatalf("genuine delivery: status %d after %v, want 200 at once\n%s", resp.StatusCode, time.Since(start), ts.logs)
		}
		synctest.Wait()
		var got []int
		closed.Range(func(k, _ any) bool { got = append(got, k.(int)); return true })
		if len(got) != 1 || got[0] != 0 {
			t.Errorf("idle connections closed: %v, want the first alone", got)
		}

		// The others are closed once IdleTimeout has passed.
		time.Sleep(intake.IdleTimeout)
		synctest.Wait()
		n := 0
		closed.Range(func(any, any) bool { n++; return true })
		if n != len(idle) {
			t.Errorf("%d idle connections closed after IdleTimeout, want all %d", n, len(idle))
		}
		for _, c := range idle {
			c.Close()
		}
	})
}

func TestShutdownWithinGracePeriod(t *testing.T) {
	// Requests in flight that do not end by themselves, at the
	// connection limit: Shutdown returns when its grace period is over,
	// having closed their connections, and Serve has returned.
	sg := intaketest.NewSigner(t)
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		srv := intake.NewServer(intake.ServerOptions{
			Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}),
			Topics:   []string{testTopic},
			Handle: func(context.Context, *ses.SNSMessage) error {
				<-release
				return nil
			},
		})
		ln := newPipeListener()
		hs := intake.HTTPServer(srv, slog.New(slog.DiscardHandler), time.Hour)
		served := make(chan error, 1)
		go func() { served <- hs.Serve(intake.LimitListener(ln, 2)) }()
		answers := make(chan error, 2)
		for i := range 2 {
			c := ln.dial()
			defer c.Close()
			req, _ := http.NewRequest(http.MethodPost, "http://sesrouter/", bytes.NewReader(intaketest.Body(sg.Notification(t, testTopic, fmt.Sprint(i), "{}"))))
			req.Header.Set(intake.TopicHeader, testTopic)
			go req.Write(c)
			go func() {
				_, err := http.ReadResponse(bufio.NewReader(c), req)
				answers <- err
			}()
		}
		// A third connection comes: Accept waits for a free slot.
		third, server := net.Pipe()
		defer third.Close()
		go func() {
			select {
			case ln.conns <- server:
			case <-ln.closed:
			}
		}()
		synctest.Wait() // both in Handle; Accept waits for a free slot

		const grace = 30 * time.Second
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		stopped := make(chan error, 1)
		go func() { stopped <- intake.Shutdown(ctx, hs) }()
		select {
		case err := <-stopped:
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != grace {
				t.Errorf("Shutdown: %v after %v, want the deadline after the grace period", err, time.Since(start))
			}
		case <-time.After(2 * grace):
			t.Errorf("Shutdown still running after twice its grace period")
		}
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
		case <-time.After(grace):
			t.Errorf("Serve still running after Shutdown")
		}
		for range 2 {
			if err := <-answers; err == nil {
				t.Error("a request cut off by Shutdown was answered")
			}
		}
		close(release)
	})
}
