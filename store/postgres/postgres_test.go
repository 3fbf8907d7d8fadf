package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/postgres"
	"github.com/jobrun/jobrun/store/postgres/pgtest"
	"github.com/jobrun/jobrun/store/storetest"
)

// TestNoMigrate: the commands other than serve never migrate, and use only
// a schema that is exactly theirs.
func TestNoMigrate(t *testing.T) {
	url := pgtest.DB(t)
	ctx := storetest.Ctx(t)
	_, err := postgres.Open(ctx, url, postgres.Options{NoMigrate: true})
	if !errors.Is(err, jobs.ErrNotFound) || !strings.Contains(err.Error(), "jobrun serve creates it") {
		t.Fatalf("NoMigrate Open of an empty database: %v, want ErrNotFound saying serve creates the schema", err)
	}
	open(t, url, postgres.Options{}) // serve migrates
	open(t, url, postgres.Options{NoMigrate: true})

	conn := raw(t, url)
	latest := postgres.LatestSchema()
	cases := []struct {
		version int
		want    error
		says    string
	}{{latest + 1, jobs.ErrSchemaTooNew, "upgrade jobrun"}}
	if latest > 1 {
		cases = append(cases, struct {
			version int
			want    error
			says    string
		}{latest - 1, jobs.ErrConflict, "start this jobrun's serve once"})
	}
	for _, tc := range cases {
		if _, err := conn.Exec(ctx, "UPDATE jobrun_schema SET version = $1", tc.version); err != nil {
			t.Fatal(err)
		}
		_, err := postgres.Open(ctx, url, postgres.Options{NoMigrate: true})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) ||
			!strings.Contains(err.Error(), "schema version "+strconv.Itoa(tc.version)) || !strings.Contains(err.Error(), strconv.Itoa(latest)) {
			t.Errorf("NoMigrate Open at version %d: %v, want %v naming both versions and saying %q", tc.version, err, tc.want, tc.says)
		}
	}
}

