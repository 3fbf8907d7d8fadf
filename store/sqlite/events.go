package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// jobState is what a write transaction needs to know about a job.
type jobState struct {
	uid      jobs.UID
	status   jobs.Status
	lastSeq  jobs.Seq
	lastLine int64
}

func loadState(ctx context.Context, tx *sql.Tx, id jobs.ID) (jobState, error) {
	var st jobState
	err := tx.QueryRowContext(ctx, "SELECT uid, status, last_seq, last_line FROM jobs WHERE id = ?", id).
		Scan(&st.uid, &st.status, &st.lastSeq, &st.lastLine)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
	}
	return st, err
}

// AppendEvents commits evs in one transaction. Their seq must be contiguous
// and start at the job's last stored seq + 1, else the error wraps
// jobs.ErrConflict (or jobs.ErrInvalid for a malformed batch). An exit event
// (last of its batch) finishes the job and releases its runner lock. An
// empty batch does nothing.
func (db *DB) AppendEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := store.Validate(evs); err != nil {
		return fmt.Errorf("append events to job %d: %w", id, err)
	}
	var uid jobs.UID
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		st, err := loadState(ctx, tx, id)
		if err != nil {
			return err
		}
		uid = st.uid
		if err := store.CheckAppend(id, st.status, st.lastSeq, evs[0].Seq); err != nil {
			return err
		}
		return insertEvents(ctx, tx, id, st, evs)
	})
	if err != nil {
		return fmt.Errorf("append events to job %d: %w", id, err)
	}
	if evs[len(evs)-1].Type == jobs.TypeExit {
		db.releaseLock(uid)
	}
	return nil
}

// insertEvents writes validated evs, which follow st.lastSeq, as chunk rows
// and updates the job row, all inside tx.
func insertEvents(ctx context.Context, tx *sql.Tx, id jobs.ID, st jobState, evs []jobs.Event) error {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO chunks
		(job_id, first_seq, last_seq, first_line, last_line, n, body) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	var c store.ChunkEncoder
	flush := func() error {
		_, err := stmt.ExecContext(ctx, id, c.First, c.Last(), c.FirstLine, c.LastLine, c.N, c.Body)
		return err
	}
	lastLine := st.lastLine
	progress := false
	c.Reset(evs[0].Seq)
	for i := range evs {
		e := &evs[i]
		progress = progress || e.Type == jobs.TypeProgress
		if c.Full(e) {
			if err := flush(); err != nil {
				return err
			}
			c.Reset(e.Seq)
		}
		if err := c.Add(e); err != nil {
			return err
		}
		if e.Type == jobs.TypeLine {
			lastLine = max(lastLine, e.Line)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if progress {
		if err := updateProgress(ctx, tx, id, evs); err != nil {
			return err
		}
	}
	last := &evs[len(evs)-1]
	if last.Type != jobs.TypeExit {
		_, err = tx.ExecContext(ctx, "UPDATE jobs SET last_seq = ?, last_line = ? WHERE id = ?", last.Seq, lastLine, id)
		return err
	}
	finished := last.Time
	if finished.IsZero() {
		finished = time.Now()
	}
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET last_seq = ?, last_line = ?, status = ?, exit_code = ?,
		signal = ?, finished_at = ?, incomplete = ?, incomplete_reason = ? WHERE id = ?`,
		last.Seq, lastLine, last.Status, last.ExitCode, last.Signal, finished.UnixMicro(),
		last.Incomplete, last.IncompleteReason, id)
	return err
}

// Events returns the events of job id with seq > after, in seq order, at
// most limit of them, read in one short read transaction. Fewer than limit
// (possibly none) means the stored log ends there for now. Data slices of
// one chunk share one buffer. An unknown job is an error wrapping
// jobs.ErrNotFound.
func (db *DB) Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error) {
	if limit <= 0 || after < 0 {
		return nil, fmt.Errorf("events of job %d: after %d, limit %d: %w", id, after, limit, jobs.ErrInvalid)
	}
	var evs []jobs.Event
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		// Chunks are contiguous and disjoint, so ordering by last_seq is
		// ordering by first_seq, and the (job_id, last_seq) index seeks
		// straight to the chunk holding after+1.
		rows, err := tx.QueryContext(ctx, `SELECT first_seq, n, body FROM chunks
			WHERE job_id = ? AND last_seq > ? ORDER BY last_seq LIMIT ?`, id, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for len(evs) < limit && rows.Next() {
			var first jobs.Seq
			var n int
			var body []byte
			if err := rows.Scan(&first, &n, &body); err != nil {
				return err
			}
			if evs == nil {
				evs = make([]jobs.Event, 0, min(limit, store.MaxChunkEvents))
			}
			if evs, err = store.AppendDecoded(evs, body, first, n, after, limit); err != nil {
				return fmt.Errorf("chunk at seq %d: %w", first, err)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(evs) == 0 {
			return jobExists(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events of job %d: %w", id, err)
	}
	return evs, nil
}

func jobExists(ctx context.Context, tx *sql.Tx, id jobs.ID) error {
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM jobs WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
	}
	return err
}
