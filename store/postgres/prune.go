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

// remover is this backend's part of store.Remover.
func (db *DB) remover() store.Remover {
	return store.Remover{Job: db.Job, Detach: db.detachJob, DeleteChunks: db.deleteChunks, Orphans: db.orphans}
}

// RemoveJob deletes the finished job that ref names and all its events
// (store.Remover.RemoveJob).
func (db *DB) RemoveJob(ctx context.Context, ref jobs.Ref, o store.RemoveOptions) (jobs.Job, error) {
	return db.remover().RemoveJob(ctx, ref, o)
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
			return store.RunningError(id)
		}
		var b pgx.Batch
		b.Queue("DELETE FROM jobs WHERE id = $1", id)
		b.Queue("SELECT pg_notify($1, '*')", notifyJobs)
		return tx.SendBatch(ctx, &b).Close()
	})
}

// deleteChunks deletes up to n chunk rows of job id, whose jobs row is
// gone, in one write transaction, and returns how many.
func (db *DB) deleteChunks(ctx context.Context, id jobs.ID, n int) (int64, error) {
	var deleted int64
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM chunks WHERE job_id = $1 AND first_seq IN
			(SELECT first_seq FROM chunks WHERE job_id = $1 ORDER BY first_seq LIMIT $2)`, id, n)
		deleted = tag.RowsAffected()
		return err
	})
	return deleted, err
}

// Prune removes the finished jobs q selects (store.Remover.Prune).
func (db *DB) Prune(ctx context.Context, q store.PruneQuery, o store.RemoveOptions) (store.PruneResult, error) {
	if err := store.CheckPrune(q); err != nil {
		return store.PruneResult{}, err
	}
	rows, err := db.pool.Query(ctx, `SELECT id FROM jobs
		WHERE status <> $1 AND COALESCE(finished_at, created_at) < $2
		AND id NOT IN (SELECT id FROM jobs ORDER BY id DESC LIMIT $3)
		ORDER BY id`, jobs.StatusRunning, q.Before, q.Keep)
	if err != nil {
		return store.PruneResult{}, fmt.Errorf("prune: %w", db.translate(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[jobs.ID])
	if err != nil {
		return store.PruneResult{}, fmt.Errorf("prune: %w", db.translate(err))
	}
	return db.remover().Prune(ctx, ids, o)
}

// orphans lists the jobs whose chunk rows outlived their row: what a
// remove that was interrupted left.
func (db *DB) orphans(ctx context.Context) ([]jobs.ID, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT job_id FROM chunks c
		WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id)`)
	if err != nil {
		return nil, db.translate(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[jobs.ID])
	return ids, db.translate(err)
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
