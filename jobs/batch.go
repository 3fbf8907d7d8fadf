package jobs

// batchQueue holds the events waiting for the next commit as a queue of
// batches: every batch but the last is full (maxBatchEvents events or
// maxBatchBytes), and a commit takes the first one whole. Events are never
// copied from one slice to another (they carry pointers, which makes
// copying them expensive for the garbage collector), and a new batch is
// sized after the last one taken, so that under a steady load appends do
// not have to grow it either.
type batchQueue struct {
	batches [][]Event
	sizes   []int // Event.Size sums, per batch
	n       int   // events in all batches
	bytes   int   // sizes in all batches
	hint    int   // capacity of the next new batch
	peak    int   // the most events ever held (for tests)
}

// push appends e to the last batch, starting a new one if it is full.
func (q *batchQueue) push(e Event) {
	last := len(q.batches) - 1
	if last < 0 || len(q.batches[last]) >= maxBatchEvents || q.sizes[last] >= maxBatchBytes {
		q.batches = append(q.batches, make([]Event, 0, max(64, q.hint)))
		q.sizes = append(q.sizes, 0)
		last++
	}
	q.batches[last] = append(q.batches[last], e)
	q.sizes[last] += e.Size()
	q.n++
	q.bytes += e.Size()
	q.peak = max(q.peak, q.n)
}

// take removes the first batch and returns it; the caller owns it.
func (q *batchQueue) take() []Event {
	b := q.batches[0]
	q.n -= len(b)
	q.bytes -= q.sizes[0]
	q.batches[0] = nil
	q.batches, q.sizes = q.batches[1:], q.sizes[1:]
	q.hint = min(maxBatchEvents, 2*len(b))
	return b[:len(b):len(b)]
}

// full reports whether the readers should wait for a commit.
func (q *batchQueue) full() bool { return q.n >= maxPendingEvents || q.bytes >= maxPendingBytes }

// reset drops everything.
func (q *batchQueue) reset() { *q = batchQueue{} }
