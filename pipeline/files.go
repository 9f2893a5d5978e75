package pipeline

import (
	"fmt"
	"io"
	"os"

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

// Files yields the items of files, one after the other ("-" is stdin): a
// file that cannot be opened or read yields an item of its own, named
// after the file, with the error, and the next file is read.
func Files(names []string, stdin io.Reader) func() (ses.Item, bool) {
	var (
		cur   *ses.Reader
		close func() error
		name  string
	)
	return func() (ses.Item, bool) {
		for {
			if cur == nil {
				if len(names) == 0 {
					return ses.Item{}, false
				}
				name, names = names[0], names[1:]
				var r io.Reader = stdin
				close = func() error { return nil }
				if name != "-" {
					f, err := os.Open(name)
					if err != nil {
						return ses.Item{Input: name, Err: err}, true
					}
					r, close = f, f.Close
				}
				cur = ses.NewReader(r, name)
			}
			it, err := cur.Next()
			if err == nil {
				return it, true
			}
			cur = nil
			close()
			if err != io.EOF {
				return ses.Item{Input: name, Err: fmt.Errorf("reading %s: %w", name, err)}, true
			}
		}
	}
}
