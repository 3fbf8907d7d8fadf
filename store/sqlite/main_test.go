package sqlite_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
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

// testCtx returns a context that ends with the test, bounded in time.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
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

// createJob creates a running job.
func createJob(t testing.TB, db *sqlite.DB) jobs.Job {
	t.Helper()
	j := jobs.Job{Name: "test", Command: []string{"echo", "hi"}, Cwd: "/tmp"}
	if err := db.CreateJob(testCtx(t), &j); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	return j
}

var t0 = time.Date(2026, 11, 25, 21, 0, 0, 123456000, time.UTC)

// lines returns n stdout line events from seq first, text prefix+number.
func lines(first jobs.Seq, n int, prefix string) []jobs.Event {
	evs := make([]jobs.Event, n)
	for i := range evs {
		seq := first + jobs.Seq(i)
		evs[i] = jobs.Event{
			Seq: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond), Type: jobs.TypeLine,
			Stream: jobs.StreamStdout, Line: int64(seq), EOL: "\n",
			Data: fmt.Appendf(nil, "%s%d", prefix, seq),
		}
	}
	return evs
}

func exitEvent(seq jobs.Seq, status jobs.Status, code int) jobs.Event {
	return jobs.Event{Seq: seq, Time: t0.Add(time.Hour), Type: jobs.TypeExit, Status: status, ExitCode: &code}
}

func appendEvents(t testing.TB, db *sqlite.DB, id jobs.ID, evs []jobs.Event) {
	t.Helper()
	if err := db.AppendEvents(testCtx(t), id, evs); err != nil {
		t.Fatalf("AppendEvents(%d, seq %d..): %v", id, evs[0].Seq, err)
	}
}

// allEvents reads a job's whole log in pages of size page.
func allEvents(t testing.TB, db *sqlite.DB, id jobs.ID, page int) []jobs.Event {
	t.Helper()
	var all []jobs.Event
	for {
		evs, err := db.Events(testCtx(t), id, jobs.Seq(len(all)), page)
		if err != nil {
			t.Fatalf("Events(%d, after %d, %d): %v", id, len(all), page, err)
		}
		if len(evs) > page {
			t.Fatalf("Events(limit %d) returned %d events", page, len(evs))
		}
		all = append(all, evs...)
		if len(evs) < page {
			return all
		}
	}
}

// wire is an event's wire JSON: it shows every field (bytes included, as
// base64 when not valid UTF-8) at the precision stored.
func wire(e jobs.Event) string { return string(e.AppendJSON(nil)) }

func sameEvents(t testing.TB, got, want []jobs.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := wire(got[i]), wire(want[i]); g != w {
			t.Fatalf("event %d:\n got %.300s\nwant %.300s", i, g, w)
		}
		if got[i].Type == jobs.TypeLine && string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("event %d: data differs", i)
		}
	}
}
