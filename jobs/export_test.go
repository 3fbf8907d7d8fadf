package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/jobrun/jobrun/jobs/progress"
)

// TestRecorder lets the external tests, which can use the real store
// (package jobs cannot import it), drive the recorder directly: chunks in,
// events stored.
type TestRecorder struct{ r *recorder }

// NewTestRecorder starts a recorder for job id.
func NewTestRecorder(store Store, pub Publisher, id ID, flushAfter time.Duration) *TestRecorder {
	r := newRecorder(store, pub, slog.New(slog.DiscardHandler), func(string, ...any) {}, id, context.Background(), flushAfter, time.Second)
	go r.run()
	return &TestRecorder{r}
}

// NewTestRecorderProgress starts a recorder for job id that finds
// progress in mode, with at most one progress event per interval.
func NewTestRecorderProgress(store Store, pub Publisher, id ID, flushAfter time.Duration, mode progress.Mode, interval time.Duration) *TestRecorder {
	r := newRecorder(store, pub, slog.New(slog.DiscardHandler), func(string, ...any) {}, id, context.Background(), flushAfter, time.Second)
	r.setProgress([2]*progress.Parser{{Mode: mode}, {Mode: mode}}, interval)
	go r.run()
	return &TestRecorder{r}
}

// Write hands the recorder one read of stream 0 (stdout) or 1 (stderr).
func (t *TestRecorder) Write(stream int, data string) {
	t.r.in <- chunk{stream: stream, data: []byte(data), time: time.Now()}
}

// Close ends both streams and the job with exit code 0, and waits until
// everything is stored.
func (t *TestRecorder) Close() {
	for i := range 2 {
		t.r.in <- chunk{stream: i, eof: true, time: time.Now()}
	}
	code := 0
	t.r.in <- chunk{exit: &Event{Time: time.Now(), Type: TypeExit, Status: StatusSucceeded, ExitCode: &code}}
	close(t.r.in)
	<-t.r.done
}

// PendingPeak is the most events run's recorder ever held waiting for a
// commit. Call it after Wait.
func PendingPeak(run *Run) int { return run.rec.pending.peak }

// MaxPendingEvents is the recorder's bound on the events waiting for a
// commit, beyond which the readers wait.
const MaxPendingEvents = maxPendingEvents
