package main

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
)

// signals is what SIGINT, SIGTERM and SIGHUP say to a command that runs
// until done or stopped, relayed from this one place.
type signals struct {
	// ctx ends at the first SIGINT or SIGTERM, with a caught as its
	// cause: stop taking work, finish what is in flight.
	ctx context.Context
	// now ends at the second: stop at once. The signals then have their
	// default action again, so that a third ends the process.
	now context.Context
	// reload gets a value for each SIGHUP (coalesced), when asked for;
	// nil otherwise.
	reload <-chan struct{}
	// stop stops relaying and ends ctx and now; the relay has returned.
	stop func()
}

// watchSignals relays the process's SIGINT and SIGTERM (and SIGHUP, when
// hup) through e.notify, on a goroutine that stop ends.
func watchSignals(e env, hup bool) *signals {
	c := make(chan os.Signal, 4)
	which := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if hup {
		which = append(which, syscall.SIGHUP)
	}
	e.notify(c, which...)
	ctx, first := context.WithCancelCause(context.Background())
	now, second := context.WithCancelCause(context.Background())
	reload := make(chan struct{}, 1)
	quit := make(chan struct{})
	var relay sync.WaitGroup
	relay.Go(func() {
		for {
			select {
			case <-quit:
				return
			case s := <-c:
				switch {
				case s == syscall.SIGHUP:
					select {
					case reload <- struct{}{}:
					default: // one is pending already
					}
				case ctx.Err() == nil:
					first(caught{s})
				default:
					second(caught{s})
					e.stop(c)
				}
			}
		}
	})
	sig := &signals{ctx: ctx, now: now, stop: func() {
		e.stop(c)
		close(quit)
		relay.Wait()
		first(nil)
		second(nil)
	}}
	if hup {
		sig.reload = reload
	}
	return sig
}

// caught is the cause of a context that a signal ended.
type caught struct{ os.Signal }

func (c caught) Error() string { return c.String() }

// stoppedBy returns the signal that ended ctx, if one did.
func stoppedBy(ctx context.Context) (os.Signal, bool) {
	var c caught
	if errors.As(context.Cause(ctx), &c) {
		return c.Signal, true
	}
	return nil, false
}

// signalCode is the exit status for a signal: 128 + its number.
func signalCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 128 + int(syscall.SIGINT)
}

// onStop calls f on a goroutine of its own once ctx ends; wait, called
// when done, returns once f has returned (at once when ctx has not
// ended: f is then never called).
func onStop(ctx context.Context, f func()) (wait func()) {
	done := make(chan struct{})
	unhook := context.AfterFunc(ctx, func() {
		defer close(done)
		f()
	})
	return func() {
		if !unhook() {
			<-done
		}
	}
}
