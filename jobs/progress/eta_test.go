package progress

import (
	"math"
	"testing"
	"time"
)

// feed adds percent values at the given offsets from progressT0.
func feed(e *Estimate, points ...[2]float64) {
	for _, p := range points {
		e.Add(Report{Percent: p[1]}, progressT0.Add(time.Duration(p[0]*float64(time.Second))))
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestEstimateSteady(t *testing.T) {
	var e Estimate
	if _, ok := e.ETA(); ok {
		t.Fatal("ETA with no values")
	}
	feed(&e, [2]float64{0, 0})
	if _, ok := e.ETA(); ok {
		t.Fatal("ETA from one value")
	}
	// 1% a second, reported four times a second.
	for i := 1; i <= 40; i++ {
		feed(&e, [2]float64{float64(i) / 4, float64(i) / 4})
	}
	eta, ok := e.ETA()
	if !ok || !near(e.Rate, 1, 1e-9) || !near(eta.Seconds(), 90, 1e-6) {
		t.Errorf("at 10%% after 10s: rate %v, ETA %v %v; want 1%%/s, 90s", e.Rate, eta, ok)
	}
}

func TestEstimateFollowsSpeedChange(t *testing.T) {
	var e Estimate
	for i := 0; i <= 60; i++ { // 0.5%/s for a minute
		feed(&e, [2]float64{float64(i), float64(i) / 2})
	}
	for i := 1; i <= 60; i++ { // then 1%/s for a minute
		feed(&e, [2]float64{60 + float64(i), 30 + float64(i)})
	}
	if !near(e.Rate, 1, 0.15) {
		t.Errorf("rate %v after a minute at 1%%/s, want about 1", e.Rate)
	}
}

func TestEstimateResets(t *testing.T) {
	var e Estimate
	feed(&e, [2]float64{0, 0}, [2]float64{10, 50}) // 5%/s
	if _, ok := e.ETA(); !ok {
		t.Fatal("no ETA after 10s")
	}
	feed(&e, [2]float64{11, 5}) // a new phase
	if e.BasePercent != 5 || e.Rate != 0 {
		t.Errorf("after a lower value: base %v rate %v, want a new estimate from 5", e.BasePercent, e.Rate)
	}
	if _, ok := e.ETA(); ok {
		t.Error("ETA right after a reset")
	}
	feed(&e, [2]float64{11.5, 6}, [2]float64{13, 9})
	if eta, ok := e.ETA(); !ok || !near(e.Rate, 2, 1e-9) || !near(eta.Seconds(), 45.5, 1e-6) {
		t.Errorf("after the reset: rate %v ETA %v %v, want 2%%/s, 45.5s", e.Rate, eta, ok)
	}
}

func TestEstimateEdges(t *testing.T) {
	var e Estimate
	// Several values with the same time: no division by zero.
	feed(&e, [2]float64{0, 0}, [2]float64{0, 1}, [2]float64{0, 2}, [2]float64{2, 4})
	if math.IsNaN(e.Rate) || math.IsInf(e.Rate, 0) || !near(e.Rate, 2, 1e-9) {
		t.Errorf("rate %v, want 2", e.Rate)
	}
	// Indeterminate values carry the last percent and no rate.
	rate := e.Rate
	e.Add(Report{Percent: 4, State: StateIndeterminate}, progressT0.Add(60*time.Second))
	if e.Rate != rate || e.LastPercent != 4 {
		t.Errorf("indeterminate: rate %v last %v, want %v 4", e.Rate, e.LastPercent, rate)
	}
	// At 100% there is nothing left to estimate.
	feed(&e, [2]float64{70, 100})
	if _, ok := e.ETA(); ok {
		t.Error("ETA at 100%")
	}
	// No progress at all: no ETA.
	var flat Estimate
	feed(&flat, [2]float64{0, 10}, [2]float64{100, 10})
	if _, ok := flat.ETA(); ok {
		t.Error("ETA with a zero rate")
	}
}
