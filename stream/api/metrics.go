package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/jobrun/jobrun/stream"
)

// Transports, as Metrics names them.
const (
	TransportWS        = "ws"        // GET /api/jobs/{ref}/stream
	TransportSSE       = "sse"       // GET /api/jobs/{ref}/events with Accept: text/event-stream
	TransportLongPoll  = "longpoll"  // GET /api/jobs/{ref}/events?wait=..., while it waits
	TransportDashboard = "dashboard" // GET /api/stream
)

// Metrics receives what a Server counts, for monitoring:
// cmd/jobrun exports it in Prometheus' format at GET /metrics. Methods are
// called on the streams' paths (never per event) and must not block. A nil
// Metrics counts nothing.
type Metrics interface {
	// ViewerOpened and ViewerClosed bracket one viewer connection of a
	// transport (a long poll only while it waits).
	ViewerOpened(transport string)
	ViewerClosed(transport string)
	// ViewerDropped counts a viewer that was closed because it fell
	// behind: 4429 on a WebSocket, an event stream cut by its write
	// timeout.
	ViewerDropped(transport string)
	// ViewerResumed counts a stream opened with a resume point (after > 0
	// or Last-Event-ID): a viewer that reconnected.
	ViewerResumed(transport string)
}

// noMetrics is the nil Metrics.
type noMetrics struct{}

func (noMetrics) ViewerOpened(string)  {}
func (noMetrics) ViewerClosed(string)  {}
func (noMetrics) ViewerDropped(string) {}
func (noMetrics) ViewerResumed(string) {}

func (s *Server) metrics() Metrics {
	if s.Metrics != nil {
		return s.Metrics
	}
	return noMetrics{}
}

// viewer counts one viewer connection from now until the returned func is
// called; resumed says it reconnected.
func (s *Server) viewer(transport string, resumed bool) (closed func()) {
	m := s.metrics()
	m.ViewerOpened(transport)
	if resumed {
		m.ViewerResumed(transport)
	}
	return func() { m.ViewerClosed(transport) }
}

// healthBody is the body of GET /healthz.
type healthBody struct {
	Status string `json:"status"`          // "ok", "degraded" or "unavailable"
	Error  string `json:"error,omitempty"` // why not ok
}

// Health serves GET /healthz: 200 {"status":"ok"} when ping (such as a
// query of the database) succeeds within 5 s and writes (nil: none)
// reports nothing; else 503 with {"status":"unavailable","error":"..."}
// when ping fails, or {"status":"degraded","error":"..."} when the
// database answers but writes reports why its writes fail (a full disk):
// a server that cannot store what agents send is not healthy either. It
// is meant for load balancers and process supervisors, and says nothing
// about jobs.
func Health(ping func(ctx context.Context) error, writes func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			stream.WriteJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		body := healthBody{Status: "ok"}
		if err := ping(ctx); err != nil {
			body = healthBody{Status: "unavailable", Error: err.Error()}
		} else if writes != nil {
			if err := writes(); err != nil {
				body = healthBody{Status: "degraded", Error: err.Error()}
			}
		}
		if body.Status != "ok" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(body)
			return
		}
		writeJSON(w, body)
	})
}
