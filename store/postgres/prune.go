package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// Removing jobs, as in SQLite: a finished job's row goes in one short
// transaction (from then on the job is unknown everywhere), then its
// chunk rows a few per transaction with pauses, so that removing a big job
// never holds up ingest; chunks without a job are what an interrupted
// remove left, and Prune sweeps them. Ids are never reused (an identity
// column). Deleted rows' space is reused by PostgreSQL after its
// autovacuum; it is not given back to the file system.

// RemoveJob deletes the finished job that ref names and all its events,
// and returns the job as it was. A job that is still running (or
// unreachable) is an error wrapping jobs.ErrConflict; an unknown job wraps
// jobs.ErrNotFound.
func (db *DB) RemoveJob(ctx context.Context, ref jobs.Ref, o store.RemoveOptions) (jobs.Job, error) {
	j, err := db.Job(ctx, ref)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("remove job: %w", err)
	}
	if err := db.detachJob(ctx, j.ID); err != nil {
		return jobs.Job{}, fmt.Errorf("remove job %d: %w", j.ID, err)
	}
	if _, err := db.deleteChunks(ctx, j.ID, o.WithDefaults()); err != nil {
		return j, fmt.Errorf("remove job %d: its events: %w (the next prune removes the rest)", j.ID, err)
	}
	return j, nil
}

// detachJob deletes job id's row, but not its chunks, if the job is
// finished, and tells the replicas.
func (db *DB) detachJob(ctx context.Context, id jobs.ID) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		var st jobs.Status
		err := tx.QueryRow(ctx, "SELECT status FROM jobs WHERE id = $1 FOR UPDATE", id).Scan(&st)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
		case err != nil:
			return err
		case !st.Final():
			return fmt.Errorf("job %d is still running; cancel it (jobrun cancel %d) and remove it when it has ended: %w", id, id, jobs.ErrConflict)
		}
		var b pgx.Batch
		b.Queue("DELETE FROM jobs WHERE id = $1", id)
		b.Queue("SELECT pg_notify($1, '*')", notifyJobs)
		return tx.SendBatch(ctx, &b).Close()
	})
}

// deleteChunks deletes the chunk rows of job id, whose jobs row is gone,
// o.Batch rows per transaction, pausing between transactions. It returns
// the number of rows deleted.
func (db *DB) deleteChunks(ctx context.Context, id jobs.ID, o store.RemoveOptions) (int64, error) {
	var total int64
	for {
		start := time.Now()
		var n int64
		err := db.writeTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM chunks WHERE job_id = $1 AND first_seq IN
				(SELECT first_seq FROM chunks WHERE job_id = $1 ORDER BY first_seq LIMIT $2)`, id, o.Batch)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(o.Batch) {
			return total, nil
		}
		if err := pause(ctx, min(time.Since(start), o.MaxPause)); err != nil {
			return total, err
		}
	}
}

// pause waits d (at least a millisecond) or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Prune removes the jobs q selects, each like RemoveJob, then the events
// of jobs whose remove was interrupted. A job that is still running is
// never removed.
func (db *DB) Prune(ctx context.Context, q store.PruneQuery, o store.RemoveOptions) (store.PruneResult, error) {
	var res store.PruneResult
	if q.Before.IsZero() || q.Keep < 0 {
		return res, fmt.Errorf("prune: before %v, keep %d: %w", q.Before, q.Keep, jobs.ErrInvalid)
	}
	o = o.WithDefaults()
	rows, err := db.pool.Query(ctx, `SELECT id FROM jobs
		WHERE status <> $1 AND COALESCE(finished_at, created_at) < $2
		AND id NOT IN (SELECT id FROM jobs ORDER BY id DESC LIMIT $3)
		ORDER BY id`, jobs.StatusRunning, q.Before, q.Keep)
	if err != nil {
		return res, fmt.Errorf("prune: %w", db.translate(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[jobs.ID])
	if err != nil {
		return res, fmt.Errorf("prune: %w", db.translate(err))
	}
	for _, id := range ids {
		err := db.detachJob(ctx, id)
		if errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrConflict) {
			continue // removed meanwhile, or (never) running again
		}
		if err != nil {
			return res, fmt.Errorf("prune: job %d: %w", id, err)
		}
		res.Removed = append(res.Removed, id)
		n, err := db.deleteChunks(ctx, id, o)
		res.Chunks += n
		if err != nil {
			return res, fmt.Errorf("prune: events of job %d: %w", id, err)
		}
	}
	n, err := db.sweepOrphans(ctx, o)
	res.Chunks += n
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	return res, nil
}

// sweepOrphans deletes chunk rows whose job is gone: what a remove that
// was interrupted left.
func (db *DB) sweepOrphans(ctx context.Context, o store.RemoveOptions) (int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT job_id FROM chunks c
		WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id)`)
	if err != nil {
		return 0, db.translate(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[jobs.ID])
	if err != nil {
		return 0, db.translate(err)
	}
	var total int64
	for _, id := range ids {
		n, err := db.deleteChunks(ctx, id, o)
		total += n
		if err != nil {
			return total, fmt.Errorf("events of removed job %d: %w", id, err)
		}
	}
	return total, nil
}

// Reclaim does nothing in PostgreSQL (0, nil): its autovacuum makes the
// space of deleted rows reusable, and giving it back to the file system
// takes VACUUM FULL, which locks the tables (see Vacuum).
func (db *DB) Reclaim(ctx context.Context) (int64, error) { return 0, nil }

// Vacuum runs a plain VACUUM (ANALYZE) of jobrun's tables: it makes the
// space of removed jobs reusable at once and never blocks ingest. It does
// not shrink the files; an administrator who wants that runs VACUUM FULL
// while no replica writes.
func (db *DB) Vacuum(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, "VACUUM (ANALYZE) chunks, jobs"); err != nil {
		return fmt.Errorf("vacuum %s: %w", db.name, db.translate(err))
	}
	return nil
}

// Stats reads the summary: one pass over the jobs table (not the events)
// and the size of jobrun's tables. FreeBytes is 0: PostgreSQL reuses the
// space of removed jobs without saying how much there is.
func (db *DB) Stats(ctx context.Context) (store.Stats, error) {
	st := store.Stats{Jobs: make(map[jobs.Status]int64)}
	cutoff := time.Now().Add(-db.opts.AgentTimeout)
	rows, err := db.pool.Query(ctx, `SELECT status,
		agent AND status = $1 AND (last_heard IS NULL OR last_heard < $2), count(*)
		FROM jobs GROUP BY 1, 2`, jobs.StatusRunning, cutoff)
	if err != nil {
		return st, fmt.Errorf("database stats: %w", db.translate(err))
	}
	for rows.Next() {
		var (
			status      jobs.Status
			unreachable bool
			n           int64
		)
		if err := rows.Scan(&status, &unreachable, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("database stats: %w", db.translate(err))
		}
		if unreachable {
			status = jobs.StatusUnreachable
		}
		st.Jobs[status] += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("database stats: %w", db.translate(err))
	}
	err = db.pool.QueryRow(ctx, `SELECT pg_total_relation_size('chunks') + pg_total_relation_size('jobs')`).Scan(&st.Bytes)
	if err != nil {
		return st, fmt.Errorf("database stats: %w", db.translate(err))
	}
	return st, nil
}
