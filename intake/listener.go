package intake

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Connection settings of [HTTPServer] and [LimitListener].
const (
	// DefaultMaxConnections bounds the connections a server keeps open:
	// with bodies read (at most MaxBody each) before a request takes a
	// processing slot, it bounds the memory that slow or hostile clients
	// can hold.
	DefaultMaxConnections = 1024
	// idleTimeout is how long a keep-alive connection may wait for its
	// next request. It is short: an idle connection holds one of the
	// DefaultMaxConnections for nothing, and reconnecting costs a client
	// little.
	idleTimeout = 10 * time.Second
	// readHeaderTimeout bounds the reading of a request's header.
	readHeaderTimeout = 10 * time.Second
)

// HTTPServer returns the http.Server of an endpoint serving h: bounded
// times to read a request's header and body, a short idleTimeout, a
// bounded header size; writeTimeout must cover the longest handling of a
// notification, its actions with their retries. Its ConnState hook tells
// a [LimitListener] which connections are idle, so that it closes them
// first when at its limit. The server's own errors are logged at warn.
func HTTPServer(h http.Handler, logger *slog.Logger, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         trackConnState,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Shutdown stops hs: it stops accepting connections and lets the
// requests in flight finish until ctx is done (the grace period), then
// closes every connection still open, so that it returns once ctx is
// done at the latest. The error is ctx's when the grace period ran out.
func Shutdown(ctx context.Context, hs *http.Server) error {
	err := hs.Shutdown(ctx)
	if err != nil {
		if cerr := hs.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
		return fmt.Errorf("the requests in flight were cut off: %w", err)
	}
	return nil
}

// LimitListener returns a listener that keeps at most n connections open
// at once. A connection that comes at the limit makes room by closing the
// connection idle the longest, if any (which connections are idle is
// known when the listener serves an http.Server of [HTTPServer]: plain
// HTTP, whose ConnState hook gets the listener's connections); else
// Accept waits until one closes or goes idle. Close makes a waiting
// Accept return net.ErrClosed.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, max: n, idle: list.New(), wake: make(chan struct{}, 1), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open int
	idle *list.List // of *limitConn, idle the longest first

	wake      chan struct{} // a connection closed or went idle
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// Accept waits for a connection, then for a free slot for it: at the
// limit, the connection idle the longest is closed to make one, else
// Accept waits until a connection closes or goes idle.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for !l.reserve() {
		select {
		case <-l.wake:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	return &limitConn{Conn: c, l: l}, nil
}

// reserve takes a slot when one is free, reporting true; at the limit
// it closes the connection idle the longest, which frees one.
func (l *limitListener) reserve() bool {
	for {
		l.mu.Lock()
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			return true
		}
		e := l.idle.Front()
		if e == nil {
			l.mu.Unlock()
			return false
		}
		victim := e.Value.(*limitConn)
		l.mu.Unlock()
		// Close takes it off the idle list and frees its slot; the
		// server's goroutine of the connection sees it closed and ends.
		victim.Close()
	}
}

// release frees a slot.
func (l *limitListener) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	l.signal()
}

// signal wakes a waiting Accept.
func (l *limitListener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Close closes the listener and wakes a waiting Accept.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// setIdle records whether c waits for its next request.
func (l *limitListener) setIdle(c *limitConn, idle bool) {
	l.mu.Lock()
	switch {
	case idle && c.elem == nil && !c.closed:
		c.elem = l.idle.PushBack(c)
	case !idle && c.elem != nil:
		l.idle.Remove(c.elem)
		c.elem = nil
	default:
		idle = false
	}
	l.mu.Unlock()
	if idle {
		l.signal()
	}
}

// trackConnState is the ConnState hook of HTTPServer: it tells a
// LimitListener which of its connections are idle.
func trackConnState(c net.Conn, s http.ConnState) {
	if lc, ok := c.(*limitConn); ok {
		lc.l.setIdle(lc, s == http.StateIdle)
	}
}

// limitConn frees its slot once, when closed.
type limitConn struct {
	net.Conn
	l *limitListener
	// Guarded by l.mu.
	elem   *list.Element // in l.idle, while idle
	closed bool
}

// Close closes the connection and frees its slot.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	first := !c.closed
	c.closed = true
	if c.elem != nil {
		c.l.idle.Remove(c.elem)
		c.elem = nil
	}
	c.l.mu.Unlock()
	if first {
		c.l.release()
	}
	return err
}
