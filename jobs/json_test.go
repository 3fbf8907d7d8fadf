package jobs_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

func TestEventJSONRoundTrip(t *testing.T) {
	code := 137
	for _, tc := range []struct {
		name string
		ev   jobs.Event
		want string
	}{
		{"line", jobs.Event{Seq: 1, Time: time.Date(2026, 11, 25, 21, 0, 0, 123456789, time.UTC), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: []byte("compiling"), EOL: "\n"},
			`{"seq":1,"time":"2026-11-25T21:00:00.123456Z","type":"line","stream":"stdout","line":1,"text":"compiling","eol":"\n"}`},
		{"escapes", jobs.Event{Seq: 2, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600)), Type: jobs.TypeLine, Stream: jobs.StreamStderr, Line: 2, Data: []byte("a\"b\\c\td\x1b[1m\u2028<"), EOL: "\r\n"},
			`{"seq":2,"time":"2026-01-02T02:04:05.000006Z","type":"line","stream":"stderr","line":2,"text":"a\"b\\c\td\u001b[1m\u2028<","eol":"\r\n"}`},
		{"invalid utf8", jobs.Event{Seq: 3, Time: time.Unix(0, 0), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 3, Data: []byte("x\xff\xfey"), EOL: ""},
			"{\"seq\":3,\"time\":\"1970-01-01T00:00:00.000000Z\",\"type\":\"line\",\"stream\":\"stdout\",\"line\":3,\"text\":\"x\ufffd\ufffdy\",\"eol\":\"\",\"data\":\"eP/+eQ==\"}"},
		{"exit", jobs.Event{Seq: 4, Time: time.Unix(1, 0), Type: jobs.TypeExit, Status: jobs.StatusCanceled, ExitCode: &code, Signal: "SIGKILL"},
			`{"seq":4,"time":"1970-01-01T00:00:01.000000Z","type":"exit","status":"canceled","exit_code":137,"signal":"SIGKILL"}`},
		{"lost", jobs.Event{Seq: 5, Time: time.Unix(2, 0), Type: jobs.TypeExit, Status: jobs.StatusLost},
			`{"seq":5,"time":"1970-01-01T00:00:02.000000Z","type":"exit","status":"lost","exit_code":null}`},
		{"incomplete", jobs.Event{Seq: 6, Time: time.Unix(3, 0), Type: jobs.TypeExit, Status: jobs.StatusFailed, ExitCode: &code,
			Incomplete: true, IncompleteReason: `storing the output failed after seq 5: disk "full"`},
			`{"seq":6,"time":"1970-01-01T00:00:03.000000Z","type":"exit","status":"failed","exit_code":137,"incomplete":true,"incomplete_reason":"storing the output failed after seq 5: disk \"full\""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(tc.ev.AppendJSON(nil))
			if got != tc.want {
				t.Fatalf("AppendJSON:\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("not valid JSON: %s", got)
			}
			var back jobs.Event
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatal(err)
			}
			if again := string(back.AppendJSON(nil)); again != got {
				t.Errorf("round trip:\n got %s\nwant %s", again, got)
			}
			if back.Incomplete != tc.ev.Incomplete || back.IncompleteReason != tc.ev.IncompleteReason {
				t.Errorf("incomplete after round trip = %v %q, want %v %q", back.Incomplete, back.IncompleteReason, tc.ev.Incomplete, tc.ev.IncompleteReason)
			}
			if tc.ev.Type == jobs.TypeLine && string(back.Data) != string(tc.ev.Data) {
				t.Errorf("bytes after round trip = %q, want %q", back.Data, tc.ev.Data)
			}
		})
	}
}

func FuzzEventJSON(f *testing.F) {
	f.Add([]byte("hello"), int64(1))
	f.Add([]byte("\xff\x00\u2029\"\\"), int64(123456789))
	f.Fuzz(func(t *testing.T, data []byte, ns int64) {
		ev := jobs.Event{Seq: 1, Time: time.Unix(0, ns), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: data}
		b := ev.AppendJSON(nil)
		var back jobs.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		if string(back.Data) != string(data) {
			t.Fatalf("bytes %q came back as %q", data, back.Data)
		}
		if !back.Time.Equal(ev.Time.Truncate(time.Microsecond)) {
			t.Fatalf("time %v came back as %v", ev.Time, back.Time)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := jobs.Event{Seq: 1, Time: time.Now(), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: []byte("00000001 the quick brown fox jumps over the lazy dog 00000001"), EOL: "\n"}
	var buf []byte
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(ev.Data)))
}

func BenchmarkAppendJSONArray(b *testing.B) {
	now := time.Now()
	evs := make([]jobs.Event, 1000)
	for i := range evs {
		evs[i] = jobs.Event{Seq: jobs.Seq(i + 1), Time: now.Add(time.Duration(i) * time.Microsecond), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: int64(i + 1), Data: []byte("00000001 the quick brown fox jumps over the lazy dog 00000001"), EOL: "\n"}
	}
	var buf []byte
	for b.Loop() {
		buf = jobs.AppendJSONArray(buf[:0], evs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
