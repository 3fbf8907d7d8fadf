package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
)

// faultyStore injects AppendEvents failures in front of a real store.
type faultyStore struct {
	*sqlite.DB
	fail func(call int, evs []jobs.Event) bool

	mu    sync.Mutex
	calls int
}

var errInjected = errors.New("disk I/O error (injected)")

func (f *faultyStore) AppendEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) error {
	f.mu.Lock()
	f.calls++
	fail := f.fail(f.calls, evs)
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("append events to job %d: %w", id, errInjected)
	}
	return f.DB.AppendEvents(ctx, id, evs)
}

// exitOnly reports whether evs is just an exit event: the runner's last
// attempt after storing failed.
func exitOnly(evs []jobs.Event) bool { return len(evs) == 1 && evs[0].Type == jobs.TypeExit }

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestRunStoreRetrySucceeds(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	fs := &faultyStore{DB: db, fail: func(call int, _ []jobs.Event) bool { return call <= 3 }}
	var errOut syncBuffer
	run := start(ctx, t, &jobs.Runner{Store: fs, ErrOut: &errOut}, "mixed")
	res := wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkExit(t, res, checkLog(t, evs), jobs.StatusSucceeded, 0, "")
	out, _ := mixedOutput()
	if got := string(streamBytes(evs, jobs.StreamStdout)); got != strings.Join(out, "") {
		t.Errorf("stored stdout differs after retries: %.200q", got)
	}
	if res.StoreErr != nil || errOut.String() != "" {
		t.Errorf("StoreErr %v, messages %q; want none after a passing failure", res.StoreErr, errOut.String())
	}
	checkIncomplete(ctx, t, db, run, evs[len(evs)-1], "")
	if fs.calls <= 3 {
		t.Errorf("%d AppendEvents calls, want the first batch retried past its 3 failures", fs.calls)
	}
}

func TestRunStoreFails(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	fs := &faultyStore{DB: db, fail: func(call int, evs []jobs.Event) bool { return call >= 2 && !exitOnly(evs) }}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinR.Close()
	defer stdinW.Close()
	var errOut, stdout syncBuffer
	r := &jobs.Runner{Store: fs, Stdin: stdinR, Stdout: &stdout, ErrOut: &errOut, StoreRetry: 200 * time.Millisecond}
	run := start(ctx, t, r, "twophase")
	id := run.Job().ID
	waitFor(ctx, t, db, id, "the first line", contains(jobs.StreamStdout, "one\n"))
	stdinW.WriteString("go\n") // the child prints its second line, which cannot be stored
	res := wait(ctx, t, run)

	evs := allEvents(ctx, t, db, id)
	exit := checkLog(t, evs)
	checkExit(t, res, exit, jobs.StatusSucceeded, 0, "")
	if len(evs) != 2 || string(evs[0].Data) != "one" {
		t.Errorf("stored %d events (first %q), want the first line and the exit event", len(evs), evs[0].Data)
	}
	if !errors.Is(res.StoreErr, errInjected) {
		t.Errorf("StoreErr %v, want the injected error", res.StoreErr)
	}
	want := fmt.Sprintf("jobrun: job %d: storing output failed: append events to job %d: %v; the command keeps running and its output still passes through, but the stored log stops at seq 1\n", id, id, errInjected)
	if errOut.String() != want {
		t.Errorf("messages:\n got  %q\n want %q", errOut.String(), want)
	}
	if stdout.String() != "one\ntwo\n" {
		t.Errorf("echo %q, want all of the output", stdout.String())
	}
	checkIncomplete(ctx, t, db, run, exit, fmt.Sprintf("storing the output failed after seq 1: append events to job %d: %v", id, errInjected))
}

