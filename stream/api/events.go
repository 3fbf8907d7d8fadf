package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// MaxWait caps wait= of a long poll; longer waits are shortened to it.
const MaxWait = 60 * time.Second

// headerLastSeq names the response header with the job's last stored seq
// as the answer saw it, on range reads, long polls and event streams.
const headerLastSeq = "X-Jobrun-Last-Seq"

// eventsQuery is a parsed GET /api/jobs/{ref}/events request.
type eventsQuery struct {
	mode     string // "after", "tail", "line" or "before": which range
	after    jobs.Seq
	tail     int
	line     int64
	before   jobs.Seq
	limit    int
	wait     time.Duration
	hasWait  bool
	collapse bool
	sse      bool
}

// parseEventsQuery validates the parameters of /events: one of after,
// tail, line and before (after=0 when none); limit (not with tail); wait
// only with after; an event stream takes after (or Last-Event-ID) and
// collapse only.
func parseEventsQuery(r *http.Request) (eventsQuery, error) {
	q := r.URL.Query()
	eq := eventsQuery{mode: "after", limit: DefaultLimit, sse: wantsEventStream(r)}
	var modes []string
	for _, m := range []string{"after", "tail", "line", "before"} {
		if q.Has(m) {
			modes = append(modes, m)
		}
	}
	if len(modes) > 1 {
		return eq, fmt.Errorf("%s: give one of after, tail, line and before: %w", strings.Join(modes, " and "), jobs.ErrInvalid)
	}
	if len(modes) == 1 {
		eq.mode = modes[0]
	}
	var err error
	var n int64
	switch eq.mode {
	case "after":
		n, err = intParam(q.Get("after"), "after", 0, 0, 1<<62)
		eq.after = jobs.Seq(n)
	case "tail":
		n, err = intParam(q.Get("tail"), "tail", 0, 1, MaxLimit)
		eq.tail = int(n)
	case "line":
		eq.line, err = intParam(q.Get("line"), "line", 0, 1, 1<<62)
	case "before":
		n, err = intParam(q.Get("before"), "before", 0, 1, 1<<62)
		eq.before = jobs.Seq(n)
	}
	if err != nil {
		return eq, err
	}
	if q.Has("limit") && eq.mode == "tail" {
		return eq, fmt.Errorf("limit: tail=N is the number of events; give no limit: %w", jobs.ErrInvalid)
	}
	n, err = intParam(q.Get("limit"), "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		return eq, err
	}
	eq.limit = int(n)
	if eq.collapse, err = boolParam(q.Get("collapse"), "collapse"); err != nil {
		return eq, err
	}
	if eq.hasWait = q.Has("wait"); eq.hasWait {
		if eq.mode != "after" {
			return eq, fmt.Errorf("wait: a long poll takes after=, not %s=: %w", eq.mode, jobs.ErrInvalid)
		}
		if eq.wait, err = parseWait(q.Get("wait")); err != nil {
			return eq, err
		}
	}
	if eq.sse {
		if eq.mode != "after" || eq.hasWait || q.Has("limit") {
			return eq, fmt.Errorf("an event stream (Accept: text/event-stream) takes after= and collapse= only: %w", jobs.ErrInvalid)
		}
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 || n > 1<<62 {
				return eq, fmt.Errorf("Last-Event-ID %q: want a seq: %w", v, jobs.ErrInvalid)
			}
			eq.after = jobs.Seq(n) // the browser's resume point wins over the URL's
		}
	}
	return eq, nil
}

// parseWait parses wait=: a Go duration ("25s", "1500ms") or whole
// seconds ("25"), at least 0, at most MaxWait (longer is shortened).
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseInt(v, 10, 64)
		if nerr != nil {
			return 0, fmt.Errorf("wait=%q: want a duration such as 25s: %w", v, jobs.ErrInvalid)
		}
		d = time.Duration(min(n, int64(MaxWait/time.Second)+1)) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("wait=%q: want a duration of at least 0: %w", v, jobs.ErrInvalid)
	}
	return min(d, MaxWait), nil
}

// wantsEventStream reports whether the request accepts text/event-stream
// (what EventSource sends).
func wantsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// serveEvents serves GET /api/jobs/{ref}/events: an event stream with
// Accept: text/event-stream, a long poll with wait=, else a range read.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventsQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case q.sse:
		s.serveSSE(w, r, q)
	case q.hasWait:
		s.serveLongPoll(w, r, q)
	default:
		s.serveRange(w, r, q)
	}
}

// serveRange answers a range read at once.
func (s *Server) serveRange(w http.ResponseWriter, r *http.Request, q eventsQuery) {
	ctx := r.Context()
	j, err := s.lookup(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, last, err := s.readRange(ctx, j, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeEvents(w, evs, last)
}

// readRange reads the range q names; last is the job's last stored seq as
// the read saw it.
func (s *Server) readRange(ctx context.Context, j jobs.Job, q eventsQuery) (evs []jobs.Event, last jobs.Seq, err error) {
	g := newRanger(s.Store, s.Store, j.ID, j.LastSeq)
	switch q.mode {
	case "after":
		if err = checkAfter(j, q.after); err == nil {
			evs, err = g.forward(ctx, q.after, q.limit, q.collapse)
		}
	case "before":
		if q.before > j.LastSeq+1 {
			err = fmt.Errorf("before %d is beyond the last stored seq %d; start over: %w", q.before, j.LastSeq, jobs.ErrConflict)
			break
		}
		evs, err = g.backward(ctx, q.before, q.limit, q.collapse, nil)
	case "tail":
		n := q.tail
		if q.collapse {
			n = rangePageEvents
		}
		var first []jobs.Event
		if first, err = g.rr.Tail(ctx, j.ID, g.pageSize(n)); err != nil {
			break
		}
		if len(first) > 0 {
			g.until = max(g.until, first[len(first)-1].Seq)
		}
		evs, err = g.backward(ctx, g.until+1, q.tail, q.collapse, first)
	case "line":
		var seq jobs.Seq
		if seq, err = g.rr.SeqOfLine(ctx, j.ID, q.line); err == nil && seq > 0 {
			g.until = max(g.until, seq)
			evs, err = g.forward(ctx, seq-1, q.limit, q.collapse)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	last = g.until
	if len(evs) > 0 {
		last = max(last, evs[len(evs)-1].Seq)
	}
	return evs, last, nil
}

// writeEvents answers 200 with evs as a JSON array.
func writeEvents(w http.ResponseWriter, evs []jobs.Event, last jobs.Seq) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set(headerLastSeq, strconv.FormatInt(int64(last), 10))
	w.Write(jobs.AppendJSONArray(nil, evs))
}

// openEvents starts a long poll or an event stream: it finds the job and
// checks the cursor, answering an error, or 204 when the job ended at or
// before q.after (which also stops EventSource's own reconnecting). ok
// reports that the caller goes on with j.
func (s *Server) openEvents(w http.ResponseWriter, r *http.Request, q eventsQuery) (j jobs.Job, ok bool) {
	j, err := s.lookup(r.Context(), r)
	if err == nil {
		err = checkAfter(j, q.after)
	}
	if err != nil {
		s.writeError(w, r, err)
		return j, false
	}
	if j.Status.Final() && q.after >= j.LastSeq {
		w.Header().Set(headerLastSeq, strconv.FormatInt(int64(j.LastSeq), 10))
		w.WriteHeader(http.StatusNoContent)
		return j, false
	}
	return j, true
}
