package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store/sqlite"
)

func getJob(t *testing.T, db *sqlite.DB, id jobs.ID) jobs.Job {
	t.Helper()
	j, err := db.Job(testCtx(t), jobs.Ref{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return j
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
	appendEvents(t, db, 3, []jobs.Event{{Seq: 3, Time: t0.Add(5 * time.Second), Type: jobs.TypeProgress,
		Progress: &progress.Report{Percent: 42, Message: "after migration", State: progress.StateNormal}}})
	if p := getJob(t, db, 3).Progress; p == nil || p.Percent != 42 || p.Message != "after migration" {
		t.Errorf("progress after migration: %+v", p)
	}
}
