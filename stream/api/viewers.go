package api

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Viewers and what they need of this process. jobrun exec serves its job
// only while it runs; after the end, it waits for the viewers that still
// need it (WaitViewers), and no longer:
//
//   - an open job stream (WebSocket or event stream) needs it until it has
//     been sent the exit event (it then closes), as long as its writes
//     make progress: one whose write has made no progress for StuckAfter
//     is cut (4429, or the event stream ends), and resumes elsewhere by
//     seq;
//   - a long poll with a cursor before the exit is answered at once; one
//     that ended less than a second ago without the exit is a viewer about
//     to ask again;
//   - a job page loaded within the last linger whose stream has not opened
//     yet, and a stream dropped within the last linger before it was sent
//     the exit, are viewers coming (back): they are waited for up to
//     linger after the load or the drop, the only waits on a timer.
//
// Write progress is measured in bytes taken by the kernel, at most
// progressChunk at a time, so that a viewer far behind but reading is
// never mistaken for a stuck one, and never cut by its write timeout or
// a late pong either (writeTimeout and the pinger use the same measure).

// StuckAfter is how long a stream's write may make no progress before a
// waiting exec cuts it.
const StuckAfter = 2 * time.Second

// MaxLinger bounds WaitViewers in all, whatever the viewers do.
const MaxLinger = 60 * time.Second

// pollGrace is how long after a long poll without the exit event its
// viewer counts as about to ask again.
const pollGrace = time.Second

// progressChunk is the most bytes written at once, so that progress shows
// while a large message goes out to a slow reader.
const progressChunk = 16 << 10

// viewer is one open job stream, as the viewer set sees it.
type viewer struct {
	job jobs.ID
	// cut ends the stream: a waiting exec gave up on it. Set once the
	// stream is open; nil before.
	cut atomic.Pointer[func()]
	// writing is set while a message is being written; progress is the
	// time (unix nanoseconds) of the last bytes taken, or of the start of
	// the write in progress.
	writing  atomic.Bool
	progress atomic.Int64
	exit     atomic.Bool // the exit event was written
}

// wrote records bytes taken by the kernel.
func (v *viewer) wrote() { v.progress.Store(time.Now().UnixNano()) }

// beginWrite and endWrite bracket one message write.
func (v *viewer) beginWrite() {
	v.wrote()
	v.writing.Store(true)
}

func (v *viewer) endWrite() {
	v.wrote()
	v.writing.Store(false)
}

// idleFor is how long the write in progress has made no progress; 0 when
// no write is in progress.
func (v *viewer) idleFor(now time.Time) time.Duration {
	if !v.writing.Load() {
		return 0
	}
	return now.Sub(time.Unix(0, v.progress.Load()))
}

// stuck reports whether the write in progress has made no progress for d.
func (v *viewer) stuck(now time.Time, d time.Duration) bool { return v.idleFor(now) >= d }

// jobViewers is what the set knows of one job's viewers besides the open
// streams.
type jobViewers struct {
	opened   time.Time // the last stream opened
	dropped  time.Time // the last stream that ended before it was sent the exit
	polled   time.Time // the last long poll that ended without the exit
	polling  int       // long polls in progress
	pageLoad time.Time // the last job page served
}

// viewerSet tracks the viewers of each job; Server owns one.
type viewerSet struct {
	mu      sync.Mutex
	open    map[*viewer]struct{}
	jobs    map[jobs.ID]*jobViewers
	pages   map[string]time.Time // page loads by the job reference in the URL
	changed chan struct{}        // closed and replaced on every change
}

func (vs *viewerSet) lockedJob(id jobs.ID) *jobViewers {
	if vs.jobs == nil {
		vs.jobs = make(map[jobs.ID]*jobViewers)
		vs.open = make(map[*viewer]struct{})
	}
	jv := vs.jobs[id]
	if jv == nil {
		jv = &jobViewers{}
		vs.jobs[id] = jv
	}
	return jv
}

// changedLocked wakes WaitViewers.
func (vs *viewerSet) changedLocked() {
	if vs.changed != nil {
		close(vs.changed)
		vs.changed = nil
	}
}

// openStream registers a job stream; close unregisters it, saying
// whether it was sent the exit event.
func (vs *viewerSet) openStream(id jobs.ID) *viewer {
	v := &viewer{job: id}
	v.wrote()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.lockedJob(id).opened = time.Now()
	vs.open[v] = struct{}{}
	vs.changedLocked()
	return v
}

func (vs *viewerSet) closeStream(v *viewer) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	delete(vs.open, v)
	if !v.exit.Load() {
		vs.lockedJob(v.job).dropped = time.Now()
	}
	vs.changedLocked()
}

