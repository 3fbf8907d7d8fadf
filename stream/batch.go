package stream

import (
	"sync"

	"github.com/jobrun/jobrun/jobs"
)

// Batch is a contiguous run of one job's events, sent to a viewer as one
// message. Batches published through the Hub are shared by every viewer and
// encoded once; batches read from History belong to one subscriber. A Batch
// is read-only once made.
type Batch struct {
	// First and Last are the seq of the first and last event.
	First, Last jobs.Seq
	// Events holds the events in seq order; do not modify them.
	Events []jobs.Event
	// HasExit reports whether the batch ends with the job's exit event.
	HasExit bool

	once    sync.Once
	json    []byte
	private bool // read from History for one subscriber: JSON may be recycled
}

// jsonBuffers recycles the JSON of private batches: a replay encodes a
// page per message, and fresh megabyte buffers would cost more to zero and
// collect than to encode.
var jsonBuffers sync.Pool

// newBatch makes a Batch of evs, which are contiguous and not empty.
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
// every caller: do not modify them.
func (b *Batch) JSON() []byte {
	b.once.Do(func() {
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
		b.json = jobs.AppendJSONArray(buf, b.Events)
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
func (b *Batch) after(c jobs.Seq) *Batch {
	if b.First > c {
		return b
	}
	return newBatch(b.Events[c-b.First+1:])
}

// size is the memory estimate of the batch, for bounding the ring.
func (b *Batch) size() int {
	n := 0
	for i := range b.Events {
		n += b.Events[i].Size()
	}
	return n
}

// Contiguous reports whether evs are numbered first, first+1, ...
func Contiguous(evs []jobs.Event) bool {
	for i := range evs {
		if evs[i].Seq != evs[0].Seq+jobs.Seq(i) {
			return false
		}
	}
	return true
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
// each that belong to one consumer (a History page, a collapsed history,
// which may have holes in seq): their JSON buffers come from a pool and go
// back to it on Recycle.
func PrivateBatches(evs []jobs.Event, maxBytes int) []*Batch {
	var bs []*Batch
	for _, run := range split(evs, len(evs), maxBytes) {
		b := newBatch(run)
		b.private = true
		bs = append(bs, b)
	}
	return bs
}
