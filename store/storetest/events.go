package storetest

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// testRoundTrip: every kind of event, odd bytes and 1 MiB pieces come back
// exactly as appended, whatever the page size, and a batch too big for one
// chunk row is split.
func (s suite) testRoundTrip(t *testing.T) {
	db, name := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)
	mib := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	two := 2.0
	evs := []jobs.Event{
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: []byte("compiling"), EOL: "\n"},
		{Type: jobs.TypeLine, Stream: jobs.StreamStderr, Line: 2, Data: []byte{}, EOL: "\r\n"},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: []byte("bad \xff\xfe utf-8 \xe2\x82"), EOL: "\r"},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: mib, EOL: ""},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: mib, EOL: ""},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: []byte("end of the long line"), EOL: "\n"},
		{Type: jobs.TypeLine, Stream: jobs.StreamTTY, Line: 4, Data: []byte("::progress 50%"), EOL: "\n", Directive: true},
		{Type: jobs.TypeProgress, Progress: &progress.Report{Percent: 50, Message: "half", Total: &two}},
		{Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 5, Data: []byte("ünïcødé \u2028 \"quoted\" \x00"), EOL: "\n"},
	}
	for i := range evs {
		evs[i].Seq = jobs.Seq(i + 1)
		evs[i].Time = T0.Add(time.Duration(i) * 1500 * time.Microsecond)
	}
	code := 2
	exit := jobs.Event{Seq: jobs.Seq(len(evs) + 1), Time: T0.Add(time.Minute), Type: jobs.TypeExit,
		Status: jobs.StatusFailed, ExitCode: &code}

	Append(t, db, j.ID, evs[:3])
	Append(t, db, j.ID, evs[3:])
	Append(t, db, j.ID, []jobs.Event{exit})
	want := append(evs, exit)

	for _, page := range []int{1, 3, 1000} {
		SameEvents(t, AllEvents(t, db, j.ID, page), want)
	}

	got, err := db.Job(ctx, jobs.Ref{ID: j.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != jobs.StatusFailed || got.ExitCode == nil || *got.ExitCode != 2 || got.LastSeq != exit.Seq {
		t.Errorf("job after exit: status %s, exit code %v, last seq %d; want failed, 2, %d",
			got.Status, got.ExitCode, got.LastSeq, exit.Seq)
	}
	if got.FinishedAt == nil || !got.FinishedAt.Equal(exit.Time) {
		t.Errorf("finished_at = %v, want %v", got.FinishedAt, exit.Time)
	}

	// The 1 MiB pieces do not share a row: the batch was split by size.
	if n := s.b.ChunkRows(t, name, j.ID); n < 4 {
		t.Errorf("%d chunk rows, want at least 4 (1 MiB pieces each in their own)", n)
	}
}

func (s suite) testEventsPaging(t *testing.T) {
	db, name := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)
	all := Lines(1, 10000, "line ")
	Append(t, db, j.ID, all[:9000]) // split into rows of <= 4096 events
	Append(t, db, j.ID, all[9000:9001])
	Append(t, db, j.ID, all[9001:])
	if got, want := s.b.ChunkRows(t, name, j.ID), 5; got != want {
		t.Errorf("chunk rows = %d, want %d (4096+4096+808, 1, 999)", got, want)
	}

	tests := []struct {
		name         string
		after        jobs.Seq
		limit        int
		first, count int
	}{
		{"start", 0, 10, 1, 10},
		{"middle of a chunk", 5000, 100, 5001, 100},
		{"across chunks", 4090, 20, 4091, 20},
		{"limit larger than rest", 9990, 100, 9991, 10},
		{"single-event chunk", 9000, 1, 9001, 1},
		{"everything", 0, 20000, 1, 10000},
		{"at the end", 10000, 10, 0, 0},
		{"beyond the end", 20000, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Events(ctx, j.ID, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if tt.count == 0 {
				SameEvents(t, got, nil)
				return
			}
			SameEvents(t, got, all[tt.first-1:tt.first-1+tt.count])
		})
	}
	SameEvents(t, AllEvents(t, db, j.ID, 777), all)

	if _, err := db.Events(ctx, j.ID+100, 0, 10); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Events of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := db.Events(ctx, j.ID, 0, 0); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("Events with limit 0: %v, want ErrInvalid", err)
	}
	empty := CreateJob(t, db)
	if evs, err := db.Events(ctx, empty.ID, 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("Events of a job without events = %d events, %v; want none, nil", len(evs), err)
	}
}

