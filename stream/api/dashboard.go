package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// The dashboard stream, GET /api/stream: the job list, live. One feed
// goroutine per Server (while anyone watches) does all the reading: it
// takes the Hub's JobWatch marks at most every DashboardInterval, reads the
// marked jobs (or re-lists the newest ones after a Poke), compares each
// with what it last sent, and merges the changed ones into every
// connection's pending set, latest state per job. A connection's writer
// sends its pending set when it can; a slow one only delays its own
// updates and never makes the feed or the Hub wait. All reads happen in
// the feed goroutine one after another, so a job's states go out in the
// order the database had them, and a connection's snapshot (read by the
// feed when it joins) is never followed by an older state.
//
// Each connection has a filter: a changed job it selects goes into its
// pending set as the job, one it does not as a removal (sent as
// {"type":"remove","id":N}) unless the job's previous state was not
// selected either. A job is removed for every connection when it is gone:
// read after a mark (Hub.MarkChanged, which DELETE and prune call) and not
// found, or missing from a re-listing that should hold it (removed by
// another process).

// dashboardMsg is a "jobs" message of the dashboard stream.
type dashboardMsg struct {
	Type string     `json:"type"` // "jobs"
	Jobs []jobs.Job `json:"jobs"`
}

// dashboardSnapshot is the first message: a page of GET /api/jobs.
type dashboardSnapshot struct {
	Type string `json:"type"` // "snapshot"
	JobsPage
}

// dashboardRemove says that a job left the dashboard's filter, or was
// removed.
type dashboardRemove struct {
	Type string  `json:"type"` // "remove"
	ID   jobs.ID `json:"id"`
}

var (
	dashboardHeartbeat   = []byte(`{"type":"heartbeat"}`)
	dashboardUnsupported = []byte(`{"type":"error","error":"unsupported message","code":400}`)
)

// dashConn is one dashboard connection.
type dashConn struct {
	wc   *wsConn
	q    jobsQuery     // its filter and snapshot size
	snap chan snapshot // cap 1: the first message, from the feed
	wake chan struct{} // cap 1: pending has something

	mu      sync.Mutex
	pending map[jobs.ID]*jobs.Job // the latest state to send; nil: a removal
}

type snapshot struct {
	jobs []jobs.Job
	err  error
}

// change is a job's new state, and the state last sent before it (nil
// when the feed does not know it).
type change struct {
	job  jobs.Job
	prev *jobs.Job
}

