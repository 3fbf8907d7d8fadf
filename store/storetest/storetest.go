// Package storetest is the store contract's conformance suite, written
// once and run against every backend (in the spirit of the database/sql
// driver tests): each backend's tests call Run with a Backend that makes
// and opens real databases of that kind (SQLite files in t.TempDir(), a
// throwaway PostgreSQL cluster). Only tests import it.
//
// What it checks is what store's doc comment promises: seq contiguous from
// 1, one append one transaction (and nothing of a refused batch kept),
// idempotent ingest by (uid, seq) with jobs.ErrMismatch for a differing
// resend, lost jobs refusing events (jobs.ErrGone), the chunk encoding
// round trip through the database, versioned migrations (concurrent opens
// migrate once; a newer schema is refused with jobs.ErrSchemaTooNew naming
// both versions), removes and prunes that let ingest go on, range reads,
// job paging, agent expiry (one lost exit, also with several handles
// racing), statistics, and the feed of commits made elsewhere.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// Store is the contract the suite checks: what the runner, jobrun serve,
// its API and its ingest endpoint need of a backend.
type Store interface {
	jobs.Store
	Job(ctx context.Context, ref jobs.Ref) (jobs.Job, error)
	Jobs(ctx context.Context, q store.JobsQuery) ([]jobs.Job, error)
	Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error)
	Tail(ctx context.Context, id jobs.ID, n int) ([]jobs.Event, error)
	EventsBefore(ctx context.Context, id jobs.ID, before jobs.Seq, n int) ([]jobs.Event, error)
	SeqOfLine(ctx context.Context, id jobs.ID, line int64) (jobs.Seq, error)
	RegisterJob(ctx context.Context, j jobs.Job) (jobs.ID, jobs.Seq, error)
	IngestEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) ([]jobs.Event, jobs.Seq, error)
	TouchAgent(ctx context.Context, id jobs.ID) error
	ExpireAgents(ctx context.Context, cutoff time.Time) ([]store.Expired, error)
	RemoveJob(ctx context.Context, ref jobs.Ref, o store.RemoveOptions) (jobs.Job, error)
	Prune(ctx context.Context, q store.PruneQuery, o store.RemoveOptions) (store.PruneResult, error)
	Stats(ctx context.Context) (store.Stats, error)
	Ping(ctx context.Context) error
	Close() error
}

// Feed is a backend's news of commits made through other handles (other
// processes, other replicas): the method of stream.Changes.
type Feed interface {
	NextChanges(ctx context.Context, poll time.Duration) (map[jobs.ID]jobs.Seq, bool, error)
}

// Options are the backend options the suite sets; the zero value means
// the backend's defaults.
type Options struct {
	// AgentTimeout: how long an agent may be silent before its job reads
	// as unreachable.
	AgentTimeout time.Duration
	// OnCommit is called after every committed write transaction.
	OnCommit func(time.Duration)
}

// Backend makes and opens databases of one kind for the suite.
type Backend struct {
	// Create makes a new, empty database and returns its name (a path,
	// a URL) for Open.
	Create func(t *testing.T) string
	// Open opens the database name (migrating it): each call is a new
	// handle, as another process or replica would have.
	Open func(ctx context.Context, name string, o Options) (Store, error)
	// ChunkRows counts job id's chunk rows in database name, through a
	// connection of its own.
	ChunkRows func(t *testing.T, name string, id jobs.ID) int
	// SetSchemaVersion records schema version v in database name, as a
	// newer jobrun would.
	SetSchemaVersion func(t *testing.T, name string, v int)
	// LatestSchema is the schema version this binary migrates to.
	LatestSchema int
	// Changes returns a new feed of the commits that other handles make
	// to the database of s.
	Changes func(s Store) Feed
}

