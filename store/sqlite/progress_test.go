package sqlite_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
)

// progressAt is a progress event at t0+sec.
func progressAt(seq jobs.Seq, sec float64, pct float64, msg string) jobs.Event {
	return jobs.Event{Seq: seq, Time: t0.Add(time.Duration(sec * float64(time.Second))), Type: jobs.TypeProgress,
		Progress: &progress.Report{Percent: pct, Message: msg, Source: progress.SourceAuto, State: progress.StateNormal}}
}

func getJob(t *testing.T, db *sqlite.DB, id jobs.ID) jobs.Job {
	t.Helper()
	j, err := db.Job(testCtx(t), jobs.Ref{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestProgressColumns(t *testing.T) {
	db := openDB(t)
	j := createJob(t, db)
	if got := getJob(t, db, j.ID); got.Progress != nil {
		t.Fatalf("new job has progress %+v", got.Progress)
	}
	b, _ := json.Marshal(getJob(t, db, j.ID))
	if strings.Contains(string(b), `"progress"`) {
		t.Errorf("job JSON without progress: %s", b)
	}

	// A batch of lines and progress: the last progress event wins.
	batch := lines(1, 3, "x")
	batch = append(batch, progressAt(4, 1, 10, "ten"))
	batch = append(batch, lines(5, 1, "y")...)
	batch = append(batch, progressAt(6, 2, 20, "twenty"))
	batch = append(batch, lines(7, 1, "z")...)
	appendEvents(t, db, j.ID, batch)
	got := getJob(t, db, j.ID)
	p := got.Progress
	if p == nil || p.Percent != 20 || p.Message != "twenty" || p.State != "normal" || !p.Time.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("progress %+v, want 20 \"twenty\" normal at t0+2s", p)
	}
	if got.LastSeq != 7 {
		t.Errorf("last_seq %d, want 7", got.LastSeq)
	}
	// A batch without progress leaves it alone; a lower value replaces it
	// (a new phase) and an error state is kept.
	appendEvents(t, db, j.ID, lines(8, 2, "w"))
	if p := getJob(t, db, j.ID).Progress; p == nil || p.Percent != 20 {
		t.Fatalf("after lines only: progress %+v, want 20", p)
	}
	e := progressAt(10, 3, 5, "phase two")
	e.Progress.State = progress.StateError
	appendEvents(t, db, j.ID, []jobs.Event{e})
	if p := getJob(t, db, j.ID).Progress; p == nil || p.Percent != 5 || p.State != "error" || p.Message != "phase two" {
		t.Fatalf("progress %+v, want 5 error \"phase two\"", p)
	}
	// The list has it too, and the JSON.
	list, err := db.Jobs(testCtx(t), store.JobsQuery{})
	if err != nil || len(list) != 1 || list[0].Progress == nil || list[0].Progress.Percent != 5 {
		t.Fatalf("Jobs: %+v, %v", list, err)
	}
	b, _ = json.Marshal(list[0])
	if !strings.Contains(string(b), `"progress":{"percent":5,"message":"phase two","time":"2026-11-25T21:00:03.123456Z","state":"error"`) {
		t.Errorf("job JSON: %s", b)
	}
	// The events themselves are in the log.
	evs := allEvents(t, db, j.ID, 100)
	if evs[3].Type != jobs.TypeProgress || evs[3].Progress.Percent != 10 || evs[9].Progress.State != "error" {
		t.Errorf("stored progress events: %+v %+v", evs[3].Progress, evs[9].Progress)
	}
}

func TestProgressETA(t *testing.T) {
	db := openDB(t)
	j := createJob(t, db)
	// 2% a second for 10 s, in batches of several events.
	seq := jobs.Seq(1)
	for i := 0; i <= 20; i += 4 {
		var batch []jobs.Event
		for k := i; k < i+4 && k <= 20; k++ {
			batch = append(batch, progressAt(seq, float64(k)/2, float64(k), ""))
			seq++
		}
		appendEvents(t, db, j.ID, batch)
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
	appendEvents(t, db, j.ID, []jobs.Event{busy})
	seq++
	if p := getJob(t, db, j.ID).Progress; p.ETASeconds != nil || p.State != "indeterminate" {
		t.Errorf("indeterminate: eta %v state %s, want no ETA", p.ETASeconds, p.State)
	}
	// A lower value starts a new estimate: no ETA until it has history.
	appendEvents(t, db, j.ID, []jobs.Event{progressAt(seq, 11, 1, "again")})
	seq++
	if p := getJob(t, db, j.ID).Progress; p.ETASeconds != nil || p.Rate != nil {
		t.Errorf("after a reset: eta %v rate %v, want none", p.ETASeconds, p.Rate)
	}
	appendEvents(t, db, j.ID, []jobs.Event{progressAt(seq, 13, 11, "")})
	seq++
	if p := getJob(t, db, j.ID).Progress; p.ETASeconds == nil || math.Abs(*p.ETASeconds-17.8) > 1e-3 {
		t.Errorf("after the reset: eta %v, want 17.8s (5%%/s from 11%%)", p.ETASeconds)
	}
	// A finished job has no ETA.
	appendEvents(t, db, j.ID, []jobs.Event{exitEvent(seq, jobs.StatusSucceeded, 0)})
	if p := getJob(t, db, j.ID).Progress; p == nil || p.ETASeconds != nil || p.Percent != 11 {
		t.Errorf("finished job: progress %+v, want 11%% and no ETA", p)
	}
}

// runJob stores a finished job that ran for d.
func runJob(t *testing.T, db *sqlite.DB, name string, cmd []string, cwd string, d time.Duration, status jobs.Status) jobs.Job {
	t.Helper()
	start := t0
	j := jobs.Job{Name: name, Command: cmd, Cwd: cwd, StartedAt: &start}
	if err := db.CreateJob(testCtx(t), &j); err != nil {
		t.Fatal(err)
	}
	code := 0
	if status != jobs.StatusSucceeded {
		code = 1
	}
	appendEvents(t, db, j.ID, []jobs.Event{{Seq: 1, Time: t0.Add(d), Type: jobs.TypeExit, Status: status, ExitCode: &code}})
	return j
}

func TestExpectedSeconds(t *testing.T) {
	db := openDB(t)
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
	if err := db.CreateJob(testCtx(t), &j); err != nil {
		t.Fatal(err)
	}
	list, err := db.Jobs(testCtx(t), store.JobsQuery{Limit: 1})
	if err != nil || len(list) != 1 || list[0].ExpectedSeconds == nil || *list[0].ExpectedSeconds != 25 {
		t.Fatalf("Jobs: %+v, %v; want expected_seconds 25", list, err)
	}
	b, _ := json.Marshal(list[0])
	if !strings.Contains(string(b), `"expected_seconds":25`) {
		t.Errorf("job JSON %s lacks expected_seconds", b)
	}
}

// TestExpectedSecondsLatestRuns: only the latest runs count.
func TestExpectedSecondsLatestRuns(t *testing.T) {
	db := openDB(t)
	for i := 1; i <= 25; i++ {
		runJob(t, db, "deploy", []string{"deploy"}, "/", time.Duration(i)*time.Second, jobs.StatusSucceeded)
	}
	j := jobs.Job{Name: "deploy", Command: []string{"deploy"}, Cwd: "/"}
	if err := db.CreateJob(testCtx(t), &j); err != nil {
		t.Fatal(err)
	}
	if got := getJob(t, db, j.ID).ExpectedSeconds; got == nil || *got != 15.5 {
		t.Errorf("expected_seconds %v, want 15.5 (the median of runs 6..25)", got)
	}
}

// TestMigrateFromV1 opens a database created by the first schema alone,
// with jobs and events in it, as a jobrun of issue 2 left it.
func TestMigrateFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	raw := rawDB(t, path)
	if _, err := raw.Exec("PRAGMA journal_mode=WAL"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(sqlite.MigrationSQL(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	us := func(d time.Duration) int64 { return t0.Add(d).UnixMicro() }
	// Two succeeded runs of "build" (10 s and 30 s), and one running on
	// another host (RecoverLost leaves it alone).
	for i, row := range []struct {
		uid, status, host string
		dur               time.Duration
	}{
		{"aaaaaaaaaaaaaaaaaaaaaaaaaa", "succeeded", testHost, 10 * time.Second},
		{"bbbbbbbbbbbbbbbbbbbbbbbbbb", "succeeded", testHost, 30 * time.Second},
		{"cccccccccccccccccccccccccc", "running", "otherhost", 0},
	} {
		var exit, finished any
		if row.status != "running" {
			exit, finished = 0, us(row.dur)
		}
		_, err := raw.Exec(`INSERT INTO jobs (uid, name, command, cwd, host, status, exit_code, created_at, started_at, finished_at, last_seq, last_line)
			VALUES (?, 'build', '["make"]', '/src', ?, ?, ?, ?, ?, ?, 2, 2)`,
			row.uid, row.host, row.status, exit, us(0), us(0), finished)
		if err != nil {
			t.Fatal(err)
		}
		evs := lines(1, 2, "v1 line ")
		if _, err := raw.Exec(`INSERT INTO chunks (job_id, first_seq, last_seq, first_line, last_line, n, body) VALUES (?, 1, 2, 1, 2, 2, ?)`,
			i+1, sqlite.ChunkBody(1, evs)); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db := openPath(t, path)
	var v int
	if err := rawDB(t, path).QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != sqlite.LatestSchema() {
		t.Fatalf("user_version %d, %v; want %d", v, err, sqlite.LatestSchema())
	}
	running := getJob(t, db, 3)
	if running.Status != jobs.StatusRunning || running.LastSeq != 2 || running.Progress != nil {
		t.Fatalf("migrated running job: %+v", running)
	}
	if running.ExpectedSeconds == nil || *running.ExpectedSeconds != 20 {
		t.Errorf("expected_seconds %v, want 20 from the two v1 runs", running.ExpectedSeconds)
	}
	if evs := allEvents(t, db, 3, 10); len(evs) != 2 || string(evs[1].Data) != "v1 line 2" {
		t.Fatalf("v1 events after migration: %+v", evs)
	}
	appendEvents(t, db, 3, []jobs.Event{progressAt(3, 5, 42, "after migration")})
	if p := getJob(t, db, 3).Progress; p == nil || p.Percent != 42 || p.Message != "after migration" {
		t.Errorf("progress after migration: %+v", p)
	}
}
