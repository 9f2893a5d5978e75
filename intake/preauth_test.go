package intake_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

// What an attacker who can reach the endpoint tries before any
// authentication, and how the endpoint stands it. These tests, and those of
// the connections, failed certificate fetches and panics, run on the fake
// clock of a testing/synctest bubble: a request answered "at once" is one
// answered before the clock moved, that is without waiting for any
// timeout.

const otherTopic = "arn:aws:sns:us-east-1:666666666666:evil"

// worstBody is the body of the reproduction: a JSON object of 256 KiB
// made of ~29,000 short keys, the most members a body within the size
// limit holds, naming no topic.
func worstBody() []byte {
	var b bytes.Buffer
	b.WriteString("{")
	for i := 0; b.Len() < intake.DefaultMaxBody-16; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + strconv.FormatInt(int64(i), 36) + `":0`)
	}
	b.WriteString("}")
	return b.Bytes()
}

// serveHTTPServer runs intake.HTTPServer of h on a pipeListener behind
// intake.LimitListener(max) until the test ends, as serve runs it.
func serveHTTPServer(t *testing.T, h http.Handler, max int) (*pipeListener, *http.Server) {
	t.Helper()
	ln := newPipeListener()
	hs := intake.HTTPServer(h, slog.New(slog.DiscardHandler), time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(intake.LimitListener(ln, max))
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return ln, hs
}

// answer is what a client got back, and when.
type answer struct {
	status int // 0 when the connection closed without an answer
	at     time.Time
}

// sendHeld sends on c a POST of body with topic in x-amz-sns-topic-arn
// (no such header when ""), and of the body only its first KiB: the
// rest never comes, the server's reader of the body blocks. The answer,
// if any, is sent on answers.
func sendHeld(c net.Conn, topic string, body []byte, answers chan<- answer) {
	head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: sesrouter\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\n", len(body))
	if topic != "" {
		head += intake.TopicHeader + ": " + topic + "\r\n"
	}
	go func() {
		io.WriteString(c, head+"\r\n")
		c.Write(body[:1024])
	}()
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answers <- answer{0, time.Now()}
			return
		}
		resp.Body.Close()
		answers <- answer{resp.StatusCode, time.Now()}
	}()
}

func TestServerWorstCaseBodiesInFlight(t *testing.T) {
	// The reproduction: worst-case bodies in flight, then a genuine
	// delivery. 20 of them name the allowed topic (the worst once the
	// cheap checks are passed) and are held in flight, their body never
	// sent in full: they hold no slot, although there are fewer slots
	// than they are. 20 others name another topic or none: they are
	// answered from their headers at once, their bodies never read. The
	// genuine delivery is answered at once, none of the held bodies
	// before it.
	sg := intaketest.NewSigner(t)
	body := worstBody()
	synctest.Test(t, func(t *testing.T) {
		ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{MaxAge: time.Hour, MaxConcurrent: 10})
		ln, _ := serveHTTPServer(t, ts.srv, intake.DefaultMaxConnections)
		start := time.Now()

		held, refused := make(chan answer, 20), make(chan answer, 20)
		for range 20 {
			sendHeld(ln.dial(), testTopic, body, held)
		}
		for i := range 20 {
			topic := otherTopic
			if i%2 == 1 {
				topic = ""
			}
			sendHeld(ln.dial(), topic, body, refused)
		}
		synctest.Wait()
		for i := range 20 {
			select {
			case a := <-refused:
				if a.status != http.StatusForbidden && a.status != http.StatusBadRequest || a.at != start {
					t.Errorf("request %d naming another topic or none: status %d after %v, want 403 or 400 at once", i, a.status, a.at.Sub(start))
				}
			default:
				t.Fatalf("request %d naming another topic or none: no answer while its body is held\n%s", i, ts.logs)
			}
		}

		resp := postOn(t, ln.dial(), intaketest.Body(sg.Notification(t, testTopic, "genuine", "{}")))
		if resp.StatusCode != http.StatusOK || time.Since(start) != 0 {
			t.Fatalf("genuine delivery: status %d after %v, want 200 at once\n%s", resp.StatusCode, time.Since(start), ts.logs)
		}
		if len(held) != 0 {
			t.Errorf("%d held bodies answered before the genuine delivery", len(held))
		}
		if got := ts.handledIDs(); len(got) != 1 || got[0] != "genuine" {
			t.Errorf("handled %v, want the genuine notification", got)
		}
		if n := ts.verifier.n.Load(); n != 1 {
			t.Errorf("%d messages verified, want the genuine one", n)
		}

		// The held bodies are answered 408 once their time is up, none
		// of them parsed.
		time.Sleep(intake.DefaultBodyTimeout)
		synctest.Wait()
		for i := range 20 {
			select {
			case a := <-held:
				if a.status != http.StatusRequestTimeout {
					t.Errorf("held body %d: status %d, want 408", i, a.status)
				}
			default:
				t.Fatalf("held body %d: no answer after BodyTimeout", i)
			}
		}
		if strings.Contains(ts.logs.String(), `"msg":"not an SNS message"`) {
			t.Errorf("a worst-case body was parsed:\n%s", ts.logs)
		}
	})
}

