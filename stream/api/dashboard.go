package api

import (
	"context"
	"encoding/json"
	"errors"
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

// dashboardMsg is a message of the dashboard stream.
type dashboardMsg struct {
	Type string     `json:"type"` // "snapshot", "jobs" or "heartbeat"
	Jobs []jobs.Job `json:"jobs"`
}

var (
	dashboardHeartbeat   = []byte(`{"type":"heartbeat"}`)
	dashboardUnsupported = []byte(`{"type":"error","error":"unsupported message","code":400}`)
)

// dashConn is one dashboard connection.
type dashConn struct {
	wc    *wsConn
	limit int
	snap  chan snapshot // cap 1: the first message, from the feed
	wake  chan struct{} // cap 1: pending has something

	mu      sync.Mutex
	pending map[jobs.ID]jobs.Job
}

type snapshot struct {
	jobs []jobs.Job
	err  error
}

// add merges changed jobs into the pending set and wakes the writer.
func (d *dashConn) add(changed []jobs.Job) {
	d.mu.Lock()
	for _, j := range changed {
		d.pending[j.ID] = j
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// take returns the pending jobs, newest first, and clears them.
func (d *dashConn) take() []jobs.Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) == 0 {
		return nil
	}
	out := make([]jobs.Job, 0, len(d.pending))
	for _, j := range d.pending {
		out = append(out, j)
	}
	clear(d.pending)
	slices.SortFunc(out, func(a, b jobs.Job) int { return int(b.ID - a.ID) })
	return out
}

// serveDashboard serves GET /api/stream?limit=N (WebSocket).
func (s *Server) serveDashboard(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 100, 1, 1000)
	wc := s.accept(w, r, err, TransportDashboard, &viewer{})
	if wc == nil {
		return
	}
	defer s.unregister(wc)
	defer s.viewer(TransportDashboard, false)()
	wc.onMessage = func(clientMessage) []byte { return dashboardUnsupported }
	wc.start()
	defer wc.wg.Wait()
	defer wc.close(websocket.StatusGoingAway, "") // unless closed already

	d := &dashConn{wc: wc, limit: int(limit), snap: make(chan snapshot, 1),
		wake: make(chan struct{}, 1), pending: make(map[jobs.ID]jobs.Job)}
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
	if snap.jobs == nil {
		snap.jobs = []jobs.Job{}
	}
	d.write(dashboardMsg{Type: "snapshot", Jobs: snap.jobs})

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
			if list := d.take(); list != nil && d.write(dashboardMsg{Type: "jobs", Jobs: list}) != nil {
				return
			}
		}
		hb.Reset(s.heartbeat())
	}
}

// write sends one message.
func (d *dashConn) write(m dashboardMsg) error {
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
	known := make(map[jobs.ID]string) // what was last sent of each job
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
			list, err := f.list(d.limit)
			d.snap <- snapshot{jobs: list, err: err}
			if err != nil {
				continue
			}
			f.mu.Lock()
			f.conns[d] = struct{}{}
			f.mu.Unlock()
			if w == nil {
				// The first watcher: this snapshot is what everyone knows.
				w = s.Hub.WatchJobs()
				clear(known)
				for _, j := range list {
					known[j.ID] = jobKey(j)
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

// list reads the newest jobs.
func (f *jobsFeed) list(limit int) ([]jobs.Job, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	return f.s.Store.Jobs(ctx, limit, 0)
}

// maxKnown bounds the jobs whose last sent state the feed remembers.
const maxKnown = 4096

// update reads what the watch marked and sends the jobs that changed.
func (f *jobsFeed) update(w *stream.JobWatch, known map[jobs.ID]string) {
	ids, all := w.Take()
	var candidates []jobs.Job
	listed := make(map[jobs.ID]bool)
	if all {
		limit := 1
		f.mu.Lock()
		for d := range f.conns {
			limit = max(limit, d.limit)
		}
		f.mu.Unlock()
		list, err := f.list(limit)
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
	var changed []jobs.Job
	for _, j := range candidates {
		k := jobKey(j)
		if known[j.ID] != k {
			known[j.ID] = k
			changed = append(changed, j)
		}
	}
	if len(changed) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for d := range f.conns {
		d.add(changed)
	}
}

// jobKey is what a dashboard shows of j: its JSON without last_seq, which
// changes with every line and is not shown.
func jobKey(j jobs.Job) string {
	j.LastSeq = 0
	b, _ := json.Marshal(j)
	return string(b)
}
