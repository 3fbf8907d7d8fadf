package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store/sqlite"
)

func TestRoundTrip(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	j := createJob(t, db)
	mib := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	two := 2.0
	evs := []jobs.Event{
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: []byte("compiling"), EOL: "\n"},
		{Type: jobs.TypeLine, Stream: jobs.StreamStderr, Line: 2, Data: []byte{}, EOL: "\r\n"},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: []byte("bad \xff\xfe utf-8 \xe2\x82"), EOL: "\r"},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: mib, EOL: ""},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: mib, EOL: ""},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: []byte("end of the long line"), EOL: "\n"},
		{Type: jobs.TypeLine, Stream: jobs.StreamTTY, Line: 4, Data: []byte("::progress 50%"), EOL: "\n", Directive: true},
		{Type: jobs.TypeProgress, Progress: &progress.Report{Percent: 50, Message: "half", Total: &two}},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 5, Data: []byte("ünïcødé \u2028 \"quoted\" \x00"), EOL: "\n"},
	}
	for i := range evs {
		evs[i].Seq = jobs.Seq(i + 1)
		evs[i].Time = t0.Add(time.Duration(i) * 1500 * time.Microsecond)
	}
	code := 2
	exit := jobs.Event{Seq: jobs.Seq(len(evs) + 1), Time: t0.Add(time.Minute), Type: jobs.TypeExit,
		Status: jobs.StatusFailed, ExitCode: &code}

	appendEvents(t, db, j.ID, evs[:3])
	appendEvents(t, db, j.ID, evs[3:])
	appendEvents(t, db, j.ID, []jobs.Event{exit})
	want := append(evs, exit)

	for _, page := range []int{1, 3, 1000} {
		sameEvents(t, allEvents(t, db, j.ID, page), want)
	}

	got, err := db.Job(ctx, jobs.Ref{ID: j.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != jobs.StatusFailed || got.ExitCode == nil || *got.ExitCode != 2 || got.LastSeq != exit.Seq {
		t.Errorf("job after exit: status %s, exit code %v, last seq %d; want failed, 2, %d",
			got.Status, got.ExitCode, got.LastSeq, exit.Seq)
	}
	if got.FinishedAt == nil || !got.FinishedAt.Equal(exit.Time) {
		t.Errorf("finished_at = %v, want %v", got.FinishedAt, exit.Time)
	}

	// The 1 MiB pieces do not share a row: the batch was split by size.
	if n := countChunks(t, db, j.ID); n < 4 {
		t.Errorf("%d chunk rows, want at least 4 (1 MiB pieces each in their own)", n)
	}
}

func TestEventsPaging(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	j := createJob(t, db)
	all := lines(1, 10000, "line ")
	appendEvents(t, db, j.ID, all[:9000]) // split into rows of <= 4096 events
	appendEvents(t, db, j.ID, all[9000:9001])
	appendEvents(t, db, j.ID, all[9001:])
	if got, want := countChunks(t, db, j.ID), 5; got != want {
		t.Errorf("chunk rows = %d, want %d (4096+4096+808, 1, 999)", got, want)
	}

	tests := []struct {
		name         string
		after        jobs.Seq
		limit        int
		first, count int
	}{
		{"start", 0, 10, 1, 10},
		{"middle of a chunk", 5000, 100, 5001, 100},
		{"across chunks", 4090, 20, 4091, 20},
		{"limit larger than rest", 9990, 100, 9991, 10},
		{"single-event chunk", 9000, 1, 9001, 1},
		{"everything", 0, 20000, 1, 10000},
		{"at the end", 10000, 10, 0, 0},
		{"beyond the end", 20000, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Events(ctx, j.ID, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if tt.count == 0 {
				sameEvents(t, got, nil)
				return
			}
			sameEvents(t, got, all[tt.first-1:tt.first-1+tt.count])
		})
	}
	sameEvents(t, allEvents(t, db, j.ID, 777), all)

	if _, err := db.Events(ctx, j.ID+100, 0, 10); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Events of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := db.Events(ctx, j.ID, 0, 0); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("Events with limit 0: %v, want ErrInvalid", err)
	}
	empty := createJob(t, db)
	if evs, err := db.Events(ctx, empty.ID, 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("Events of a job without events = %d events, %v; want none, nil", len(evs), err)
	}
}

