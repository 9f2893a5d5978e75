package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// CheckFiles opens each of names ("-" is stdin, not opened) and reports
// the first that cannot be, so that a run can refuse to start rather
// than stop halfway.
func CheckFiles(names []string) error {
	for _, name := range names {
		if name == "-" {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// Inputs yields the items of files, one after the other ("-" is
// standard input). A file that cannot be opened or read yields an item of
// its own, named after the file, with the error, and the next file is
// read. Close stops it from any goroutine: a read in progress returns,
// and Next reports no more.
type Inputs struct {
	names []string
	stdin io.Reader
	cur   *ses.Reader
	name  string

	mu     sync.Mutex
	file   io.Closer // what cur reads from, when Close can close it
	own    bool      // file was opened here: closed at its end
	closed bool
}

// Files returns the Inputs of names, reading "-" from stdin. Close closes
// stdin too when it is an io.Closer: the only way to stop a read from a
// pipe or a terminal in progress.
func Files(names []string, stdin io.Reader) *Inputs {
	return &Inputs{names: names, stdin: stdin}
}

// Next returns the next item; false once there is none, or once Close
// was called.
func (in *Inputs) Next() (ses.Item, bool) {
	for {
		if in.cur == nil {
			if len(in.names) == 0 {
				return ses.Item{}, false
			}
			in.name, in.names = in.names[0], in.names[1:]
			r, err := in.open(in.name)
			switch {
			case errors.Is(err, errStopped):
				return ses.Item{}, false
			case err != nil:
				return ses.Item{Input: in.name, Err: err}, true
			}
			in.cur = ses.NewReader(r, in.name)
		}
		it, err := in.cur.Next()
		if err == nil {
			return it, true
		}
		in.cur = nil
		if in.done() {
			return ses.Item{}, false // what was being read was closed: not an error of the input
		}
		if err != io.EOF {
			return ses.Item{Input: in.name, Err: fmt.Errorf("reading %s: %w", in.name, err)}, true
		}
	}
}

// errStopped says that Close was called.
var errStopped = errors.New("stopped")

// open opens the file name ("-": standard input) as the one being read.
func (in *Inputs) open(name string) (io.Reader, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil, errStopped
	}
	if name == "-" {
		in.file, in.own = nil, false
		if c, ok := in.stdin.(io.Closer); ok {
			in.file = c
		}
		return in.stdin, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	in.file, in.own = f, true
	return f, nil
}

// done ends the file being read (closing it when it was opened here)
// and reports whether Close was called.
func (in *Inputs) done() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.own {
		in.file.Close()
	}
	in.file, in.own = nil, false
	return in.closed
}

// Close stops the inputs: the file being read is closed, so that a read
// in progress returns, and Next reports no more.
func (in *Inputs) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	if in.file == nil {
		return nil
	}
	err := in.file.Close()
	in.file, in.own = nil, false
	return err
}
