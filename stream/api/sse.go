package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// sseHeartbeat is the named event an idle event stream sends every
// Heartbeat. A comment would be invisible to the page, which needs to see
// that the connection is alive; an event needs data to be dispatched.
var sseHeartbeat = []byte("event: heartbeat\ndata: {}\n\n")

// serveSSE serves the job's events as Server-Sent Events: each event is
// "id: <seq>" and "data: <event JSON>", from after (or Last-Event-ID) to
// the exit event, after which the response ends.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, q eventsQuery) {
	j, ok := s.openEvents(w, r, q)
	if !ok {
		return
	}
	ctx, done, ok := s.trackRequest(r.Context())
	if !ok {
		s.writeError(w, r, stream.ErrShuttingDown)
		return
	}
	defer done()
	defer s.viewer(TransportSSE, q.after > 0)()
	v := s.viewers.openStream(j.ID)
	defer s.viewers.closeStream(v)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cut := func() { cancel() }
	v.cut.Store(&cut)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(headerLastSeq, strconv.FormatInt(int64(j.LastSeq), 10))
	w.WriteHeader(http.StatusOK)
	es := eventStream{w: w, rc: http.NewResponseController(w), timeout: s.writeTimeout(), view: v}
	if err := es.write(nil); err != nil {
		return
	}

	sub := s.Hub.Subscribe(j.ID, q.after)
	defer sub.Close()
	src := newSource(sub, q.after, j.LastSeq, q.collapse, s.Hub.PageBytes())
	hb := s.heartbeat()
	var buf []byte
	for {
		b, err := src.NextWithin(ctx, hb)
		switch {
		case err == nil:
			buf = appendSSE(buf[:0], b.Events)
			exit := b.HasExit
			b.Recycle()
			err := es.write(buf)
			if err == nil && exit {
				v.exit.Store(true)
			}
			if err != nil || exit {
				s.droppedSSE(ctx, err)
				return
			}
		case errors.Is(err, io.EOF), ctx.Err() != nil, errors.Is(err, stream.ErrClosed):
			return // the end, the client left, or the server is closing
		case errors.Is(err, context.DeadlineExceeded):
			if err := es.write(sseHeartbeat); err != nil {
				s.droppedSSE(ctx, err)
				return
			}
		default:
			// The status is sent: cut the stream without its end, so that
			// the client sees a failure, not the end of the job's events
			// (EventSource reconnects with Last-Event-ID either way).
			s.abort(w, r, fmt.Errorf("event stream of job %d: next batch: %w", j.ID, err))
		}
		if cap(buf) > 4<<20 {
			buf = nil // do not keep a huge buffer for a quiet stream
		}
	}
}

// droppedSSE counts an event stream cut because a write missed its
// deadline (the viewer does not keep up), not because it left.
func (s *Server) droppedSSE(ctx context.Context, err error) {
	if err != nil && ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		s.metrics().ViewerDropped(TransportSSE)
	}
}

// appendSSE appends evs as Server-Sent Events. Event JSON holds no raw
// newline (the encoder escapes control characters), so one data line
// carries it.
func appendSSE(b []byte, evs []jobs.Event) []byte {
	for i := range evs {
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, int64(evs[i].Seq), 10)
		b = append(b, "\ndata: "...)
		b = evs[i].AppendJSON(b)
		b = append(b, "\n\n"...)
	}
	return b
}

// eventStream writes an event stream with a deadline on its progress, so
// a client that stops reading is dropped instead of holding the handler,
// while one that reads slowly is not: p goes out progressChunk at a time,
// each within the timeout.
type eventStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	view    *viewer // records the progress; nil: none
}

// write writes p and flushes it.
func (es *eventStream) write(p []byte) error {
	if es.view != nil {
		es.view.beginWrite()
		defer es.view.endWrite()
	}
	for first := true; first || len(p) > 0; first = false {
		if err := es.rc.SetWriteDeadline(time.Now().Add(es.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		n := min(len(p), progressChunk)
		if n > 0 {
			if _, err := es.w.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		if len(p) == 0 {
			if err := es.rc.Flush(); err != nil {
				return err
			}
		}
		if es.view != nil {
			es.view.wrote()
		}
	}
	return nil
}
