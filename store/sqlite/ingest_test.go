package sqlite_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
)

// agentJob is a job as an agent reports it.
func agentJob(uid jobs.UID) jobs.Job {
	started := t0
	return jobs.Job{UID: uid, Name: "remote build", Command: []string{"make", "-j4"}, Cwd: "/src",
		Host: "buildbox", CreatedAt: t0, StartedAt: &started}
}

func register(t *testing.T, db *sqlite.DB, j jobs.Job) (jobs.ID, jobs.Seq) {
	t.Helper()
	id, last, err := db.RegisterJob(testCtx(t), j)
	if err != nil {
		t.Fatalf("RegisterJob(%s): %v", j.UID, err)
	}
	return id, last
}

func TestRegisterJobIsIdempotent(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	uid := jobs.NewUID()
	id, last := register(t, db, agentJob(uid))
	if last != 0 {
		t.Errorf("first registration: last seq %d, want 0", last)
	}
	if _, _, err := db.IngestEvents(ctx, id, lines(1, 5, "x")); err != nil {
		t.Fatal(err)
	}
	id2, last2 := register(t, db, agentJob(uid))
	if id2 != id || last2 != 5 {
		t.Errorf("second registration = %d, %d; want the same job %d with last seq 5", id2, last2, id)
	}
	list, err := db.Jobs(ctx, store.JobsQuery{})
	if err != nil || len(list) != 1 {
		t.Fatalf("Jobs = %d jobs, %v; want one", len(list), err)
	}
	j := list[0]
	if !j.Agent || j.Host != "buildbox" || j.Status != jobs.StatusRunning || j.LastHeard == nil || !j.StartedAt.Equal(t0) {
		t.Errorf("registered job = %+v; want a running agent job of buildbox started at t0, heard", j)
	}

	// A uid taken by a job run here is not an agent's to report.
	local := createJob(t, db)
	if _, _, err := db.RegisterJob(ctx, agentJob(local.UID)); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("registering a local job's uid: %v, want ErrConflict", err)
	}
	for name, j := range map[string]jobs.Job{
		"bad uid":   agentJob("Not A UID!"),
		"long host": func() jobs.Job { j := agentJob(jobs.NewUID()); j.Host = string(make([]byte, 300)); return j }(),
	} {
		if _, _, err := db.RegisterJob(ctx, j); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestIngestEventsIdempotentBySeq(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	id, _ := register(t, db, agentJob(jobs.NewUID()))

	fresh, last, err := db.IngestEvents(ctx, id, lines(1, 10, "a"))
	if err != nil || len(fresh) != 10 || last != 10 {
		t.Fatalf("first batch: %d fresh, last %d, %v; want 10, 10, nil", len(fresh), last, err)
	}
	// A resend that overlaps what is stored: the stored part is checked and
	// skipped, the rest appended.
	fresh, last, err = db.IngestEvents(ctx, id, lines(6, 10, "a"))
	if err != nil || len(fresh) != 5 || fresh[0].Seq != 11 || last != 15 {
		t.Fatalf("overlapping batch: %d fresh, last %d, %v; want 5 from seq 11, 15, nil", len(fresh), last, err)
	}
	// A pure resend appends nothing.
	fresh, last, err = db.IngestEvents(ctx, id, lines(3, 4, "a"))
	if err != nil || len(fresh) != 0 || last != 15 {
		t.Fatalf("resend: %d fresh, last %d, %v; want 0, 15, nil", len(fresh), last, err)
	}
	sameEvents(t, allEvents(t, db, id, 100), lines(1, 15, "a"))

	// A resent seq with other bytes, and a gap, are refused, and change
	// nothing.
	if _, _, err := db.IngestEvents(ctx, id, lines(14, 3, "b")); !errors.Is(err, jobs.ErrMismatch) {
		t.Errorf("conflicting resend: %v, want ErrMismatch", err)
	}
	if _, _, err := db.IngestEvents(ctx, id, lines(17, 1, "a")); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("gap: %v, want ErrInvalid", err)
	}
	// Seq starts at 1: seq 0 and below are malformed, not a resend that
	// differs from the stored events.
	for _, first := range []jobs.Seq{0, -1} {
		if _, _, err := db.IngestEvents(ctx, id, lines(first, 3, "a")); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("batch from seq %d: %v, want ErrInvalid", first, err)
		}
	}
	long := lines(16, 1, "a")
	long[0].Data = make([]byte, jobs.MaxLineBytes+1)
	if _, _, err := db.IngestEvents(ctx, id, long); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("line too long: %v, want ErrInvalid", err)
	}
	sameEvents(t, allEvents(t, db, id, 100), lines(1, 15, "a"))

	// The exit ends the job; a resend of it is fine, anything after it is
	// not.
	end := []jobs.Event{exitEvent(16, jobs.StatusSucceeded, 0)}
	if _, last, err = db.IngestEvents(ctx, id, end); err != nil || last != 16 {
		t.Fatalf("exit: last %d, %v", last, err)
	}
	if _, last, err = db.IngestEvents(ctx, id, append(lines(15, 1, "a"), end...)); err != nil || last != 16 {
		t.Errorf("resent exit: last %d, %v; want 16, nil", last, err)
	}
	if _, _, err := db.IngestEvents(ctx, id, lines(17, 1, "late")); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("event after the exit: %v, want ErrConflict", err)
	}
	j, err := db.Job(ctx, jobs.Ref{ID: id})
	if err != nil || j.Status != jobs.StatusSucceeded || j.LastSeq != 16 || j.Incomplete {
		t.Errorf("job = %+v, %v; want succeeded at seq 16, complete", j, err)
	}
	// A finished job registers again without error (its agent resends
	// nothing).
	if _, last := register(t, db, agentJob(j.UID)); last != 16 {
		t.Errorf("registering a finished job: last seq %d, want 16", last)
	}
}

