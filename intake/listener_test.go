package intake

import (
	"errors"
	"net"
	"net/http"
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

// TestLimitListenerClosesIdleFirst checks that a connection that comes at
// the limit closes the connection idle the longest, and that Accept waits
// when none is idle, until one goes idle.
func TestLimitListenerClosesIdleFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := &pipeListener{conns: make(chan net.Conn, 4)}
		var clients []net.Conn
		for range 4 {
			server, client := net.Pipe()
			pl.conns <- server
			clients = append(clients, client)
		}
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
		ln := LimitListener(pl, 2)
		a, _ := ln.Accept()
		b, _ := ln.Accept()
		trackConnState(a, http.StateNew)
		trackConnState(b, http.StateNew)
		trackConnState(b, http.StateIdle)
		trackConnState(a, http.StateActive)
		trackConnState(a, http.StateIdle) // b has been idle longer
		if c, err := ln.Accept(); err != nil || c == nil {
			t.Fatalf("third connection: %v", err)
		}
		if _, err := clients[1].Read(make([]byte, 1)); err == nil {
			t.Error("the connection idle the longest is open")
		}
		trackConnState(a, http.StateActive)
		fourth := make(chan net.Conn)
		go func() { c, _ := ln.Accept(); fourth <- c }()
		synctest.Wait()
		select {
		case <-fourth:
			t.Fatal("a fourth connection was accepted with two busy and a limit of two")
		default:
		}
		trackConnState(a, http.StateIdle)
		if c := <-fourth; c == nil {
			t.Fatal("no fourth connection once one went idle")
		}
		if _, err := clients[0].Read(make([]byte, 1)); err == nil {
			t.Error("the idle connection is open")
		}
	})
}

// TestLimitListenerCloseWakesAccept checks that closing the listener ends
// an Accept that waits for a slot: a server's Shutdown waits for it.
func TestLimitListenerCloseWakesAccept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := &pipeListener{conns: make(chan net.Conn, 2)}
		for range 2 {
			server, client := net.Pipe()
			defer client.Close()
			pl.conns <- server
		}
		ln := LimitListener(pl, 1)
		if _, err := ln.Accept(); err != nil {
			t.Fatal(err)
		}
		second := make(chan error)
		go func() { _, err := ln.Accept(); second <- err }()
		synctest.Wait()
		ln.Close()
		if err := <-second; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	})
}
