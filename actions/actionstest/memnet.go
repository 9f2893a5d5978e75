package actionstest

import (
	"context"
	"net"
	"sync"
)

// memListener is a net.Listener whose connections are in-memory pipes
// (net.Pipe), made by its dial: a fake served on it is reached without a
// socket, so that a testing/synctest bubble can hold the fake, its
// clients and every connection between them (a goroutine waiting on a
// pipe is durably blocked; one waiting on a socket is not).
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener: it waits for the next dial.
func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: dials fail from then on.
func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial is an http.Transport's DialContext: whatever the address, it
// connects to l, and fails once l is closed.
func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	err := net.ErrClosed
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	server.Close()
	client.Close()
	return nil, &net.OpError{Op: "dial", Net: memAddr{}.Network(), Addr: memAddr{}, Err: err}
}

// memAddr is the address of a memListener.
type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "memory" }
