package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

func register(t *testing.T, db Store, j jobs.Job) (jobs.ID, jobs.Seq) {
	t.Helper()
	id, last, err := db.RegisterJob(Ctx(t), j)
	if err != nil {
		t.Fatalf("RegisterJob(%s): %v", j.UID, err)
	}
	return id, last
}

func (s suite) testRegisterJobIsIdempotent(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	uid := jobs.NewUID()
	id, last := register(t, db, AgentJob(uid))
	if last != 0 {
		t.Errorf("first registration: last seq %d, want 0", last)
	}
	if _, _, err := db.IngestEvents(ctx, id, Lines(1, 5, "x")); err != nil {
		t.Fatal(err)
	}
	id2, last2 := register(t, db, AgentJob(uid))
	if id2 != id || last2 != 5 {
		t.Errorf("second registration = %d, %d; want the same job %d with last seq 5", id2, last2, id)
	}
	list, err := db.Jobs(ctx, store.JobsQuery{})
	if err != nil || len(list) != 1 {
		t.Fatalf("Jobs = %d jobs, %v; want one", len(list), err)
	}
	j := list[0]
	if !j.Agent || j.Host != "buildbox" || j.Status != jobs.StatusRunning || j.LastHeard == nil || !j.StartedAt.Equal(T0) {
		t.Errorf("registered job = %+v; want a running agent job of buildbox started at t0, heard", j)
	}

	// A uid taken by a job run here is not an agent's to report.
	local := CreateJob(t, db)
	if _, _, err := db.RegisterJob(ctx, AgentJob(local.UID)); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("registering a local job's uid: %v, want ErrConflict", err)
	}
	for name, j := range map[string]jobs.Job{
		"bad uid":   AgentJob("Not A UID!"),
		"long host": func() jobs.Job { j := AgentJob(jobs.NewUID()); j.Host = string(make([]byte, 300)); return j }(),
	} {
		if _, _, err := db.RegisterJob(ctx, j); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func (s suite) testIngestEventsIdempotentBySeq(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	id, _ := register(t, db, AgentJob(jobs.NewUID()))

	fresh, last, err := db.IngestEvents(ctx, id, Lines(1, 10, "a"))
	if err != nil || len(fresh) != 10 || last != 10 {
		t.Fatalf("first batch: %d fresh, last %d, %v; want 10, 10, nil", len(fresh), last, err)
	}
	// A resend that overlaps what is stored: the stored part is checked and
	// skipped, the rest appended.
	fresh, last, err = db.IngestEvents(ctx, id, Lines(6, 10, "a"))
	if err != nil || len(fresh) != 5 || fresh[0].Seq != 11 || last != 15 {
		t.Fatalf("overlapping batch: %d fresh, last %d, %v; want 5 from seq 11, 15, nil", len(fresh), last, err)
	}
	// A pure resend appends nothing.
	fresh, last, err = db.IngestEvents(ctx, id, Lines(3, 4, "a"))
	if err != nil || len(fresh) != 0 || last != 15 {
		t.Fatalf("resend: %d fresh, last %d, %v; want 0, 15, nil", len(fresh), last, err)
	}
	SameEvents(t, AllEvents(t, db, id, 100), Lines(1, 15, "a"))

	// A resent seq with other bytes, and a gap, are refused, and change
	// nothing.
	if _, _, err := db.IngestEvents(ctx, id, Lines(14, 3, "b")); !errors.Is(err, jobs.ErrMismatch) {
		t.Errorf("conflicting resend: %v, want ErrMismatch", err)
	}
	if _, _, err := db.IngestEvents(ctx, id, Lines(17, 1, "a")); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("gap: %v, want ErrInvalid", err)
	}
	// Seq starts at 1: seq 0 and below are malformed, not a resend that
	// differs from the stored events.
	for _, first := range []jobs.Seq{0, -1} {
		if _, _, err := db.IngestEvents(ctx, id, Lines(first, 3, "a")); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("batch from seq %d: %v, want ErrInvalid", first, err)
		}
	}
	long := Lines(16, 1, "a")
	long[0].Data = make([]byte, jobs.MaxLineBytes+1)
	if _, _, err := db.IngestEvents(ctx, id, long); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("line too long: %v, want ErrInvalid", err)
	}
	SameEvents(t, AllEvents(t, db, id, 100), Lines(1, 15, "a"))

	// The exit ends the job; a resend of it is fine, anything after it is
	// not.
	end := []jobs.Event{Exit(16, jobs.StatusSucceeded, 0)}
	if _, last, err = db.IngestEvents(ctx, id, end); err != nil || last != 16 {
		t.Fatalf("exit: last %d, %v", last, err)
	}
	if _, last, err = db.IngestEvents(ctx, id, append(Lines(15, 1, "a"), end...)); err != nil || last != 16 {
		t.Errorf("resent exit: last %d, %v; want 16, nil", last, err)
	}
	if _, _, err := db.IngestEvents(ctx, id, Lines(17, 1, "late")); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("event after the exit: %v, want ErrConflict", err)
	}
	j, err := db.Job(ctx, jobs.Ref{ID: id})
	if err != nil || j.Status != jobs.StatusSucceeded || j.LastSeq != 16 {
		t.Errorf("job = %+v, %v; want succeeded at seq 16", j, err)
	}
	// A finished job registers again without error (its agent resends
	// nothing).
	if _, last := register(t, db, AgentJob(j.UID)); last != 16 {
		t.Errorf("registering a finished job: last seq %d, want 16", last)
	}
	// The ingest entry points refuse a job run here.
	local := CreateJob(t, db)
	if _, _, err := db.IngestEvents(ctx, local.ID, Lines(1, 1, "x")); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("ingest into a job run here: %v, want ErrConflict", err)
	}
}

