package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
)

// bigLines returns n line events of size bytes each from seq first, so
// that a job spans many chunk rows.
func bigLines(first jobs.Seq, n, size int) []jobs.Event {
	evs := lines(first, n, "")
	for i := range evs {
		evs[i].Data = []byte(strings.Repeat(fmt.Sprint(i%10), size))
	}
	return evs
}

// finishedJob creates a job with n lines of size bytes, ended with exit
// code 0 at finished.
func finishedJob(t *testing.T, db *sqlite.DB, n, size int, finished time.Time) jobs.Job {
	t.Helper()
	j := createJob(t, db)
	for first := 1; first <= n; first += 1000 {
		appendEvents(t, db, j.ID, bigLines(jobs.Seq(first), min(1000, n-first+1), size))
	}
	exit := exitEvent(jobs.Seq(n+1), jobs.StatusSucceeded, 0)
	exit.Time = finished
	appendEvents(t, db, j.ID, []jobs.Event{exit})
	return j
}

// chunkRows counts a job's chunk rows with a connection of its own.
func chunkRows(t *testing.T, path string, id jobs.ID) int {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM chunks WHERE job_id = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRemoveJob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	db := openPath(t, path)
	ctx := testCtx(t)
	gone := finishedJob(t, db, 3000, 2000, t0) // about 6 MB: a few chunk rows
	kept := finishedJob(t, db, 10, 10, t0)
	running := createJob(t, db)
	appendEvents(t, db, running.ID, lines(1, 5, "r"))
	if n := chunkRows(t, path, gone.ID); n < 4 {
		t.Fatalf("the job to remove has %d chunk rows; the test needs several", n)
	}

	got, err := db.RemoveJob(ctx, jobs.Ref{UID: gone.UID}, store.RemoveOptions{Batch: 1})
	if err != nil {
		t.Fatalf("RemoveJob: %v", err)
	}
	if got.ID != gone.ID || got.Status != jobs.StatusSucceeded {
		t.Errorf("RemoveJob returned job %d (%s), want %d (succeeded)", got.ID, got.Status, gone.ID)
	}
	if _, err := db.Job(ctx, jobs.Ref{ID: gone.ID}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Job of the removed job: %v, want ErrNotFound", err)
	}
	if _, err := db.Events(ctx, gone.ID, 0, 10); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Events of the removed job: %v, want ErrNotFound", err)
	}
	if n := chunkRows(t, path, gone.ID); n != 0 {
		t.Errorf("%d chunk rows of the removed job left", n)
	}
	if evs := allEvents(t, db, kept.ID, 100); len(evs) != 11 {
		t.Errorf("the other finished job has %d events, want 11", len(evs))
	}

	_, err = db.RemoveJob(ctx, jobs.Ref{ID: running.ID}, store.RemoveOptions{})
	if !errors.Is(err, jobs.ErrConflict) || !strings.Contains(err.Error(), "still running") {
		t.Errorf("RemoveJob of a running job: %v, want ErrConflict saying it is still running", err)
	}
	if evs := allEvents(t, db, running.ID, 100); len(evs) != 5 {
		t.Errorf("the running job has %d events after the refused remove, want 5", len(evs))
	}
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("second RemoveJob: %v, want ErrNotFound", err)
	}
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: kept.ID}, store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	// AUTOINCREMENT: a new job never takes a removed job's id.
	if j := createJob(t, db); j.ID <= kept.ID {
		t.Errorf("new job got id %d, not above the removed %d", j.ID, kept.ID)
	}
}

// TestRemoveInterleavesWithIngest checks that removing a big job does not
// hold the write lock for the whole remove: another job's appends commit
// while the removed job's events are half deleted.
func TestRemoveInterleavesWithIngest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	db := openPath(t, path)
	ctx := testCtx(t)
	gone := finishedJob(t, db, 6000, 2000, t0)
	total := chunkRows(t, path, gone.ID)
	live := createJob(t, db)
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	done := make(chan struct{})
	type tally struct{ appended, during int }
	result := make(chan tally)
	go func() {
		var n tally
		defer func() { result <- n }()
		for seq := jobs.Seq(1); ; seq++ {
			select {
			case <-done:
				return
			default:
			}
			if err := db.AppendEvents(ctx, live.ID, lines(seq, 1, "live")); err != nil {
				t.Errorf("append during remove: %v", err)
				return
			}
			n.appended++
			// Committed while the remove was half way?
			var left int
			if err := raw.QueryRow("SELECT count(*) FROM chunks WHERE job_id = ?", gone.ID).Scan(&left); err != nil {
				t.Errorf("count chunks: %v", err)
				return
			}
			if left > 0 && left < total {
				n.during++
			}
		}
	}()
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{Batch: 1}); err != nil {
		t.Fatal(err)
	}
	close(done)
	n := <-result
	if n.during == 0 {
		t.Errorf("none of %d appends committed while the remove deleted the %d chunk rows: the remove held the writer", n.appended, total)
	}
	if evs := allEvents(t, db, live.ID, 1000); len(evs) != n.appended {
		t.Errorf("live job holds %d events, want the %d appended", len(evs), n.appended)
	}
}

func TestPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	db := openPath(t, path)
	ctx := testCtx(t)
	now := time.Now()
	old1 := finishedJob(t, db, 50, 100, now.Add(-72*time.Hour))
	oldRunning := createJob(t, db) // started long ago, still running: stays
	old2 := finishedJob(t, db, 50, 100, now.Add(-48*time.Hour))
	recent := finishedJob(t, db, 50, 100, now.Add(-time.Hour))
	old3 := finishedJob(t, db, 50, 100, now.Add(-30*time.Hour)) // newest id: kept by Keep 1

	res, err := db.Prune(ctx, store.PruneQuery{Before: now.Add(-24 * time.Hour), Keep: 1}, store.RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []jobs.ID{old1.ID, old2.ID}; fmt.Sprint(res.Removed) != fmt.Sprint(want) {
		t.Errorf("Prune removed %v, want %v", res.Removed, want)
	}
	if res.Chunks < 2 {
		t.Errorf("Prune deleted %d chunk rows, want at least 2", res.Chunks)
	}
	for _, j := range []jobs.Job{oldRunning, recent, old3} {
		if _, err := db.Job(ctx, jobs.Ref{ID: j.ID}); err != nil {
			t.Errorf("job %d should stay: %v", j.ID, err)
		}
	}
	res, err = db.Prune(ctx, store.PruneQuery{Before: now.Add(-24 * time.Hour)}, store.RemoveOptions{})
	if err != nil || len(res.Removed) != 1 || res.Removed[0] != old3.ID {
		t.Errorf("Prune without Keep: %v, %v; want job %d removed", res.Removed, err, old3.ID)
	}
	if _, err := db.Prune(ctx, store.PruneQuery{}, store.RemoveOptions{}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("Prune without Before: %v, want ErrInvalid", err)
	}
}

// TestPruneSweepsInterruptedRemove: a remove cancelled after the job's row
// went leaves its events behind; the next prune deletes them.
func TestPruneSweepsInterruptedRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	ctx, cancel := context.WithCancel(testCtx(t))
	var commits atomic.Int64
	var armed atomic.Bool
	db, err := sqlite.Open(testCtx(t), path, sqlite.Options{Host: testHost, OnCommit: func(time.Duration) {
		if armed.Load() && commits.Add(1) == 2 {
			cancel() // after the row and one batch of events
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gone := finishedJob(t, db, 3000, 2000, t0)
	armed.Store(true)
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{Batch: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted RemoveJob: %v, want context.Canceled", err)
	}
	armed.Store(false)
	left := chunkRows(t, path, gone.ID)
	if left == 0 {
		t.Fatal("the interrupted remove left no events; the test needs some")
	}
	if _, err := db.Job(testCtx(t), jobs.Ref{ID: gone.ID}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("job of the interrupted remove: %v, want ErrNotFound", err)
	}
	res, err := db.Prune(testCtx(t), store.PruneQuery{Before: t0.Add(-time.Hour)}, store.RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Chunks != int64(left) || len(res.Removed) != 0 {
		t.Errorf("Prune: removed %v and %d chunk rows, want no job and the %d rows left", res.Removed, res.Chunks, left)
	}
	if n := chunkRows(t, path, gone.ID); n != 0 {
		t.Errorf("%d chunk rows left after the sweep", n)
	}
}

func TestReclaimAndStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	db := openPath(t, path)
	ctx := testCtx(t)
	gone := finishedJob(t, db, 3000, 2000, t0)
	createJob(t, db)
	before, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.Jobs[jobs.StatusSucceeded] != 1 || before.Jobs[jobs.StatusRunning] != 1 || before.Bytes < 5<<20 {
		t.Errorf("store.Stats = %+v, want 1 succeeded, 1 running, at least 5 MiB", before)
	}
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	mid, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mid.FreeBytes < 5<<20 || mid.Bytes > before.Bytes/2 {
		t.Errorf("after the remove: %d bytes in use, %d free; want most of %d free", mid.Bytes, mid.FreeBytes, before.Bytes)
	}
	freed, err := db.Reclaim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if freed != mid.FreeBytes || after.FreeBytes != 0 {
		t.Errorf("Reclaim freed %d bytes, %d still free; want the %d free before, none left", freed, after.FreeBytes, mid.FreeBytes)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// TestVacuumConvertsOldDatabase: a database made without incremental
// auto-vacuum (by an older jobrun) is not reclaimed step by step until
// Vacuum converts it.
func TestVacuumConvertsOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	raw, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(sqlite.MigrationSQL(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db := openPath(t, path)
	ctx := testCtx(t)
	gone := finishedJob(t, db, 3000, 2000, t0)
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if freed, err := db.Reclaim(ctx); err != nil || freed != 0 {
		t.Errorf("Reclaim of an old database: %d, %v; want 0, nil", freed, err)
	}
	if err := db.Vacuum(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := db.Stats(ctx)
	if err != nil || st.FreeBytes != 0 {
		t.Errorf("after Vacuum: %+v, %v; want no free pages", st, err)
	}
	gone = finishedJob(t, db, 3000, 2000, t0)
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if freed, err := db.Reclaim(ctx); err != nil || freed < 5<<20 {
		t.Errorf("Reclaim after Vacuum: %d, %v; want the removed job's pages", freed, err)
	}
}
