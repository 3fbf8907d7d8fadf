package stream_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/stream"
)

var _ stream.History = (*store.DB)(nil)

// testCtx returns a context that bounds a test.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openDB opens a fresh database file in a temp dir.
func openDB(t testing.TB) *store.DB {
	t.Helper()
	return openDBAt(t, filepath.Join(t.TempDir(), "jobrun.db"))
}

func openDBAt(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path, store.Options{Host: "testhost", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newJob creates a running job.
func newJob(t testing.TB, db *store.DB) jobs.Job {
	t.Helper()
	j := jobs.Job{Name: "test", Command: []string{"test"}, Cwd: "/"}
	if err := db.CreateJob(context.Background(), &j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	return j
}

// newHub returns a Hub over db, closed at cleanup.
func newHub(t testing.TB, db stream.History, o stream.HubOptions) *stream.Hub {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := stream.NewHub(db, o)
	t.Cleanup(func() { h.Close() })
	return h
}

// lines makes n line events from seq first, alternating stdout and stderr.
func lines(first jobs.Seq, n int) []jobs.Event {
	evs := make([]jobs.Event, n)
	now := time.Now()
	for i := range evs {
		s := first + jobs.Seq(i)
		st := jobs.StreamStdout
		if s%3 == 0 {
			st = jobs.StreamStderr
		}
		evs[i] = jobs.Event{Seq: s, Time: now, Type: jobs.TypeLine, Stream: st, Line: int64(s),
			Data: fmt.Appendf(nil, "line %d of the test output, some padding to look real", s), EOL: "\n"}
	}
	return evs
}

// exitEvent is a succeeded exit at seq.
func exitEvent(seq jobs.Seq) jobs.Event {
	code := 0
	return jobs.Event{Seq: seq, Time: time.Now(), Type: jobs.TypeExit, Status: jobs.StatusSucceeded, ExitCode: &code}
}

// commit appends evs to the store and then publishes them, as the runner
// does.
func commit(t testing.TB, db *store.DB, h *stream.Hub, id jobs.ID, evs []jobs.Event) {
	t.Helper()
	if err := db.AppendEvents(context.Background(), id, evs); err != nil {
		t.Errorf("append: %v", err)
		return
	}
	if h != nil {
		h.Publish(id, evs)
	}
}

// seqChecker checks that a consumer sees after+1, after+2, ... exactly once.
type seqChecker struct {
	last jobs.Seq
}

func (c *seqChecker) add(evs []jobs.Event) error {
	for _, e := range evs {
		if e.Seq != c.last+1 {
			return fmt.Errorf("got seq %d after %d", e.Seq, c.last)
		}
		c.last = e.Seq
	}
	return nil
}

// testServer serves srv on 127.0.0.1 and returns its base URL.
func testServer(t testing.TB, srv *stream.Server) string {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return ts.URL
}

// wsURL turns a http:// base URL and path into a ws:// URL.
func wsURL(base, path string) string {
	return "ws" + strings.TrimPrefix(base, "http") + path
}

// logBuffer is a slog handler target that tests can search.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// hasLine reports whether one logged line contains all of subs.
func (l *logBuffer) hasLine(subs ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.Lines(l.b.String()) {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}
