package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// Remover deletes finished jobs and their events, for DELETE
// /api/jobs/{ref} and POST /api/prune. cmd/jobrun adapts *sqlite.DB to it.
type Remover interface {
	// RemoveJob deletes the finished job ref names and returns it. A job
	// still running is an error wrapping jobs.ErrConflict (409).
	RemoveJob(ctx context.Context, ref jobs.Ref) (jobs.Job, error)
	// Prune deletes the finished jobs that q selects.
	Prune(ctx context.Context, q PruneRequest) (PruneResult, error)
}

// PruneRequest is the JSON body of POST /api/prune.
type PruneRequest struct {
	// OlderThanSeconds: jobs that finished less than this long ago stay.
	// Required, at least 1.
	OlderThanSeconds int64 `json:"older_than_seconds"`
	// Keep is how many of the newest jobs always stay, whatever their
	// age. 0 keeps none.
	Keep int `json:"keep"`
	// Vacuum rewrites the whole database file afterwards (blocking every
	// writer while it runs); without it the freed pages go back to the
	// file system step by step when the database allows it.
	Vacuum bool `json:"vacuum,omitempty"`
}

// OlderThan is OlderThanSeconds as a duration.
func (q PruneRequest) OlderThan() time.Duration {
	return time.Duration(q.OlderThanSeconds) * time.Second
}

// PruneResult is the answer of POST /api/prune.
type PruneResult struct {
	// Removed lists the removed jobs' ids, oldest first.
	Removed []jobs.ID `json:"removed"`
	// FreedBytes is what went back to the file system.
	FreedBytes int64 `json:"freed_bytes"`
}

// Removed is the answer of DELETE /api/jobs/{ref}.
type Removed struct {
	Removed jobs.Job `json:"removed"`
}

// maxPruneAge bounds older_than_seconds (100 years) so that the cutoff is
// a real time.
const maxPruneAge = 100 * 365 * 24 * 3600

// serveRemove serves DELETE /api/jobs/{ref} with a JSON object body ({}):
// 200 {"removed":{job}}, 409 while the job runs, 404 for an unknown job;
// 403 and 415 for requests another site could have made (as cancel).
func (s *Server) serveRemove(w http.ResponseWriter, r *http.Request) {
	if err := s.decodeRemoval(w, r, &struct{}{}); err != nil {
		s.writeError(w, r, err)
		return
	}
	ref, err := jobs.ParseRef(r.PathValue("ref"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.Remover.RemoveJob(r.Context(), ref)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger().Info("stream: job removed", "job", j.ID, "remote", r.RemoteAddr)
	s.Hub.MarkChanged(j.ID) // dashboards learn that it is gone
	s.Hub.Poke()
	writeJSON(w, Removed{Removed: j})
}

// servePrune serves POST /api/prune with a PruneRequest body: 200 with a
// PruneResult.
func (s *Server) servePrune(w http.ResponseWriter, r *http.Request) {
	var q PruneRequest
	if err := s.decodeRemoval(w, r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	if q.OlderThanSeconds < 1 || q.OlderThanSeconds > maxPruneAge || q.Keep < 0 {
		s.writeError(w, r, fmt.Errorf("want older_than_seconds from 1 to %d and keep >= 0: %w", maxPruneAge, jobs.ErrInvalid))
		return
	}
	res, err := s.Remover.Prune(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res.Removed == nil {
		res.Removed = []jobs.ID{}
	}
	if len(res.Removed) > 0 {
		s.logger().Info("stream: jobs pruned", "jobs", len(res.Removed), "freed_bytes", res.FreedBytes, "remote", r.RemoteAddr)
		s.Hub.MarkChanged(res.Removed...)
		s.Hub.Poke()
	}
	writeJSON(w, res)
}

// decodeRemoval applies the rules of a request that changes something, as
// for cancel: removing is available here, the request comes from this
// site, and its body is one JSON object (at most maxCancelBody bytes),
// decoded into v without unknown fields.
func (s *Server) decodeRemoval(w http.ResponseWriter, r *http.Request, v any) error {
	if s.Remover == nil {
		return fmt.Errorf("removing jobs is not available here (use jobrun serve, or jobrun rm with the database): %w", jobs.ErrNotFound)
	}
	if err := s.allowChange(r); err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("Content-Type %q: send application/json: %w", r.Header.Get("Content-Type"), stream.ErrMediaType)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCancelBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: want a JSON object (%v): %w", err, jobs.ErrInvalid)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("body: want one JSON object: %w", jobs.ErrInvalid)
	}
	return nil
}
