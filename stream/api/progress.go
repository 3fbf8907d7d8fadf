package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// GET /api/jobs/{ref}/progress?points=N: a job's whole progress history,
// downsampled for a chart, read from the stored events page by page (one
// short read each, as range reads do) and reduced as it goes, so that
// memory stays bounded by N whatever the log's size.

// Bounds of points=.
const (
	DefaultProgressPoints = 2000
	MinProgressPoints     = 10
	MaxProgressPoints     = 10000
)

// ProgressPoint is one point of a job's progress chart (progress.Point:
// seq, time, percent, state).
type ProgressPoint = progress.Point

// progressAnswer is the body of GET /api/jobs/{ref}/progress.
type progressAnswer struct {
	Points []ProgressPoint `json:"points"`
	// LastSeq is the job's last seq when the request came: the points
	// stand for the progress events up to it, and a client adds those
	// after it (from its stream) to the chart.
	LastSeq jobs.Seq `json:"last_seq"`
}

func (s *Server) serveProgress(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r.URL.Query().Get("points"), "points", DefaultProgressPoints, MinProgressPoints, MaxProgressPoints)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	j, err := s.lookup(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	start := j.CreatedAt
	if j.StartedAt != nil {
		start = *j.StartedAt
	}
	end := time.Now()
	if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	smp := progress.NewSampler(int(n), start, end)
	g := newRanger(s.Store, nil, j.ID, j.LastSeq)
	for cursor := jobs.Seq(0); cursor < j.LastSeq; {
		evs, err := s.Store.Events(ctx, j.ID, cursor, g.pageSize(rangePageEvents))
		if err == nil {
			err = jobs.CheckRun(j.ID, evs, cursor+1)
		}
		if err != nil {
			if ctx.Err() == nil { // else the client left
				s.writeError(w, r, err)
			}
			return
		}
		if len(evs) == 0 {
			break
		}
		g.measure(evs)
		for i := range evs {
			e := &evs[i]
			if e.Seq > j.LastSeq {
				break
			}
			if e.Type == jobs.TypeProgress && e.Progress != nil {
				smp.Add(ProgressPoint{Seq: int64(e.Seq), Time: e.Time, Percent: e.Progress.Percent, State: stateOf(e.Progress)})
			}
		}
		cursor = evs[len(evs)-1].Seq
	}
	w.Header().Set(headerLastSeq, strconv.FormatInt(int64(j.LastSeq), 10))
	writeJSON(w, progressAnswer{Points: smp.Points(), LastSeq: j.LastSeq})
}

func stateOf(p *progress.Report) string {
	if p.State == "" {
		return progress.StateNormal
	}
	return p.State
}
