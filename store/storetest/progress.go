package storetest

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store"
)

// progressAt is a progress event at T0+sec.
func progressAt(seq jobs.Seq, sec float64, pct float64, msg string) jobs.Event {
	return jobs.Event{Seq: seq, Time: T0.Add(time.Duration(sec * float64(time.Second))), Type: jobs.TypeProgress,
		Progress: &progress.Report{Percent: pct, Message: msg, Source: progress.SourceAuto, State: progress.StateNormal}}
}

func getJob(t *testing.T, db Store, id jobs.ID) jobs.Job {
	t.Helper()
	j, err := db.Job(Ctx(t), jobs.Ref{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (s suite) testProgressColumns(t *testing.T) {
	db, _ := s.open(t)
	j := CreateJob(t, db)
	if got := getJob(t, db, j.ID); got.Progress != nil {
		t.Fatalf("new job has progress %+v", got.Progress)
	}
	b, _ := json.Marshal(getJob(t, db, j.ID))
	if strings.Contains(string(b), `"progress"`) {
		t.Errorf("job JSON without progress: %s", b)
	}

	// A batch of lines and progress: the last progress event wins.
	batch := Lines(1, 3, "x")
	batch = append(batch, progressAt(4, 1, 10, "ten"))
	batch = append(batch, Lines(5, 1, "y")...)
	batch = append(batch, progressAt(6, 2, 20, "twenty"))
	batch = append(batch, Lines(7, 1, "z")...)
	Append(t, db, j.ID, batch)
	got := getJob(t, db, j.ID)
	p := got.Progress
	if p == nil || p.Percent != 20 || p.Message != "twenty" || p.State != "normal" || !p.Time.Equal(T0.Add(2*time.Second)) {
		t.Fatalf("progress %+v, want 20 \"twenty\" normal at t0+2s", p)
	}
	if got.LastSeq != 7 {
		t.Errorf("last_seq %d, want 7", got.LastSeq)
	}
	// A batch without progress leaves it alone; a lower value replaces it
	// (a new phase) and an error state is kept.
	Append(t, db, j.ID, Lines(8, 2, "w"))
	if p := getJob(t, db, j.ID).Progress; p == nil || p.Percent != 20 {
		t.Fatalf("after lines only: progress %+v, want 20", p)
	}
	e := progressAt(10, 3, 5, "phase two")
	e.Progress.State = progress.StateError
	Append(t, db, j.ID, []jobs.Event{e})
	if p := getJob(t, db, j.ID).Progress; p == nil || p.Percent != 5 || p.State != "error" || p.Message != "phase two" {
		t.Fatalf("progress %+v, want 5 error \"phase two\"", p)
	}
	// The list has it too, and the JSON.
	list, err := db.Jobs(Ctx(t), store.JobsQuery{})
	if err != nil || len(list) != 1 || list[0].Progress == nil || list[0].Progress.Percent != 5 {
		t.Fatalf("Jobs: %+v, %v", list, err)
	}
	b, _ = json.Marshal(list[0])
	if !strings.Contains(string(b), `"progress":{"percent":5,"message":"phase two","time":"2026-11-25T21:00:03.123456Z","state":"error"`) {
		t.Errorf("job JSON: %s", b)
	}
	// The events themselves are in the log.
	evs := AllEvents(t, db, j.ID, 100)
	if evs[3].Type != jobs.TypeProgress || evs[3].Progress.Percent != 10 || evs[9].Progress.State != "error" {
		t.Errorf("stored progress events: %+v %+v", evs[3].Progress, evs[9].Progress)
	}
}

func (s suite) testProgressETA(t *testing.T) {
	db, _ := s.open(t)
	j := CreateJob(t, db)
	// 2% a second for 10 s, in batches of several events.
	seq := jobs.Seq(1)
	for i := 0; i <= 20; i += 4 {
		var batch []jobs.Event
		for k := i; k < i+4 && k <= 20; k++ {
			batch = append(batch, progressAt(seq, float64(k)/2, float64(k), ""))
			seq++
		}
		Append(t, db, j.ID, batch)
	}
	p := getJob(t, db, j.ID).Progress
	if p == nil || p.ETASeconds == nil || p.Rate == nil {
		t.Fatalf("progress %+v: want an ETA and a rate", p)
	}
	if math.Abs(*p.Rate-2) > 1e-6 || math.Abs(*p.ETASeconds-40) > 1e-3 {
		t.Errorf("rate %v eta %v, want 2%%/s and 40s at 20%%", *p.Rate, *p.ETASeconds)
	}
	// No ETA while the progress is indeterminate (or paused, or failing).
	busy := progressAt(seq, 10.5, 20, "")
	busy.Progress.State = progress.StateIndeterminate
	Append(t, db, j.ID, []jobs.Event{busy})
	seq++
	if p := getJob(t, db, j.ID).Progress; p.ETASeconds != nil || p.State != "indeterminate" {
		t.Errorf("indeterminate: eta %v state %s, want no ETA", p.ETASeconds, p.State)
	}
	// A lower value starts a new estimate: no ETA until it has history.
	Append(t, db, j.ID, []jobs.Event{progressAt(seq, 11, 1, "again")})
	seq++
	if p := getJob(t, db, j.ID).Progress; p.ETASeconds != nil || p.Rate != nil {
		t.Errorf("after a reset: eta %v rate %v, want none", p.ETASeconds, p.Rate)
	}
	Append(t, db, j.ID, []jobs.Event{progressAt(seq, 13, 11, "")})
	seq++
	if p := getJob(t, db, j.ID).Progress; p.ETASeconds == nil || math.Abs(*p.ETASeconds-17.8) > 1e-3 {
		t.Errorf("after the reset: eta %v, want 17.8s (5%%/s from 11%%)", p.ETASeconds)
	}
	// A finished job has no ETA.
	Append(t, db, j.ID, []jobs.Event{Exit(seq, jobs.StatusSucceeded, 0)})
	if p := getJob(t, db, j.ID).Progress; p == nil || p.ETASeconds != nil || p.Percent != 11 {
		t.Errorf("finished job: progress %+v, want 11%% and no ETA", p)
	}
}

// runJob stores a finished job that ran for d.
func runJob(t *testing.T, db Store, name string, cmd []string, cwd string, d time.Duration, status jobs.Status) jobs.Job {
	t.Helper()
	start := T0
	j := jobs.Job{Name: name, Command: cmd, Cwd: cwd, StartedAt: &start}
	if err := db.CreateJob(Ctx(t), &j); err != nil {
		t.Fatal(err)
	}
	code := 0
	if status != jobs.StatusSucceeded {
		code = 1
	}
	Append(t, db, j.ID, []jobs.Event{{Seq: 1, Time: T0.Add(d), Type: jobs.TypeExit, Status: status, ExitCode: &code}})
	return j
}

func (s suite) testExpectedSeconds(t *testing.T) {
	db, _ := s.open(t)
	build := []string{"make", "all"}
	first := runJob(t, db, "build", build, "/src", 10*time.Second, jobs.StatusSucceeded)
	runJob(t, db, "build", build, "/src", 20*time.Second, jobs.StatusSucceeded)
	runJob(t, db, "build", build, "/src", 1000*time.Second, jobs.StatusFailed)    // failures do not count
	runJob(t, db, "nightly", build, "/src", 30*time.Second, jobs.StatusSucceeded) // same argv and cwd
	runJob(t, db, "make all", build, "/elsewhere", 500*time.Second, jobs.StatusSucceeded)
	runJob(t, db, "other", []string{"true"}, "/src", 40*time.Second, jobs.StatusSucceeded)
	last := runJob(t, db, "build", build, "/src", 40*time.Second, jobs.StatusSucceeded)

	for _, tc := range []struct {
		name string
		id   jobs.ID
		want string
	}{
		{"no earlier run", first.ID, "none"},
		{"median of 10, 20, 30", last.ID, "20"},
	} {
		j := getJob(t, db, tc.id)
		got := "none"
		if j.ExpectedSeconds != nil {
			got = strconv.FormatFloat(*j.ExpectedSeconds, 'f', -1, 64)
		}
		if got != tc.want {
			t.Errorf("%s: expected_seconds %s, want %s", tc.name, got, tc.want)
		}
	}
	// A new running job of the same name gets the median of all four.
	j := jobs.Job{Name: "build", Command: build, Cwd: "/src"}
	if err := db.CreateJob(Ctx(t), &j); err != nil {
		t.Fatal(err)
	}
	list, err := db.Jobs(Ctx(t), store.JobsQuery{Limit: 1})
	if err != nil || len(list) != 1 || list[0].ExpectedSeconds == nil || *list[0].ExpectedSeconds != 25 {
		t.Fatalf("Jobs: %+v, %v; want expected_seconds 25", list, err)
	}
	b, _ := json.Marshal(list[0])
	if !strings.Contains(string(b), `"expected_seconds":25`) {
		t.Errorf("job JSON %s lacks expected_seconds", b)
	}
}

// testExpectedSecondsLatestRuns: only the latest runs count.
func (s suite) testExpectedSecondsLatestRuns(t *testing.T) {
	db, _ := s.open(t)
	for i := 1; i <= 25; i++ {
		runJob(t, db, "deploy", []string{"deploy"}, "/", time.Duration(i)*time.Second, jobs.StatusSucceeded)
	}
	j := jobs.Job{Name: "deploy", Command: []string{"deploy"}, Cwd: "/"}
	if err := db.CreateJob(Ctx(t), &j); err != nil {
		t.Fatal(err)
	}
	if got := getJob(t, db, j.ID).ExpectedSeconds; got == nil || *got != 15.5 {
		t.Errorf("expected_seconds %v, want 15.5 (the median of runs 6..25)", got)
	}
}
