package progress

import (
	"slices"
	"time"
)

// Point is one point of a job's progress chart: a progress event as its
// seq, time, percent and state.
type Point struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Percent float64   `json:"percent"`
	State   string    `json:"state"`
}

// Sampler reduces a job's progress points, given in seq order, to at most
// max points for a line chart over the time from start to end. It is the
// M4 aggregation (Jugel et al., "M4: A Visualization-Oriented Time Series
// Data Aggregation", VLDB 2014) with the states kept:
//
//   - The time is cut into equal buckets (max/4 to start with). Each
//     bucket keeps its first, last, lowest and highest point: what a line
//     drawn through all its points would show in that column, so a dip or
//     a spike is never lost, and the first and last points of the job are
//     always kept.
//   - A point whose state differs from the point before it is a change of
//     state. Each bucket also keeps, for each state, the first change to
//     it within the bucket: every change of state is kept, unless several
//     fall into one bucket, where each state that began in it still shows.
//   - If the kept points are more than max (changes of state take room),
//     neighbouring buckets are merged two by two, which gives exactly what
//     buckets twice as wide would have kept, until they fit.
//
// Points are placed by time; one whose time is before its predecessor's
// bucket (a progress value held back and stored late, or a clock step)
// joins that bucket, so buckets stay in seq order. Memory: at most 8
// points per bucket, 2 * max points.
type Sampler struct {
	max        int
	start      time.Time
	span       time.Duration
	buckets    []bucket
	cur        int    // the bucket of the last point
	prevState  string // the state of the last point
	havePoints bool
}

// bucket is what a sampler keeps of one time bucket.
type bucket struct {
	used                   bool
	first, last, low, high Point
	changes                []Point // the first change to each state, at most maxStates
}

// maxStates bounds bucket.changes: the states of progress events.
const maxStates = 4

// NewSampler returns a Sampler of at most n points over the time from
// start to end.
func NewSampler(n int, start, end time.Time) *Sampler {
	span := end.Sub(start)
	if span <= 0 {
		span = time.Microsecond
	}
	return &Sampler{max: n, start: start, span: span, buckets: make([]bucket, max(n/4, 1))}
}

// Add takes the next point, in seq order.
func (s *Sampler) Add(p Point) {
	i := int(float64(len(s.buckets)) * float64(p.Time.Sub(s.start)) / float64(s.span))
	i = min(max(i, s.cur, 0), len(s.buckets)-1)
	s.cur = i
	b := &s.buckets[i]
	if s.havePoints && p.State != s.prevState && len(b.changes) < maxStates &&
		!slices.ContainsFunc(b.changes, func(c Point) bool { return c.State == p.State }) {
		b.changes = append(b.changes, p)
	}
	s.havePoints, s.prevState = true, p.State
	if !b.used {
		*b = bucket{used: true, first: p, last: p, low: p, high: p, changes: b.changes}
		return
	}
	b.last = p
	if p.Percent < b.low.Percent {
		b.low = p
	}
	if p.Percent > b.high.Percent {
		b.high = p
	}
}

// merge returns the bucket that a and b (a before it) make together.
func merge(a, b bucket) bucket {
	switch {
	case !a.used:
		return b
	case !b.used:
		return a
	}
	m := a
	m.last = b.last
	if b.low.Percent < m.low.Percent {
		m.low = b.low
	}
	if b.high.Percent > m.high.Percent {
		m.high = b.high
	}
	m.changes = slices.Clone(a.changes)
	for _, c := range b.changes {
		if !slices.ContainsFunc(m.changes, func(x Point) bool { return x.State == c.State }) {
			m.changes = append(m.changes, c)
		}
	}
	return m
}

// Points returns the kept points in seq order, at most max of them.
func (s *Sampler) Points() []Point {
	for {
		out := s.collect()
		if len(out) <= s.max || len(s.buckets) == 1 {
			return out
		}
		half := make([]bucket, (len(s.buckets)+1)/2)
		for i := range half {
			if 2*i+1 < len(s.buckets) {
				half[i] = merge(s.buckets[2*i], s.buckets[2*i+1])
			} else {
				half[i] = s.buckets[2*i]
			}
		}
		s.buckets = half
	}
}

// collect returns every bucket's kept points, without duplicates, in seq
// order.
func (s *Sampler) collect() []Point {
	out := []Point{}
	for _, b := range s.buckets {
		if !b.used {
			continue
		}
		keep := append([]Point{b.first, b.low, b.high, b.last}, b.changes...)
		slices.SortFunc(keep, func(x, y Point) int { return int(x.Seq - y.Seq) })
		out = append(out, slices.CompactFunc(keep, func(x, y Point) bool { return x.Seq == y.Seq })...)
	}
	return out
}
