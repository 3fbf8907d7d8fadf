package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histogram buckets: one per microsecond below 1024 µs, then 64
// per power of two (at most 1.6 % wide) up to 2^41 µs (25 days).
const (
	exactBuckets = 1024
	subBuckets   = 64
	histBuckets  = exactBuckets + (41-10)*subBuckets
)

// hist is a latency histogram that any number of viewer goroutines add to
// without a lock: keeping every sample of 10,000 viewers would cost more
// memory than the server under test.
type hist struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64 // µs
}

// bucketOf returns the bucket of a latency of us microseconds.
func bucketOf(us int64) int {
	if us < exactBuckets {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 1 // 2^e <= us, e >= 10
	b := exactBuckets + (e-10)*subBuckets + int((us>>(e-6))&(subBuckets-1))
	return min(b, histBuckets-1)
}

// bucketMid returns the middle of bucket b, in microseconds.
func bucketMid(b int) float64 {
	if b < exactBuckets {
		return float64(b)
	}
	e := (b-exactBuckets)/subBuckets + 10
	sub := int64((b - exactBuckets) % subBuckets)
	lo := int64(1)<<e + sub<<(e-6)
	return float64(lo) + float64(int64(1)<<(e-6))/2
}

// add records one latency.
func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantile returns the latency below which a fraction q of the samples
// lie (the middle of its bucket, at most the largest sample), in
// milliseconds; 0 without samples.
func (h *hist) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n-1)) + 1
	var seen int64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			return min(bucketMid(b), float64(h.max.Load())) / 1000
		}
	}
	return float64(h.max.Load()) / 1000
}

// maxMs returns the largest latency recorded, in milliseconds.
func (h *hist) maxMs() float64 { return float64(h.max.Load()) / 1000 }
