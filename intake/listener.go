package intake

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPServer returns the http.Server of an endpoint serving h: bounded
// times to read a request's header and body, to idle, and a bounded
// header size; writeTimeout must cover the longest handling of a
// notification, its actions with their retries. The server's own
// errors are logged at warn.
func HTTPServer(h http.Handler, logger *slog.Logger, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// DefaultMaxConnections bounds the connections a server keeps open: with
// bodies read (at most MaxBody each) before a request takes a processing
// slot, it bounds the memory that slow or hostile clients can hold.
const DefaultMaxConnections = 1024

// LimitListener returns a listener that accepts at most n connections at
// once: Accept waits while n are open.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// limitConn frees its slot once, when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and frees its slot.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
