package sqlite_test

import (
	"testing"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/storetest"
)

// BenchmarkAppend commits batches of 1000 line events of ~60 bytes, one
// transaction per batch, as the runner's group commit does.
func BenchmarkAppend(b *testing.B) {
	db := openDB(b)
	j := createJob(b, db)
	ctx := testCtx(b)
	batch := storetest.BenchLines(1, 1000)
	b.SetBytes(int64(len(batch) * 60))
	next := jobs.Seq(1)
	for b.Loop() {
		for i := range batch {
			batch[i].Seq = next + jobs.Seq(i)
		}
		if err := db.AppendEvents(ctx, j.ID, batch); err != nil {
			b.Fatal(err)
		}
		next += jobs.Seq(len(batch))
	}
	b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkEvents reads a finished job of 1M line events back in pages of
// 2000, as a replay to a new viewer does.
func BenchmarkEvents(b *testing.B) {
	const total = 1_000_000
	db := openDB(b)
	j := createJob(b, db)
	for first := jobs.Seq(1); first <= total; first += 1000 {
		appendEvents(b, db, j.ID, storetest.BenchLines(first, 1000))
	}
	storetest.BenchReplay(b, db, j.ID, total, 2000)
}
