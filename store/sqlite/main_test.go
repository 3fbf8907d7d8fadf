package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/store/storetest"
)

// testHost is the Options.Host of every DB in these tests, so RecoverLost
// never touches jobs of the real host name.
const testHost = "testhost"

// childEnv makes the test binary act as a runner process holding jobs
// (see runChild) instead of running tests.
const childEnv = "STORE_TEST_CHILD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := runChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild opens the database, creates a job of testHost with a few lines
// and a job of another host, prints "ready ID1 ID2" and then holds their
// runner locks until stdin closes or the process is killed.
func runChild(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqlite.Open(ctx, path, sqlite.Options{Host: testHost})
	if err != nil {
		return err
	}
	defer db.Close()
	a := jobs.Job{Name: "child", Command: []string{"sleep"}}
	if err := db.CreateJob(ctx, &a); err != nil {
		return err
	}
	if err := db.AppendEvents(ctx, a.ID, lines(1, 3, "x")); err != nil {
		return err
	}
	b := jobs.Job{Name: "elsewhere", Host: "otherhost"}
	if err := db.CreateJob(ctx, &b); err != nil {
		return err
	}
	fmt.Printf("ready %d %d\n", a.ID, b.ID)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// Helpers shared with the conformance suite.
var (
	testCtx     = storetest.Ctx
	createJob   = func(t testing.TB, db *sqlite.DB) jobs.Job { t.Helper(); return storetest.CreateJob(t, db) }
	lines       = storetest.Lines
	exitEvent   = storetest.Exit
	t0          = storetest.T0
	wire        = storetest.Wire
	sameEvents  = storetest.SameEvents
	finishedJob = func(t testing.TB, db *sqlite.DB, n, size int, finished time.Time) jobs.Job {
		t.Helper()
		return storetest.FinishedJob(t, db, n, size, finished)
	}
)

func appendEvents(t testing.TB, db *sqlite.DB, id jobs.ID, evs []jobs.Event) {
	t.Helper()
	storetest.Append(t, db, id, evs)
}

func allEvents(t testing.TB, db *sqlite.DB, id jobs.ID, page int) []jobs.Event {
	t.Helper()
	return storetest.AllEvents(t, db, id, page)
}

func wantStatus(t *testing.T, db *sqlite.DB, id jobs.ID, want jobs.Status) jobs.Job {
	t.Helper()
	return storetest.WantStatus(t, db, id, want)
}

// openDB opens (creating) a database file in a fresh temp dir.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "jobrun.db"))
}

func openPath(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(testCtx(t), path, sqlite.Options{Host: testHost})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
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

// chunkRows counts a job's chunk rows with a read-only connection of its
// own.
func chunkRows(t testing.TB, path string, id jobs.ID) int {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
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
