package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// Long polling is the last fallback of the pages, for proxies that pass
// neither WebSockets nor event streams: GET /api/jobs/{ref}/events with
// wait=... answers at once with what is stored after the cursor, else
// waits on a Subscription for the next live batch, for at most wait.

// serveLongPoll answers with the events after q.after as soon as there are
// any, [] when q.wait passes first, 204 when the job ended at or before
// q.after.
func (s *Server) serveLongPoll(w http.ResponseWriter, r *http.Request, q eventsQuery) {
	j, ok := s.openEvents(w, r, q)
	if !ok {
		return
	}
	// A poller is a viewer until an answer holds the exit event.
	s.viewers.beginPoll(j.ID)
	gotExit := false
	defer func() { s.viewers.endPoll(j.ID, gotExit) }()
	if q.after < j.LastSeq {
		// Stored already: a range read.
		evs, last, err := s.readRange(r.Context(), j, q)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		gotExit = hasExit(evs)
		writeEvents(w, evs, last)
		return
	}
	ctx, done, ok := s.trackRequest(r.Context())
	if !ok {
		s.writeError(w, r, stream.ErrShuttingDown)
		return
	}
	defer done()
	defer s.viewer(TransportLongPoll, false)()
	sub := s.Hub.Subscribe(j.ID, q.after)
	defer sub.Close()
	wctx, cancel := context.WithTimeout(ctx, q.wait)
	b, err := sub.Next(wctx)
	cancel()
	var evs []jobs.Event
	switch {
	case err == nil:
		evs = b.Events
		bud := budget{limit: q.limit, bytes: MaxAnswerBytes}
		n := 0
		for n < len(evs) && bud.take(evs[n].Size()) {
			n++
		}
		evs = evs[:n]
	case errors.Is(err, io.EOF):
		w.WriteHeader(http.StatusNoContent) // not reached: EOF follows a batch
		return
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, stream.ErrClosed):
		// The wait is over, the client left or the server is closing: [].
	default:
		s.writeError(w, r, fmt.Errorf("job %d: wait for events after %d: %w", j.ID, q.after, err))
		return
	}
	last := j.LastSeq
	if len(evs) > 0 {
		last = max(last, evs[len(evs)-1].Seq)
	}
	gotExit = hasExit(evs)
	writeEvents(w, evs, last)
}

// hasExit reports whether evs hold the exit event.
func hasExit(evs []jobs.Event) bool {
	return len(evs) > 0 && evs[len(evs)-1].Type == jobs.TypeExit
}
