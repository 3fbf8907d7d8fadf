package sqlite_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/store/storetest"
)

// TestRecoverLostLeavesAgentJobs: a job reported by an agent whose host
// is this host holds no runner lock here; RecoverLost must leave it
// alone.
func TestRecoverLostLeavesAgentJobs(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	j := storetest.AgentJob(jobs.NewUID())
	j.Host = testHost
	id, _, err := db.RegisterJob(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, id, lines(1, 3, "x")); err != nil {
		t.Fatal(err)
	}
	if n, err := db.RecoverLost(ctx); err != nil || n != 0 {
		t.Fatalf("RecoverLost = %d, %v; want 0: agent jobs are not its business", n, err)
	}
	wantStatus(t, db, id, jobs.StatusRunning)
}

func TestSpool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	ctx := testCtx(t)
	uid := jobs.NewUID()
	sp, err := sqlite.CreateSpool(ctx, dir, uid, sqlite.Options{Host: testHost})
	if err != nil {
		t.Fatal(err)
	}
	j := jobs.Job{UID: uid, Name: "spooled", Command: []string{"true"}}
	if err := sp.CreateJob(ctx, &j); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("spool dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
	// Held: nobody else may deliver it.
	if _, err := sqlite.OpenSpool(ctx, dir, uid, sqlite.Options{Host: testHost}); !errors.Is(err, sqlite.ErrSpoolBusy) {
		t.Errorf("OpenSpool of a held spool: %v, want ErrSpoolBusy", err)
	}
	if _, err := sqlite.CreateSpool(ctx, dir, uid, sqlite.Options{Host: testHost}); !errors.Is(err, sqlite.ErrSpoolBusy) {
		t.Errorf("CreateSpool of a held spool: %v, want ErrSpoolBusy", err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	uids, err := sqlite.Spools(dir)
	if err != nil || len(uids) != 1 || uids[0] != uid {
		t.Fatalf("Spools = %v, %v; want [%s]", uids, err, uid)
	}
	// Its runner is gone: opening it again ends the job as lost.
	sp, err = sqlite.OpenSpool(ctx, dir, uid, sqlite.Options{Host: testHost})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, sp.DB, j.ID, jobs.StatusLost)
	if err := sp.Remove(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("spool dir after Remove holds %d entries, want none", len(ents))
	}
	if _, err := sqlite.OpenSpool(ctx, dir, uid, sqlite.Options{Host: testHost}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenSpool after Remove: %v, want ErrNotExist", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed OpenSpool left %d files", len(ents))
	}
	// A spool the server refuses is set aside where Spools no longer
	// finds it.
	uid2 := jobs.NewUID()
	sp, err = sqlite.CreateSpool(ctx, dir, uid2, sqlite.Options{Host: testHost})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.CreateJob(ctx, &jobs.Job{UID: uid2, Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	to, err := sp.Shelve()
	if err != nil || to != filepath.Join(dir, "refused", string(uid2)+".db") {
		t.Fatalf("Shelve = %q, %v", to, err)
	}
	if _, err := os.Stat(to); err != nil {
		t.Errorf("shelved spool: %v", err)
	}
	if uids, err := sqlite.Spools(dir); err != nil || len(uids) != 0 {
		t.Errorf("Spools after Shelve = %v, %v; want none", uids, err)
	}
	if uids, err := sqlite.Spools(filepath.Join(dir, "none")); err != nil || len(uids) != 0 {
		t.Errorf("Spools of a missing dir = %v, %v; want none", uids, err)
	}
}
