package main

import (
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

func f64(v float64) *float64 { return &v }

func TestFormatSeconds(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{0, "0s"}, {41.6, "42s"}, {60, "1m00s"}, {250, "4m10s"}, {3599.4, "59m59s"}, {7500, "2h05m"}} {
		if got := formatSeconds(tc.in); got != tc.want {
			t.Errorf("formatSeconds(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestProgressCell(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  jobs.Job
		want string
	}{
		{"nothing", jobs.Job{Status: jobs.StatusRunning}, "-"},
		{"percent", jobs.Job{Status: jobs.StatusSucceeded, Progress: &progress.Snapshot{Percent: 45.55}}, "45.6%"},
		{"eta while running", jobs.Job{Status: jobs.StatusRunning, Progress: &progress.Snapshot{Percent: 45, ETASeconds: f64(80)}}, "45% eta 1m20s"},
		{"error state", jobs.Job{Status: jobs.StatusFailed, Progress: &progress.Snapshot{Percent: 12, State: progress.StateError}}, "12% error"},
		{"expected", jobs.Job{Status: jobs.StatusRunning, ExpectedSeconds: f64(250)}, "usually 4m10s"},
		{"expected but done", jobs.Job{Status: jobs.StatusSucceeded, ExpectedSeconds: f64(250)}, "-"},
	} {
		if got := progressCell(tc.job); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestProgressBarText(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	b := &progressBar{}
	if got := b.text(80); got != "" {
		t.Errorf("empty bar: %q", got)
	}
	b.expected = f64(250)
	if got := b.text(80); got != "usually takes 4m10s" {
		t.Errorf("expected only: %q", got)
	}
	for i, pct := range []float64{10, 20, 30} { // 5%/s
		b.update(&jobs.Event{Type: jobs.TypeProgress, Time: t0.Add(time.Duration(i) * 2 * time.Second),
			Progress: &progress.Report{Percent: pct, Message: "building", State: progress.StateNormal}})
	}
	if got, want := b.text(80), "[######--------------] 30% · ETA 14s · building"; got != want {
		t.Errorf("bar %q, want %q", got, want)
	}
	if got := b.text(20); got != "[######------------…" {
		t.Errorf("bar cut to 20 columns: %q", got)
	}
	b.update(&jobs.Event{Type: jobs.TypeProgress, Time: t0.Add(5 * time.Second),
		Progress: &progress.Report{Percent: 30, State: progress.StateIndeterminate}})
	if got := b.text(80); got != "[????????????????????]" {
		t.Errorf("indeterminate bar %q", got)
	}
}
