package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/postgres"
	"github.com/jobrun/jobrun/store/sqlite"
)

func migrateCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "copy every job and its output from a SQLite database into a PostgreSQL database",
		Description: "migrate copies the jobs of --from (a SQLite file) into --to (postgres://...), creating jobrun's schema there " +
			"if needed. Each job is copied whole, in one transaction, with its id unless the PostgreSQL database has a job with it. " +
			"It is idempotent and resumable: jobs already copied are skipped, jobs that grew since are completed, so run it again " +
			"after an interruption. Jobs still running under a local jobrun exec are left for a later run. Stop the jobrun serve " +
			"of the SQLite database first (docs/deploy.md, \"Several servers\").",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "the SQLite database `PATH`"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "the PostgreSQL database `URL` (postgres://USER:PASS@HOST:5432/DB?sslmode=...)"},
		},
		Action: func(c *cli.Context) error { return runMigrate(c, io) },
	}
}

// migrateStats is what a migration did.
type migrateStats struct {
	jobs, copied, skipped, left int
	chunks                      int
	bytes                       int64
}

func runMigrate(c *cli.Context, io stdio) error {
	if c.NArg() > 0 {
		return usageError("migrate: unexpected argument %q", c.Args().First())
	}
	if !postgres.IsURL(c.String("to")) {
		return usageError("migrate: --to must be a postgres:// or postgresql:// URL")
	}
	if postgres.IsURL(c.String("from")) {
		return usageError("migrate: --from must be a SQLite database file")
	}
	src, err := sqlite.Open(c.Context, c.String("from"), sqlite.Options{MustExist: true})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer src.Close()
	dst, err := postgres.Open(c.Context, c.String("to"), postgres.Options{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer dst.Close()

	var st migrateStats
	last := time.Now()
	report := func(final bool) {
		if !final && time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(io.err, "jobrun: migrate: %d jobs seen: %d copied (%d chunks, %s), %d already there, %d left for later\n",
			st.jobs, st.copied, st.chunks, humanBytes(st.bytes), st.skipped, st.left)
	}
	after := jobs.ID(0)
	for {
		page, err := src.ExportJobs(c.Context, after, 100)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, row := range page {
			after = row.Job.ID
			st.jobs++
			if err := migrateJob(c.Context, io, src, dst, row, &st); err != nil {
				report(true)
				return fmt.Errorf("migrate: job %d (%s): %w; nothing of it was copied, run jobrun migrate again", row.Job.ID, row.Job.UID, err)
			}
			report(false)
		}
	}
	report(true)
	if st.left > 0 {
		fmt.Fprintf(io.err, "jobrun: migrate: %d jobs still run under jobrun exec; run jobrun migrate again when they have ended\n", st.left)
	}
	return nil
}

// migrateJob copies one job unless it is there already.
func migrateJob(ctx context.Context, io stdio, src *sqlite.DB, dst *postgres.DB, row store.JobRow, st *migrateStats) error {
	j := row.Job
	if j.Status == jobs.StatusRunning && !j.Agent {
		// Its runner is a local jobrun exec, which goes on writing here.
		st.left++
		return nil
	}
	from, found, err := dst.ImportState(ctx, j.UID)
	if err != nil {
		return err
	}
	if found && from >= j.LastSeq {
		st.skipped++
		return nil
	}
	var bytes int64
	n, err := dst.ImportJob(ctx, row, from, func(after jobs.Seq) ([]store.ChunkRow, error) {
		page, err := src.ExportChunks(ctx, j.ID, after, 64)
		for _, c := range page {
			bytes += int64(len(c.Body))
		}
		return page, err
	})
	if err != nil {
		return err
	}
	st.copied++
	st.chunks += n
	st.bytes += bytes
	return nil
}
