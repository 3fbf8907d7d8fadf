package stream

import (
	"sync"

	"github.com/jobrun/jobrun/jobs"
)

// Batch is a contiguous run of one job's events, sent to a viewer as one
// message. Batches the Hub publishes or reads from History are shared by
// every viewer that needs them and encoded once; a private batch (see
// PrivateBatches) belongs to one consumer, which may recycle its encoding.
// A Batch is read-only once made.
type Batch struct {
	// First and Last are the seq of the first and last event.
	First, Last jobs.Seq
	// Events holds the events in seq order; do not modify them.
	Events []jobs.Event
	// HasExit reports whether the batch ends with the job's exit event.
	HasExit bool

	once    sync.Once
	json    []byte
	offs    []int  // where each event's JSON starts in json
	private bool   // for one consumer: JSON may be recycled
	parent  *Batch // a suffix of parent (after): cut from its encoding
}

// jsonBuffers recycles the JSON of private batches: a replay encodes a
// page per message, and fresh megabyte buffers would cost more to zero and
// collect than to encode.
var jsonBuffers sync.Pool

// newBatch makes a Batch of evs, which are not empty.
func newBatch(evs []jobs.Event) *Batch {
	b := &Batch{First: evs[0].Seq, Last: evs[len(evs)-1].Seq, Events: evs}
	for i := range evs {
		if evs[i].Type == jobs.TypeExit {
			b.HasExit = true
		}
	}
	return b
}

// JSON returns the batch as one JSON array (the wire form of a stream
// message). It is encoded on first use and the same bytes are returned to
// every caller: do not modify them. A suffix of a shared batch is cut from
// the shared encoding, not encoded again.
func (b *Batch) JSON() []byte {
	b.once.Do(func() {
		if p := b.parent; p != nil {
			pj := p.JSON()
			k := len(p.Events) - len(b.Events)
			rest := pj[p.offs[k]:]
			b.json = make([]byte, 0, 1+len(rest))
			b.json = append(append(b.json, '['), rest...)
			return
		}
		n := 2
		for i := range b.Events {
			n += b.Events[i].Size() + 32
		}
		var buf []byte
		if b.private {
			if p, ok := jsonBuffers.Get().(*[]byte); ok && cap(*p) >= n {
				buf = (*p)[:0]
			}
		}
		if buf == nil {
			buf = make([]byte, 0, n)
		}
		if b.private {
			b.json = jobs.AppendJSONArray(buf, b.Events)
			return
		}
		b.json, b.offs = jobs.AppendJSONArrayAt(buf, b.Events, make([]int, 0, len(b.Events)))
	})
	return b.json
}

// Recycle returns the JSON buffer of a private batch (see PrivateBatches)
// for reuse; the caller is its only user and does not touch the batch
// again. It does nothing to a shared batch.
func (b *Batch) Recycle() {
	if b.private && b.json != nil {
		p := b.json[:0]
		b.json = nil
		jsonBuffers.Put(&p)
	}
}

// after returns the part of b with seq > c; b must hold an event after c.
// The part shares b's events and is cut from b's encoding.
func (b *Batch) after(c jobs.Seq) *Batch {
	if b.First > c {
		return b
	}
	part := newBatch(b.Events[c-b.First+1:])
	if !b.private {
		part.parent = b
	}
	return part
}

// size is the memory estimate of the batch, for bounding the ring.
func (b *Batch) size() int {
	n := 0
	for i := range b.Events {
		n += b.Events[i].Size()
	}
	return n
}

// split cuts evs into runs of at most maxEvents events and about maxBytes
// bytes (at least one event each), the unit of one message.
func split(evs []jobs.Event, maxEvents, maxBytes int) [][]jobs.Event {
	var out [][]jobs.Event
	for len(evs) > 0 {
		n, bytes := 0, 0
		for n < len(evs) && n < maxEvents {
			bytes += evs[n].Size()
			n++
			if bytes >= maxBytes {
				break
			}
		}
		out = append(out, evs[:n:n])
		evs = evs[n:]
	}
	return out
}

// PrivateBatches cuts evs, in seq order, into batches of about maxBytes
// each that belong to one consumer (a collapsed history, which may have
// holes in seq): their JSON buffers come from a pool and go back to it on
// Recycle.
func PrivateBatches(evs []jobs.Event, maxBytes int) []*Batch {
	var bs []*Batch
	for _, run := range split(evs, len(evs), maxBytes) {
		b := newBatch(run)
		b.private = true
		bs = append(bs, b)
	}
	return bs
}

// sharedBatches cuts a History page into batches of about maxBytes that
// every subscriber reading it shares.
func sharedBatches(evs []jobs.Event, maxBytes int) []*Batch {
	var bs []*Batch
	for _, run := range split(evs, len(evs), maxBytes) {
		bs = append(bs, newBatch(run))
	}
	return bs
}
