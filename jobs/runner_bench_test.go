package jobs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// BenchmarkRunnerIngest runs `cat FILE` of 60-byte lines as a job with the
// real store, no echo: b.N lines through pipe, splitter, progress parser,
// recorder and group commit. Reports lines/s, with progress detection in
// auto mode (the default: every plain line goes through the parser's quick
// scan) and off.
func BenchmarkRunnerIngest(b *testing.B) {
	for _, mode := range []progress.Mode{progress.Auto, progress.Off} {
		b.Run("progress="+string(mode), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "lines")
			if err := os.WriteFile(path, floodOutput(b.N), 0o600); err != nil {
				b.Fatal(err)
			}
			db := openDB(b)
			ctx := testCtx(b)
			b.SetBytes(60)
			b.ResetTimer()
			t0 := time.Now()
			run, err := (&jobs.Runner{Store: db, Progress: mode}).Start(ctx, jobs.Spec{Command: []string{"cat", path}})
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
