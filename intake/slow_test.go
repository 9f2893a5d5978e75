package intake_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// pipeListener is an in-memory net.Listener: each dial hands the server
// one end of a net.Pipe. Pipes honour deadlines with timers, which are
// fake inside a testing/synctest bubble.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the server.
func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// postOn sends a POST of body on c and reads the answer.
func postOn(t *testing.T, c net.Conn, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://sesrouter/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set(intake.TopicHeader, topicOf(body))
	go req.Write(c) // a pipe write waits for the server to read
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// serveInMemory runs an http.Server of h, with the timeouts the command
// sets, on a pipeListener until the test ends.
func serveInMemory(t *testing.T, h http.Handler) *pipeListener {
	t.Helper()
	ln := newPipeListener()
	hs := &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return ln
}

func TestServerStalledBodiesTakeNoSlot(t *testing.T) {
	// Clients that send a POST's headers and never its body must not keep
	// SNS's deliveries out. The whole test runs on a fake clock: time
	// moves only when every goroutine of the bubble waits.
	synctest.Test(t, func(t *testing.T) {
		sg := intaketest.NewSigner(t)
		ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{MaxAge: time.Hour})
		ln := serveInMemory(t, ts.srv)
		const stalled = 300 // more than DefaultMaxConcurrent
		var conns []net.Conn
		for range stalled {
			c := ln.dial()
			conns = append(conns, c)
			go io.WriteString(c, "POST / HTTP/1.1\r\nHost: sesrouter\r\nContent-Type: text/plain\r\nX-Amz-Sns-Topic-Arn: "+testTopic+"\r\nContent-Length: 2000\r\n\r\n{")
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		synctest.Wait() // every stalled request is in ServeHTTP, reading its body

		start := time.Now()
		resp := postOn(t, ln.dial(), intaketest.Body(sg.Notification(t, testTopic, "genuine", "{}")))
		if took := time.Since(start); resp.StatusCode != http.StatusOK || took >= time.Second {
			t.Fatalf("genuine delivery: status %d after %v, want 200 within 1s\n%s", resp.StatusCode, took, ts.logs)
		}
		if got := ts.handledIDs(); len(got) != 1 || got[0] != "genuine" {
			t.Errorf("handled %v, want the genuine notification", got)
		}

		// The stalled requests are answered 408 once their body's time is
		// up.
		for i, c := range conns {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("stalled request %d: %v", i, err)
			}
			if took := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || took != intake.DefaultBodyTimeout {
				t.Fatalf("stalled request %d: status %d after %v, want 408 after %v", i, resp.StatusCode, took, intake.DefaultBodyTimeout)
			}
		}
	})
}

func TestServerHandleOutlivesBodyTimeout(t *testing.T) {
	// The body's deadline ends with the body: a notification whose actions
	// take longer keeps its context, and is answered.
	synctest.Test(t, func(t *testing.T) {
		sg := intaketest.NewSigner(t)
		canceled := make(chan bool, 1)
		srv := intake.NewServer(intake.ServerOptions{
			Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}),
			Topics:   []string{testTopic},
			Handle: func(ctx context.Context, _ *ses.SNSMessage) error {
				select {
				case <-ctx.Done():
					canceled <- true
				case <-time.After(3 * intake.DefaultBodyTimeout):
					canceled <- false
				}
				return nil
			},
		})
		ln := serveInMemory(t, srv)
		c := ln.dial()
		defer c.Close()
		start := time.Now()
		resp := postOn(t, c, intaketest.Body(sg.Notification(t, testTopic, "slow", "{}")))
		if resp.StatusCode != http.StatusOK || <-canceled {
			t.Fatalf("status %d after %v, context canceled: want 200 after the actions", resp.StatusCode, time.Since(start))
		}
	})
}

func TestServerHandlePanics(t *testing.T) {
	// A panic in Handle is the handler's bug, not the sender's: it is
	// logged with the message and a stack, answered 500 (SNS delivers
	// again), and the server goes on.
	synctest.Test(t, func(t *testing.T) {
		sg := intaketest.NewSigner(t)
		var logs bytes.Buffer
		srv := intake.NewServer(intake.ServerOptions{
			Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}),
			Topics:   []string{testTopic},
			Logger:   slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, nil)),
			Handle: func(_ context.Context, m *ses.SNSMessage) error {
				if m.MessageID == "boom" {
					panic("a bug of the handler")
				}
				return nil
			},
		})
		ln := serveInMemory(t, srv)
		for _, tc := range []struct {
			id   string
			want int
		}{{"boom", http.StatusInternalServerError}, {"after", http.StatusOK}, {"boom", http.StatusInternalServerError}} {
			c := ln.dial()
			resp := postOn(t, c, intaketest.Body(sg.Notification(t, testTopic, tc.id, "{}")))
			c.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: status %d, want %d\n%s", tc.id, resp.StatusCode, tc.want, &logs)
			}
		}
		var line struct {
			Level, Msg, SNSMessageID, Panic, Stack string
			Status                                 int
		}
		first, _, _ := strings.Cut(logs.String(), "\n")
		if err := json.Unmarshal([]byte(first), &line); err != nil {
			t.Fatalf("%v: %s", err, &logs)
		}
		if line.Level != "ERROR" || line.Msg != "notification failed" || line.Status != 500 || line.SNSMessageID != "boom" ||
			line.Panic != "a bug of the handler" || !strings.Contains(line.Stack, "intake_test.TestServerHandlePanics") {
			t.Errorf("log line %s\nwant an error naming the message, the panic and its stack", first)
		}
	})
}
