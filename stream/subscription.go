package stream

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/jobrun/jobrun/jobs"
)

// Subscription is one viewer's cursor on a job: the last seq it was given.
// It has no queue: Next serves from the Hub's ring when the ring covers the
// cursor, else from History, else waits. Next is called from one goroutine
// at a time; Close may be called from any goroutine.
type Subscription struct {
	hub *Hub
	t   *topic

	// Owned by the goroutine calling Next.
	cursor  jobs.Seq  // last seq returned by Next
	eof     bool      // the exit event was returned
	pending []*Batch  // read from History, not yet returned
	limit   int       // events per History read, adapted to their size
	ahead   chan page // the read ahead in flight, if any

	// Guarded by hub.mu.
	acked    jobs.Seq // the consumer is done with every seq <= acked
	isClosed bool

	closed chan struct{} // closed by Close
}

// Close ends the subscription: a Next in progress or later returns
// ErrClosed. It is safe to call more than once.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.isClosed {
		return
	}
	s.isClosed = true
	close(s.closed)
	delete(s.t.subs, s)
	s.t.progressLocked()
	h.dropIfIdleLocked(s.t)
}

// Next returns the next batch: the events right after the last one it
// returned, in seq order. It blocks until there is one, ctx is done
// (ctx.Err()), or the subscription or Hub is closed (ErrClosed). After the
// batch holding the job's exit event it returns io.EOF. ctx bounds the
// waiting only: a History read in progress (one page) completes first.
//
// Calling Next also tells the Hub that the previous batch was delivered
// (see Hub.WaitDelivered).
func (s *Subscription) Next(ctx context.Context) (*Batch, error) {
	h := s.hub
	h.mu.Lock()
	if s.isClosed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if s.acked < s.cursor {
		s.acked = s.cursor
		s.t.progressLocked()
	}
	h.mu.Unlock()
	if s.eof {
		return nil, io.EOF
	}
	for {
		if len(s.pending) > 0 {
			return s.takePending(), nil
		}
		h.mu.Lock()
		if s.isClosed || h.isClosed() {
			h.mu.Unlock()
			return nil, ErrClosed
		}
		t := s.t
		notify := t.notify
		b := t.fromRingLocked(s.cursor)
		local := t.local
		// A job published here needs History only when the ring does not
		// reach back to the cursor; one published elsewhere always does.
		read := b == nil && (!local || s.cursor < t.lastPub)
		h.mu.Unlock()

		if b != nil {
			return s.deliver(b), nil
		}
		if read {
			if err := s.readHistory(ctx); err != nil {
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
		var err error
		select {
		case <-notify:
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

// takePending returns the next message-sized batch of the events read from
// History.
func (s *Subscription) takePending() *Batch {
	b := s.pending[0]
	s.pending[0] = nil
	s.pending = s.pending[1:]
	if len(s.pending) == 0 {
		s.pending = nil
	}
	return s.deliver(b)
}

// page is the result of one History read.
type page struct {
	after   jobs.Seq
	evs     []jobs.Event
	batches []*Batch // evs cut into batches, already encoded
	err     error
}

// readHistory reads the next page after the cursor into s.pending. After a
// full page it starts reading the following one, so that the store reads
// while the consumer encodes and writes.
func (s *Subscription) readHistory(ctx context.Context) error {
	id := s.t.id
	var p page
	if s.ahead != nil {
		p = <-s.ahead // one bounded page read
		s.ahead = nil
	}
	// A read ahead is used only when it starts at the cursor and found
	// something: an empty answer may be stale by now.
	if p.after != s.cursor || p.err != nil || len(p.evs) == 0 {
		p.evs, p.err = s.hub.history.Events(context.WithoutCancel(ctx), id, s.cursor, s.limit)
		p.batches = nil
	}
	evs, err := p.evs, p.err
	if err != nil {
		return fmt.Errorf("read events of job %d after seq %d: %w", id, s.cursor, err)
	}
	if len(evs) == 0 {
		return nil
	}
	if evs[0].Seq != s.cursor+1 || !Contiguous(evs) {
		return fmt.Errorf("events of job %d after seq %d: got seq %d..%d, not contiguous from %d",
			id, s.cursor, evs[0].Seq, evs[len(evs)-1].Seq, s.cursor+1)
	}
	full := len(evs) >= s.limit
	// Size the next read to about one message.
	bytes := 0
	for i := range evs {
		bytes += evs[i].Size()
	}
	avg := max(bytes/len(evs), 1)
	s.limit = min(max(s.hub.opts.PageBytes/avg, 16), s.hub.opts.PageEvents)
	s.pending = p.batches
	if s.pending == nil {
		s.pending = PrivateBatches(evs, s.hub.opts.PageBytes)
	}
	if full {
		s.readAhead(evs[len(evs)-1].Seq)
	}
	return nil
}

// readAhead starts reading the page after seq in a goroutine owned by the
// Hub (Hub.Close cancels and waits for it); readHistory collects it.
func (s *Subscription) readAhead(after jobs.Seq) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.isClosed || h.isClosed() {
		return
	}
	h.wg.Add(1)
	ch := make(chan page, 1)
	s.ahead = ch
	id, limit := s.t.id, s.limit
	go func() {
		defer h.wg.Done()
		evs, err := h.history.Events(h.ctx, id, after, limit)
		p := page{after: after, evs: evs, err: err}
		if err == nil && len(evs) > 0 {
			// Encode here too, so that reading and encoding the next
			// page overlap with writing this one.
			p.batches = PrivateBatches(evs, h.opts.PageBytes)
			for _, b := range p.batches {
				b.JSON()
			}
		}
		ch <- p
	}()
}