// TestChangesResyncAfterListenerDrop: notifications sent while the
// listening connection is down are lost; once it listens again, the feed
// reports every live job with its last seq.
func TestChangesResyncAfterListenerDrop(t *testing.T) {
	url := pgtest.DB(t)
	a := open(t, url, postgres.Options{})
	b := open(t, url, postgres.Options{})
	ctx := storetest.Ctx(t)
	feed := b.Changes()
	defer feed.Close()
	if _, all, err := feed.NextChanges(ctx, time.Second); err != nil || !all {
		t.Fatalf("first NextChanges: all %v, %v; want all once listening", all, err)
	}
	id, _, err := a.RegisterJob(ctx, storetest.AgentJob(jobs.NewUID()))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.IngestEvents(ctx, id, storetest.Lines(1, 7, "x")); err != nil {
		t.Fatal(err)
	}
	// Take what was notified.
	for {
		changed, _, err := feed.NextChanges(ctx, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if changed[id] == 7 {
			break
		}
	}
	var n int
	err = raw(t, url).QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'jobrun listen' AND datname = current_database()`).Scan(&n)
	if err != nil || n == 0 {
		t.Fatalf("terminated %d listening connections, %v", n, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		changed, all, err := feed.NextChanges(wctx, 10*time.Millisecond)
		if err != nil {
			t.Fatalf("no resync after the listening connection dropped: %v", err)
		}
		if all && changed[id] == 7 {
			return
		}
	}
}

// TestRelayCancel: a cancel asked of one replica reaches the replica that
// holds the job's agent; with no such replica, ErrConflict.
func TestRelayCancel(t *testing.T) {
	url := pgtest.DB(t)
	a := open(t, url, postgres.Options{CancelWait: 300 * time.Millisecond})
	b := open(t, url, postgres.Options{})
	got := make(chan jobs.ID, 4)
	b.ServeCancels(func(ctx context.Context, id jobs.ID) error {
		if id != 7 {
			return jobs.ErrConflict
		}
		got <- id
		return nil
	})
	ctx := storetest.Ctx(t)
	b.Changes().NextChanges(ctx, 5*time.Second) // returns once b listens, as a serve does from its start
	if err := a.RelayCancel(ctx, 7); err != nil {
		t.Fatalf("RelayCancel(7): %v", err)
	}
	if id := <-got; id != 7 {
		t.Errorf("the holder was asked to cancel job %d, want 7", id)
	}
	if err := a.RelayCancel(ctx, 8); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("RelayCancel(8) with no replica holding it: %v, want ErrConflict", err)
	}
}

// TestSecret: replicas share one secret, made by the first; a rotation
// reaches the others.
func TestSecret(t *testing.T) {
	url := pgtest.DB(t)
	a := open(t, url, postgres.Options{})
	b := open(t, url, postgres.Options{})
	ctx := storetest.Ctx(t)
	sa, err := a.Secret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Secret(ctx)
	if err != nil || !bytes.Equal(sa, sb) || len(sa) != 32 {
		t.Fatalf("secrets %x and %x (%v): want one 32-byte secret", sa, sb, err)
	}
	rotated := make(chan []byte, 1)
	b.WatchSecret(func(s []byte) { rotated <- s })
	b.Changes().NextChanges(ctx, 5*time.Second) // returns once b listens
	if err := a.RotateSecret(ctx); err != nil {
		t.Fatal(err)
	}
	s := <-rotated
	if bytes.Equal(s, sa) {
		t.Errorf("the rotated secret is the old one")
	}
	if now, err := a.Secret(ctx); err != nil || !bytes.Equal(now, s) {
		t.Errorf("Secret after the rotation = %x, %v; want %x", now, err, s)
	}
}

// TestServerRestart: while PostgreSQL is down, calls fail with
// ErrUnavailable; when it is back, the same DB works again and its feed
// resyncs.
func TestServerRestart(t *testing.T) {
	c, err := pgtest.Start()
	if err != nil {
		pgtest.Need(t) // skips or fails as for the shared cluster
		t.Fatal(err)
	}
	defer c.Stop()
	url, err := c.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, url, postgres.Options{})
	watcher := open(t, url, postgres.Options{}) // a feed hears of other DBs' commits
	ctx := storetest.Ctx(t)
	feed := watcher.Changes()
	defer feed.Close()
	feed.NextChanges(ctx, 5*time.Second)
	id, _, err := db.RegisterJob(ctx, storetest.AgentJob(jobs.NewUID()))
	if err != nil {
		t.Fatal(err)
	}
	// The test cluster commits without waiting for the disk: flush it, so
	// that the crash below loses nothing committed.
	if _, err := raw(t, url).Exec(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	if err := c.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); !errors.Is(err, jobs.ErrUnavailable) {
		t.Errorf("Ping while PostgreSQL is down: %v, want ErrUnavailable", err)
	}
	if _, _, err := db.IngestEvents(ctx, id, storetest.Lines(1, 2, "x")); !errors.Is(err, jobs.ErrUnavailable) {
		t.Errorf("IngestEvents while PostgreSQL is down: %v, want ErrUnavailable", err)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	for db.Ping(ctx) != nil {
		time.Sleep(20 * time.Millisecond)
	}
	if _, last, err := db.IngestEvents(ctx, id, storetest.Lines(1, 2, "x")); err != nil || last != 2 {
		t.Fatalf("IngestEvents after the restart: last %d, %v", last, err)
	}
	for {
		// The feed's first tries may meet connections the restart broke:
		// it says so and tries again (the Hub's watcher logs and waits).
		changed, _, err := feed.NextChanges(ctx, 10*time.Millisecond)
		if err != nil && !errors.Is(err, jobs.ErrUnavailable) {
			t.Fatal(err)
		}
		if changed[id] == 2 {
			return
		}
	}
}
