package progress

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var progressT0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// coalesceRun drives a coalescer as the runner does: Offer per value, Due
// on a timer tick every tick, Flush at the end. It returns what was
// emitted.
type coalesceRun struct {
	c       Coalescer
	emitted []Report
	times   []time.Time
	nextDue time.Time
	tick    time.Duration
}

func (r *coalesceRun) offer(p Report, now time.Time) {
	for r.tick > 0 && !r.nextDue.After(now) {
		r.due(r.nextDue)
		r.nextDue = r.nextDue.Add(r.tick)
	}
	if r.c.Offer(p, now) {
		r.emitted, r.times = append(r.emitted, p), append(r.times, now)
	}
}

func (r *coalesceRun) due(now time.Time) {
	if p, ok := r.c.Due(now); ok {
		r.emitted, r.times = append(r.emitted, p), append(r.times, now)
	}
}

func (r *coalesceRun) flush(now time.Time) {
	if p, ok := r.c.Flush(); ok {
		r.emitted, r.times = append(r.emitted, p), append(r.times, now)
	}
}

// A \r bar redrawn 10,000 times in one second yields a handful of events,
// at least Interval apart, and the last value.
func TestCoalesceFastBar(t *testing.T) {
	for _, final := range []float64{100, 99.99} {
		t.Run(fmt.Sprint(final), func(t *testing.T) {
			r := &coalesceRun{tick: 50 * time.Millisecond, nextDue: progressT0}
			p := &Parser{}
			const n = 10000
			var now time.Time
			var last Report
			for i := 1; i <= n; i++ {
				now = progressT0.Add(time.Duration(i) * time.Second / n)
				pct := float64(i) / n * final
				line := fmt.Sprintf("[%-20s] %.2f%%", strings.Repeat("#", int(pct/5)), pct)
				pr, ok := p.Parse([]byte(line))
				if !ok {
					t.Fatalf("Parse(%q) found no progress", line)
				}
				last = pr
				r.offer(pr, now)
			}
			r.flush(now)
			t.Logf("%d updates, %d events: %v", n, len(r.emitted), r.emitted)
			if len(r.emitted) > 6 {
				t.Errorf("%d events from %d updates in 1s, want at most 6: %v", len(r.emitted), n, r.emitted)
			}
			if got := r.emitted[len(r.emitted)-1]; got.Percent != last.Percent {
				t.Errorf("last event %v%%, want the last value %v%%", got.Percent, last.Percent)
			}
			for i := 1; i < len(r.times)-1; i++ { // the last may be prompt (100%) or a flush
				if d := r.times[i].Sub(r.times[i-1]); d < DefaultInterval {
					t.Errorf("events %d and %d %v apart, want at least %v", i-1, i, d, DefaultInterval)
				}
			}
		})
	}
}

func TestCoalesce(t *testing.T) {
	pct := func(v float64) Report { return Report{Percent: v, State: StateNormal} }
	ms := func(n int) time.Time { return progressT0.Add(time.Duration(n) * time.Millisecond) }
	c := &Coalescer{Interval: 100 * time.Millisecond}

	if !c.Offer(pct(1), ms(0)) {
		t.Fatal("the first value is not emitted at once")
	}
	if _, ok := c.Pending(); ok {
		t.Fatal("a value is pending after an emission")
	}
	if c.Offer(pct(2), ms(10)) || c.Offer(pct(3), ms(20)) {
		t.Fatal("values within the interval are emitted")
	}
	if p, ok := c.Pending(); !ok || p.Percent != 3 {
		t.Fatalf("Pending() = %v, %v; want the latest value 3", p, ok)
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(ms(100)) {
		t.Fatalf("Deadline() = %v, %v; want %v", d, ok, ms(100))
	}
	if _, ok := c.Due(ms(99)); ok {
		t.Fatal("Due before the interval")
	}
	if p, ok := c.Due(ms(100)); !ok || p.Percent != 3 {
		t.Fatalf("Due(100ms) = %v, %v; want 3", p, ok)
	}
	if _, ok := c.Due(ms(300)); ok {
		t.Fatal("Due twice for one held value")
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("a deadline without a held value")
	}

	// Equal values are dropped, and clear a held value that the last
	// emission already shows.
	if c.Offer(pct(3), ms(150)) {
		t.Fatal("a value equal to the last emitted one is emitted")
	}
	if c.Offer(pct(4), ms(160)) {
		t.Fatal("a value within the interval is emitted")
	}
	if c.Offer(pct(3), ms(170)) {
		t.Fatal("a value equal to the last emitted one is emitted")
	}
	if p, ok := c.Pending(); ok {
		t.Fatalf("Pending() = %v after the value went back to the emitted one", p)
	}

	// A state change and 100% are emitted at once.
	if !c.Offer(pct(5), ms(600)) {
		t.Fatal("a value after the interval is not emitted")
	}
	if !c.Offer(Report{Percent: 5, State: StateError}, ms(601)) {
		t.Fatal("a state change is not emitted at once")
	}
	if !c.Offer(pct(6), ms(602)) {
		t.Fatal("a state change back to normal is not emitted at once")
	}
	if c.Offer(Report{Percent: 6}, ms(603)) {
		t.Fatal(`state "" is not the same as normal`)
	}
	if !c.Offer(pct(100), ms(604)) {
		t.Fatal("100% is not emitted at once")
	}
	if c.Offer(pct(50), ms(605)) {
		t.Fatal("a drop after 100% within the interval is emitted at once")
	}

	// Flush hands out the held value whatever the time.
	if p, ok := c.Flush(); !ok || p.Percent != 50 {
		t.Fatalf("Flush() = %v, %v; want 50", p, ok)
	}
	if _, ok := c.Flush(); ok {
		t.Fatal("Flush twice")
	}
	if c.Offer(pct(50), ms(606)) {
		t.Fatal("the flushed value offered again is emitted")
	}
}

func TestCoalesceDefaultInterval(t *testing.T) {
	var c Coalescer
	c.Offer(Report{Percent: 1}, progressT0)
	c.Offer(Report{Percent: 2}, progressT0.Add(time.Millisecond))
	if d, _ := c.Deadline(); !d.Equal(progressT0.Add(DefaultInterval)) {
		t.Errorf("Deadline() = %v, want %v", d, progressT0.Add(DefaultInterval))
	}
}