func TestAppendRejects(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	j := createJob(t, db)
	appendEvents(t, db, j.ID, lines(1, 3, "a"))

	gap := lines(4, 3, "b")
	gap[2].Seq = 9
	noStream := lines(4, 1, "c")
	noStream[0].Stream = ""
	badEOL := lines(4, 1, "d")
	badEOL[0].EOL = "\n\n"
	exitFirst := append([]jobs.Event{exitEvent(4, jobs.StatusSucceeded, 0)}, lines(5, 1, "e")...)
	runningExit := []jobs.Event{exitEvent(4, jobs.StatusRunning, 0)}
	unknown := lines(4, 1, "f")
	unknown[0].Type = "bogus"
	farFuture := lines(4, 1, "g")
	farFuture[0].Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	noProgress := []jobs.Event{{Seq: 4, Time: t0, Type: jobs.TypeProgress}}
	badPercent := []jobs.Event{{Seq: 4, Time: t0, Type: jobs.TypeProgress, Progress: &progress.Report{Percent: 101}}}
	nanPercent := []jobs.Event{{Seq: 4, Time: t0, Type: jobs.TypeProgress, Progress: &progress.Report{Percent: math.NaN()}}}
	longReason := []jobs.Event{exitEvent(4, jobs.StatusFailed, 1)}
	longReason[0].Incomplete, longReason[0].IncompleteReason = true, strings.Repeat("x", jobs.MaxIncompleteReason+1)

	tests := []struct {
		name string
		id   jobs.ID
		evs  []jobs.Event
		want error
	}{
		{"seq repeats the stored one", j.ID, lines(3, 2, "x"), jobs.ErrConflict},
		{"seq leaves a gap after the stored one", j.ID, lines(5, 2, "x"), jobs.ErrConflict},
		{"gap inside the batch", j.ID, gap, jobs.ErrInvalid},
		{"line without a stream", j.ID, noStream, jobs.ErrInvalid},
		{"bad terminator", j.ID, badEOL, jobs.ErrInvalid},
		{"exit not last", j.ID, exitFirst, jobs.ErrInvalid},
		{"exit with status running", j.ID, runningExit, jobs.ErrInvalid},
		{"unknown type", j.ID, unknown, jobs.ErrInvalid},
		{"time beyond year 9999", j.ID, farFuture, jobs.ErrInvalid},
		{"progress without a value", j.ID, noProgress, jobs.ErrInvalid},
		{"progress above 100", j.ID, badPercent, jobs.ErrInvalid},
		{"progress NaN", j.ID, nanPercent, jobs.ErrInvalid},
		{"incomplete_reason too long", j.ID, longReason, jobs.ErrInvalid},
		{"seq 0", j.ID, lines(0, 2, "x"), jobs.ErrInvalid},
		{"negative seq", j.ID, lines(-1, 3, "x"), jobs.ErrInvalid},
		{"unknown job", j.ID + 100, lines(1, 1, "x"), jobs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.AppendEvents(ctx, tt.id, tt.evs); !errors.Is(err, tt.want) {
				t.Errorf("AppendEvents: %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
	if err := db.AppendEvents(ctx, j.ID, nil); err != nil {
		t.Errorf("empty batch: %v, want nil", err)
	}
	// None of the rejected batches left a trace.
	sameEvents(t, allEvents(t, db, j.ID, 100), lines(1, 3, "a"))

	appendEvents(t, db, j.ID, []jobs.Event{exitEvent(4, jobs.StatusSucceeded, 0)})
	if err := db.AppendEvents(ctx, j.ID, lines(5, 1, "late")); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("append after exit: %v, want ErrConflict", err)
	}
}

// TestIncompleteExit: an exit event marked incomplete is stored with its
// flag and reason, and the job carries them, its status the command's.
func TestIncompleteExit(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	j := createJob(t, db)
	appendEvents(t, db, j.ID, lines(1, 3, "a"))
	exit := exitEvent(4, jobs.StatusFailed, 5)
	exit.Incomplete, exit.IncompleteReason = true, "storing the output failed after seq 3: disk full"
	appendEvents(t, db, j.ID, []jobs.Event{exit})
	evs := allEvents(t, db, j.ID, 100)
	sameEvents(t, evs, append(lines(1, 3, "a"), exit))
	got, err := db.Job(ctx, jobs.Ref{ID: j.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Incomplete || got.IncompleteReason != exit.IncompleteReason || got.Status != jobs.StatusFailed || *got.ExitCode != 5 {
		t.Errorf("job %s %v incomplete %v %q; want failed 5, incomplete with the reason", got.Status, got.ExitCode, got.Incomplete, got.IncompleteReason)
	}
	other := createJob(t, db)
	appendEvents(t, db, other.ID, []jobs.Event{exitEvent(1, jobs.StatusSucceeded, 0)})
	if got, err := db.Job(ctx, jobs.Ref{ID: other.ID}); err != nil || got.Incomplete || got.IncompleteReason != "" {
		t.Errorf("a complete job reads incomplete %v %q (%v)", got.Incomplete, got.IncompleteReason, err)
	}
}

// countChunks counts a job's chunk rows through a connection of its own.
func countChunks(t testing.TB, db *sqlite.DB, id jobs.ID) int {
	t.Helper()
	raw := rawDB(t, db.Path())
	var n int
	if err := raw.QueryRowContext(testCtx(t), "SELECT count(*) FROM chunks WHERE job_id = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rawDB opens the file with the driver directly, for what the API does not
// show (row counts, schema versions) or to hold locks.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}