// Run runs the whole suite against b, one subtest per guarantee, each on a
// database of its own.
func Run(t *testing.T, b Backend) {
	s := suite{b}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"EventsPaging", s.testEventsPaging},
		{"AppendRejects", s.testAppendRejects},
		{"JobByRef", s.testJobByRef},
		{"CreateJobUID", s.testCreateJobUID},
		{"JobsPaging", s.testJobsPaging},
		{"JobsFilter", s.testJobsFilter},
		{"JobsFilterUnreachable", s.testJobsFilterUnreachable},
		{"JobsFilterPaging", s.testJobsFilterPaging},
		{"JobLastLine", s.testJobLastLine},
		{"TailAndBefore", s.testTailAndBefore},
		{"SeqOfLine", s.testSeqOfLine},
		{"RegisterJobIsIdempotent", s.testRegisterJobIsIdempotent},
		{"IngestEventsIdempotentBySeq", s.testIngestEventsIdempotentBySeq},
		{"IngestKeepsIncomplete", s.testIngestKeepsIncomplete},
		{"IncompleteExit", s.testIncompleteExit},
		{"IngestRacingHandles", s.testIngestRacingHandles},
		{"AgentJobsUnreachableAndExpire", s.testAgentJobsUnreachableAndExpire},
		{"ExpireOnceWithRacingHandles", s.testExpireOnce},
		{"ProgressColumns", s.testProgressColumns},
		{"ProgressETA", s.testProgressETA},
		{"ExpectedSeconds", s.testExpectedSeconds},
		{"ExpectedSecondsLatestRuns", s.testExpectedSecondsLatestRuns},
		{"RemoveJob", s.testRemoveJob},
		{"RemoveInterleavesWithIngest", s.testRemoveInterleavesWithIngest},
		{"Prune", s.testPrune},
		{"PruneSweepsInterruptedRemove", s.testPruneSweepsInterruptedRemove},
		{"Stats", s.testStats},
		{"SchemaTooNew", s.testSchemaTooNew},
		{"MigrationRace", s.testMigrationRace},
		{"Changes", s.testChanges},
	} {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct{ b Backend }

// open makes a new database and opens it, closed at cleanup.
func (s suite) open(t *testing.T) (Store, string) {
	t.Helper()
	name := s.b.Create(t)
	return s.openName(t, name, Options{}), name
}

// openName opens database name, closed at cleanup.
func (s suite) openName(t *testing.T, name string, o Options) Store {
	t.Helper()
	db, err := s.b.Open(Ctx(t), name, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Ctx returns a context that ends with the test, bounded in time.
func Ctx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// T0 is the time of the events Lines makes.
var T0 = time.Date(2026, 11, 25, 21, 0, 0, 123456000, time.UTC)

// Lines returns n stdout line events from seq first, text prefix+number.
func Lines(first jobs.Seq, n int, prefix string) []jobs.Event {
	evs := make([]jobs.Event, n)
	for i := range evs {
		seq := first + jobs.Seq(i)
		evs[i] = jobs.Event{
			Seq: seq, Time: T0.Add(time.Duration(seq) * time.Millisecond), Type: jobs.TypeLine,
			Stream: jobs.StreamStdout, Line: int64(seq), EOL: "\n",
			Data: fmt.Appendf(nil, "%s%d", prefix, seq),
		}
	}
	return evs
}

// Exit is an exit event.
func Exit(seq jobs.Seq, status jobs.Status, code int) jobs.Event {
	return jobs.Event{Seq: seq, Time: T0.Add(time.Hour), Type: jobs.TypeExit, Status: status, ExitCode: &code}
}

// CreateJob creates a running job.
func CreateJob(t testing.TB, db jobs.Store) jobs.Job {
	t.Helper()
	j := jobs.Job{Name: "test", Command: []string{"echo", "hi"}, Cwd: "/tmp"}
	if err := db.CreateJob(Ctx(t), &j); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	return j
}

// Append appends evs to job id.
func Append(t testing.TB, db jobs.Store, id jobs.ID, evs []jobs.Event) {
	t.Helper()
	if err := db.AppendEvents(Ctx(t), id, evs); err != nil {
		t.Fatalf("AppendEvents(%d, seq %d..): %v", id, evs[0].Seq, err)
	}
}

// EventReader reads a job's events.
type EventReader interface {
	Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error)
}

// AllEvents reads a job's whole log in pages of size page.
func AllEvents(t testing.TB, db EventReader, id jobs.ID, page int) []jobs.Event {
	t.Helper()
	var all []jobs.Event
	for {
		evs, err := db.Events(Ctx(t), id, jobs.Seq(len(all)), page)
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

// Wire is an event's wire JSON: it shows every field (bytes included, as
// base64 when not valid UTF-8) at the precision stored.
func Wire(e jobs.Event) string { return string(e.AppendJSON(nil)) }

// SameEvents fails the test unless got and want are the same events.
func SameEvents(t testing.TB, got, want []jobs.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := Wire(got[i]), Wire(want[i]); g != w {
			t.Fatalf("event %d:\n got %.300s\nwant %.300s", i, g, w)
		}
		if got[i].Type == jobs.TypeLine && string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("event %d: data differs", i)
		}
	}
}

// JobReader reads one job.
type JobReader interface {
	Job(ctx context.Context, ref jobs.Ref) (jobs.Job, error)
}

// WantStatus fails the test unless job id reads with status want, and
// returns the job.
func WantStatus(t testing.TB, db JobReader, id jobs.ID, want jobs.Status) jobs.Job {
	t.Helper()
	j, err := db.Job(Ctx(t), jobs.Ref{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != want {
		t.Errorf("job %d is %s, want %s", id, j.Status, want)
	}
	return j
}

// AgentJob is a job as an agent reports it.
func AgentJob(uid jobs.UID) jobs.Job {
	started := T0
	return jobs.Job{UID: uid, Name: "remote build", Command: []string{"make", "-j4"}, Cwd: "/src",
		Host: "buildbox", CreatedAt: T0, StartedAt: &started}
}

func second[T any](_ T, err error) error { return err }
