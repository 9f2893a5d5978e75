package main

import (
	"os"
	"syscall"
	"time"
)

// stoppable returns f (standard input) as a file whose Close stops a read
// in progress, so that route stops reading at a signal even from a pipe
// that sends nothing more. Such a file is read through the runtime's
// poller: a duplicate of f's descriptor in non-blocking mode. The mode
// belongs to the open file, so restore puts it back. A terminal is left
// as it is: its open file is the shell's too, and a process ended before
// restore (a third signal) would leave the shell's terminal non-blocking;
// a read from a terminal ends at the next line or end of input. A regular
// file, /dev/null or the like is f as is: reading it never waits.
func stoppable(f *os.File) (stdin *os.File, restore func()) {
	keep := func() {}
	fi, err := f.Stat()
	if err != nil {
		return f, keep
	}
	if fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 { // a pipe is a named pipe to Stat
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
