package actionstest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// maxBody bounds what a fake reads of a request body.
const maxBody = 8 << 20

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
