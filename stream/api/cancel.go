package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// maxCancelBody bounds the JSON body of POST /api/jobs/{ref}/cancel.
const maxCancelBody = 4 << 10

// serveCancel serves POST /api/jobs/{ref}/cancel with a JSON object body
// ({}): 202 when the cancel was sent to the job, 409 when the job is not
// running here, 404 for an unknown job; 403 and 415 for requests another
// site could have made.
func (s *Server) serveCancel(w http.ResponseWriter, r *http.Request) {
	if err := s.allowChange(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkJSONBody(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	ref, err := jobs.ParseRef(r.PathValue("ref"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.Store.Job(r.Context(), ref)
	if err == nil {
		err = s.cancel(r.Context(), j.ID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(notice{Type: "notice", Message: "cancel requested"})
}

// cancel asks Server.Cancel to stop job id, after checking that the job
// exists and has not finished.
func (s *Server) cancel(ctx context.Context, id jobs.ID) error {
	j, err := s.Store.Job(ctx, jobs.Ref{ID: id})
	if err != nil {
		return err
	}
	if j.Status.Final() {
		return fmt.Errorf("job %d has already %s: %w", id, finishedVerb(j.Status), jobs.ErrConflict)
	}
	if s.Cancel == nil {
		return fmt.Errorf("job %d is not run by this process; cancel it where it runs: %w", id, jobs.ErrConflict)
	}
	if err := s.Cancel(ctx, id); err != nil {
		return fmt.Errorf("cancel job %d: %w", id, err)
	}
	return nil
}

// finishedVerb says how a job ended, for messages.
func finishedVerb(st jobs.Status) string {
	switch st {
	case jobs.StatusLost:
		return "been lost"
	case jobs.StatusCanceled:
		return "been canceled"
	}
	return string(st)
}

// checkJSONBody requires Content-Type: application/json and a body that is
// one JSON object of at most maxCancelBody bytes.
func checkJSONBody(w http.ResponseWriter, r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("Content-Type %q: send application/json: %w", r.Header.Get("Content-Type"), stream.ErrMediaType)
	}
	body := http.MaxBytesReader(w, r.Body, maxCancelBody)
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(body)
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return fmt.Errorf("body: want a JSON object such as {}: %w", jobs.ErrInvalid)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("body: want one JSON object: %w", jobs.ErrInvalid)
	}
	return nil
}
