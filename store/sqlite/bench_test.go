package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
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

// BenchmarkJobsFilter lists the first page (100) of 100,000 jobs with
// each kind of filter, as the dashboard and jobrun ls do. Filters that
// match few jobs ("lost", "no match", "old") read the whole table.
func BenchmarkJobsFilter(b *testing.B) {
	const n = 100_000
	db := openDB(b)
	ctx := testCtx(b)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]jobs.Job, 0, n)
	for i := range n {
		j := jobs.Job{Name: fmt.Sprintf("build %d", i), Host: fmt.Sprintf("host%d", i%10),
			CreatedAt: start.Add(time.Duration(i) * time.Minute), Status: jobs.StatusSucceeded}
		switch {
		case i%1000 == 7:
			j.Status = jobs.StatusLost
		case i%50 == 3:
			j.Status = jobs.StatusCanceled
		case i%12 == 5:
			j.Status = jobs.StatusFailed
		case i >= n-20:
			j.Status = jobs.StatusRunning
		}
		if i%40 == 0 {
			j.Name = fmt.Sprintf("Deploy prod %d", i)
		}
		if j.Status != jobs.StatusRunning {
			end := j.CreatedAt.Add(30 * time.Second)
			j.FinishedAt = &end
		}
		batch = append(batch, j)
	}
	if err := db.InsertJobs(ctx, batch); err != nil {
		b.Fatal(err)
	}
	last := start.Add(n * time.Minute)
	for _, bc := range []struct {
		name string
		q    store.JobsQuery
	}{
		{"none", store.JobsQuery{}},
		{"deep page", store.JobsQuery{Before: 500}},
		{"status=failed", store.JobsQuery{Filter: jobs.Filter{Statuses: []jobs.Status{jobs.StatusFailed}}}},
		{"status=running", store.JobsQuery{Filter: jobs.Filter{Statuses: []jobs.Status{jobs.StatusRunning}}}},
		{"status=lost (rare)", store.JobsQuery{Filter: jobs.Filter{Statuses: []jobs.Status{jobs.StatusLost}}}},
		{"name=deploy", store.JobsQuery{Filter: jobs.Filter{Name: "deploy"}}},
		{"name, no match", store.JobsQuery{Filter: jobs.Filter{Name: "no such job"}}},
		{"host", store.JobsQuery{Filter: jobs.Filter{Host: "host3"}}},
		{"since 24h", store.JobsQuery{Filter: jobs.Filter{Since: last.Add(-24 * time.Hour)}}},
		{"until 60 days ago (old)", store.JobsQuery{Filter: jobs.Filter{Until: last.Add(-60 * 24 * time.Hour)}}},
		{"failed deploys", store.JobsQuery{Filter: jobs.Filter{Statuses: []jobs.Status{jobs.StatusFailed}, Name: "deploy"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := db.Jobs(ctx, bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
