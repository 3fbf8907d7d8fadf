package store

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

func codecEvents() []jobs.Event {
	code, pct := 137, 12.5
	t := time.Date(2026, 11, 25, 21, 0, 0, 123456000, time.UTC)
	return []jobs.Event{
		{Time: t, Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: []byte("hello"), EOL: "\n"},
		{Time: t, Type: jobs.TypeLine, Stream: jobs.StreamStderr, Line: 1, Data: []byte{}, EOL: "\r\n"},
		{Time: t.Add(-time.Second), Type: jobs.TypeLine, Stream: jobs.StreamTTY, Line: 2, Data: []byte("\xff\xfe\x00"), EOL: "\r"},
		{Time: t.Add(time.Hour), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: []byte("::progress"), EOL: "", Directive: true},
		{Time: time.UnixMicro(math.MaxInt64).UTC(), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: math.MaxInt64, Data: []byte("far"), EOL: "\n"},
		{Time: time.UnixMicro(math.MinInt64).UTC(), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: -1, Data: []byte("past"), EOL: "\n"},
		{Time: t, Type: jobs.TypeProgress, Progress: &progress.Report{Percent: pct, Message: "m"}},
		{Time: t, Type: jobs.TypeExit, Status: jobs.StatusCanceled, ExitCode: &code, Signal: "SIGKILL"},
	}
}

func encode(t testing.TB, first jobs.Seq, evs []jobs.Event) []byte {
	t.Helper()
	var c ChunkEncoder
	c.Reset(first)
	for i := range evs {
		if err := c.Add(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return c.Body
}

func TestCodecRoundTrip(t *testing.T) {
	want := codecEvents()
	for i := range want {
		want[i].Seq = jobs.Seq(41 + i)
	}
	body := encode(t, 41, want)
	got, err := DecodeChunk(body, 41, len(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := string(got[i].AppendJSON(nil)), string(want[i].AppendJSON(nil))
		if g != w || !got[i].Time.Equal(want[i].Time) || string(got[i].Data) != string(want[i].Data) {
			t.Errorf("event %d:\n got %s\nwant %s", i, g, w)
		}
	}
	if _, err := DecodeChunk(body, 41, len(want)+1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong count: %v, want ErrCorrupt", err)
	}
}

func TestCodecCorrupt(t *testing.T) {
	body := encode(t, 1, codecEvents())
	for _, bad := range [][]byte{
		{0},                               // unknown kind
		{kindLine},                        // no time
		{kindLine, 0, 9, 1, 0},            // bad stream
		{kindLine, 0, 1, 7, 0},            // bad eol
		{kindLine, 0, 1, 1, 2, 0},         // unknown flag
		{kindLine, 0, 1, 1, 0, 2, 5, 'a'}, // length beyond the end
		{kindExit, 0, 2, '{', '}'},        // exit without a type
		{kindExit, 0, 3, '{', '{', '}'},
		body[:len(body)-1],
	} {
		if _, err := DecodeChunk(bad, 1, 1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %q: %v, want ErrCorrupt", bad, err)
		}
	}
}

// FuzzDecode: no input makes the decoder panic or read out of bounds, and
// whatever decodes re-encodes to an equivalent body.
func FuzzDecode(f *testing.F) {
	f.Add(encode(f, 1, codecEvents()))
	f.Add(encode(f, 1, codecEvents()[:1]))
	f.Add([]byte{kindLine, 0, 1, 1, 0, 2, 1, 'a'})
	f.Fuzz(func(t *testing.T, body []byte) {
		d := NewChunkDecoder(body, 1)
		for {
			var e jobs.Event
			err := d.Next(&e)
			if err != nil {
				return // io.EOF or an error: both fine
			}
			if e.Type == jobs.TypeLine {
				var c ChunkEncoder
				c.Reset(1)
				if err := c.Add(&e); err != nil {
					t.Fatalf("re-encode %+v: %v", e, err)
				}
			}
		}
	})
}
