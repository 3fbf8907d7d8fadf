package jobs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
)

// TestRecorderFlushTimer checks the flush delay in a synctest bubble, with
// fake time: an unterminated line waits FlushAfter from its first byte,
// then goes out as a fragment; a "\r" at the end of a read waits for the
// next byte as long; an incomplete UTF-8 sequence is held back once.
func TestRecorderFlushTimer(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db, err := sqlite.Open(ctx, filepath.Join(dir, "jobrun.db"), sqlite.Options{Host: "testhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		job := jobs.Job{Name: "timers", Command: []string{"timers"}}
		if err := db.CreateJob(ctx, &job); err != nil {
			t.Fatal(err)
		}
		rec := jobs.NewTestRecorder(db, nil, job.ID, 100*time.Millisecond)

		var seen int
		// expect checks the events stored since the last call.
		expect := func(step string, want ...string) {
			t.Helper()
			synctest.Wait()
			evs, err := db.Events(ctx, job.ID, jobs.Seq(seen), 1000)
			if err != nil {
				t.Fatal(err)
			}
			seen += len(evs)
			var got []string
			for _, e := range evs {
				got = append(got, fmt.Sprintf("%d:%q%q", e.Line, e.Data, e.EOL))
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s: stored %v, want %v", step, got, want)
			}
		}

		rec.Write(0, "abc")
		time.Sleep(60 * time.Millisecond)
		rec.Write(0, "de")
		time.Sleep(39 * time.Millisecond)
		expect("99ms after the first byte of a line")
		time.Sleep(2 * time.Millisecond)
		expect("101ms after", `1:"abcde"""`)

		rec.Write(0, "\r")
		time.Sleep(99 * time.Millisecond)
		expect("a lone \\r waits for the next byte")
		time.Sleep(2 * time.Millisecond)
		expect("then goes out as \\r", `1:"""\r"`)

		rec.Write(0, "x\r")
		rec.Write(0, "\ny")
		expect("\\r then \\n in the next read", `1:"x""\r\n"`)
		time.Sleep(101 * time.Millisecond)
		expect("fragment", `2:"y"""`)

		rec.Write(0, "\nab\xe2\x82")
		expect("line end", `2:"""\n"`)
		time.Sleep(101 * time.Millisecond)
		expect("held back incomplete UTF-8", `3:"ab"""`)
		time.Sleep(101 * time.Millisecond)
		expect("flushed on the second timeout", `3:"\xe2\x82"""`)

		rec.Write(1, "err")
		rec.Write(0, "\xac\n")
		expect("stdout finishes its line", `3:"\xac""\n"`)
		time.Sleep(101 * time.Millisecond)
		expect("stderr fragment takes the next line number", `4:"err"""`)

		rec.Close()
		expect("exit", `0:""""`)
	})
}
