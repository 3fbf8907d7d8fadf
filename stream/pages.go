package stream

import (
	"fmt"

	"github.com/jobrun/jobrun/jobs"
)

// History pages. A subscriber behind the ring reads the job's history a
// page at a time (one short read of the store, about PageBytes of events,
// encoded once). The pages are the topic's, not the subscriber's: every
// subscriber behind at the same point is served by the one read (the first
// asks, the others wait for it), a page stays cached after its read for
// the next one (up to CacheBytes per job, least recently used first out),
// and the page after a full one is read ahead while the first is being
// sent. So fifty viewers opening a large finished job at once cost about
// one replay of reads and encoding, and memory grows with the pages in use,
// not with the viewers.

// page is one History read of a job: the events after `after`, cut into
// batches that its readers share.
type page struct {
	after       jobs.Seq
	first, last jobs.Seq // of the events read; zero when there were none
	batches     []*Batch
	bytes       int
	full        bool // the read returned its limit: more may follow at once
	err         error
	ready       chan struct{} // closed when the read is done
	used        uint64        // when a subscriber last took it (pageSet.clock)
	kept        bool          // counted in pageSet.bytes
}

// pageSet is a topic's pages, read and in flight. Guarded by topic.mu.
type pageSet struct {
	pages []*page
	bytes int    // of the pages kept after their read
	clock uint64 // ticks at every take
	limit int    // events per read, adapted to their size
}

// find returns a page that serves cursor c: one read that holds c+1, or
// one in flight that reads from c.
func (ps *pageSet) find(c jobs.Seq) *page {
	for _, p := range ps.pages {
		select {
		case <-p.ready:
			if p.err == nil && p.first != 0 && p.first <= c+1 && c+1 <= p.last {
				return p
			}
		default:
			if p.after == c {
				return p
			}
		}
	}
	return nil
}

// has reports whether some page, read or in flight, starts right after c.
func (ps *pageSet) has(c jobs.Seq) bool {
	for _, p := range ps.pages {
		if p.after == c {
			return true
		}
	}
	return false
}

// remove forgets p.
func (ps *pageSet) remove(p *page) {
	for i, q := range ps.pages {
		if q == p {
			ps.pages = append(ps.pages[:i], ps.pages[i+1:]...)
			if p.kept {
				ps.bytes -= p.bytes
				p.kept = false
			}
			return
		}
	}
}

// readPage returns the page that serves the topic's cursor c, starting
// its read if there is none. t.mu is held. The caller waits on the page's
// ready channel, without the lock.
func (t *topic) readPageLocked(c jobs.Seq) (*page, error) {
	ps := &t.pages
	if p := ps.find(c); p != nil {
		ps.clock++
		p.used = ps.clock
		return p, nil
	}
	p := t.startReadLocked(c)
	if p == nil {
		return nil, ErrClosed
	}
	ps.clock++
	p.used = ps.clock
	return p, nil
}

// startReadLocked starts reading the page after c in a goroutine owned by
// the Hub (Close stops and waits for it); nil once the Hub is closed. t.mu
// is held.
func (t *topic) startReadLocked(c jobs.Seq) *page {
	h := t.h
	ps := &t.pages
	if ps.limit == 0 {
		ps.limit = max(h.opts.PageEvents/8, 1)
	}
	p := &page{after: c, ready: make(chan struct{})}
	limit := ps.limit
	if !h.goOwned(func() { t.read(p, limit) }) {
		return nil
	}
	ps.pages = append(ps.pages, p)
	return p
}

// read reads p, encodes it, and files it in the topic's pages.
func (t *topic) read(p *page, limit int) {
	h := t.h
	defer close(p.ready)
	select {
	case h.reads <- struct{}{}: // one of the MaxReads reads in flight
	case <-h.done:
		p.err = ErrClosed
		t.settle(p, 0)
		return
	}
	evs, err := h.history.Events(h.ctx, t.id, p.after, limit)
	<-h.reads
	switch {
	case err != nil:
		p.err = fmt.Errorf("read events of job %d after seq %d: %w", t.id, p.after, err)
	case len(evs) > 0 && (evs[0].Seq != p.after+1 || !jobs.Contiguous(evs)):
		p.err = fmt.Errorf("events of job %d after seq %d: got seq %d..%d, not contiguous from %d",
			t.id, p.after, evs[0].Seq, evs[len(evs)-1].Seq, p.after+1)
	case len(evs) > 0:
		p.first, p.last = evs[0].Seq, evs[len(evs)-1].Seq
		p.full = len(evs) >= limit
		p.batches = sharedBatches(evs, h.opts.PageBytes)
		for _, b := range p.batches {
			b.JSON() // here, so that reading and encoding overlap with sending
			p.bytes += b.size() + len(b.json)
		}
	}
	avg := 0
	if len(evs) > 0 {
		n := 0
		for i := range evs {
			n += evs[i].Size()
		}
		avg = max(n/len(evs), 1)
	}
	t.settle(p, avg)
}

// settle files a read page: an empty or failed one is forgotten (an empty
// answer may be stale by the next read), a good one kept within
// CacheBytes, evicting the least recently used pages beyond. avg sizes the
// next reads.
func (t *topic) settle(p *page, avg int) {
	o := t.h.opts
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := &t.pages
	if avg > 0 {
		ps.limit = min(max(o.PageBytes/avg, 16), o.PageEvents)
	}
	if p.err != nil || p.first == 0 {
		ps.remove(p)
		return
	}
	p.kept = true
	ps.bytes += p.bytes
	for ps.bytes > o.CacheBytes {
		var lru *page
		for _, q := range ps.pages {
			if q.kept && q != p && (lru == nil || q.used < lru.used) {
				lru = q
			}
		}
		if lru == nil {
			break
		}
		ps.remove(lru)
	}
}

// from returns p's batches with seq > c (the first one cut), for a
// subscriber at cursor c; p holds c+1.
func (p *page) from(c jobs.Seq) []*Batch {
	for i, b := range p.batches {
		if b.Last > c {
			out := make([]*Batch, 0, len(p.batches)-i)
			out = append(out, b.after(c))
			return append(out, p.batches[i+1:]...)
		}
	}
	return nil
}
