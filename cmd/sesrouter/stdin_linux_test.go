package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStoppableStdin: standard input that is a pipe with a blocking
// descriptor, as a shell hands it over, comes out in the runtime's
// poller, so that Close stops a read in progress (route's stop at a
// signal); restore puts the descriptor back in blocking mode. A regular
// file is returned as it is.
func TestStoppableStdin(t *testing.T) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(p[0]), "/dev/stdin"), os.NewFile(uintptr(p[1]), "pipe")
	defer r.Close()
	defer w.Close()
	if err := r.SetReadDeadline(time.Time{}); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("a blocking pipe: SetReadDeadline says %v, want os.ErrNoDeadline (not in the poller)", err)
	}
	f, restore := stoppable(r)
	if f == r {
		t.Fatal("the pipe was returned as it is")
	}
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		t.Errorf("SetReadDeadline: %v, want it in the poller", err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := f.Read(make([]byte, 1))
		read <- err
	}()
	f.Close()
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("the read ended with %v, want os.ErrClosed", err)
		}
	case <-time.After(failsafe):
		t.Fatal("Close did not stop the read")
	}
	restore()
	var nonblock bool
	rc, _ := r.SyscallConn()
	rc.Control(func(fd uintptr) {
		flags, _, _ := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		nonblock = flags&syscall.O_NONBLOCK != 0
	})
	if nonblock {
		t.Error("after restore, the pipe is still non-blocking")
	}

	file, err := os.Create(filepath.Join(t.TempDir(), "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if f, _ := stoppable(file); f != file {
		t.Error("a regular file was not returned as it is")
	}
}
