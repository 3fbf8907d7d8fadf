package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
)

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "jobrun")
	db := openPath(t, filepath.Join(dir, "jobrun.db"))
	j := createJob(t, db)
	appendEvents(t, db, j.ID, lines(1, 10, "x"))

	want := map[string]fs.FileMode{
		dir:                                   0o700 | fs.ModeDir,
		filepath.Dir(dir):                     0o700 | fs.ModeDir,
		db.Path():                             0o600,
		db.Path() + "-wal":                    0o600,
		db.Path() + "-shm":                    0o600,
		db.Path() + ".locks":                  0o700 | fs.ModeDir,
		db.Path() + ".locks/" + string(j.UID): 0o600,
	}
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), mode)
		}
	}
}

func TestDataVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	db := openPath(t, path)
	other := openPath(t, path)
	ctx := testCtx(t)

	v0, err := db.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := db.DataVersion(ctx); v != v0 {
		t.Errorf("DataVersion changed from %d to %d without a write", v0, v)
	}
	j := createJob(t, other)
	v1, err := db.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v1 == v0 {
		t.Errorf("DataVersion stayed %d after another DB's write", v0)
	}
	appendEvents(t, db, j.ID, lines(1, 1, "own")) // this DB's own writer
	if v2, _ := db.DataVersion(ctx); v2 == v1 {
		t.Errorf("DataVersion stayed %d after this DB's own write", v1)
	}
}

// TestBusy holds the write lock from another connection: a write then
// fails after the busy timeout with an error that says so.
func TestBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	db, err := sqlite.Open(testCtx(t), path, sqlite.Options{Host: testHost, BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := rawDB(t, path)
	conn, err := raw.Conn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(testCtx(t), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(testCtx(t), "ROLLBACK")

	j := jobs.Job{Name: "blocked"}
	err = db.CreateJob(testCtx(t), &j)
	if err == nil || !strings.Contains(err.Error(), "database is locked by another process for longer than 50ms") {
		t.Errorf("CreateJob while locked: %v", err)
	}
}

func TestOpenMustExist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "jobrun.db")
	_, err := sqlite.Open(context.Background(), path, sqlite.Options{MustExist: true})
	if !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Open(MustExist) of a missing file: err = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(MustExist) created the folder of a missing database")
	}
}

// TestOpenThroughSymlinkKeepsLiveJob: a job whose runner is alive must not
// be marked lost by a process that opens the same file under another name.
func TestOpenThroughSymlinkKeepsLiveJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "jobrun.db")
	db, err := sqlite.Open(ctx, real, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j := &jobs.Job{Name: "live", Command: []string{"sleep", "1"}}
	if err := db.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(dir, "alias.db")
	if err := os.Symlink(real, alias); err != nil {
		t.Fatal(err)
	}
	other, err := sqlite.Open(ctx, alias, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	got, err := other.Job(ctx, jobs.Ref{ID: j.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != jobs.StatusRunning {
		t.Errorf("status through a symlink = %s, want running (the runner holds its lock)", got.Status)
	}
}

// TestWriteErrors: a database at its size cap (Options.MaxPages: the
// SQLITE_FULL of a full disk) fails appends as a disk full, and reports
// them to OnWriteError; a request the store refuses is not reported.
func TestWriteErrors(t *testing.T) {
	ctx := testCtx(t)
	var mu sync.Mutex
	var reported []error
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "jobrun.db"), sqlite.Options{Host: testHost, MaxPages: 64,
		OnWriteError: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, err)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j := createJob(t, db)
	if err := db.AppendEvents(ctx, j.ID, lines(5, 1, "gap")); !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("append with a gap: %v, want ErrConflict", err)
	}
	big := lines(1, 100, strings.Repeat("x", 4000))
	err = db.AppendEvents(ctx, j.ID, big)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("append beyond the cap: %v, want disk full", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "disk full") {
		t.Errorf("reported %v; want the one disk full, not the refused gap", reported)
	}
	// Reading still works.
	if _, err := db.Job(ctx, jobs.Ref{ID: j.ID}); err != nil {
		t.Errorf("reading a full database: %v", err)
	}
}
