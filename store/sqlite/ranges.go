package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// Range reads: the pages a log viewer asks for when it opens at the end of
// a job, scrolls up, or jumps to a line. Each is one short read
// transaction, like Events.

// Tail returns the last n events of job id (all of them when it has fewer),
// in seq order. An unknown job is an error wrapping jobs.ErrNotFound.
func (db *DB) Tail(ctx context.Context, id jobs.ID, n int) ([]jobs.Event, error) {
	if n <= 0 {
		return nil, fmt.Errorf("tail of job %d: n %d: %w", id, n, jobs.ErrInvalid)
	}
	var evs []jobs.Event
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var last jobs.Seq
		err := tx.QueryRowContext(ctx, "SELECT last_seq FROM jobs WHERE id = ?", id).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
		}
		if err != nil {
			return err
		}
		after := max(last-jobs.Seq(n), 0)
		if after == last {
			return nil
		}
		evs, err = eventsIn(ctx, tx, id, after, int(last-after))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tail of job %d: %w", id, err)
	}
	return evs, nil
}

// EventsBefore returns the events of job id with seq < before, at most n of
// them: the n right before it (fewer near the start), in seq order. An
// unknown job is an error wrapping jobs.ErrNotFound.
func (db *DB) EventsBefore(ctx context.Context, id jobs.ID, before jobs.Seq, n int) ([]jobs.Event, error) {
	if n <= 0 || before < 1 {
		return nil, fmt.Errorf("events of job %d before seq %d: n %d: %w", id, before, n, jobs.ErrInvalid)
	}
	after, limit := store.BeforeRange(before, n)
	var evs []jobs.Event
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if limit > 0 {
			if evs, err = eventsIn(ctx, tx, id, after, limit); err != nil {
				return err
			}
		}
		if len(evs) == 0 {
			return jobExists(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events of job %d before seq %d: %w", id, before, err)
	}
	return evs, nil
}

// SeqOfLine returns the seq of the first event of job id whose visual line
// number is at least line, or 0 when the job has no such line (yet). Line
// numbers are handed out in increasing order, so that event is the one that
// starts line `line`; later pieces of an earlier line (a stream's open line
// continued after the other stream started new ones) may follow it. An
// unknown job is an error wrapping jobs.ErrNotFound.
//
// It seeks by the chunks' last_line, the highest line of each chunk, so it
// reads one chunk body, after scanning the job's chunk rows without their
// bodies.
func (db *DB) SeqOfLine(ctx context.Context, id jobs.ID, line int64) (jobs.Seq, error) {
	if line < 1 {
		return 0, fmt.Errorf("line %d of job %d: %w", line, id, jobs.ErrInvalid)
	}
	var seq jobs.Seq
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var first jobs.Seq
		var body []byte
		err := tx.QueryRowContext(ctx, `SELECT first_seq, body FROM chunks
			WHERE job_id = ? AND last_line >= ? ORDER BY last_seq LIMIT 1`, id, line).Scan(&first, &body)
		if errors.Is(err, sql.ErrNoRows) {
			return jobExists(ctx, tx, id)
		}
		if err != nil {
			return err
		}
		d := store.NewChunkDecoder(body, first)
		var e jobs.Event
		for {
			err := d.Next(&e)
			if err == io.EOF {
				return fmt.Errorf("%w: chunk at seq %d has no line >= %d though its last_line says so", store.ErrCorrupt, first, line)
			}
			if err != nil {
				return fmt.Errorf("chunk at seq %d: %w", first, err)
			}
			if e.Type == jobs.TypeLine && e.Line >= line {
				seq = e.Seq
				return nil
			}
		}
	})
	if err != nil {
		return 0, fmt.Errorf("line %d of job %d: %w", line, id, err)
	}
	return seq, nil
}

// eventsIn reads at most limit events of job id with seq > after inside tx,
// in seq order (the body of Events).
func eventsIn(ctx context.Context, tx *sql.Tx, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error) {
	rows, err := tx.QueryContext(ctx, `SELECT first_seq, n, body FROM chunks
		WHERE job_id = ? AND last_seq > ? ORDER BY last_seq LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []jobs.Event
	for len(evs) < limit && rows.Next() {
		var first jobs.Seq
		var n int
		var body []byte
		if err := rows.Scan(&first, &n, &body); err != nil {
			return nil, err
		}
		if evs == nil {
			evs = make([]jobs.Event, 0, min(limit, store.MaxChunkEvents))
		}
		if evs, err = store.AppendDecoded(evs, body, first, n, after, limit); err != nil {
			return nil, fmt.Errorf("chunk at seq %d: %w", first, err)
		}
	}
	return evs, rows.Err()
}
