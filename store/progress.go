package store

import (
	"math"
	"sort"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// A job's latest progress lives with the job (its row), updated in the
// transaction that appends its progress events, so that listing jobs with
// their percent and ETA never reads a log. Every backend stores the
// fields of Progress and derives the same JSON from them.

// Progress is the progress state a backend keeps with a job: the last
// progress event and the state of its ETA estimate (progress.Estimate).
// Nil pointers are NULL columns: no progress reported yet.
type Progress struct {
	Percent     *float64
	Message     string
	Time        *time.Time // of the last progress event
	State       string
	BasePercent *float64 // the start of the current estimate
	BaseTime    *time.Time
	Rate        *float64 // the smoothed rate, percent per second
}

// Estimate is the job's progress.Estimate as stored.
func (p *Progress) Estimate() progress.Estimate {
	var e progress.Estimate
	if p.Percent == nil || p.Time == nil {
		return e
	}
	e.LastPercent, e.LastTime = *p.Percent, *p.Time
	e.BasePercent, e.BaseTime = e.LastPercent, e.LastTime
	if p.BasePercent != nil && p.BaseTime != nil {
		e.BasePercent, e.BaseTime = *p.BasePercent, *p.BaseTime
	}
	if p.Rate != nil {
		e.Rate = *p.Rate
	}
	return e
}

// Snapshot is the job's JSON progress, nil when it never reported any.
// The ETA is given only while the job runs and its progress is in state
// normal.
func (p *Progress) Snapshot(status jobs.Status) *progress.Snapshot {
	if p.Percent == nil || p.Time == nil {
		return nil
	}
	jp := &progress.Snapshot{Percent: *p.Percent, Message: p.Message, Time: *p.Time, State: p.State}
	if jp.State == "" {
		jp.State = progress.StateNormal
	}
	e := p.Estimate()
	if e.Rate > 0 {
		r := roundTo(e.Rate, 1e6)
		jp.Rate = &r
	}
	if !status.Final() && jp.State == progress.StateNormal {
		if eta, ok := e.ETA(); ok {
			s := roundTo(eta.Seconds(), 1e3)
			jp.ETASeconds = &s
		}
	}
	return jp
}

// Advance feeds the progress events of evs to the estimate and returns
// the state to store, and false when evs hold no progress event (nothing
// to store).
func (p *Progress) Advance(evs []jobs.Event) (Progress, bool) {
	est := p.Estimate()
	var last *jobs.Event
	for i := range evs {
		if e := &evs[i]; e.Type == jobs.TypeProgress && e.Progress != nil {
			est.Add(*e.Progress, e.Time)
			last = e
		}
	}
	if last == nil {
		return *p, false
	}
	r := last.Progress
	pct, t := r.Percent, last.Time
	basePct, baseTime, rate := est.BasePercent, est.BaseTime, est.Rate
	return Progress{Percent: &pct, Message: r.Message, Time: &t, State: r.State,
		BasePercent: &basePct, BaseTime: &baseTime, Rate: &rate}, true
}

// roundTo rounds v to a multiple of 1/perUnit: 1e3 keeps milliseconds.
func roundTo(v, perUnit float64) float64 { return math.Round(v*perUnit) / perUnit }

// ExpectedRuns bounds the past runs that a job's expected_seconds looks at.
const ExpectedRuns = 20

// ExpectedSeconds is a job's expected_seconds from the durations (in
// seconds) of its latest succeeded earlier runs: their median, nil when
// there are none. It sorts durs.
func ExpectedSeconds(durs []float64) *float64 {
	if len(durs) == 0 {
		return nil
	}
	sort.Float64s(durs)
	n := len(durs)
	m := durs[n/2]
	if n%2 == 0 {
		m = (durs[n/2-1] + durs[n/2]) / 2
	}
	m = roundTo(m, 1e3)
	return &m
}
