package actionstest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// maxBody bounds what a fake reads of a request body.
const maxBody = 8 << 20

// fake is what the SES and Slack fakes share: where it is served and a
// client that reaches it, its scripted faults and its counters, under mu
// with the fake's own state.
type fake struct {
	url      string // base URL, no slash
	client   *http.Client
	inMemory bool // served by startInMemory
	done     chan struct{}
	faults   faultPlan

	mu     sync.Mutex
	counts Counts
}

// start starts the fake's server on 127.0.0.1, serving h.
func (f *fake) start(t testing.TB, h http.HandlerFunc) {
	f.done = make(chan struct{})
	srv := startLoopback(t, h, f.done)
	f.url, f.client = srv.URL, srv.Client()
}

// startInMemory starts the fake's server on in-memory connections,
// serving h at host (its URL is http://host), and closes it with
// t.Cleanup, after closing done so that waits in handlers end.
func (f *fake) startInMemory(t testing.TB, h http.HandlerFunc, host string) {
	f.done = make(chan struct{})
	ln := newMemListener()
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // http.ErrServerClosed once closed
	}()
	tr := &http.Transport{DialContext: ln.dial, MaxIdleConnsPerHost: 64}
	f.url, f.client, f.inMemory = "http://"+host, &http.Client{Transport: tr}, true
	t.Cleanup(func() {
		close(f.done)
		_ = srv.Close()
		<-served
		tr.CloseIdleConnections()
	})
}

// Pending is the number of scripted faults not yet served.
func (f *fake) Pending() int { return f.faults.pending() }

// Counts returns the request counters so far.
func (f *fake) Counts() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// startLoopback starts h on 127.0.0.1 (never another address) and closes it
// with t.Cleanup, after closing done so that waits in handlers end.
func startLoopback(t testing.TB, h http.Handler, done chan struct{}) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("actionstest: listen on 127.0.0.1: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return srv
}

// readBody reads the request body (bounded by maxBody).
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody))
}

// drop closes the connection under w without writing a response.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Cannot hijack (HTTP/2): the closest is to abort the handler.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
