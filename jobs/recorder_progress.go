package jobs

import (
	"time"

	"github.com/jobrun/jobrun/jobs/progress"
)

// The recorder's progress: each piece of output is parsed by its stream's
// progress.Parser as the recorder makes it, and what is found goes through
// the job's progress.Coalescer before it becomes an event.

// maxProgressSegment bounds the bytes of a segment (a line or a
// "\r"-segment) that arrives in several pieces and is parsed whole for
// progress; a longer one is not parsed. Progress displays and directives
// fit on a terminal line.
const maxProgressSegment = 4 << 10

// setProgress gives the streams their parsers (nil: off) and sets the
// least time between two progress events. Called before run.
func (r *recorder) setProgress(parsers [2]*progress.Parser, interval time.Duration) {
	for i, p := range parsers {
		r.streams[i].parser = p
	}
	r.coal.Interval = interval
	r.noCoalesce = interval < 0
}

// progressLine returns the bytes to parse for progress when piece pc is
// emitted, if any. Progress is found per segment: a line or a
// "\r"-segment. Most segments come whole in one piece. A segment cut into
// fragments (no terminator for FlushAfter, as a bar drawn after its "\r"
// waits for its next redraw) is parsed as it grows: each fragment with
// the fragments before it, so that a slow bar shows at once; the
// terminator alone is not parsed again.
func (st *recStream) progressLine(pc piece) (line []byte, parse bool) {
	ends := pc.EOL != ""
	switch {
	case st.segSkip:
	case len(st.seg) == 0:
		line, parse = pc.Data, true
		if !ends {
			if len(pc.Data) <= maxProgressSegment {
				st.seg = append(st.seg, pc.Data...)
			} else {
				st.segSkip = true
			}
		}
	case len(pc.Data) == 0:
	case len(st.seg)+len(pc.Data) > maxProgressSegment:
		st.segSkip = true
	default:
		st.seg = append(st.seg, pc.Data...)
		line, parse = st.seg, true
	}
	if ends {
		st.seg, st.segSkip = st.seg[:0], false
	}
	return line, parse
}

// offerProgress hands a value found at t to the coalescer: it becomes an
// event now, right after the line event it was found in, or is held back
// until the coalescer's deadline (progressDue), a later value, or the end.
func (r *recorder) offerProgress(p progress.Report, t time.Time) {
	if r.noCoalesce || r.coal.Offer(p, t) {
		r.pushProgress(p, t)
		return
	}
	if d, ok := r.coal.Deadline(); ok && !r.parmed {
		r.ptimer.Reset(max(0, time.Until(d)))
		r.parmed = true
	}
}

// progressDue handles the progress timer: the held value, if it is due,
// becomes an event after the events queued so far.
func (r *recorder) progressDue() {
	if r.failed || r.exit != nil {
		return
	}
	now := time.Now()
	if p, ok := r.coal.Due(now); ok {
		r.pushProgress(p, now)
		return
	}
	if d, ok := r.coal.Deadline(); ok {
		r.ptimer.Reset(max(0, d.Sub(now)))
		r.parmed = true
	}
}

// pushProgress queues a progress event.
func (r *recorder) pushProgress(p progress.Report, t time.Time) {
	if t.Before(r.last) {
		t = r.last
	}
	r.last = t
	r.seq++
	r.pending.push(Event{Seq: r.seq, Time: t, Type: TypeProgress, Progress: &p})
}
