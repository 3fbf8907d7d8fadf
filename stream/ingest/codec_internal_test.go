package ingest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// codecEvents is a batch with every kind of event and awkward bytes.
func codecEvents() []jobs.Event {
	t0 := time.Date(2026, 11, 25, 21, 0, 0, 123456000, time.UTC)
	code, pct := 3, 45.5
	return []jobs.Event{
		{Seq: 7, Time: t0, Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: []byte("plain"), EOL: "\n"},
		{Seq: 8, Time: t0.Add(time.Microsecond), Type: jobs.TypeLine, Stream: jobs.StreamStderr, Line: 2, Data: []byte{0xff, 0, '"', '\\'}, EOL: "\r"},
		{Seq: 9, Time: t0.Add(-time.Second), Type: jobs.TypeLine, Stream: jobs.StreamTTY, Line: 2, Data: []byte{}, EOL: "", Directive: true},
		{Seq: 10, Time: t0.Add(time.Hour), Type: jobs.TypeProgress, Progress: &progress.Report{Percent: pct, Message: "half", Source: "directive"}},
		{Seq: 11, Time: t0.Add(2 * time.Hour), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: bytes.Repeat([]byte("é"), 1000), EOL: "\r\n"},
		{Seq: 12, Time: t0.Add(3 * time.Hour), Type: jobs.TypeExit, Status: jobs.StatusFailed, ExitCode: &code, Signal: "SIGTERM",
			Incomplete: true, IncompleteReason: "storing the output failed after seq 11: disk full"},
	}
}

func TestBinaryEventsRoundTrip(t *testing.T) {
	want := codecEvents()
	msg, err := appendBinaryEvents(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBinaryEvents(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := string(got[i].AppendJSON(nil)), string(want[i].AppendJSON(nil)); g != w {
			t.Errorf("event %d:\n got %s\nwant %s", i, g, w)
		}
	}
	if _, err := appendBinaryEvents(nil, []jobs.Event{want[0], want[2]}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("encoding a gap: %v, want ErrInvalid", err)
	}
}

// Every truncation and every single-byte change of a message decodes to an
// error or to events, never a panic.
func TestBinaryEventsDamaged(t *testing.T) {
	msg, err := appendBinaryEvents(nil, codecEvents())
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(msg) {
		if _, err := decodeBinaryEvents(msg[:n]); !errors.Is(err, jobs.ErrInvalid) {
			t.Fatalf("truncated to %d bytes: %v, want ErrInvalid", n, err)
		}
	}
	for i := range msg {
		for _, v := range []byte{0, 1, 0x7f, 0x80, 0xff} {
			p := bytes.Clone(msg)
			p[i] = v
			decodeBinaryEvents(p)
		}
	}
	if _, err := decodeBinaryEvents(append(bytes.Clone(msg), 0)); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("trailing byte: %v, want ErrInvalid", err)
	}
}

func FuzzDecodeBinaryEvents(f *testing.F) {
	msg, _ := appendBinaryEvents(nil, codecEvents())
	f.Add(msg)
	f.Add([]byte{1, 1, 1, 1, 0, 1, 1, 0, 2, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		evs, err := decodeBinaryEvents(p)
		if err != nil {
			return
		}
		// What decodes encodes back to the same events.
		again, err := appendBinaryEvents(nil, evs)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		evs2, err := decodeBinaryEvents(again)
		if err != nil || len(evs2) != len(evs) {
			t.Fatalf("re-decode: %d events, %v", len(evs2), err)
		}
		for i := range evs {
			if a, b := evs[i].AppendJSON(nil), evs2[i].AppendJSON(nil); !bytes.Equal(a, b) {
				t.Fatalf("event %d changed: %s vs %s", i, a, b)
			}
		}
	})
}
