package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// Probes: endpoints for `jobrun doctor`, which checks the path from a
// user's machine to the server (proxies, load balancers) the way a page
// uses it. Each behaves like the real transport on the wire (the same
// headers, the same absence of traffic) but touches no job:
//
//	GET /api/probe/sse?hold=D    an event stream: one event at once, a second after D (at most 10 s), then the end
//	GET /api/probe/poll?wait=D   a long poll that answers {"waited_ms":N} after D (at most MaxWait)
//	GET /api/probe/idle?max=D    a WebSocket on which the server sends nothing, not even pings, until the
//	                             client leaves or D passes (at most 10 min; then 1000)
//
// A proxy that buffers event streams delivers the first probe event only
// with the second; one that cuts idle connections ends the idle probe
// before max.

// Bounds of the probes' durations.
const (
	maxProbeHold = 10 * time.Second
	MaxProbeIdle = 10 * time.Minute
)

// probeDuration parses a probe's duration parameter: def when absent, at
// most hi.
func probeDuration(r *http.Request, name string, def, hi time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > hi {
		return 0, fmt.Errorf("%s=%q: want a duration from 0 to %s: %w", name, v, hi, jobs.ErrInvalid)
	}
	return d, nil
}

// serveProbeSSE serves GET /api/probe/sse.
func (s *Server) serveProbeSSE(w http.ResponseWriter, r *http.Request) {
	hold, err := probeDuration(r, "hold", 2*time.Second, maxProbeHold)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, done, ok := s.trackRequest(r.Context())
	if !ok {
		s.writeError(w, r, stream.ErrShuttingDown)
		return
	}
	defer done()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // as the job streams: nginx must not buffer
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	es := eventStream{w: w, rc: http.NewResponseController(w), timeout: s.writeTimeout()}
	start := time.Now()
	if es.write(probeEvent(1, start)) != nil {
		return
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	es.write(probeEvent(2, start))
}

// probeEvent is probe event n, with the server's milliseconds since start.
func probeEvent(n int, start time.Time) []byte {
	return fmt.Appendf(nil, "event: probe\nid: %d\ndata: {\"n\":%d,\"ms\":%d}\n\n", n, n, time.Since(start).Milliseconds())
}

// serveProbePoll serves GET /api/probe/poll.
func (s *Server) serveProbePoll(w http.ResponseWriter, r *http.Request) {
	wait, err := probeDuration(r, "wait", 20*time.Second, MaxWait)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, done, ok := s.trackRequest(r.Context())
	if !ok {
		s.writeError(w, r, stream.ErrShuttingDown)
		return
	}
	defer done()
	start := time.Now()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "{\"waited_ms\":%d}\n", time.Since(start).Milliseconds())
}

// serveProbeIdle serves GET /api/probe/idle: a silent WebSocket.
func (s *Server) serveProbeIdle(w http.ResponseWriter, r *http.Request) {
	max, err := probeDuration(r, "max", MaxProbeIdle, MaxProbeIdle)
	if !stream.IsUpgrade(r) {
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		stream.WriteJSONError(w, http.StatusUpgradeRequired, "this endpoint is a WebSocket")
		return
	}
	c, aerr := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.originPatterns()})
	if aerr != nil {
		return
	}
	if err != nil {
		c.Close(s.closeFor(err, "open "+r.URL.Path))
		return
	}
	wc := s.register(c, r.RemoteAddr, &viewer{})
	if wc == nil {
		c.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.unregister(wc)
	// No pinger and no writes: the connection stays silent. Reading
	// notices the client leaving (and answers its pings, if any).
	c.SetReadLimit(clientReadLimit)
	t := time.AfterFunc(max, func() {
		wc.close(websocket.StatusNormalClosure, "idle probe over")
	})
	defer t.Stop()
	for {
		if _, _, err := c.Read(wc.ctx); err != nil {
			return
		}
	}
}
