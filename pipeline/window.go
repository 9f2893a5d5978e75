package pipeline

import (
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/pipeline/storm"
)

// Windows cuts a stream of requests (serve's) into batches: a window opens
// with the first notification after the last one closed and lasts Length;
// its notifications fold into one batch, whose digests Flush posts once
// the window has ended and its notifications are done. A window is not
// tied to the rules: a reload in the middle of one loses none of its
// digests (each posts with the notifier it was folded with).
type Windows struct {
	// Length is how long a window lasts.
	Length time.Duration
	// NewBatch makes the batch of a new window.
	NewBatch func() *storm.Batch
	// Flush posts a window's digests.
	Flush func(*storm.Batch)

	mu      sync.Mutex
	cur     *window
	closing sync.WaitGroup // windows ended or ending whose digests are not yet posted
}

// window is one batch of Windows.
type window struct {
	batch *storm.Batch
	busy  sync.WaitGroup // its notifications in flight
	timer *time.Timer
}

// Join returns the batch of the current window, opening one when there is
// none, and counts the caller in it: done must be called once the
// caller's actions are done.
func (ws *Windows) Join() (batch *storm.Batch, done func()) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.cur == nil {
		w := &window{batch: ws.NewBatch()}
		ws.closing.Add(1)
		w.timer = time.AfterFunc(ws.Length, func() { ws.end(w) })
		ws.cur = w
	}
	w := ws.cur
	w.busy.Add(1)
	return w.batch, w.busy.Done
}

// end ends w: later notifications open a new window; once w's
// notifications are done, its digests are posted.
func (ws *Windows) end(w *window) {
	ws.mu.Lock()
	if ws.cur == w {
		ws.cur = nil
	}
	ws.mu.Unlock()
	w.busy.Wait()
	if w.batch != nil {
		ws.Flush(w.batch)
	}
	ws.closing.Done()
}

// Close ends the current window now and waits until the digests of every
// window, including one whose time had already come, are posted: at
// shutdown, once the requests in flight are done.
func (ws *Windows) Close() {
	ws.mu.Lock()
	w := ws.cur
	stopped := w != nil && w.timer.Stop()
	ws.mu.Unlock()
	if stopped {
		ws.end(w)
	}
	ws.closing.Wait()
}
