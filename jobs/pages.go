package jobs

// PageSizer sizes the reads of a job's log: about Bytes of events per
// read, at most MaxEvents, from the average size of the events read so
// far. The zero value needs Bytes and MaxEvents set.
type PageSizer struct {
	Bytes     int // the target size of one read (Event.Size)
	MaxEvents int // the most events one read asks for
	avg       int // average event size seen so far
}

// Next returns how many events to read next, at most want (and at least
// one).
func (g *PageSizer) Next(want int) int {
	n := g.MaxEvents
	if g.avg > 0 {
		n = max(g.Bytes/g.avg, 16)
	}
	return max(min(n, want, g.MaxEvents), 1)
}

// Measure learns from the events of a read.
func (g *PageSizer) Measure(evs []Event) {
	if len(evs) == 0 {
		return
	}
	bytes := 0
	for i := range evs {
		bytes += evs[i].Size()
	}
	g.avg = max(bytes/len(evs), 1)
}
