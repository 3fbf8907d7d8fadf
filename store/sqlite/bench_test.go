package sqlite_test

import (
	"fmt"
	"testing"

	"github.com/jobrun/jobrun/jobs"
)

// benchLines returns n stdout line events of about 60 bytes from seq first.
func benchLines(first jobs.Seq, n int) []jobs.Event {
	evs := lines(first, n, "")
	for i := range evs {
		evs[i].Data = fmt.Appendf(nil, "%-50s%09d", "2026-11-25 21:00:00 compiling package", evs[i].Seq)
	}
	return evs
}

// BenchmarkAppend commits batches of 1000 line events of ~60 bytes, one
// transaction per batch, as the runner's group commit does.
func BenchmarkAppend(b *testing.B) {
	db := openDB(b)
	j := createJob(b, db)
	ctx := testCtx(b)
	batch := benchLines(1, 1000)
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
	const total, page = 1_000_000, 2000
	db := openDB(b)
	j := createJob(b, db)
	ctx := testCtx(b)
	for first := jobs.Seq(1); first <= total; first += 1000 {
		appendEvents(b, db, j.ID, benchLines(first, 1000))
	}
	read := 0
	for b.Loop() {
		after := jobs.Seq(0)
		for {
			evs, err := db.Events(ctx, j.ID, after, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			after = evs[len(evs)-1].Seq
			read += len(evs)
		}
		if after != total {
			b.Fatalf("read up to seq %d, want %d", after, total)
		}
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}