// testIngestRacingHandles: two handles on one database (two replicas an
// agent reconnected between) receive the same batches at the same time;
// every seq is stored once, and between them they report every event
// fresh exactly once.
func (s suite) testIngestRacingHandles(t *testing.T) {
	a, name := s.open(t)
	b := s.openName(t, name, Options{})
	uid := jobs.NewUID()
	id, _ := register(t, a, AgentJob(uid))
	if id2, _ := register(t, b, AgentJob(uid)); id2 != id {
		t.Fatalf("the second handle registered job %d, want %d", id2, id)
	}
	const batches, size = 40, 50
	all := Lines(1, batches*size, "r")
	var mu sync.Mutex
	freshBySeq := map[jobs.Seq]int{}
	var wg sync.WaitGroup
	for _, db := range []Store{a, b} {
		wg.Go(func() {
			for i := range batches {
				// Each batch resends the previous one too.
				from := max(0, (i-1)*size)
				fresh, last, err := db.IngestEvents(Ctx(t), id, all[from:(i+1)*size])
				if err != nil {
					t.Errorf("IngestEvents(batch %d): %v", i, err)
					return
				}
				if last < jobs.Seq((i+1)*size) {
					t.Errorf("batch %d: last stored seq %d, want at least %d", i, last, (i+1)*size)
				}
				mu.Lock()
				for _, e := range fresh {
					freshBySeq[e.Seq]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for seq := jobs.Seq(1); seq <= jobs.Seq(len(all)); seq++ {
		if n := freshBySeq[seq]; n != 1 {
			t.Fatalf("seq %d reported fresh %d times, want once", seq, n)
		}
	}
	SameEvents(t, AllEvents(t, a, id, 1000), all)
	SameEvents(t, AllEvents(t, b, id, 333), all)
}

func (s suite) testAgentJobsUnreachableAndExpire(t *testing.T) {
	name := s.b.Create(t)
	db := s.openName(t, name, Options{AgentTimeout: time.Millisecond})
	ctx := Ctx(t)
	j := AgentJob(jobs.NewUID())
	id, _ := register(t, db, j)
	if _, _, err := db.IngestEvents(ctx, id, Lines(1, 3, "x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // longer than AgentTimeout
	WantStatus(t, db, id, jobs.StatusUnreachable)
	if err := db.TouchAgent(ctx, id); err != nil {
		t.Fatal(err)
	}
	other := s.openName(t, name, Options{}) // default AgentTimeout: just heard
	WantStatus(t, other, id, jobs.StatusRunning)

	// Not silent for long enough: kept.
	if exp, err := db.ExpireAgents(ctx, time.Now().Add(-time.Hour)); err != nil || len(exp) != 0 {
		t.Fatalf("ExpireAgents(an hour ago) = %v, %v; want none", exp, err)
	}
	exp, err := db.ExpireAgents(ctx, time.Now().Add(time.Second))
	if err != nil || len(exp) != 1 || exp[0].ID != id || exp[0].Exit.Seq != 4 || exp[0].Exit.Status != jobs.StatusLost {
		t.Fatalf("ExpireAgents = %+v, %v; want job %d lost at seq 4", exp, err, id)
	}
	WantStatus(t, db, id, jobs.StatusLost)
	evs := AllEvents(t, db, id, 10)
	if len(evs) != 4 || Wire(evs[3]) != Wire(exp[0].Exit) || evs[3].ExitCode != nil {
		t.Errorf("stored events end with %s, want the returned lost exit %s", Wire(evs[len(evs)-1]), Wire(exp[0].Exit))
	}
	// The agent comes back too late: refused, whether at registration or
	// with events.
	if _, _, err := db.RegisterJob(ctx, j); !errors.Is(err, jobs.ErrGone) {
		t.Errorf("registering a lost job: %v, want ErrGone", err)
	}
	if _, _, err := db.IngestEvents(ctx, id, Lines(4, 2, "x")); !errors.Is(err, jobs.ErrGone) {
		t.Errorf("events over the lost exit: %v, want ErrGone", err)
	}
	if _, last, err := db.IngestEvents(ctx, id, Lines(2, 2, "x")); err != nil || last != 4 {
		t.Errorf("resend of stored events of a lost job: last %d, %v; want 4, nil", last, err)
	}
	if err := db.TouchAgent(ctx, id); err != nil {
		t.Errorf("TouchAgent of a lost job: %v, want nil (nothing to do)", err)
	}
}

// testExpireOnce: several handles (replicas running their reapers) expire
// the same silent agents at once; each job gets one lost exit event.
func (s suite) testExpireOnce(t *testing.T) {
	name := s.b.Create(t)
	var dbs []Store
	for range 3 {
		dbs = append(dbs, s.openName(t, name, Options{}))
	}
	var ids []jobs.ID
	for range 5 {
		id, _ := register(t, dbs[0], AgentJob(jobs.NewUID()))
		if _, _, err := dbs[0].IngestEvents(Ctx(t), id, Lines(1, 2, "x")); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var mu sync.Mutex
	lost := map[jobs.ID]int{}
	var wg sync.WaitGroup
	cutoff := time.Now().Add(time.Hour)
	for _, db := range dbs {
		wg.Go(func() {
			exp, err := db.ExpireAgents(Ctx(t), cutoff)
			if err != nil {
				t.Errorf("ExpireAgents: %v", err)
			}
			mu.Lock()
			for _, e := range exp {
				lost[e.ID]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	// A reaper that found the lock taken leaves the rest to the next round.
	for _, db := range dbs {
		exp, err := db.ExpireAgents(Ctx(t), cutoff)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exp {
			lost[e.ID]++
		}
	}
	for _, id := range ids {
		if lost[id] != 1 {
			t.Errorf("job %d was reported lost %d times, want once", id, lost[id])
		}
		evs := AllEvents(t, dbs[1], id, 10)
		if len(evs) != 3 || evs[2].Status != jobs.StatusLost {
			t.Errorf("job %d: %d events, want 2 lines and one lost exit", id, len(evs))
		}
	}
}

// testIngestKeepsIncomplete: the flag of an agent's job comes from its
// exit event, stored as sent; a resend must carry it too.
func (s suite) testIngestKeepsIncomplete(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	id, _ := register(t, db, AgentJob(jobs.NewUID()))
	exit := Exit(3, jobs.StatusSucceeded, 0)
	exit.Incomplete, exit.IncompleteReason = true, "storing the output failed after seq 2: disk full"
	if _, _, err := db.IngestEvents(ctx, id, append(Lines(1, 2, "a"), exit)); err != nil {
		t.Fatal(err)
	}
	j, err := db.Job(ctx, jobs.Ref{ID: id})
	if err != nil || !j.Incomplete || j.IncompleteReason != exit.IncompleteReason || j.Status != jobs.StatusSucceeded {
		t.Fatalf("job %+v, %v; want succeeded, incomplete with the agent's reason", j, err)
	}
	if evs := AllEvents(t, db, id, 10); !evs[2].Incomplete || evs[2].IncompleteReason != exit.IncompleteReason {
		t.Errorf("stored exit %s, want the agent's flag", Wire(evs[2]))
	}
	plain := Exit(3, jobs.StatusSucceeded, 0)
	if _, _, err := db.IngestEvents(ctx, id, []jobs.Event{plain}); !errors.Is(err, jobs.ErrMismatch) {
		t.Errorf("resent exit without the flag: %v, want ErrMismatch", err)
	}
}