// merge adds what the connection must hear of changed and removed jobs to
// its pending set, and wakes the writer: a job its filter selects, as the
// job; one it does not, as a removal, unless the job's previous state was
// not selected either (then the dashboard does not hold it).
func (d *dashConn) merge(changed []change, removed []jobs.ID) {
	d.mu.Lock()
	added := len(removed) > 0
	for _, c := range changed {
		switch {
		case d.q.filter.Match(c.job):
			j := c.job
			d.pending[j.ID] = &j
		case c.prev == nil || d.q.filter.Match(*c.prev):
			d.pending[c.job.ID] = nil
		default:
			continue
		}
		added = true
	}
	for _, id := range removed {
		d.pending[id] = nil
	}
	d.mu.Unlock()
	if !added {
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// take returns the pending jobs and removals, newest first, and clears
// them.
func (d *dashConn) take() (list []jobs.Job, removed []jobs.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, j := range d.pending {
		if j == nil {
			removed = append(removed, id)
		} else {
			list = append(list, *j)
		}
	}
	clear(d.pending)
	slices.SortFunc(list, func(a, b jobs.Job) int { return int(b.ID - a.ID) })
	slices.SortFunc(removed, func(a, b jobs.ID) int { return int(b - a) })
	return list, removed
}

// serveDashboard serves GET /api/stream?limit=N&status=...&q=... (WebSocket),
// with the parameters of GET /api/jobs but before.
func (s *Server) serveDashboard(w http.ResponseWriter, r *http.Request) {
	q, err := parseJobsQuery(r.URL.Query())
	if err == nil && q.before != 0 {
		err = fmt.Errorf("before: the dashboard stream starts with the newest jobs; page back with GET /api/jobs: %w", jobs.ErrInvalid)
	}
	wc := s.accept(w, r, err, TransportDashboard, &viewer{})
	if wc == nil {
		return
	}
	defer s.unregister(wc)
	defer s.viewer(TransportDashboard, false)()
	wc.onMessage = func(clientMessage) []byte { return dashboardUnsupported }
	defer wc.start()()
	defer wc.close(websocket.StatusGoingAway, "") // unless closed already

	d := &dashConn{wc: wc, q: q, snap: make(chan snapshot, 1),
		wake: make(chan struct{}, 1), pending: make(map[jobs.ID]*jobs.Job)}
	f := s.joinFeed(d)
	if f == nil {
		wc.close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.leaveFeed(f, d)
	var snap snapshot
	select {
	case snap = <-d.snap:
	case <-wc.ctx.Done():
		return
	case <-f.ctx.Done():
		wc.close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	if snap.err != nil {
		wc.close(s.closeFor(snap.err, "dashboard snapshot"))
		return
	}
	if d.write(dashboardSnapshot{Type: "snapshot", JobsPage: NewJobsPage(snap.jobs, q.limit)}) != nil {
		return
	}

	hb := time.NewTimer(s.heartbeat())
	defer hb.Stop()
	for {
		select {
		case <-wc.ctx.Done():
			return
		case <-hb.C:
			if wc.write(dashboardHeartbeat) != nil {
				return
			}
		case <-d.wake:
			if d.flush() != nil {
				return
			}
		}
		hb.Reset(s.heartbeat())
	}
}

// flush sends the pending jobs (one message) and removals.
func (d *dashConn) flush() error {
	list, removed := d.take()
	if len(list) > 0 {
		if err := d.write(dashboardMsg{Type: "jobs", Jobs: list}); err != nil {
			return err
		}
	}
	for _, id := range removed {
		if err := d.write(dashboardRemove{Type: "remove", ID: id}); err != nil {
			return err
		}
	}
	return nil
}

// write sends one message.
func (d *dashConn) write(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return d.wc.write(b)
}

// jobsFeed reads job changes for every dashboard connection of a Server.
// It runs while there are connections (members), and Server.Close stops it.
type jobsFeed struct {
	s       *Server
	ctx     context.Context
	cancel  context.CancelFunc
	joins   chan *dashConn
	idle    chan struct{} // cap 1: a member left
	members int           // guarded by s.mu: joined or joining connections

	mu    sync.Mutex
	conns map[*dashConn]struct{}
}

func (f *jobsFeed) shutdown() { f.cancel() }

// joinFeed adds d to the Server's feed, starting the feed if needed; the
// feed then sends d its snapshot. nil when the server is closing.
func (s *Server) joinFeed(d *dashConn) *jobsFeed {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	f := s.feed
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &jobsFeed{s: s, ctx: ctx, cancel: cancel, joins: make(chan *dashConn),
			idle: make(chan struct{}, 1), conns: make(map[*dashConn]struct{})}
		s.feed = f
		s.trackLocked(f)
		go f.run()
	}
	f.members++
	s.mu.Unlock()
	select {
	case f.joins <- d:
		return f
	case <-f.ctx.Done():
	case <-d.wc.ctx.Done():
	}
	s.leaveFeed(f, d)
	return nil
}

// leaveFeed removes d; the feed stops when it was the last member.
func (s *Server) leaveFeed(f *jobsFeed, d *dashConn) {
	f.mu.Lock()
	delete(f.conns, d)
	f.mu.Unlock()
	s.mu.Lock()
	f.members--
	last := f.members == 0
	s.mu.Unlock()
	if last {
		select {
		case f.idle <- struct{}{}:
		default:
		}
	}
}

// run is the feed goroutine.
func (f *jobsFeed) run() {
	s := f.s
	defer s.untrack(f)
	defer f.cancel() // joiners waiting on a feed that ended give up
	var w *stream.JobWatch
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	known := make(map[jobs.ID]sent) // what was last sent of each job
	var timer *time.Timer
	var due <-chan time.Time // the coalescing timer, while changes wait
	var last time.Time       // the last update
	for {
		var wake <-chan struct{}
		if w != nil && due == nil {
			wake = w.C()
		}
		select {
		case <-f.ctx.Done():
			return
		case <-s.Hub.Done():
			return
		case <-f.idle:
			s.mu.Lock()
			if f.members == 0 {
				s.feed = nil
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		case d := <-f.joins:
			first := w == nil
			if first {
				// Watch before reading, so that no change falls between.
				w = s.Hub.WatchJobs()
			}
			list, err := f.list(d.q.filter, d.q.limit)
			d.snap <- snapshot{jobs: list, err: err}
			if err != nil {
				continue
			}
			f.mu.Lock()
			f.conns[d] = struct{}{}
			f.mu.Unlock()
			if first {
				// The first watcher: this snapshot is what everyone knows.
				clear(known)
				for _, j := range list {
					known[j.ID] = sent{key: jobKey(j), job: j}
				}
			}
		case <-wake:
			if wait := time.Until(last.Add(s.dashboardInterval())); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				due = timer.C
				continue
			}
			f.update(w, known)
			last = time.Now()
		case <-due:
			due = nil
			f.update(w, known)
			last = time.Now()
		}
	}
}

// list reads the newest jobs that filter selects.
func (f *jobsFeed) list(filter jobs.Filter, limit int) ([]jobs.Job, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	return f.s.Store.Jobs(ctx, filter, limit, 0)
}

// maxKnown bounds the jobs whose last sent state the feed remembers.
const maxKnown = 4096

// sent is what the feed last sent of a job.
type sent struct {
	key string // jobKey
	job jobs.Job
}

// update reads what the watch marked and sends each connection the jobs
// that changed (or a removal, for one that left its filter) and the jobs
// that were removed.
func (f *jobsFeed) update(w *stream.JobWatch, known map[jobs.ID]sent) {
	ids, all := w.Take()
	var candidates []jobs.Job
	var removed []jobs.ID
	listed := make(map[jobs.ID]bool)
	if all {
		limit := 1
		f.mu.Lock()
		for d := range f.conns {
			limit = max(limit, d.q.limit)
		}
		f.mu.Unlock()
		list, err := f.list(jobs.Filter{}, limit)
		if err != nil {
			if f.ctx.Err() == nil {
				f.s.logger().Warn("stream: dashboard: list jobs", "err", err)
			}
			return // the next mark retries
		}
		candidates = list
		for _, j := range list {
			listed[j.ID] = true
		}
		// A job sent before that the listing should hold and does not was
		// removed (by another process, say): the listing holds every job
		// when it is not full, else every job down to its last.
		for id := range known {
			if !listed[id] && (len(list) < limit || id > list[len(list)-1].ID) {
				removed = append(removed, id)
			}
		}
		if len(known) > maxKnown {
			// Forget jobs that are not listed any more; one of them that
			// changes later is sent even if it did not.
			for id := range known {
				if !listed[id] {
					delete(known, id)
				}
			}
		}
	}
	for _, id := range ids {
		if listed[id] {
			continue
		}
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		j, err := f.s.Store.Job(ctx, jobs.Ref{ID: id})
		cancel()
		if errors.Is(err, jobs.ErrNotFound) {
			if !slices.Contains(removed, id) {
				removed = append(removed, id)
			}
			continue
		}
		if err != nil {
			if f.ctx.Err() == nil {
				f.s.logger().Warn("stream: dashboard: read job", "job", id, "err", err)
			}
			continue
		}
		candidates = append(candidates, j)
	}
	var changed []change
	for _, j := range candidates {
		k := jobKey(j)
		prev, ok := known[j.ID]
		if ok && prev.key == k {
			continue
		}
		c := change{job: j}
		if ok {
			c.prev = &prev.job
		}
		known[j.ID] = sent{key: k, job: j}
		changed = append(changed, c)
	}
	for _, id := range removed {
		delete(known, id)
	}
	if len(changed) == 0 && len(removed) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for d := range f.conns {
		d.merge(changed, removed)
	}
}

// jobKey is what a dashboard shows of j: its JSON without last_seq, which
// changes with every line and is not shown.
func jobKey(j jobs.Job) string {
	j.LastSeq = 0
	b, _ := json.Marshal(j)
	return string(b)
}
