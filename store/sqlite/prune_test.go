package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
)

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
