package pipeline

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/internal/words"
)

// Progress shows a long run's progress on a terminal: one line on
// standard error, redrawn at most four times a second, saying how many
// inputs were read and handled, and how many posts wait for their turn
// and when they will have gone. Off, it writes nothing.
type Progress struct {
	w      io.Writer
	on     bool
	pacers *pace.Pacers // nil in a dry run
	start  time.Time
	stop   chan struct{}

	mu         sync.Mutex
	read, done int
	notes      int
	drawn      bool
	stopped    bool
}

// progressEvery is how often the line is redrawn, at most.
const progressEvery = 250 * time.Millisecond

// IsTerminal reports whether f is a terminal: a character device that
// is not /dev/null (which is one too).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// NewProgress returns a Progress writing to w when on; pacers, when not
// nil, tell the posts waiting. It draws from a second after it starts.
func NewProgress(w io.Writer, on bool, pacers *pace.Pacers) *Progress {
	p := &Progress{w: w, on: on, pacers: pacers, start: time.Now(), stop: make(chan struct{})}
	if on {
		go p.tick()
	}
	return p
}

// Read counts one input read.
func (p *Progress) Read() {
	p.mu.Lock()
	p.read++
	p.mu.Unlock()
}

// Done records the counts once an input is handled.
func (p *Progress) Done(t *Tally) {
	p.mu.Lock()
	p.done, p.notes = t.Inputs, t.Notifications
	p.mu.Unlock()
}

func (p *Progress) tick() {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.draw(now)
		}
	}
}

// draw redraws the line, from the first second of the run on.
func (p *Progress) draw(now time.Time) {
	if now.Sub(p.start) < time.Second {
		return
	}
	line := p.Line(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.drawn = true
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

// Line is the progress line at now:
//
//	sesrouter: 2,048 inputs read, 1,980 handled (1,950 notifications); 12 posts waiting, done in 13s
func (p *Progress) Line(now time.Time) string {
	p.mu.Lock()
	s := fmt.Sprintf("sesrouter: %s inputs read, %s handled (%s notifications)", words.Thousands(p.read), words.Thousands(p.done), words.Thousands(p.notes))
	p.mu.Unlock()
	if p.pacers != nil {
		if n, drained := p.pacers.Queue(); n > 0 {
			s += fmt.Sprintf("; %s posts waiting, done in %s", words.Thousands(n), drained.Sub(now).Round(time.Second))
		}
	}
	return s
}

// Clear stops the line and erases it.
func (p *Progress) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	if p.on {
		close(p.stop)
	}
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
