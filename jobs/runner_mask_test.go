package jobs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// lockedBuffer is an echo destination the test reads after Wait.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunnerMasks runs a real child that prints a value given in Mask and
// announces another with ::add-mask::, the second split across two writes
// with the child waiting in between: neither reaches the store, the
// stream, the echo or the job's command.
func TestRunnerMasks(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer inW.Close()
	var out, errOut lockedBuffer
	r := &jobs.Runner{Store: db, Stdin: inR, Stdout: &out, Stderr: &errOut, Mask: []string{"env-s3cret"}}
	script := `echo "token env-s3cret"; printf '::add-mask::%s\n' hunter22; printf 'before hun'; read x; printf 'ter22 after\n'; echo "err hunter22" >&2`
	run, err := r.Start(ctx, jobs.Spec{Command: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Job().ID
	// "hun" could start the secret: it is held back until the child goes
	// on, while what came before it is stored as a fragment.
	waitFor(ctx, t, db, id, "the bytes before the held ones", contains(jobs.StreamStdout, "before "))
	if got := string(streamBytes(allEvents(ctx, t, db, id), jobs.StreamStdout)); strings.Contains(got, "hun") {
		t.Errorf("stored %q before the secret was complete", got)
	}
	inW.WriteString("go\n")
	res := wait(ctx, t, run)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	evs := allEvents(ctx, t, db, id)
	checkLog(t, evs)
	// The split secret: "hun" was held, "ter22" came later: together they
	// are the secret.
	wantOut := "token ***\n::add-mask::***\nbefore *** after\n"
	if got := string(streamBytes(evs, jobs.StreamStdout)); got != wantOut {
		t.Errorf("stored stdout %q, want %q", got, wantOut)
	}
	if got := string(streamBytes(evs, jobs.StreamStderr)); got != "err ***\n" {
		t.Errorf("stored stderr %q, want %q", got, "err ***\n")
	}
	if got := out.String(); got != wantOut {
		t.Errorf("echoed stdout %q, want %q", got, wantOut)
	}
	j, err := db.Job(ctx, jobs.Ref{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(j.Command, " "), "env-s3cret") || strings.Contains(j.Name, "env-s3cret") {
		t.Errorf("the job's name %q or command %q holds the secret", j.Name, j.Command)
	}
}

// BenchmarkRunnerIngestMasked is BenchmarkRunnerIngest (progress off) with
// values to mask, none of which occurs: the cost of looking for them. (The
// ::add-mask:: search runs in every job, so BenchmarkRunnerIngest measures
// it too.)
func BenchmarkRunnerIngestMasked(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("masks=%d", n), func(b *testing.B) {
			var mask []string
			for i := range n {
				mask = append(mask, fmt.Sprintf("s3cret-value-%02d-abcdefghijklmnop", i))
			}
			path := filepath.Join(b.TempDir(), "lines")
			if err := os.WriteFile(path, floodOutput(b.N), 0o600); err != nil {
				b.Fatal(err)
			}
			db := openDB(b)
			ctx := testCtx(b)
			b.SetBytes(60)
			b.ResetTimer()
			t0 := time.Now()
			run, err := (&jobs.Runner{Store: db, Progress: progress.Off, Mask: mask}).Start(ctx, jobs.Spec{Command: []string{"cat", path}})
			if err != nil {
				b.Fatal(err)
			}
			if res := run.Wait(); res.ExitCode != 0 || res.StoreErr != nil {
				b.Fatalf("result %+v", res)
			}
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "lines/s")
		})
	}
}
