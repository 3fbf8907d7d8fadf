package progress

import (
	"math"
	"time"
)

// ETA tuning. The rate is an exponential moving average of the progress
// rate whose time constant grows with the estimate's age up to
// etaWindow: early on it is the average rate since the estimate started,
// later the rate over about the last etaWindow, so that a job that speeds
// up or slows down is followed within a minute or so.
const (
	etaWindow     = 30 * time.Second
	etaMinHistory = time.Second // no ETA from less history than this
	etaMax        = 100 * 24 * time.Hour
)

// Estimate estimates a job's progress rate and remaining time from
// its progress values, in the order they were reported. The store keeps
// one per job, updated with every committed progress event, so that the
// ETA of a job never needs its log. The zero value has seen nothing.
type Estimate struct {
	// BaseTime and BasePercent are the first value of the current
	// estimate. A value lower than the previous one (a new phase, a
	// per-file bar restarting at 0%) starts a new estimate there.
	BaseTime    time.Time
	BasePercent float64
	// LastTime and LastPercent are the latest value.
	LastTime    time.Time
	LastPercent float64
	// Rate is the smoothed rate in percent per second; 0 until it is
	// known.
	Rate float64
}

// Add takes the next progress value p, reported at t. Values in a state
// other than normal (indeterminate, error, paused) carry no rate: they
// only move the latest value.
func (e *Estimate) Add(p Report, t time.Time) {
	pct := p.Percent
	switch {
	case e.LastTime.IsZero(), pct < e.LastPercent, t.Before(e.LastTime):
		*e = Estimate{BaseTime: t, BasePercent: pct, LastTime: t, LastPercent: pct}
		return
	case normalState(p.State) != StateNormal:
		e.LastTime, e.LastPercent = t, pct
		return
	}
	dt := t.Sub(e.LastTime).Seconds()
	age := t.Sub(e.BaseTime)
	if dt > 0 {
		inst := (pct - e.LastPercent) / dt
		tau := min(age, etaWindow).Seconds()
		if e.Rate == 0 || tau <= 0 {
			if s := age.Seconds(); s > 0 {
				e.Rate = (pct - e.BasePercent) / s
			}
		} else {
			e.Rate += (1 - math.Exp(-dt/tau)) * (inst - e.Rate)
		}
	}
	e.LastTime, e.LastPercent = t, pct
}

// ETA returns the estimated time from LastTime to 100%, when it can be
// estimated: at least etaMinHistory of values in the current estimate, a
// positive rate, not already at 100%, and under 100 days.
func (e Estimate) ETA() (time.Duration, bool) {
	if e.Rate <= 0 || e.LastPercent >= 100 || e.LastTime.Sub(e.BaseTime) < etaMinHistory {
		return 0, false
	}
	secs := (100 - e.LastPercent) / e.Rate
	if math.IsNaN(secs) || secs > etaMax.Seconds() {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}
