package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// bigLines returns n line events of size bytes each from seq first, so
// that a job spans many chunk rows.
func bigLines(first jobs.Seq, n, size int) []jobs.Event {
	evs := Lines(first, n, "")
	for i := range evs {
		evs[i].Data = []byte(strings.Repeat(fmt.Sprint(i%10), size))
	}
	return evs
}

// FinishedJob creates a job with n lines of size bytes, ended with exit
// code 0 at finished.
func FinishedJob(t testing.TB, db jobs.Store, n, size int, finished time.Time) jobs.Job {
	t.Helper()
	j := CreateJob(t, db)
	for first := 1; first <= n; first += 1000 {
		Append(t, db, j.ID, bigLines(jobs.Seq(first), min(1000, n-first+1), size))
	}
	exit := Exit(jobs.Seq(n+1), jobs.StatusSucceeded, 0)
	exit.Time = finished
	Append(t, db, j.ID, []jobs.Event{exit})
	return j
}

func (s suite) testRemoveJob(t *testing.T) {
	db, name := s.open(t)
	ctx := Ctx(t)
	gone := FinishedJob(t, db, 3000, 2000, T0) // about 6 MB: a few chunk rows
	kept := FinishedJob(t, db, 10, 10, T0)
	running := CreateJob(t, db)
	Append(t, db, running.ID, Lines(1, 5, "r"))
	if n := s.b.ChunkRows(t, name, gone.ID); n < 4 {
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
	if n := s.b.ChunkRows(t, name, gone.ID); n != 0 {
		t.Errorf("%d chunk rows of the removed job left", n)
	}
	if evs := AllEvents(t, db, kept.ID, 100); len(evs) != 11 {
		t.Errorf("the other finished job has %d events, want 11", len(evs))
	}

	_, err = db.RemoveJob(ctx, jobs.Ref{ID: running.ID}, store.RemoveOptions{})
	if !errors.Is(err, jobs.ErrConflict) || !strings.Contains(err.Error(), "still running") {
		t.Errorf("RemoveJob of a running job: %v, want ErrConflict saying it is still running", err)
	}
	if evs := AllEvents(t, db, running.ID, 100); len(evs) != 5 {
		t.Errorf("the running job has %d events after the refused remove, want 5", len(evs))
	}
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("second RemoveJob: %v, want ErrNotFound", err)
	}
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: kept.ID}, store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	// Ids are never reused: a new job never takes a removed job's id.
	if j := CreateJob(t, db); j.ID <= kept.ID {
		t.Errorf("new job got id %d, not above the removed %d", j.ID, kept.ID)
	}
}

// testRemoveInterleavesWithIngest checks that removing a big job does not
// hold up writes for the whole remove: another job's appends commit while
// the removed job's events are half deleted.
func (s suite) testRemoveInterleavesWithIngest(t *testing.T) {
	db, name := s.open(t)
	ctx := Ctx(t)
	gone := FinishedJob(t, db, 6000, 2000, T0)
	total := s.b.ChunkRows(t, name, gone.ID)
	live := CreateJob(t, db)

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
			if err := db.AppendEvents(ctx, live.ID, Lines(seq, 1, "live")); err != nil {
				t.Errorf("append during remove: %v", err)
				return
			}
			n.appended++
			// Committed while the remove was half way?
			if left := s.b.ChunkRows(t, name, gone.ID); left > 0 && left < total {
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
		t.Errorf("none of %d appends committed while the remove deleted the %d chunk rows: the remove held up writes", n.appended, total)
	}
	if evs := AllEvents(t, db, live.ID, 1000); len(evs) != n.appended {
		t.Errorf("live job holds %d events, want the %d appended", len(evs), n.appended)
	}
}

func (s suite) testPrune(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	now := time.Now()
	old1 := FinishedJob(t, db, 50, 100, now.Add(-72*time.Hour))
	oldRunning := CreateJob(t, db) // started long ago, still running: stays
	old2 := FinishedJob(t, db, 50, 100, now.Add(-48*time.Hour))
	recent := FinishedJob(t, db, 50, 100, now.Add(-time.Hour))
	old3 := FinishedJob(t, db, 50, 100, now.Add(-30*time.Hour)) // newest id: kept by Keep 1

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

// testPruneSweepsInterruptedRemove: a remove cancelled after the job's row
// went leaves its events behind; the next prune deletes them.
func (s suite) testPruneSweepsInterruptedRemove(t *testing.T) {
	name := s.b.Create(t)
	ctx, cancel := context.WithCancel(Ctx(t))
	var commits atomic.Int64
	var armed atomic.Bool
	db := s.openName(t, name, Options{OnCommit: func(time.Duration) {
		if armed.Load() && commits.Add(1) == 2 {
			cancel() // after the row and one batch of events
		}
	}})
	gone := FinishedJob(t, db, 3000, 2000, T0)
	armed.Store(true)
	if _, err := db.RemoveJob(ctx, jobs.Ref{ID: gone.ID}, store.RemoveOptions{Batch: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted RemoveJob: %v, want context.Canceled", err)
	}
	armed.Store(false)
	left := s.b.ChunkRows(t, name, gone.ID)
	if left == 0 {
		t.Fatal("the interrupted remove left no events; the test needs some")
	}
	if _, err := db.Job(Ctx(t), jobs.Ref{ID: gone.ID}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("job of the interrupted remove: %v, want ErrNotFound", err)
	}
	res, err := db.Prune(Ctx(t), store.PruneQuery{Before: T0.Add(-time.Hour)}, store.RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Chunks != int64(left) || len(res.Removed) != 0 {
		t.Errorf("Prune: removed %v and %d chunk rows, want no job and the %d rows left", res.Removed, res.Chunks, left)
	}
	if n := s.b.ChunkRows(t, name, gone.ID); n != 0 {
		t.Errorf("%d chunk rows left after the sweep", n)
	}
}

// testStats: jobs by status (an agent job silent for too long counts as
// unreachable) and the bytes the events take.
func (s suite) testStats(t *testing.T) {
	name := s.b.Create(t)
	db := s.openName(t, name, Options{AgentTimeout: time.Millisecond})
	ctx := Ctx(t)
	FinishedJob(t, db, 3000, 2000, T0)
	CreateJob(t, db)
	register(t, db, AgentJob(jobs.NewUID()))
	time.Sleep(5 * time.Millisecond) // longer than AgentTimeout
	st, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Jobs[jobs.StatusSucceeded] != 1 || st.Jobs[jobs.StatusRunning] != 1 || st.Jobs[jobs.StatusUnreachable] != 1 {
		t.Errorf("Stats.Jobs = %v, want 1 succeeded, 1 running, 1 unreachable", st.Jobs)
	}
	if st.Bytes < 5<<20 {
		t.Errorf("Stats.Bytes = %d, want at least the 5 MiB of events", st.Bytes)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