// checkIncomplete checks the incomplete flag of a finished job (reason ""
// wants none) on its exit event, its stored job and Run.Job.
func checkIncomplete(ctx context.Context, t *testing.T, db *sqlite.DB, run *jobs.Run, exit jobs.Event, reason string) {
	t.Helper()
	want := reason != ""
	if exit.Incomplete != want || exit.IncompleteReason != reason {
		t.Errorf("exit event incomplete %v %q, want %v %q", exit.Incomplete, exit.IncompleteReason, want, reason)
	}
	stored, err := db.Job(ctx, jobs.Ref{ID: run.Job().ID})
	if err != nil {
		t.Fatal(err)
	}
	for what, j := range map[string]jobs.Job{"stored job": stored, "Run.Job": run.Job()} {
		if j.Incomplete != want || j.IncompleteReason != reason {
			t.Errorf("%s incomplete %v %q, want %v %q", what, j.Incomplete, j.IncompleteReason, want, reason)
		}
	}
	if stored.Status != exit.Status {
		t.Errorf("stored job %s, want the command's status %s: incomplete is a flag, not a status", stored.Status, exit.Status)
	}
}

// TestRunStoreFailsPendingFull: when output keeps coming while the store
// fails, the runner gives up on the store as soon as its pending buffer is
// full, long before StoreRetry, rather than block the child.
func TestRunStoreFailsPendingFull(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	fs := &faultyStore{DB: db, fail: func(_ int, evs []jobs.Event) bool { return !exitOnly(evs) }}
	var errOut syncBuffer
	var stdout bytes.Buffer
	const lines = 100_000 // more than the runner keeps pending
	r := &jobs.Runner{Store: fs, Stdout: &stdout, ErrOut: &errOut, StoreRetry: time.Hour}
	run := start(ctx, t, r, "flood", fmt.Sprint(lines))
	res := wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkExit(t, res, checkLog(t, evs), jobs.StatusSucceeded, 0, "")
	if len(evs) != 1 {
		t.Errorf("%d events stored, want only the exit event", len(evs))
	}
	if n := strings.Count(errOut.String(), "storing output failed"); n != 1 || !strings.Contains(errOut.String(), "stops at seq 0") {
		t.Errorf("messages %q, want one saying the log stops at seq 0", errOut.String())
	}
	if exit := evs[len(evs)-1]; !exit.Incomplete || !strings.HasPrefix(exit.IncompleteReason, "storing the output failed after seq 0: ") {
		t.Errorf("exit event incomplete %v %q, want the reason", exit.Incomplete, exit.IncompleteReason)
	}
	if !bytes.Equal(stdout.Bytes(), floodOutput(lines)) {
		t.Errorf("echo has %d bytes, want all %d", stdout.Len(), len(floodOutput(lines)))
	}
}

