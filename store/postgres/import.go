package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// Importing jobs from another database (jobrun migrate from SQLite): each
// job in one transaction, its row as stored and its chunk rows copied as
// they are (the same bytes in both backends), so that an interrupted
// migration leaves every job either whole or absent, and the next run
// resumes.

// ImportState reports the last seq stored here of the job with uid, and
// whether the job is here at all.
func (db *DB) ImportState(ctx context.Context, uid jobs.UID) (last jobs.Seq, found bool, err error) {
	err = db.pool.QueryRow(ctx, "SELECT last_seq FROM jobs WHERE uid = $1", uid).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("import job %s: %w", uid, db.translate(err))
	}
	return last, true, nil
}

// ImportJob copies a job in one transaction: its row as stored, keeping
// its id unless a job here has it, and its chunk rows, read page by page
// with next (the rows with first seq after its argument; none at the end).
// A job already here (from > 0, its last seq here) keeps its row and id,
// takes the row's state and gets the chunk rows after from; its chunks
// here must end where one of the copied ones begins. It returns the chunk
// rows copied.
func (db *DB) ImportJob(ctx context.Context, row store.JobRow, from jobs.Seq, next func(after jobs.Seq) ([]store.ChunkRow, error)) (int, error) {
	j := &row.Job
	cmdJSON, err := json.Marshal(j.Command)
	if err != nil {
		return 0, fmt.Errorf("import job %s: %w", j.UID, err)
	}
	if j.Command == nil {
		cmdJSON = []byte("[]")
	}
	p := &row.Progress
	state := []any{j.Name, string(cmdJSON), j.Cwd, j.Host, j.Status, j.ExitCode, j.Signal, j.CreatedAt, j.StartedAt,
		j.FinishedAt, j.LastSeq, j.LastLine, p.Percent, p.Message, p.Time, p.State, p.BasePercent, p.BaseTime, p.Rate,
		j.Agent, j.LastHeard, j.Incomplete, j.IncompleteReason}
	copied := 0
	err = db.writeTx(ctx, func(tx pgx.Tx) error {
		copied = 0
		var id jobs.ID
		if from == 0 {
			var taken bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1)", j.ID).Scan(&taken); err != nil {
				return err
			}
			keep := any(j.ID)
			if taken {
				keep = nil // a new id
			}
			err := tx.QueryRow(ctx, `INSERT INTO jobs (id, uid, name, command, cwd, host, status, exit_code, signal,
				created_at, started_at, finished_at, last_seq, last_line, progress_percent, progress_message,
				progress_time, progress_state, progress_base_percent, progress_base_time, progress_rate, agent, last_heard,
				incomplete, incomplete_reason)
				VALUES (COALESCE($1, nextval(pg_get_serial_sequence('jobs', 'id'))), $2, $3, $4, $5, $6, $7, $8, $9,
				$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
				RETURNING id`, append([]any{keep, j.UID}, state...)...).Scan(&id)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT max(id) FROM jobs))`); err != nil {
				return err
			}
		} else {
			var last jobs.Seq
			if err := tx.QueryRow(ctx, "SELECT id, last_seq FROM jobs WHERE uid = $1 FOR UPDATE", j.UID).Scan(&id, &last); err != nil {
				return err
			}
			if last != from {
				return fmt.Errorf("its last seq here is %d, not %d: %w", last, from, jobs.ErrConflict)
			}
			_, err := tx.Exec(ctx, `UPDATE jobs SET name = $2, command = $3, cwd = $4, host = $5, status = $6,
				exit_code = $7, signal = $8, created_at = $9, started_at = $10, finished_at = $11, last_seq = $12,
				last_line = $13, progress_percent = $14, progress_message = $15, progress_time = $16,
				progress_state = $17, progress_base_percent = $18, progress_base_time = $19, progress_rate = $20,
				agent = $21, last_heard = $22, incomplete = $23, incomplete_reason = $24 WHERE id = $1`, append([]any{id}, state...)...)
			if err != nil {
				return err
			}
		}
		after := from
		for {
			page, err := next(after)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			rows := make([][]any, len(page))
			for i, c := range page {
				if c.First != after+1 || c.Last < c.First || c.N != int(c.Last-c.First+1) {
					return fmt.Errorf("%w: chunk %d..%d does not follow seq %d", store.ErrCorrupt, c.First, c.Last, after)
				}
				rows[i] = []any{id, c.First, c.Last, c.FirstLine, c.LastLine, c.N, c.Body}
				after = c.Last
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"chunks"},
				[]string{"job_id", "first_seq", "last_seq", "first_line", "last_line", "n", "body"}, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
			copied += len(page)
		}
		if after != j.LastSeq {
			return fmt.Errorf("%w: its events end at seq %d, its row says %d", store.ErrCorrupt, after, j.LastSeq)
		}
		var b pgx.Batch
		db.queueNotify(&b, id, j.LastSeq)
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("import job %s: %w", j.UID, err)
	}
	return copied, nil
}
