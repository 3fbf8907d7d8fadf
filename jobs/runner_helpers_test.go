package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
)

// testCtx bounds a test: nothing in these tests should take long.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openDB opens a real database file in a temporary directory.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(testCtx(t), filepath.Join(t.TempDir(), "jobrun.db"), sqlite.Options{Host: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// wait waits for run, failing the test if it does not end in time.
func wait(ctx context.Context, t *testing.T, run *jobs.Run) jobs.Result {
	t.Helper()
	done := make(chan jobs.Result, 1)
	go func() { done <- run.Wait() }()
	select {
	case res := <-done:
		return res
	case <-ctx.Done():
		t.Fatalf("job %d did not end: %v", run.Job().ID, ctx.Err())
		return jobs.Result{}
	}
}

// start starts a job of the test binary in child mode.
func start(ctx context.Context, t *testing.T, r *jobs.Runner, mode string, args ...string) *jobs.Run {
	t.Helper()
	cmd, env := childCommand(t, mode, args...)
	run, err := r.Start(ctx, jobs.Spec{Command: cmd, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// allEvents reads every stored event of job id.
func allEvents(ctx context.Context, t *testing.T, db *sqlite.DB, id jobs.ID) []jobs.Event {
	t.Helper()
	var all []jobs.Event
	for {
		evs, err := db.Events(ctx, id, jobs.Seq(len(all)), 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
	}
}

// waitFor polls the stored log of job id until cond holds.
func waitFor(ctx context.Context, t *testing.T, db *sqlite.DB, id jobs.ID, what string, cond func([]jobs.Event) bool) {
	t.Helper()
	for {
		if cond(allEvents(ctx, t, db, id)) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %d: waiting for %s: %v", id, what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// contains is a waitFor condition: stream's stored bytes contain s.
func contains(stream jobs.Stream, s string) func([]jobs.Event) bool {
	return func(evs []jobs.Event) bool { return strings.Contains(string(streamBytes(evs, stream)), s) }
}

// streamBytes rebuilds what the child wrote to stream from line events.
func streamBytes(evs []jobs.Event, stream jobs.Stream) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		if e.Type == jobs.TypeLine && e.Stream == stream {
			b.Write(e.Data)
			b.WriteString(e.EOL)
		}
	}
	return b.Bytes()
}

// checkLog checks the invariants of a finished job's log: seq 1..N without
// gap, exactly one exit event and it is last, and visual line numbers as
// a terminal counts them. It returns the exit event.
func checkLog(t *testing.T, evs []jobs.Event) jobs.Event {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("no events stored")
	}
	type state struct {
		open bool
		line int64
	}
	streams := map[jobs.Stream]*state{}
	var last int64
	for i, e := range evs {
		if want := jobs.Seq(i + 1); e.Seq != want {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, want)
		}
		if i > 0 && e.Time.Before(evs[i-1].Time) {
			t.Errorf("seq %d: time %v before the previous event's %v", e.Seq, e.Time, evs[i-1].Time)
		}
		switch e.Type {
		case jobs.TypeExit:
			if i != len(evs)-1 {
				t.Fatalf("exit event at seq %d is not the last of %d events", e.Seq, len(evs))
			}
		case jobs.TypeLine:
			st := streams[e.Stream]
			if st == nil {
				st = &state{}
				streams[e.Stream] = st
			}
			want := st.line
			if !st.open {
				want = last + 1
			}
			if e.Line != want {
				t.Fatalf("seq %d (%s %q eol %q): line %d, want %d", e.Seq, e.Stream, e.Data, e.EOL, e.Line, want)
			}
			last = max(last, e.Line)
			st.line, st.open = e.Line, e.EOL == "" || e.EOL == "\r"
			if len(e.Data) > jobs.MaxLineBytes {
				t.Errorf("seq %d: %d bytes, more than MaxLineBytes", e.Seq, len(e.Data))
			}
		case jobs.TypeProgress:
			if e.Progress == nil || e.Progress.Percent < 0 || e.Progress.Percent > 100 || e.Progress.Source == "" {
				t.Fatalf("seq %d: malformed progress event %+v", e.Seq, e.Progress)
			}
		default:
			t.Fatalf("seq %d: unexpected event type %q", e.Seq, e.Type)
		}
	}
	exit := evs[len(evs)-1]
	if exit.Type != jobs.TypeExit {
		t.Fatalf("last event (seq %d) is %s, want exit", exit.Seq, exit.Type)
	}
	return exit
}

// visualLines counts the lines a terminal shows for b: "\n" ends a line,
// "\r" alone does not, and unterminated text is a line too.
func visualLines(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// distinctLines counts the line numbers used by stream's events.
func distinctLines(evs []jobs.Event, stream jobs.Stream) int {
	seen := map[int64]bool{}
	for _, e := range evs {
		if e.Type == jobs.TypeLine && e.Stream == stream {
			seen[e.Line] = true
		}
	}
	return len(seen)
}

// checkExit compares the exit event and result with what is expected.
func checkExit(t *testing.T, res jobs.Result, exit jobs.Event, status jobs.Status, code int, signal string) {
	t.Helper()
	if res.Status != status || res.ExitCode != code || res.Signal != signal {
		t.Errorf("result %s %d %q, want %s %d %q", res.Status, res.ExitCode, res.Signal, status, code, signal)
	}
	if exit.Status != status || exit.ExitCode == nil || *exit.ExitCode != code || exit.Signal != signal {
		got := "null"
		if exit.ExitCode != nil {
			got = fmt.Sprint(*exit.ExitCode)
		}
		t.Errorf("exit event %s %s %q, want %s %d %q", exit.Status, got, exit.Signal, status, code, signal)
	}
}

// progressEvents returns the progress events of evs.
func progressEvents(evs []jobs.Event) []jobs.Event {
	var out []jobs.Event
	for _, e := range evs {
		if e.Type == jobs.TypeProgress {
			out = append(out, e)
		}
	}
	return out
}

// percents lists the percents of progress events.
func percents(evs []jobs.Event) []float64 {
	var out []float64
	for _, e := range progressEvents(evs) {
		out = append(out, e.Progress.Percent)
	}
	return out
}