// beginPoll and endPoll bracket a long poll of job id; gotExit says its
// answer held the exit event.
func (vs *viewerSet) beginPoll(id jobs.ID) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.lockedJob(id).polling++
	vs.changedLocked()
}

func (vs *viewerSet) endPoll(id jobs.ID, gotExit bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	jv := vs.lockedJob(id)
	jv.polling--
	if !gotExit {
		jv.polled = time.Now()
	}
	vs.changedLocked()
}

// pageLoaded records that the page of job ref was served.
func (vs *viewerSet) pageLoaded(ref string) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.pages == nil {
		vs.pages = make(map[string]time.Time)
	}
	if len(vs.pages) > 1024 { // a flood of made-up references: forget them
		clear(vs.pages)
	}
	vs.pages[ref] = time.Now()
	vs.changedLocked()
}

// need says whether job j still has viewers that need this process at
// now, and until when a timer-based wait lasts (zero: no such wait). It
// cuts open streams whose writes are stuck.
func (vs *viewerSet) need(j jobs.Job, now time.Time, linger time.Duration) (bool, time.Time, <-chan struct{}) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.changed == nil {
		vs.changed = make(chan struct{})
	}
	changed := vs.changed
	need := false
	var cuts []func()
	for v := range vs.open {
		if v.job != j.ID {
			continue
		}
		if cut := v.cut.Load(); cut != nil && v.stuck(now, StuckAfter) {
			cuts = append(cuts, *cut)
			continue
		}
		need = true
	}
	for _, cut := range cuts {
		go cut() // closing waits for the close frame: not under the lock
	}
	jv := vs.lockedJob(j.ID)
	if jv.polling > 0 || now.Sub(jv.polled) < pollGrace {
		need = true
	}
	var until time.Time
	later := func(t time.Time) {
		if t.After(now) && t.After(until) {
			until = t
		}
	}
	if !jv.dropped.IsZero() && !jv.opened.After(jv.dropped) {
		later(jv.dropped.Add(linger))
	}
	for _, ref := range []string{strconv.FormatInt(int64(j.ID), 10), string(j.UID)} {
		if t, ok := vs.pages[ref]; ok && !jv.opened.After(t) {
			later(t.Add(linger))
		}
	}
	if !jv.polled.IsZero() {
		later(jv.polled.Add(pollGrace))
	}
	return need || !until.IsZero(), until, changed
}

// WaitViewers returns once no viewer needs this process for job j any
// more (see viewers.go), after at most MaxLinger, or when ctx ends (a
// signal to exec). linger is how long a viewer that is coming (back) is
// waited for: a page just loaded, a stream just dropped. j is the job as
// ended: its last seq is the exit event's.
func (s *Server) WaitViewers(ctx context.Context, j jobs.Job, linger time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, MaxLinger)
	defer cancel()
	// Stuck writes show by the clock, not by an event: look again every
	// 250 ms, and when a wait on a timer is over.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		need, until, changed := s.viewers.need(j, time.Now(), linger)
		if !need {
			return
		}
		var timer <-chan time.Time
		if !until.IsZero() {
			timer = time.After(time.Until(until))
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		case <-timer:
		}
	}
}

// Pages wraps the handler of the pages so that a job page being loaded
// counts as a viewer coming (GET /jobs/{ref}).
func (s *Server) Pages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref, ok := strings.CutPrefix(r.URL.Path, "/jobs/"); ok && r.Method == http.MethodGet && ref != "" && !strings.Contains(ref, "/") {
			if _, err := jobs.ParseRef(ref); err == nil {
				s.viewers.pageLoaded(ref)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// progressWriter lets a WebSocket's writes report their progress: it hands
// websocket.Accept a connection whose writes go out progressChunk at a
// time, recording each.
type progressWriter struct {
	http.ResponseWriter
	v *viewer
}

// Hijack hijacks the connection and wraps it.
func (w progressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	pc := &progressConn{Conn: c, v: w.v}
	// net/http hands over a fresh writer on the raw connection, the
	// response's header already sent: the same buffer writes through the
	// wrapper instead.
	brw.Writer.Reset(pc)
	return pc, brw, nil
}

// Unwrap gives http.ResponseController the writer underneath.
func (w progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// progressConn is a connection whose writes record their progress.
type progressConn struct {
	net.Conn
	v *viewer
}

func (c *progressConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := c.Conn.Write(p[n:min(len(p), n+progressChunk)])
		n += k
		if k > 0 {
			c.v.wrote()
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
