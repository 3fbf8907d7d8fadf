package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
)

// Info is what GET /api/info answers, so that a jobrun process can tell
// what it found on a port.
type Info struct {
	App     string `json:"app"`     // "jobrun" (the default)
	Role    string `json:"role"`    // "exec" or "serve"
	Version string `json:"version"` // the build's version
	// HeartbeatSeconds is the streams' heartbeat interval (Server.Heartbeat),
	// so that pages know when a silent connection is dead; serveInfo fills
	// it in when zero.
	HeartbeatSeconds float64 `json:"heartbeat_seconds,omitempty"`
	// Access is what the request may do: "full", "read" or "share" (see
	// Scope); pages hide Cancel unless it is "full". serveInfo sets it.
	Access string `json:"access,omitempty"`
}

// JobLister lists jobs for GET /api/jobs and the dashboard stream: the
// jobs f selects (jobs.Filter.Match), at most limit (1..1000), newest
// first, with id < before when before is not 0. cmd/jobrun adapts
// *sqlite.DB to it.
type JobLister interface {
	Jobs(ctx context.Context, f jobs.Filter, limit int, before jobs.ID) ([]jobs.Job, error)
}

// Store is what Server reads: jobs, their events, range reads, and the job
// listing.
type Store interface {
	stream.History
	RangeReader
	JobLister
}

// Server serves the job API under /api/: job metadata, raw logs, range
// reads, the live streams (WebSocket, Server-Sent Events, long polling),
// the dashboard stream and cancel. Set the fields before the first
// request; the zero value of each optional field means its documented
// default.
type Server struct {
	// Hub serves the streams; required.
	Hub *stream.Hub
	// Store answers job lookups, /log, range reads and the job listing;
	// required. It is the source of truth: every answer but the live part
	// of a stream comes from it, never from the Hub's memory.
	Store Store
	// Cancel stops job id, which this process runs (POST
	// /api/jobs/{ref}/cancel and the {"type":"cancel"} stream message);
	// it is called only for jobs that are not finished. An error wrapping
	// jobs.ErrConflict means the job is not running here (409). nil means
	// this process runs no jobs: every cancel answers 409.
	Cancel func(ctx context.Context, id jobs.ID) error
	// Info is served at GET /api/info.
	Info Info
	// Logger receives internal errors. nil discards them.
	Logger *slog.Logger
	// Heartbeat is how long a stream may send nothing before an empty
	// array "[]" is sent, and the interval of protocol pings. Default 20 s.
	Heartbeat time.Duration
	// WriteTimeout bounds each stream message write; a viewer that does
	// not take a message in time is closed with 4429 (an event stream is
	// cut). Default 10 s.
	WriteTimeout time.Duration
	// DashboardInterval is the shortest time between two updates of the
	// dashboard stream (GET /api/stream), which coalesces a job's changes
	// in between. Default 250 ms.
	DashboardInterval time.Duration
	// OriginPatterns lists cross origins allowed to open a stream (see
	// websocket.AcceptOptions); the same origin is always allowed.
	OriginPatterns []string
	// Remover deletes finished jobs (DELETE /api/jobs/{ref}, POST
	// /api/prune). nil: those answer 404.
	Remover Remover
	// Metrics counts viewers by transport; nil counts nothing.
	Metrics Metrics
	// Auth signs share links (POST /api/jobs/{ref}/share); nil: that
	// answers 404. Who may do what is Gate's and AccessOf's business.
	Auth *access.Auth
	// SearchTime bounds the reading of one search request (GET
	// /api/jobs/{ref}/search), which answers how far it got for the client
	// to continue. Default 1 s.
	SearchTime time.Duration
	// SearchEvents bounds the events one search request reads; 0: only
	// SearchTime bounds it.
	SearchEvents int
	// PublicURL is the server's root as users reach it (behind a proxy):
	// share links start with it, and its origin may change things and
	// open streams. "": the request's scheme and Host.
	PublicURL string

	muxOnce sync.Once
	mux     *http.ServeMux

	viewers viewerSet // what each job's viewers need of this process (viewers.go)

	mu     sync.Mutex
	open   map[shutdowner]struct{} // open streams and the dashboard feed
	feed   *jobsFeed               // nil while nobody watches the dashboard
	closed bool
	wg     sync.WaitGroup
}

// discard is the logger of a nil Logger field: nothing here logs to a
// global.
var discard = slog.New(slog.DiscardHandler)

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return discard
}

func (s *Server) dashboardInterval() time.Duration {
	if s.DashboardInterval > 0 {
		return s.DashboardInterval
	}
	return 250 * time.Millisecond
}

func (s *Server) heartbeat() time.Duration {
	if s.Heartbeat > 0 {
		return s.Heartbeat
	}
	return 20 * time.Second
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return 10 * time.Second
}

