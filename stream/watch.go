package stream

import (
	"slices"

	"github.com/jobrun/jobrun/jobs"
)

// maxDirty bounds the jobs a JobWatch names one by one; beyond it, it
// reports that everything may have changed.
const maxDirty = 1024

// JobWatch tells a dashboard which jobs may have changed: Publish marks a
// job when it publishes the job's first batch here, a progress event or
// its exit event, MarkChanged marks the jobs it names (removed ones), and
// Poke (another process may have written) marks all.
// It is a dirty set, not a queue: marking never blocks, and a watcher that
// takes the marks late finds each job once. Take and C are for one
// goroutine; Close may be called from any.
type JobWatch struct {
	h    *Hub
	wake chan struct{} // cap 1: signalled on every mark

	// Guarded by h.wmu.
	dirty  map[jobs.ID]struct{}
	all    bool
	closed bool
}

// WatchJobs returns a new JobWatch. While it is open, the Hub asks its
// Changes (as for a subscriber waiting on another process's job) so that
// other processes' changes mark it too. Close it when done.
func (h *Hub) WatchJobs() *JobWatch {
	w := &JobWatch{h: h, wake: make(chan struct{}, 1), dirty: make(map[jobs.ID]struct{})}
	h.wmu.Lock()
	if h.watches == nil {
		h.watches = make(map[*JobWatch]struct{})
	}
	h.watches[w] = struct{}{}
	h.nwatch.Add(1)
	h.wmu.Unlock()
	h.addWaiter()
	return w
}

// C is signalled when there are marks to take.
func (w *JobWatch) C() <-chan struct{} { return w.wake }

// Take returns the jobs marked since the last Take, and all=true when any
// job may have changed (a Poke, or too many marks to name), and clears
// them.
func (w *JobWatch) Take() (ids []jobs.ID, all bool) {
	w.h.wmu.Lock()
	defer w.h.wmu.Unlock()
	for id := range w.dirty {
		ids = append(ids, id)
	}
	clear(w.dirty)
	all, w.all = w.all, false
	slices.Sort(ids)
	return ids, all
}

// Close ends the watch. It is safe to call more than once.
func (w *JobWatch) Close() {
	h := w.h
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	delete(h.watches, w)
	h.nwatch.Add(-1)
	h.waiting.Add(-1)
}

// markLocked marks job id (or every job, when all) in every watch and wakes
// them. h.wmu is held.
func (h *Hub) markLocked(id jobs.ID, all bool) {
	for w := range h.watches {
		switch {
		case all || len(w.dirty) >= maxDirty:
			w.all = true
		default:
			w.dirty[id] = struct{}{}
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// markJob marks job id in every watch.
func (h *Hub) markJob(id jobs.ID) {
	if h.nwatch.Load() == 0 {
		return
	}
	h.wmu.Lock()
	h.markLocked(id, false)
	h.wmu.Unlock()
}

// MarkChanged tells every JobWatch that the jobs ids changed without a
// Publish here (they were removed, say), so that dashboards read them
// again and learn that they are gone.
func (h *Hub) MarkChanged(ids ...jobs.ID) {
	if h.nwatch.Load() == 0 {
		return
	}
	h.wmu.Lock()
	for _, id := range ids {
		h.markLocked(id, false)
	}
	h.wmu.Unlock()
}

// markAll tells every watch that any job may have changed.
func (h *Hub) markAll() {
	if h.nwatch.Load() == 0 {
		return
	}
	h.wmu.Lock()
	h.markLocked(0, true)
	h.wmu.Unlock()
}

// dashboardNews reports whether a published batch changes what a
// dashboard shows: the job's first batch published here (it started
// running, or this process just took it over), a progress event, or its
// end.
func dashboardNews(first bool, events []jobs.Event) bool {
	if first {
		return true
	}
	for i := range events {
		if events[i].Type == jobs.TypeProgress || events[i].Type == jobs.TypeExit {
			return true
		}
	}
	return false
}
