package progress

import "time"

// DefaultInterval is Coalescer's default Interval: at most
// four progress events a second per job reach storage and viewers.
const DefaultInterval = 250 * time.Millisecond

// Coalescer thins a job's progress values to at most one event per
// Interval without losing the latest: a value offered too soon is held,
// replacing the one held before, and the caller emits it when it is Due or
// at a Flush. It has no goroutine and no timer; the caller passes the time,
// so it is tested with plain values. The zero value is ready to use. It is
// not safe for concurrent use: the runner owns one per job.
//
// Offered values are emitted at once, whatever the interval, when they
// change the state (normal, error, indeterminate, paused) or first reach
// 100%, so that an error or the end shows promptly. A value equal to the
// last emitted one (percent, state, message, count) is dropped.
type Coalescer struct {
	// Interval is the least time between two emitted values; zero means
	// DefaultInterval.
	Interval time.Duration

	emitted  bool   // an event has been emitted
	last     Report // the last emitted value
	lastTime time.Time
	held     Report // the latest value not yet emitted
	holding  bool
}

func (c *Coalescer) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return DefaultInterval
}

// Offer hands the coalescer a new value found at now. It reports whether
// the caller should emit p now; if not, p is held (or dropped when it
// equals the last emitted value).
func (c *Coalescer) Offer(p Report, now time.Time) (emit bool) {
	if c.emitted && sameProgress(p, c.last) {
		c.holding = false // the latest value is already out
		return false
	}
	prompt := !c.emitted ||
		now.Sub(c.lastTime) >= c.interval() ||
		normalState(p.State) != normalState(c.last.State) ||
		(p.Percent >= 100 && c.last.Percent < 100)
	if !prompt {
		c.held, c.holding = p, true
		return false
	}
	c.markEmitted(p, now)
	return true
}

// Pending returns the held value, if any, without emitting it.
func (c *Coalescer) Pending() (Report, bool) {
	return c.held, c.holding
}

// Deadline returns when the held value becomes Due, if one is held: the
// time for the caller's timer.
func (c *Coalescer) Deadline() (time.Time, bool) {
	if !c.holding {
		return time.Time{}, false
	}
	return c.lastTime.Add(c.interval()), true
}

// Due returns the held value to emit when Interval has passed since the
// last emitted one, and records it as emitted at now.
func (c *Coalescer) Due(now time.Time) (Report, bool) {
	if !c.holding || now.Sub(c.lastTime) < c.interval() {
		return Report{}, false
	}
	p := c.held
	c.markEmitted(p, now)
	return p, true
}

// Flush returns the held value to emit regardless of the interval: at a
// quiet period or at the end of the job, so that the last value is never
// lost. The interval keeps counting from the previous emission.
func (c *Coalescer) Flush() (Report, bool) {
	if !c.holding {
		return Report{}, false
	}
	p := c.held
	c.holding, c.held, c.last, c.emitted = false, Report{}, p, true
	return p, true
}

func (c *Coalescer) markEmitted(p Report, now time.Time) {
	c.emitted, c.last, c.lastTime = true, p, now
	c.holding, c.held = false, Report{}
}

// normalState maps "" to normal, so values from any source compare.
func normalState(s string) string {
	if s == "" {
		return StateNormal
	}
	return s
}

func sameProgress(a, b Report) bool {
	return a.Percent == b.Percent && a.Message == b.Message &&
		normalState(a.State) == normalState(b.State) &&
		sameFloat(a.Current, b.Current) && sameFloat(a.Total, b.Total)
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