// testAppendRejects: a batch that does not follow the stored seq, or is
// malformed, is refused whole.
func (s suite) testAppendRejects(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)
	Append(t, db, j.ID, Lines(1, 3, "a"))

	gap := Lines(4, 3, "b")
	gap[2].Seq = 9
	noStream := Lines(4, 1, "c")
	noStream[0].Stream = ""
	badEOL := Lines(4, 1, "d")
	badEOL[0].EOL = "\n\n"
	exitFirst := append([]jobs.Event{Exit(4, jobs.StatusSucceeded, 0)}, Lines(5, 1, "e")...)
	runningExit := []jobs.Event{Exit(4, jobs.StatusRunning, 0)}
	unknown := Lines(4, 1, "f")
	unknown[0].Type = "bogus"
	farFuture := Lines(4, 1, "g")
	farFuture[0].Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	noProgress := []jobs.Event{{Seq: 4, Time: T0, Type: jobs.TypeProgress}}
	badPercent := []jobs.Event{{Seq: 4, Time: T0, Type: jobs.TypeProgress, Progress: &progress.Report{Percent: 101}}}
	nanPercent := []jobs.Event{{Seq: 4, Time: T0, Type: jobs.TypeProgress, Progress: &progress.Report{Percent: math.NaN()}}}
	longReason := []jobs.Event{Exit(4, jobs.StatusFailed, 1)}
	longReason[0].Incomplete, longReason[0].IncompleteReason = true, strings.Repeat("x", jobs.MaxIncompleteReason+1)

	tests := []struct {
		name string
		id   jobs.ID
		evs  []jobs.Event
		want error
	}{
		{"seq repeats the stored one", j.ID, Lines(3, 2, "x"), jobs.ErrConflict},
		{"seq leaves a gap after the stored one", j.ID, Lines(5, 2, "x"), jobs.ErrConflict},
		{"gap inside the batch", j.ID, gap, jobs.ErrInvalid},
		{"line without a stream", j.ID, noStream, jobs.ErrInvalid},
		{"bad terminator", j.ID, badEOL, jobs.ErrInvalid},
		{"exit not last", j.ID, exitFirst, jobs.ErrInvalid},
		{"exit with status running", j.ID, runningExit, jobs.ErrInvalid},
		{"unknown type", j.ID, unknown, jobs.ErrInvalid},
		{"time beyond year 9999", j.ID, farFuture, jobs.ErrInvalid},
		{"progress without a value", j.ID, noProgress, jobs.ErrInvalid},
		{"progress above 100", j.ID, badPercent, jobs.ErrInvalid},
		{"progress NaN", j.ID, nanPercent, jobs.ErrInvalid},
		{"incomplete_reason too long", j.ID, longReason, jobs.ErrInvalid},
		{"seq 0", j.ID, Lines(0, 2, "x"), jobs.ErrInvalid},
		{"negative seq", j.ID, Lines(-1, 3, "x"), jobs.ErrInvalid},
		{"unknown job", j.ID + 100, Lines(1, 1, "x"), jobs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.AppendEvents(ctx, tt.id, tt.evs); !errors.Is(err, tt.want) {
				t.Errorf("AppendEvents: %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
	if err := db.AppendEvents(ctx, j.ID, nil); err != nil {
		t.Errorf("empty batch: %v, want nil", err)
	}
	// None of the rejected batches left a trace.
	SameEvents(t, AllEvents(t, db, j.ID, 100), Lines(1, 3, "a"))

	Append(t, db, j.ID, []jobs.Event{Exit(4, jobs.StatusSucceeded, 0)})
	if err := db.AppendEvents(ctx, j.ID, Lines(5, 1, "late")); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("append after exit: %v, want ErrConflict", err)
	}
}

func (s suite) testTailAndBefore(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)
	all := Lines(1, 10000, "line ")
	Append(t, db, j.ID, all[:9000]) // rows of <= 4096 events
	Append(t, db, j.ID, all[9000:9001])
	Append(t, db, j.ID, all[9001:])

	for _, tc := range []struct {
		name        string
		n           int
		first, last int // expected seq range, inclusive
	}{
		{"one", 1, 10000, 10000},
		{"a page", 1000, 9001, 10000},
		{"across rows", 5000, 5001, 10000},
		{"everything", 10000, 1, 10000},
		{"more than there is", 20000, 1, 10000},
	} {
		t.Run("tail "+tc.name, func(t *testing.T) {
			got, err := db.Tail(ctx, j.ID, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			SameEvents(t, got, all[tc.first-1:tc.last])
		})
	}

	for _, tc := range []struct {
		name        string
		before      jobs.Seq
		n           int
		first, last int // 0, 0: none
	}{
		{"middle", 5001, 100, 4901, 5000},
		{"across rows", 4100, 10, 4090, 4099},
		{"near the start", 5, 100, 1, 4},
		{"at the start", 1, 100, 0, 0},
		{"right after the end", 10001, 3, 9998, 10000},
		{"beyond the end", 20000, 3, 0, 0},
		{"straddling the end", 10002, 3, 9999, 10000},
	} {
		t.Run("before "+tc.name, func(t *testing.T) {
			got, err := db.EventsBefore(ctx, j.ID, tc.before, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if tc.first == 0 {
				SameEvents(t, got, nil)
				return
			}
			SameEvents(t, got, all[tc.first-1:tc.last])
		})
	}

	empty := CreateJob(t, db)
	if evs, err := db.Tail(ctx, empty.ID, 10); err != nil || len(evs) != 0 {
		t.Errorf("Tail of a job without events = %d events, %v; want none", len(evs), err)
	}
	if evs, err := db.EventsBefore(ctx, empty.ID, 5, 10); err != nil || len(evs) != 0 {
		t.Errorf("EventsBefore of a job without events = %d events, %v; want none", len(evs), err)
	}
	for name, err := range map[string]error{
		"Tail unknown":          second(db.Tail(ctx, 999, 10)),
		"EventsBefore unknown":  second(db.EventsBefore(ctx, 999, 5, 10)),
		"EventsBefore at start": second(db.EventsBefore(ctx, 999, 1, 10)),
	} {
		if !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	for name, err := range map[string]error{
		"Tail 0":            second(db.Tail(ctx, j.ID, 0)),
		"EventsBefore n 0":  second(db.EventsBefore(ctx, j.ID, 5, 0)),
		"EventsBefore seq0": second(db.EventsBefore(ctx, j.ID, 0, 5)),
	} {
		if !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// testSeqOfLine: the event that starts a line, also when that line starts
// in the middle of a chunk whose first and last line events belong to an
// earlier line (stdout's open line continued around stderr's lines).
func (s suite) testSeqOfLine(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)
	piece := func(seq jobs.Seq, st jobs.Stream, line int64, text, eol string) jobs.Event {
		return jobs.Event{Seq: seq, Time: T0, Type: jobs.TypeLine, Stream: st, Line: line, Data: []byte(text), EOL: eol}
	}
	Append(t, db, j.ID, []jobs.Event{
		piece(1, jobs.StreamStdout, 1, "50%", "\r"),
		piece(2, jobs.StreamStderr, 2, "warning", "\n"),
		piece(3, jobs.StreamStderr, 3, "warning", "\n"),
		piece(4, jobs.StreamStdout, 1, "100%", "\n"),
	})
	Append(t, db, j.ID, []jobs.Event{piece(5, jobs.StreamStdout, 4, "next", "\n")})
	more := Lines(6, 10000, "x")
	for i := range more {
		more[i].Line = int64(i) + 5
	}
	Append(t, db, j.ID, more)

	for _, tc := range []struct {
		line int64
		want jobs.Seq
	}{
		{1, 1}, {2, 2}, {3, 3}, {4, 5}, {5, 6}, {5000, 5001}, {10004, 10005}, {10005, 0}, {1 << 40, 0},
	} {
		got, err := db.SeqOfLine(ctx, j.ID, tc.line)
		if err != nil || got != tc.want {
			t.Errorf("SeqOfLine(%d) = %d, %v; want %d", tc.line, got, err, tc.want)
		}
	}
	if _, err := db.SeqOfLine(ctx, 999, 1); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("SeqOfLine of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := db.SeqOfLine(ctx, j.ID, 0); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("SeqOfLine(0): %v, want ErrInvalid", err)
	}
	empty := CreateJob(t, db)
	if got, err := db.SeqOfLine(ctx, empty.ID, 1); err != nil || got != 0 {
		t.Errorf("SeqOfLine of a job without events = %d, %v; want 0, nil", got, err)
	}
}

// testIncompleteExit: an exit event marked incomplete is stored with its
// flag and reason, and the job carries them, its status the command's.
func (s suite) testIncompleteExit(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)
	Append(t, db, j.ID, Lines(1, 3, "a"))
	exit := Exit(4, jobs.StatusFailed, 5)
	exit.Incomplete, exit.IncompleteReason = true, "storing the output failed after seq 3: disk full"
	Append(t, db, j.ID, []jobs.Event{exit})
	SameEvents(t, AllEvents(t, db, j.ID, 100), append(Lines(1, 3, "a"), exit))
	got, err := db.Job(ctx, jobs.Ref{ID: j.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Incomplete || got.IncompleteReason != exit.IncompleteReason || got.Status != jobs.StatusFailed || *got.ExitCode != 5 {
		t.Errorf("job %s %v incomplete %v %q; want failed 5, incomplete with the reason", got.Status, got.ExitCode, got.Incomplete, got.IncompleteReason)
	}
	other := CreateJob(t, db)
	Append(t, db, other.ID, []jobs.Event{Exit(1, jobs.StatusSucceeded, 0)})
	if got, err := db.Job(ctx, jobs.Ref{ID: other.ID}); err != nil || got.Incomplete || got.IncompleteReason != "" {
		t.Errorf("a complete job reads incomplete %v %q (%v)", got.Incomplete, got.IncompleteReason, err)
	}
}