func TestRunEchoClosedPipe(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close() // like `jobrun exec ... | head` after head exits
	defer pw.Close()
	var stderr, errOut bytes.Buffer
	run := start(ctx, t, &jobs.Runner{Store: db, Stdout: pw, Stderr: &stderr, ErrOut: &errOut}, "mixed")
	res := wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkExit(t, res, checkLog(t, evs), jobs.StatusSucceeded, 0, "")
	out, errs := mixedOutput()
	if got := string(streamBytes(evs, jobs.StreamStdout)); got != strings.Join(out, "") {
		t.Errorf("stored stdout differs: %.200q", got)
	}
	if stderr.String() != strings.Join(errs, "") {
		t.Errorf("stderr echo %q, want all of stderr", stderr.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("messages %q, want none: a closed stdout stops the echo silently", errOut.String())
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	b       bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.b.Write(p)
}

// TestRunSlowEcho: a stuck terminal does not hold up storing: the whole
// job, exit event included, is committed while the echo has not written a
// byte; the echo then catches up byte-exact (through its spill file).
func TestRunSlowEcho(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	const lines = 100_000 // 6 MB: more than the echo keeps in memory
	w := &blockingWriter{release: make(chan struct{})}
	run := start(ctx, t, &jobs.Runner{Store: db, Stdout: w}, "flood", fmt.Sprint(lines))
	id := run.Job().ID
	for {
		job, err := db.Job(ctx, jobs.Ref{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if job.Status.Final() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job not finished while the echo is blocked: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(w.release)
	res := wait(ctx, t, run)
	evs := allEvents(ctx, t, db, id)
	checkExit(t, res, checkLog(t, evs), jobs.StatusSucceeded, 0, "")
	want := floodOutput(lines)
	if !bytes.Equal(streamBytes(evs, jobs.StreamStdout), want) {
		t.Errorf("stored stdout differs")
	}
	if !bytes.Equal(w.b.Bytes(), want) {
		t.Errorf("echo has %d bytes, want %d, byte-exact", w.b.Len(), len(want))
	}
}

// probe is a Publisher that checks that every published batch follows the
// previous one and is already in the store.
type probe struct {
	db   *sqlite.DB
	mu   sync.Mutex
	last jobs.Seq
	errs []string
}

func (p *probe) Publish(id jobs.ID, evs []jobs.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(evs) == 0 || evs[0].Seq != p.last+1 {
		p.errs = append(p.errs, fmt.Sprintf("batch of %d starting at %v after seq %d", len(evs), evs, p.last))
		return
	}
	p.last = evs[len(evs)-1].Seq
	stored, err := p.db.Events(context.Background(), id, p.last-1, 1)
	if err != nil || len(stored) != 1 {
		p.errs = append(p.errs, fmt.Sprintf("seq %d published before it was committed (%v)", p.last, err))
	}
}

func TestRunPublishesAfterCommit(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	p := &probe{db: db}
	run := start(ctx, t, &jobs.Runner{Store: db, Publisher: p}, "flood", "20000")
	wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkLog(t, evs)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		t.Error(e)
	}
	if p.last != evs[len(evs)-1].Seq {
		t.Errorf("published up to seq %d, stored up to %d", p.last, evs[len(evs)-1].Seq)
	}
}

// slowStore delays the first AppendEvents in front of a real store, as
// another process holding the write lock would.
type slowStore struct {
	*sqlite.DB
	delay time.Duration
	once  sync.Once
}

func (s *slowStore) AppendEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) error {
	s.once.Do(func() { time.Sleep(s.delay) })
	return s.DB.AppendEvents(ctx, id, evs)
}

// TestRunSlowStoreKeepsTail: when a commit takes longer than DrainTimeout
// while the child exits, the output still in the pipe is stored all the
// same: the drain deadline counts quiet time on the pipe, not time spent
// waiting for the store.
func TestRunSlowStoreKeepsTail(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	const lines = 600_000 // more events than the runner keeps pending
	r := &jobs.Runner{Store: &slowStore{DB: db, delay: time.Second}, DrainTimeout: 50 * time.Millisecond}
	run := start(ctx, t, r, "tinylines", fmt.Sprint(lines))
	res := wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkExit(t, res, checkLog(t, evs), jobs.StatusSucceeded, 0, "")
	if got, want := streamBytes(evs, jobs.StreamStdout), bytes.Repeat([]byte("a\n"), lines); !bytes.Equal(got, want) {
		t.Errorf("stored %d of %d bytes: the tail still in the pipe was dropped", len(got), len(want))
	}
}

// steadySlowStore delays every AppendEvents: a disk slower than the job.
type steadySlowStore struct {
	*sqlite.DB
	delay time.Duration
}

func (s *steadySlowStore) AppendEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) error {
	time.Sleep(s.delay)
	return s.DB.AppendEvents(ctx, id, evs)
}

// TestRunSlowStoreBoundsPending: a job that prints short lines faster than
// the store takes them waits for the store (the pipe fills) instead of
// piling its output up in memory: the events waiting for a commit stay
// within the recorder's bound, plus one read's worth, whatever the output.
// The fragment timer, which fires while a line is cut across reads, must
// not take in more reads when the queue is full.
func TestRunSlowStoreBoundsPending(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	const lines = 400_000 // three bytes each: most reads end inside a line
	r := &jobs.Runner{Store: &steadySlowStore{DB: db, delay: 20 * time.Millisecond}}
	run := start(ctx, t, r, "shortlines", fmt.Sprint(lines))
	res := wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkExit(t, res, checkLog(t, evs), jobs.StatusSucceeded, 0, "")
	// One read is at most 64 KiB: 21,846 three-byte lines.
	if peak, bound := jobs.PendingPeak(run), jobs.MaxPendingEvents+21846; peak > bound {
		t.Errorf("up to %d events waited for a commit; the bound is %d (pending) + one read", peak, bound)
	}
}
