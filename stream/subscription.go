package stream

import (
	"context"
	"io"
	"sort"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Subscription is one viewer's cursor on a job: the last seq it was given.
// It has no queue: Next serves from the topic's ring when the ring covers
// the cursor, else from the topic's History pages (pages.go), else waits.
// Next is called from one goroutine at a time; Close may be called from
// any goroutine.
type Subscription struct {
	hub *Hub
	t   *topic

	// Owned by the goroutine calling Next.
	cursor  jobs.Seq    // last seq returned by Next
	eof     bool        // the exit event was returned
	pending []*Batch    // of a History page, not yet returned
	idle    *time.Timer // NextWithin's, reused: no allocation per call

	// Guarded by t.mu.
	acked    jobs.Seq // the consumer is done with every seq <= acked
	isClosed bool

	closed chan struct{} // closed by Close
}

// Close ends the subscription: a Next in progress or later returns
// ErrClosed. It is safe to call more than once.
func (s *Subscription) Close() {
	t := s.t
	t.mu.Lock()
	if s.isClosed {
		t.mu.Unlock()
		return
	}
	s.isClosed = true
	close(s.closed)
	delete(t.subs, s)
	t.progressLocked()
	idle := t.idleLocked()
	t.mu.Unlock()
	if idle {
		s.hub.dropIfIdle(t)
	}
}

// Next returns the next batch: the events right after the last one it
// returned, in seq order. It blocks until there is one, ctx is done
// (ctx.Err()), or the subscription or Hub is closed (ErrClosed). After the
// batch holding the job's exit event it returns io.EOF. A History read in
// progress goes on when ctx ends: the next call, or another subscriber,
// takes its page.
//
// Calling Next also tells the Hub that the previous batch was delivered
// (see Hub.WaitDelivered).
func (s *Subscription) Next(ctx context.Context) (*Batch, error) {
	return s.NextWithin(ctx, 0)
}

// NextWithin is Next that also gives up waiting after d (0: never), with
// context.DeadlineExceeded: a stream's heartbeat. Unlike a context with a
// timeout, it allocates nothing per call, which matters at thousands of
// viewers.
func (s *Subscription) NextWithin(ctx context.Context, d time.Duration) (*Batch, error) {
	h, t := s.hub, s.t
	var idle <-chan time.Time
	if d > 0 {
		if s.idle == nil {
			s.idle = time.NewTimer(d)
		} else {
			s.idle.Reset(d)
		}
		defer s.idle.Stop()
		idle = s.idle.C
	}
	t.mu.Lock()
	if s.isClosed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if s.acked < s.cursor {
		s.acked = s.cursor
		t.progressLocked()
	}
	t.mu.Unlock()
	if s.eof {
		return nil, io.EOF
	}
	for {
		if len(s.pending) > 0 {
			return s.takePending(), nil
		}
		t.mu.Lock()
		if s.isClosed || h.isClosed() {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		notify := t.notify
		b := t.fromRingLocked(s.cursor)
		local := t.local
		// A job published here needs History only when the ring does not
		// reach back to the cursor; one published elsewhere always does.
		var p *page
		var err error
		if b == nil && (!local || s.cursor < t.lastPub) {
			p, err = t.readPageLocked(s.cursor)
		}
		t.mu.Unlock()

		switch {
		case b != nil:
			return s.deliver(b), nil
		case err != nil:
			return nil, err
		case p != nil:
			if err := s.takePage(ctx, p, idle); err != nil {
				return nil, err
			}
			if len(s.pending) > 0 {
				continue
			}
		}
		// Nothing new. notify was taken before the read, so a publish or
		// poke that came after it has closed it already. The Hub asks its
		// Changes while anyone waits, also for a job published here:
		// another process may take it over (an agent that reconnects to
		// another replica).
		h.addWaiter()
		select {
		case <-notify:
		case <-idle:
			err = context.DeadlineExceeded
		case <-ctx.Done():
			err = ctx.Err()
		case <-s.closed:
			err = ErrClosed
		case <-h.done:
			err = ErrClosed
		}
		h.waiting.Add(-1)
		if err != nil {
			return nil, err
		}
	}
}

// takePage waits for page p and makes its batches after the cursor
// pending; after a full page it starts reading the next one, so that the
// store reads while this subscriber sends.
func (s *Subscription) takePage(ctx context.Context, p *page, idle <-chan time.Time) error {
	select {
	case <-p.ready:
	case <-idle:
		return context.DeadlineExceeded
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return ErrClosed
	case <-s.hub.done:
		return ErrClosed
	}
	if p.err != nil {
		return p.err
	}
	if p.first == 0 || p.last <= s.cursor {
		return nil // nothing after the cursor (an empty read may be stale: not kept)
	}
	s.pending = p.from(s.cursor)
	if p.full {
		t := s.t
		t.mu.Lock()
		if !t.pages.has(p.last) {
			t.startReadLocked(p.last)
		}
		t.mu.Unlock()
	}
	return nil
}

// fromRingLocked returns the ring's events after cursor c (one batch, cut
// when it straddles c), or nil when the ring does not cover c+1 or holds
// nothing after c.
func (t *topic) fromRingLocked(c jobs.Seq) *Batch {
	n := len(t.ring)
	if n == 0 || t.ring[0].First > c+1 || t.ring[n-1].Last <= c {
		return nil
	}
	i := sort.Search(n, func(i int) bool { return t.ring[i].Last > c })
	return t.ring[i].after(c)
}

// deliver advances the cursor past b and returns it.
func (s *Subscription) deliver(b *Batch) *Batch {
	s.cursor = b.Last
	if b.HasExit {
		s.eof = true
		s.pending = nil
	}
	return b
}

// takePending returns the next message-sized batch of the page being sent.
func (s *Subscription) takePending() *Batch {
	b := s.pending[0]
	s.pending[0] = nil
	s.pending = s.pending[1:]
	if len(s.pending) == 0 {
		s.pending = nil
	}
	return s.deliver(b)
}