// TestIngestKeepsIncomplete: the flag of an agent's job comes from its
// exit event, stored as sent; a resend must carry it too.
func TestIngestKeepsIncomplete(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	id, _ := register(t, db, agentJob(jobs.NewUID()))
	exit := exitEvent(3, jobs.StatusSucceeded, 0)
	exit.Incomplete, exit.IncompleteReason = true, "storing the output failed after seq 2: disk full"
	if _, _, err := db.IngestEvents(ctx, id, append(lines(1, 2, "a"), exit)); err != nil {
		t.Fatal(err)
	}
	j, err := db.Job(ctx, jobs.Ref{ID: id})
	if err != nil || !j.Incomplete || j.IncompleteReason != exit.IncompleteReason || j.Status != jobs.StatusSucceeded {
		t.Fatalf("job %+v, %v; want succeeded, incomplete with the agent's reason", j, err)
	}
	if evs := allEvents(t, db, id, 10); !evs[2].Incomplete || evs[2].IncompleteReason != exit.IncompleteReason {
		t.Errorf("stored exit %s, want the agent's flag", wire(evs[2]))
	}
	plain := exitEvent(3, jobs.StatusSucceeded, 0)
	if _, _, err := db.IngestEvents(ctx, id, []jobs.Event{plain}); !errors.Is(err, jobs.ErrMismatch) {
		t.Errorf("resent exit without the flag: %v, want ErrMismatch", err)
	}
}

func TestAgentJobsUnreachableAndExpire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	db, err := sqlite.Open(testCtx(t), path, sqlite.Options{Host: testHost, AgentTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := testCtx(t)
	// The agent's host is this host: RecoverLost must still leave the job
	// alone (its runner holds no lock here).
	j := agentJob(jobs.NewUID())
	j.Host = testHost
	id, _ := register(t, db, j)
	if _, _, err := db.IngestEvents(ctx, id, lines(1, 3, "x")); err != nil {
		t.Fatal(err)
	}
	if n, err := db.RecoverLost(ctx); err != nil || n != 0 {
		t.Fatalf("RecoverLost = %d, %v; want 0: agent jobs are not its business", n, err)
	}
	time.Sleep(5 * time.Millisecond) // longer than AgentTimeout
	wantStatus(t, db, id, jobs.StatusUnreachable)
	if err := db.TouchAgent(ctx, id); err != nil {
		t.Fatal(err)
	}
	other := openPath(t, path) // default AgentTimeout: just heard
	wantStatus(t, other, id, jobs.StatusRunning)

	// Not silent for long enough: kept.
	if exp, err := db.ExpireAgents(ctx, time.Now().Add(-time.Hour)); err != nil || len(exp) != 0 {
		t.Fatalf("ExpireAgents(an hour ago) = %v, %v; want none", exp, err)
	}
	exp, err := db.ExpireAgents(ctx, time.Now().Add(time.Second))
	if err != nil || len(exp) != 1 || exp[0].ID != id || exp[0].Exit.Seq != 4 || exp[0].Exit.Status != jobs.StatusLost {
		t.Fatalf("ExpireAgents = %+v, %v; want job %d lost at seq 4", exp, err, id)
	}
	wantStatus(t, db, id, jobs.StatusLost)
	// The agent comes back too late: refused, whether at registration or
	// with events.
	if _, _, err := db.RegisterJob(ctx, j); !errors.Is(err, jobs.ErrGone) {
		t.Errorf("registering a lost job: %v, want ErrGone", err)
	}
	if _, _, err := db.IngestEvents(ctx, id, lines(4, 2, "x")); !errors.Is(err, jobs.ErrGone) {
		t.Errorf("events over the lost exit: %v, want ErrGone", err)
	}
	if _, last, err := db.IngestEvents(ctx, id, lines(2, 2, "x")); err != nil || last != 4 {
		t.Errorf("resend of stored events of a lost job: last %d, %v; want 4, nil", last, err)
	}
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