// ServeHTTP serves the /api/ endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.muxOnce.Do(func() {
		if s.Hub == nil || s.Store == nil {
			// A wiring mistake, not a request's: say so on every request
			// rather than serve half an API.
			s.logger().Error("api: Server needs a Hub and a Store")
			s.mux = http.NewServeMux()
			s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				stream.WriteJSONError(w, http.StatusInternalServerError, "internal error: the server is misconfigured")
			})
			return
		}
		m := http.NewServeMux()
		m.HandleFunc("GET /api/info", s.serveInfo)
		m.HandleFunc("GET /api/jobs", s.serveJobs)
		m.HandleFunc("GET /api/jobs/{ref}", s.serveJob)
		m.HandleFunc("GET /api/jobs/{ref}/log", s.serveLog)
		m.HandleFunc("GET /api/jobs/{ref}/stream", s.serveStream)
		m.HandleFunc("GET /api/jobs/{ref}/events", s.serveEvents)
		m.HandleFunc("GET /api/jobs/{ref}/progress", s.serveProgress)
		m.HandleFunc("GET /api/jobs/{ref}/search", s.serveSearch)
		m.HandleFunc("POST /api/jobs/{ref}/cancel", s.serveCancel)
		m.HandleFunc("POST /api/jobs/{ref}/share", s.serveShare)
		m.HandleFunc("/api/jobs/{ref}/cancel", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			stream.WriteJSONError(w, http.StatusMethodNotAllowed, "cancel is a POST")
		})
		m.HandleFunc("GET /api/stream", s.serveDashboard)
		m.HandleFunc("DELETE /api/jobs/{ref}", s.serveRemove)
		m.HandleFunc("POST /api/prune", s.servePrune)
		m.HandleFunc("GET /api/probe/sse", s.serveProbeSSE)
		m.HandleFunc("GET /api/probe/poll", s.serveProbePoll)
		m.HandleFunc("GET /api/probe/idle", s.serveProbeIdle)
		m.HandleFunc("/api/prune", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			stream.WriteJSONError(w, http.StatusMethodNotAllowed, "prune is a POST")
		})
		m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				stream.WriteJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
				return
			}
			stream.WriteJSONError(w, http.StatusNotFound, "no such endpoint")
		})
		s.mux = m
	})
	s.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serveInfo(w http.ResponseWriter, r *http.Request) {
	info := s.Info
	if info.App == "" {
		info.App = "jobrun"
	}
	if info.HeartbeatSeconds == 0 {
		info.HeartbeatSeconds = s.heartbeat().Seconds()
	}
	info.Access = access.GrantOf(r.Context()).Scope.String()
	writeJSON(w, info)
}

func (s *Server) serveJobs(w http.ResponseWriter, r *http.Request) {
	q, err := parseJobsQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.Store.Jobs(r.Context(), q.filter, q.limit, q.before)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, NewJobsPage(list, q.limit))
}

// boolParam parses an optional flag: "1" or "true" is set; "", "0" or
// "false" is not.
func boolParam(v, name string) (bool, error) {
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, fmt.Errorf("%s=%q: want 1 or 0: %w", name, v, jobs.ErrInvalid)
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(v, name string, def, lo, hi int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d: %w", name, v, lo, hi, jobs.ErrInvalid)
	}
	return n, nil
}

// lookup resolves the {ref} of the request to a job.
func (s *Server) lookup(ctx context.Context, r *http.Request) (jobs.Job, error) {
	ref, err := jobs.ParseRef(r.PathValue("ref"))
	if err != nil {
		return jobs.Job{}, err
	}
	j, err := s.Store.Job(ctx, ref)
	if err == nil && !access.GrantOf(ctx).CanRead(j) {
		// A share link names one job; do not tell whether others exist.
		return jobs.Job{}, fmt.Errorf("this share link is for another job: %w", stream.ErrForbidden)
	}
	return j, err
}

func (s *Server) serveJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.lookup(r.Context(), r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, j)
}

// serveLog writes the job's stored output bytes (Data and EOL of line
// events) as stored when the request came, page by page.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request) {
	var want jobs.Stream
	switch v := r.URL.Query().Get("stream"); v {
	case "":
	case string(jobs.StreamStdout), string(jobs.StreamStderr), string(jobs.StreamTTY):
		want = jobs.Stream(v)
	default:
		s.writeError(w, r, fmt.Errorf("stream=%q: want stdout or stderr: %w", v, jobs.ErrInvalid))
		return
	}
	ctx := r.Context()
	j, err := s.lookup(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 64<<10)
	var cursor jobs.Seq
	for cursor < j.LastSeq {
		evs, err := s.Store.Events(ctx, j.ID, cursor, 2000)
		if err != nil {
			if ctx.Err() != nil {
				return // the client left
			}
			err = fmt.Errorf("read the log of job %d after seq %d: %w", j.ID, cursor, err)
			if cursor == 0 {
				s.writeError(w, r, err) // nothing sent yet: a plain error
				return
			}
			bw.Flush()
			s.abort(w, r, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if e.Type != jobs.TypeLine || (want != "" && e.Stream != want) {
				continue
			}
			bw.Write(e.Data)
			bw.WriteString(e.EOL)
		}
		cursor = evs[len(evs)-1].Seq
		if err := bw.Flush(); err != nil {
			return // the client left
		}
	}
	bw.Flush()
}

// abort ends a response whose status (and part of whose body) went out
// already, after err: what was written is flushed, then the connection is
// cut without the end of the body (no last chunk), so that the client sees
// a broken transfer (curl: exit 18, Go: io.ErrUnexpectedEOF), never a
// clean end of a truncated answer. It does not return.
func (s *Server) abort(w http.ResponseWriter, r *http.Request, err error) {
	s.logger().Error("api: response aborted", "method", r.Method, "path", r.URL.Path, "err", err)
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler) // net/http closes the connection, silently
}
