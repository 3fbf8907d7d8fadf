package sqlite_test

import (
	"errors"
	"testing"

	"github.com/jobrun/jobrun/jobs"
)

func TestTailAndBefore(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	j := createJob(t, db)
	all := lines(1, 10000, "line ")
	appendEvents(t, db, j.ID, all[:9000]) // rows of <= 4096 events
	appendEvents(t, db, j.ID, all[9000:9001])
	appendEvents(t, db, j.ID, all[9001:])

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
			sameEvents(t, got, all[tc.first-1:tc.last])
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
				sameEvents(t, got, nil)
				return
			}
			sameEvents(t, got, all[tc.first-1:tc.last])
		})
	}

	empty := createJob(t, db)
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

func second[T any](_ T, err error) error { return err }

// TestSeqOfLine: the event that starts a line, also when that line starts
// in the middle of a chunk whose first and last line events belong to an
// earlier line (stdout's open line continued around stderr's lines).
func TestSeqOfLine(t *testing.T) {
	db := openDB(t)
	ctx := testCtx(t)
	j := createJob(t, db)
	piece := func(seq jobs.Seq, s jobs.Stream, line int64, text, eol string) jobs.Event {
		return jobs.Event{Seq: seq, Time: t0, Type: jobs.TypeLine, Stream: s, Line: line, Data: []byte(text), EOL: eol}
	}
	appendEvents(t, db, j.ID, []jobs.Event{
		piece(1, jobs.StreamStdout, 1, "50%", "\r"),
		piece(2, jobs.StreamStderr, 2, "warning", "\n"),
		piece(3, jobs.StreamStderr, 3, "warning", "\n"),
		piece(4, jobs.StreamStdout, 1, "100%", "\n"),
	})
	appendEvents(t, db, j.ID, []jobs.Event{piece(5, jobs.StreamStdout, 4, "next", "\n")})
	more := lines(6, 10000, "x")
	for i := range more {
		more[i].Line = int64(i) + 5
	}
	appendEvents(t, db, j.ID, more)

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
	empty := createJob(t, db)
	if got, err := db.SeqOfLine(ctx, empty.ID, 1); err != nil || got != 0 {
		t.Errorf("SeqOfLine of a job without events = %d, %v; want 0, nil", got, err)
	}
}
