package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// testSchemaTooNew: a database written by a newer jobrun is refused, and
// the error names both versions.
func (s suite) testSchemaTooNew(t *testing.T) {
	name := s.b.Create(t)
	db := s.openName(t, name, Options{})
	db.Close()
	s.b.SetSchemaVersion(t, name, 99)
	db, err := s.b.Open(Ctx(t), name, Options{})
	if err == nil {
		db.Close()
	}
	if !errors.Is(err, jobs.ErrSchemaTooNew) {
		t.Fatalf("Open: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{"schema version 99", fmt.Sprintf("this jobrun knows up to %d", s.b.LatestSchema), "upgrade jobrun"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open: %q, want it to say %q", err, want)
		}
	}
}

// testMigrationRace opens a new database from several goroutines at once,
// each with connections of its own, as replicas starting together do. Had
// two of them migrated, the second CREATE TABLE would fail.
func (s suite) testMigrationRace(t *testing.T) {
	for round := range 3 {
		name := s.b.Create(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				db, err := s.b.Open(Ctx(t), name, Options{})
				if err == nil {
					err = db.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: concurrent Open: %v", round, err)
			}
		}
		db := s.openName(t, name, Options{})
		CreateJob(t, db)
	}
}

// testChanges: a commit made through one handle is reported by another
// handle's feed (its job, with at least the committed seq, or "anything
// may have changed"), and a feed with nothing to report returns after
// about its poll interval.
func (s suite) testChanges(t *testing.T) {
	w, name := s.open(t)
	r := s.openName(t, name, Options{})
	feed := s.b.Changes(r)
	ctx := Ctx(t)
	// Whatever the feed reports first (a baseline) does not count.
	if _, _, err := feed.NextChanges(ctx, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	id, _ := register(t, w, AgentJob(jobs.NewUID()))
	if _, _, err := w.IngestEvents(ctx, id, Lines(1, 3, "x")); err != nil {
		t.Fatal(err)
	}
	for {
		changed, all, err := feed.NextChanges(ctx, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if all || changed[id] >= 3 {
			break
		}
	}
}
