package postgres_test

import (
	"testing"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/postgres"
	"github.com/jobrun/jobrun/store/postgres/pgtest"
	"github.com/jobrun/jobrun/store/storetest"
)

// BenchmarkIngest stores an agent's batches of 1000 line events of ~60
// bytes, one transaction each, as a replica's ingest does.
func BenchmarkIngest(b *testing.B) {
	db := open(b, pgtest.DB(b), postgres.Options{})
	ctx := storetest.Ctx(b)
	id, _, err := db.RegisterJob(ctx, storetest.AgentJob(jobs.NewUID()))
	if err != nil {
		b.Fatal(err)
	}
	batch := storetest.BenchLines(1, 1000)
	b.SetBytes(int64(len(batch) * 60))
	next := jobs.Seq(1)
	for b.Loop() {
		for i := range batch {
			batch[i].Seq = next + jobs.Seq(i)
		}
		if _, _, err := db.IngestEvents(ctx, id, batch); err != nil {
			b.Fatal(err)
		}
		next += jobs.Seq(len(batch))
	}
	b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkEvents reads a finished job of 1M line events back in pages of
// 8192, as a replay to a new viewer does.
func BenchmarkEvents(b *testing.B) {
	const total, page = 1_000_000, 8192
	db := open(b, pgtest.DB(b), postgres.Options{})
	j := storetest.CreateJob(b, db)
	for first := jobs.Seq(1); first <= total; first += 4000 {
		storetest.Append(b, db, j.ID, storetest.BenchLines(first, 4000))
	}
	storetest.BenchReplay(b, db, j.ID, total, page)
}
