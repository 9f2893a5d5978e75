package main

import (
	"os"
	"syscall"
	"time"

	"github.com/sesrouter/sesrouter/pipeline"
)

// stoppable returns f (standard input) as a file whose Close stops a read
// in progress, so that route stops reading at a signal even from a pipe
// or a terminal that sends nothing more. Such a file is read through the
// runtime's poller: a duplicate of f's descriptor in non-blocking mode.
// The mode belongs to the open file, which a shell may share, so restore
// puts it back. A regular file, /dev/null or the like is f as is: reading
// it never waits, and Close of a blocking descriptor would not stop a
// read.
func stoppable(f *os.File) (stdin *os.File, restore func()) {
	keep := func() {}
	fi, err := f.Stat()
	if err != nil {
		return f, keep
	}
	switch m := fi.Mode(); {
	case m&(os.ModeNamedPipe|os.ModeSocket) != 0: // a pipe is a named pipe to Stat
	case pipeline.IsTerminal(f):
	default:
		return f, keep
	}
	if f.SetReadDeadline(time.Time{}) == nil {
		return f, keep // in the poller already: it was non-blocking when os.NewFile made it
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return f, keep
	}
	fd := -1
	if rc.Control(func(d uintptr) { fd = int(d) }) != nil {
		return f, keep
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		return f, keep
	}
	syscall.CloseOnExec(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		syscall.Close(dup)
		return f, keep
	}
	return os.NewFile(uintptr(dup), f.Name()), func() { _ = syscall.SetNonblock(fd, false) }
}
