package intake

import (
	"net"
	"testing"
	"testing/synctest"
)

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct{ conns chan net.Conn }

func (l *pipeListener) Accept() (net.Conn, error) { return <-l.conns, nil }
func (l *pipeListener) Close() error              { return nil }
func (l *pipeListener) Addr() net.Addr            { return &net.TCPAddr{} }

// TestLimitListener checks that at most n connections are open at once,
// and that closing one lets the next in.
func TestLimitListener(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := &pipeListener{conns: make(chan net.Conn, 3)}
		for range 3 {
			server, _ := net.Pipe()
			pl.conns <- server
		}
		ln := LimitListener(pl, 2)
		first, _ := ln.Accept()
		if _, err := ln.Accept(); err != nil {
			t.Fatal(err)
		}
		third := make(chan net.Conn)
		go func() { c, _ := ln.Accept(); third <- c }()
		synctest.Wait()
		select {
		case <-third:
			t.Fatal("a third connection was accepted with two open and a limit of two")
		default:
		}
		first.Close()
		first.Close() // a second Close frees nothing more
		if c := <-third; c == nil {
			t.Fatal("no third connection after the first closed")
		}
	})
}