func TestServerParsesInASlot(t *testing.T) {
	// With every slot taken, a worst-case body naming the allowed topic
	// waits for a slot and gets 503: it is not parsed outside one.
	sg := intaketest.NewSigner(t)
	genuine := intaketest.Body(sg.Notification(t, testTopic, "n1", "{}"))
	worst := worstBody()
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		release := make(chan struct{})
		srv := intake.NewServer(intake.ServerOptions{
			Verifier: intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}),
			Topics:   []string{testTopic}, MaxConcurrent: 1, QueueWait: 2 * time.Second,
			Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, nil)),
			Handle: func(context.Context, *ses.SNSMessage) error {
				<-release
				return nil
			},
		})
		done := make(chan int)
		go func() {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, snsRequest(genuine))
			done <- w.Code
		}()
		synctest.Wait() // the genuine delivery holds the only slot, in Handle
		start := time.Now()
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(worst))
		r.Header.Set(intake.TopicHeader, testTopic)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || time.Since(start) != 2*time.Second {
			t.Errorf("worst-case body: status %d after %v, want 503 after QueueWait", w.Code, time.Since(start))
		}
		if !strings.Contains(logs.String(), `"msg":"too many requests in progress"`) || strings.Contains(logs.String(), `"msg":"not an SNS message"`) {
			t.Errorf("log\n%s\nwant a refusal for want of a slot, and no body parsed", &logs)
		}
		close(release)
		if code := <-done; code != http.StatusOK {
			t.Errorf("genuine delivery: %d, want 200", code)
		}
	})
}

func TestServerTopicHeader(t *testing.T) {
	// SNS names the topic in x-amz-sns-topic-arn: the allow-list is
	// checked on it before the body is read, and the body's TopicArn must
	// be the same.
	sg := intaketest.NewSigner(t)
	const second = "arn:aws:sns:us-east-1:123456789012:second"
	genuine := intaketest.Body(sg.Notification(t, testTopic, "n1", "{}"))
	for _, tc := range []struct {
		name    string
		headers []string
		body    []byte
		want    int
		log     string
	}{
		{"the body's topic", []string{testTopic}, genuine, http.StatusOK, ""},
		{"another allowed topic", []string{second}, genuine, http.StatusBadRequest, `"msg":"x-amz-sns-topic-arn contradicts the body"`},
		{"a topic not allowed", []string{otherTopic}, genuine, http.StatusForbidden, `"msg":"topic not allowed"`},
		{"none", nil, genuine, http.StatusBadRequest, `"msg":"no x-amz-sns-topic-arn header"`},
		{"twice", []string{testTopic, testTopic}, genuine, http.StatusBadRequest, `"msg":"x-amz-sns-topic-arn header given twice"`},
		{"in another letter case", []string{strings.ToUpper(testTopic)}, genuine, http.StatusForbidden, `"msg":"topic not allowed"`},
		{"allowed, a body of none", []string{testTopic}, []byte(strings.Replace(string(genuine), `"TopicArn":"`+testTopic+`",`, "", 1)),
			http.StatusBadRequest, "missing TopicArn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, sg.CertDir, []string{testTopic, second}, intake.ServerOptions{})
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(tc.body))
			for _, h := range tc.headers {
				r.Header.Add(intake.TopicHeader, h)
			}
			w := httptest.NewRecorder()
			ts.srv.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d\n%s", w.Code, tc.want, ts.logs)
			}
			if !strings.Contains(ts.logs.String(), tc.log) {
				t.Errorf("log\n%s\nwant %s", ts.logs, tc.log)
			}
			if tc.want == http.StatusOK {
				return
			}
			if n := ts.verifier.n.Load(); n != 0 || len(ts.handledIDs()) != 0 {
				t.Errorf("%d verified, %d handled; want none", n, len(ts.handledIDs()))
			}
		})
	}
}

func TestServerCheapChecksLeaveTheBodyUnread(t *testing.T) {
	// A request refused on its headers is answered without its body
	// being read, and its connection is closed: its body is never read.
	sg := intaketest.NewSigner(t)
	synctest.Test(t, func(t *testing.T) {
		ts := newTestServer(t, sg.CertDir, []string{testTopic}, intake.ServerOptions{MaxBody: 64 << 10})
		ln, _ := serveHTTPServer(t, ts.srv, intake.DefaultMaxConnections)
		for _, tc := range []struct {
			name, head string
			want       int
		}{
			{"GET with a body", "GET / HTTP/1.1\r\nContent-Length: 100000\r\n" + intake.TopicHeader + ": " + testTopic, http.StatusMethodNotAllowed},
			{"too long", "POST / HTTP/1.1\r\nContent-Length: 100000\r\n" + intake.TopicHeader + ": " + testTopic, http.StatusRequestEntityTooLarge},
			{"unknown message type", "POST / HTTP/1.1\r\nContent-Length: 50000\r\n" + intake.TypeHeader + ": Hello\r\n" + intake.TopicHeader + ": " + testTopic, http.StatusBadRequest},
			{"no topic", "POST / HTTP/1.1\r\nContent-Length: 50000", http.StatusBadRequest},
			{"topic not allowed", "POST / HTTP/1.1\r\nContent-Length: 50000\r\n" + intake.TopicHeader + ": " + otherTopic, http.StatusForbidden},
		} {
			c := ln.dial()
			var read atomic.Bool
			go func() {
				io.WriteString(c, tc.head+"\r\nHost: sesrouter\r\n\r\n")
				// The body is sent only if it is read: a pipe's write
				// waits for its reader.
				if _, err := c.Write([]byte("{")); err == nil {
					read.Store(true)
				}
			}()
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || time.Since(start) != 0 || !resp.Close {
				t.Errorf("%s: status %d after %v, closing %v; want %d at once, closing", tc.name, resp.StatusCode, time.Since(start), resp.Close, tc.want)
			}
			synctest.Wait()
			if read.Load() {
				t.Errorf("%s: the body was read", tc.name)
			}
			c.Close()
		}
	})
}
