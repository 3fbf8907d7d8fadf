package progress

import (
	"math"
	"slices"
	"testing"
	"time"
)

var sampleStart = time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)

// sample feeds n points, point i at start + i seconds with percent pct(i)
// and state st(i), to a sampler of max points over the n seconds.
func sample(n, maxPoints int, pct func(int) float64, st func(int) string) []Point {
	s := NewSampler(maxPoints, sampleStart, sampleStart.Add(time.Duration(n)*time.Second))
	for i := range n {
		s.Add(Point{Seq: int64(i + 1), Time: sampleStart.Add(time.Duration(i) * time.Second), Percent: pct(i), State: st(i)})
	}
	return s.Points()
}

func normal(int) string { return "normal" }

// checkPoints checks the answer's shape: at most maxPoints, seq order, the
// first and last of n points.
func checkPoints(t *testing.T, got []Point, n, maxPoints int) {
	t.Helper()
	if len(got) == 0 || len(got) > maxPoints {
		t.Fatalf("%d points, want 1..%d", len(got), maxPoints)
	}
	if !slices.IsSortedFunc(got, func(a, b Point) int { return int(a.Seq - b.Seq) }) {
		t.Errorf("points not in seq order")
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq == got[i-1].Seq {
			t.Errorf("seq %d twice", got[i].Seq)
		}
	}
	if got[0].Seq != 1 || got[len(got)-1].Seq != int64(n) {
		t.Errorf("points from seq %d to %d, want the first (1) and the last (%d)", got[0].Seq, got[len(got)-1].Seq, n)
	}
}

func TestSamplerFewPointsAreAllKept(t *testing.T) {
	got := sample(7, 100, func(i int) float64 { return float64(i * 10) }, normal)
	checkPoints(t, got, 7, 100)
	if len(got) != 7 {
		t.Errorf("%d points, want all 7", len(got))
	}
}

func TestSamplerKeepsExtremes(t *testing.T) {
	const n, maxPoints = 100_000, 200
	// A ramp from 0 to 100 with one dip to 3% and one spike to 99% in the
	// middle, each a single point.
	pct := func(i int) float64 {
		switch i {
		case 40_000:
			return 3
		case 60_001:
			return 99
		}
		return math.Round(100*float64(i)/(n-1)*100) / 100
	}
	got := sample(n, maxPoints, pct, normal)
	checkPoints(t, got, n, maxPoints)
	has := func(seq int64) bool {
		return slices.ContainsFunc(got, func(p Point) bool { return p.Seq == seq })
	}
	if !has(40_001) || !has(60_002) {
		t.Errorf("the dip (seq 40001) or the spike (seq 60002) is lost: %v", got)
	}
	if got[0].Percent != 0 || got[len(got)-1].Percent != 100 {
		t.Errorf("from %v%% to %v%%, want 0 to 100", got[0].Percent, got[len(got)-1].Percent)
	}
	if len(got) < maxPoints/2 {
		t.Errorf("only %d points of %d allowed: the chart loses resolution", len(got), maxPoints)
	}
}

func TestSamplerKeepsChangesOfState(t *testing.T) {
	const n, maxPoints = 50_000, 100
	// Normal, then one error point, then paused for a while, then normal.
	st := func(i int) string {
		switch {
		case i == 10_000:
			return "error"
		case i >= 30_000 && i < 30_010:
			return "paused"
		}
		return "normal"
	}
	got := sample(n, maxPoints, func(i int) float64 { return float64(i%100) / 2 }, st)
	checkPoints(t, got, n, maxPoints)
	for _, want := range []struct {
		seq   int64
		state string
	}{{10_001, "error"}, {10_002, "normal"}, {30_001, "paused"}, {30_011, "normal"}} {
		if !slices.ContainsFunc(got, func(p Point) bool { return p.Seq == want.seq && p.State == want.state }) {
			t.Errorf("the change to %s at seq %d is lost", want.state, want.seq)
		}
	}
}

func TestSamplerManyChangesOfStateStayWithinBounds(t *testing.T) {
	const n, maxPoints = 20_000, 50
	// The state flips at every point: far more changes than points.
	st := func(i int) string { return []string{"normal", "indeterminate", "error", "paused"}[i%4] }
	got := sample(n, maxPoints, func(i int) float64 { return float64(i % 101) }, st)
	checkPoints(t, got, n, maxPoints)
	for _, s := range []string{"normal", "indeterminate", "error", "paused"} {
		if !slices.ContainsFunc(got, func(p Point) bool { return p.State == s }) {
			t.Errorf("no %s point left", s)
		}
	}
}

func TestSamplerTimesOutOfOrder(t *testing.T) {
	// A held-back value stored late, and times outside the job's span
	// (clock steps): still every point, in seq order.
	s := NewSampler(40, sampleStart, sampleStart.Add(time.Minute))
	for i, off := range []time.Duration{-time.Hour, 30 * time.Second, 10 * time.Second, 2 * time.Hour, 50 * time.Second} {
		s.Add(Point{Seq: int64(i + 1), Time: sampleStart.Add(off), Percent: float64(i), State: "normal"})
	}
	got := s.Points()
	checkPoints(t, got, 5, 40)
	if len(got) != 5 {
		t.Errorf("%d points, want 5", len(got))
	}
}
