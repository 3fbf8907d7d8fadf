package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream/search"
)

// Search: GET /api/jobs/{ref}/search finds the visual lines of a job's
// log (stream/search) whose text matches, anywhere in a log of any
// length, reading it page by page through the same store reads as the
// streams (one short read transaction each), within a budget per request
// that the client continues from with a cursor. docs/protocol.md has the
// wire form.
//
// A line's seq is the seq of its first event; lines are searched in seq
// order. A forward search (after=A) looks at the lines with seq > A, a
// backward one (before=B) at those with seq < B, nearest first; both
// answer matches in seq order. A line is decided (matched or not) once it
// ends; scanned_to is how far every line is decided, so the next request
// continues from it and no line is reported twice or missed.

// parseSearchQuery reads the parameters of GET /api/jobs/{ref}/search.
func parseSearchQuery(r *http.Request) (search.Query, error) {
	v := r.URL.Query()
	q := search.Query{Text: v.Get("q"), Limit: search.DefaultLimit}
	var err error
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"regex", &q.Regex}, {"case", &q.Case}, {"directives", &q.Directives}} {
		if *f.dst, err = boolParam(v.Get(f.name), f.name); err != nil {
			return q, err
		}
	}
	switch st := v.Get("stream"); st {
	case "":
	case string(jobs.StreamStdout), string(jobs.StreamStderr), string(jobs.StreamTTY):
		q.Stream = jobs.Stream(st)
	default:
		return q, fmt.Errorf("stream=%q: want stdout, stderr or tty: %w", st, jobs.ErrInvalid)
	}
	if v.Has("after") && v.Has("before") {
		return q, fmt.Errorf("after and before: give one of them: %w", jobs.ErrInvalid)
	}
	n, err := intParam(v.Get("after"), "after", 0, 0, 1<<62)
	if err != nil {
		return q, err
	}
	q.After = jobs.Seq(n)
	if n, err = intParam(v.Get("before"), "before", 0, 1, 1<<62); err != nil {
		return q, err
	}
	q.Before = jobs.Seq(n)
	if n, err = intParam(v.Get("limit"), "limit", search.DefaultLimit, 0, search.MaxLimit); err != nil {
		return q, err
	}
	q.Limit = int(n)
	return q, nil
}

// serveSearch serves GET /api/jobs/{ref}/search.
func (s *Server) serveSearch(w http.ResponseWriter, r *http.Request) {
	q, err := parseSearchQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := q.Check(); err != nil {
		s.writeError(w, r, err) // before looking the job up: a bad query is 400 whatever the job
		return
	}
	ctx := r.Context()
	j, err := s.lookup(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := search.Find(ctx, s.Store, j, q, search.Budget{Time: s.searchTime(), Events: s.SearchEvents})
	if err != nil {
		if ctx.Err() != nil {
			return // the client left (a page's next keystroke)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, res)
}

func (s *Server) searchTime() time.Duration {
	if s.SearchTime > 0 {
		return s.SearchTime
	}
	return time.Second
}
