// Package streamtest holds what the tests of stream and its packages
// share: a real SQLite store in a temp dir, jobs, hubs and events. Only
// tests import it.
package streamtest

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
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
)

// Ctx returns a context that bounds a test.
func Ctx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// OpenDB opens a fresh database file in a temp dir.
func OpenDB(t testing.TB) *sqlite.DB {
	t.Helper()
	return OpenDBAt(t, filepath.Join(t.TempDir(), "jobrun.db"))
}

func OpenDBAt(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Host: "testhost", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NewJob creates a running job.
func NewJob(t testing.TB, db *sqlite.DB) jobs.Job {
	t.Helper()
	j := jobs.Job{Name: "test", Command: []string{"test"}, Cwd: "/"}
	if err := db.CreateJob(context.Background(), &j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	return j
}

// NewHub returns a Hub over db, closed at cleanup. Over a SQLite database
// without o.Changes it watches the database's data version, as jobrun's
// commands do.
func NewHub(t testing.TB, db stream.History, o stream.HubOptions) *stream.Hub {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if sq, ok := db.(*sqlite.DB); ok && o.Changes == nil {
		o.Changes = sq.Changes()
	}
	h := stream.NewHub(db, o)
	t.Cleanup(func() { h.Close() })
	return h
}

// Lines makes n line events from seq first, alternating stdout and stderr.
func Lines(first jobs.Seq, n int) []jobs.Event {
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

// ExitEvent is a succeeded exit at seq.
func ExitEvent(seq jobs.Seq) jobs.Event {
	code := 0
	return jobs.Event{Seq: seq, Time: time.Now(), Type: jobs.TypeExit, Status: jobs.StatusSucceeded, ExitCode: &code}
}

// Commit appends evs to the store and then publishes them, as the runner
// does.
func Commit(t testing.TB, db *sqlite.DB, h *stream.Hub, id jobs.ID, evs []jobs.Event) {
	t.Helper()
	if err := db.AppendEvents(context.Background(), id, evs); err != nil {
		t.Errorf("append: %v", err)
		return
	}
	if h != nil {
		h.Publish(id, evs)
	}
}

// SeqChecker checks that a consumer sees after+1, after+2, ... exactly once.
type SeqChecker struct {
	Last jobs.Seq // the last seq seen
}

// Add checks evs and moves on.
func (c *SeqChecker) Add(evs []jobs.Event) error {
	for _, e := range evs {
		if e.Seq != c.Last+1 {
			return fmt.Errorf("got seq %d after %d", e.Seq, c.Last)
		}
		c.Last = e.Seq
	}
	return nil
}

// WSURL turns a http:// base URL and path into a ws:// URL.
func WSURL(base, path string) string {
	return "ws" + strings.TrimPrefix(base, "http") + path
}

// LogBuffer is a slog handler target that tests can search.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// HasLine reports whether one logged line contains all of subs.
func (l *LogBuffer) HasLine(subs ...string) bool {
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

// StoreAdapter gives api.Server the job listing in its terms, as
// cmd/jobrun does.
type StoreAdapter struct{ *sqlite.DB }

// Jobs lists jobs as cmd/jobrun's adapter does.
func (a StoreAdapter) Jobs(ctx context.Context, f jobs.Filter, limit int, before jobs.ID) ([]jobs.Job, error) {
	return a.DB.Jobs(ctx, store.JobsQuery{Limit: limit, Before: before, Filter: f})
}

var _ api.Store = StoreAdapter{}

// NewServer returns a Server over db and hub, wired as cmd/jobrun does.
func NewServer(db *sqlite.DB, hub *stream.Hub) *api.Server {
	return &api.Server{
		Hub:    hub,
		Store:  StoreAdapter{db},
		Info:   api.Info{Role: "exec", Version: "test"},
		Logger: slog.New(slog.DiscardHandler),
	}
}

// Serve serves srv on 127.0.0.1 and returns its base URL.
func Serve(t testing.TB, srv *api.Server) string {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return ts.URL
}

// Canceler records the jobs a Server asked to cancel and answers err.
type Canceler struct {
	mu  sync.Mutex
	ids []jobs.ID
	err error
}

// Cancel records id and answers the error set by Answer.
func (c *Canceler) Cancel(_ context.Context, id jobs.ID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	return c.err
}

// Answer sets what Cancel answers.
func (c *Canceler) Answer(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// Calls returns the ids Cancel was called with.
func (c *Canceler) Calls() []jobs.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]jobs.ID(nil), c.ids...)
}

// String returns what was logged.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
