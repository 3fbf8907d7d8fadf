package api

import (
	"context"
	"sync"
)

// shutdowner is something open that Server.Close must end: a WebSocket, an
// event stream or long poll in progress, the dashboard feed.
type shutdowner interface {
	shutdown()
}

// track registers x for Close and counts it in s.wg; false when the server
// is closed (then x must not start).
func (s *Server) track(x shutdowner) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.trackLocked(x)
	return true
}

// trackLocked is track of a server known to be open; s.mu is held.
func (s *Server) trackLocked(x shutdowner) {
	if s.open == nil {
		s.open = make(map[shutdowner]struct{})
	}
	s.open[x] = struct{}{}
	s.wg.Add(1)
}

// untrack is the end of a tracked x: its goroutine is about to return.
func (s *Server) untrack(x shutdowner) {
	s.mu.Lock()
	delete(s.open, x)
	s.mu.Unlock()
	s.wg.Done()
}

// Connections is the number of streams, long polls and dashboards open now.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Close ends everything open: WebSocket streams are closed with 1001
// "server shutting down" (an http.Server's Shutdown leaves hijacked
// connections alone), event streams end, long polls answer [] at once, the
// dashboard feed stops; then it waits for their goroutines. Streams opened
// later are refused (1001, or 503 for event streams and long polls). It is
// safe to call more than once and from several goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	open := make([]shutdowner, 0, len(s.open))
	for x := range s.open {
		open = append(open, x)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, x := range open {
		wg.Go(x.shutdown)
	}
	wg.Wait()
	s.wg.Wait()
	return nil
}

// request is a long-lived HTTP response in progress (an event stream or a
// long poll): Close cancels its context.
type request struct {
	cancel context.CancelFunc
}

func (r *request) shutdown() { r.cancel() }

// trackRequest returns the context of a long-lived response, which ends
// when the client leaves or the server closes, and done, which the handler
// calls when it returns. ok is false when the server is closed.
func (s *Server) trackRequest(parent context.Context) (ctx context.Context, done func(), ok bool) {
	ctx, cancel := context.WithCancel(parent)
	r := &request{cancel: cancel}
	if !s.track(r) {
		cancel()
		return nil, nil, false
	}
	return ctx, func() {
		cancel()
		s.untrack(r)
	}, true
}
