package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// Removing jobs. A finished job disappears at once and its events go
// afterwards, a few chunk rows at a time, so that removing a job of any
// size never holds the one write lock for long and live ingest goes on:
//
//  1. One short write transaction checks that the job is finished and
//     deletes its jobs row, with foreign keys off on the writer connection
//     for that transaction only, so that the row's chunks are not
//     cascade-deleted in the same transaction. From then on the job is
//     unknown (404) everywhere; its chunk rows are orphans. Job ids are
//     never reused (AUTOINCREMENT), so orphans can never be mistaken for
//     another job's events.
//  2. The orphans are deleted RemoveBatch rows per write transaction, with
//     a pause as long as the batch took between two batches (other writers,
//     in this process or others, take the lock in between).
//  3. Prune also sweeps orphans left by a remove that was interrupted (a
//     crash, a cancelled request).
//
// Deleted pages go to SQLite's freelist, where new events reuse them: the
// file stops growing but does not shrink. Reclaim gives free pages back to
// the file system, in steps, when the database is in incremental
// auto-vacuum mode (every database created by this version: see dsn in
// db.go); Vacuum rewrites the whole file (and converts an older database
// to incremental auto-vacuum), blocking writers while it runs.

// remover is this backend's part of store.Remover.
func (db *DB) remover() store.Remover {
	return store.Remover{Job: db.Job, Detach: db.detachJob, DeleteChunks: db.deleteChunks, Orphans: db.orphans}
}

// RemoveJob deletes the finished job that ref names and all its events,
// and returns the job as it was. A job that is still running (or
// unreachable) is an error wrapping jobs.ErrConflict; an unknown job wraps
// jobs.ErrNotFound. The job is gone for readers when the first
// transaction commits; its events follow in batches (see above).
func (db *DB) RemoveJob(ctx context.Context, ref jobs.Ref, o store.RemoveOptions) (jobs.Job, error) {
	return db.remover().RemoveJob(ctx, ref, o)
}

// detachJob deletes job id's row, but not its chunks, if the job is
// finished.
func (db *DB) detachJob(ctx context.Context, id jobs.ID) error {
	conn, err := db.writer.Conn(ctx)
	if err != nil {
		return db.translate(err)
	}
	defer conn.Close()
	// PRAGMA foreign_keys is a no-op inside a transaction: switch it off
	// around the transaction, on the connection held here.
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return db.translate(err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON"); err != nil {
			// Never hand the pool a writer without foreign keys.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return db.translate(err)
	}
	var st jobs.Status
	err = tx.QueryRowContext(ctx, "SELECT status FROM jobs WHERE id = ?", id).Scan(&st)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
	case err == nil && !st.Final():
		err = store.RunningError(id)
	case err == nil:
		_, err = tx.ExecContext(ctx, "DELETE FROM jobs WHERE id = ?", id)
	}
	if err != nil {
		tx.Rollback()
		return db.translate(err)
	}
	return db.translate(tx.Commit())
}

// deleteChunks deletes up to n chunk rows of job id, whose jobs row is
// gone, in one write transaction, and returns how many.
func (db *DB) deleteChunks(ctx context.Context, id jobs.ID, n int) (int64, error) {
	var deleted int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE rowid IN
			(SELECT rowid FROM chunks WHERE job_id = ? ORDER BY last_seq LIMIT ?)`, id, n)
		if err != nil {
			return err
		}
		deleted, err = res.RowsAffected()
		return err
	})
	return deleted, err
}

// Prune removes the jobs q selects, each like RemoveJob, then the events
// of jobs whose remove was interrupted. A job that is still running is
// never removed.
func (db *DB) Prune(ctx context.Context, q store.PruneQuery, o store.RemoveOptions) (store.PruneResult, error) {
	if err := store.CheckPrune(q); err != nil {
		return store.PruneResult{}, err
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT id FROM jobs
		WHERE status != ? AND COALESCE(finished_at, created_at) < ?
		AND id NOT IN (SELECT id FROM jobs ORDER BY id DESC LIMIT ?)
		ORDER BY id`, jobs.StatusRunning, micros(q.Before), q.Keep)
	if err != nil {
		return store.PruneResult{}, fmt.Errorf("prune: %w", db.translate(err))
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return store.PruneResult{}, fmt.Errorf("prune: %w", db.translate(err))
	}
	return db.remover().Prune(ctx, ids, o)
}

// orphans lists the jobs whose chunk rows outlived their row: what a
// remove that was interrupted left.
func (db *DB) orphans(ctx context.Context) ([]jobs.ID, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT job_id FROM chunks c
		WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id) GROUP BY job_id`)
	if err != nil {
		return nil, db.translate(err)
	}
	ids, err := scanIDs(rows)
	return ids, db.translate(err)
}

// scanIDs reads one column of ids and closes rows.
func scanIDs(rows *sql.Rows) ([]jobs.ID, error) {
	defer rows.Close()
	var ids []jobs.ID
	for rows.Next() {
		var id jobs.ID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// reclaimStep is how many free pages one incremental vacuum step returns to
// the file system (1 MiB of 4 KiB pages).
const reclaimStep = 256

// Reclaim returns the database's free pages to the file system, reclaimStep
// pages per write transaction with pauses in between, and returns the
// bytes freed. It does nothing (0, nil) in a database that is not in
// incremental auto-vacuum mode (one created by an older jobrun): Vacuum
// converts those. The file shrinks at the next WAL checkpoint.
func (db *DB) Reclaim(ctx context.Context) (int64, error) {
	var mode, pageSize int64
	if err := db.writer.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return 0, fmt.Errorf("reclaim space: %w", db.translate(err))
	}
	if err := db.writer.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return 0, fmt.Errorf("reclaim space: %w", db.translate(err))
	}
	if mode != autoVacuumIncremental {
		return 0, nil
	}
	var freed int64
	for {
		start := time.Now()
		// Each row of the pragma's answer is one page freed: the
		// statement must be stepped to its end (Exec would free one).
		rows, err := db.writer.QueryContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", reclaimStep))
		if err != nil {
			return freed * pageSize, fmt.Errorf("reclaim space: %w", db.translate(err))
		}
		n := int64(0)
		for rows.Next() {
			n++
		}
		err = rows.Err()
		rows.Close()
		freed += n
		if err != nil {
			return freed * pageSize, fmt.Errorf("reclaim space: %w", db.translate(err))
		}
		if n < reclaimStep {
			break
		}
		if err := store.Pause(ctx, min(time.Since(start), 50*time.Millisecond)); err != nil {
			return freed * pageSize, err
		}
	}
	// Let the shrunk file reach the disk now if nobody reads; a busy
	// checkpoint is left to SQLite's automatic ones.
	db.writer.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	return freed * pageSize, nil
}

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// Vacuum rewrites the whole database file, compacting it, and converts a
// database created by an older jobrun to incremental auto-vacuum, so that
// Reclaim works on it from then on. It holds the write lock for the whole
// rewrite (every writer, including live ingest, waits, up to its busy
// timeout) and needs free disk space of about the database's size: run it
// when asked to, not on a schedule.
func (db *DB) Vacuum(ctx context.Context) error {
	// VACUUM applies the auto_vacuum mode set before it.
	if _, err := db.writer.ExecContext(ctx, "PRAGMA auto_vacuum = incremental"); err != nil {
		return fmt.Errorf("vacuum %s: %w", db.path, db.translate(err))
	}
	if _, err := db.writer.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum %s: %w", db.path, db.translate(err))
	}
	if _, err := db.writer.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("vacuum %s: checkpoint: %w", db.path, db.translate(err))
	}
	return nil
}
