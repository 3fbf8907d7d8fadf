package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// jobState is what a write transaction needs to know about a job, read
// with the job's row locked (FOR UPDATE): writers of one job take turns,
// whichever process or replica they are in.
type jobState struct {
	uid      jobs.UID
	status   jobs.Status
	lastSeq  jobs.Seq
	lastLine int64
	agent    bool
	progress store.Progress
}

// lockJob reads job id's state and locks its row until tx ends.
func lockJob(ctx context.Context, tx pgx.Tx, id jobs.ID) (jobState, error) {
	var st jobState
	dest := append([]any{&st.uid, &st.status, &st.lastSeq, &st.lastLine, &st.agent}, progressDest(&st.progress)...)
	err := tx.QueryRow(ctx, `SELECT uid, status, last_seq, last_line, agent, `+progressColumns+`
		FROM jobs WHERE id = $1 FOR UPDATE`, id).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
	}
	utc(st.progress.Time)
	utc(st.progress.BaseTime)
	return st, err
}

// AppendEvents commits evs in one transaction. Their seq must be contiguous
// and start at the job's last stored seq + 1, else the error wraps
// jobs.ErrConflict (or jobs.ErrInvalid for a malformed batch). An exit event
// (last of its batch) finishes the job. An empty batch does nothing.
func (db *DB) AppendEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := store.Validate(evs); err != nil {
		return fmt.Errorf("append events to job %d: %w", id, err)
	}
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		st, err := lockJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := store.CheckAppend(id, st.status, st.lastSeq, evs[0].Seq); err != nil {
			return err
		}
		return db.insertEvents(ctx, tx, id, st, evs, false)
	})
	if err != nil {
		return fmt.Errorf("append events to job %d: %w", id, err)
	}
	return nil
}

// insertEvents writes validated evs, which follow st.lastSeq, as chunk
// rows, updates the job row (and, for an agent's events, when it was last
// heard) and notifies the job's new last seq, all inside tx and in one
// round trip.
func (db *DB) insertEvents(ctx context.Context, tx pgx.Tx, id jobs.ID, st jobState, evs []jobs.Event, heard bool) error {
	var b pgx.Batch
	var c store.ChunkEncoder
	flush := func() {
		// The body is copied: the encoder's buffer is reused.
		b.Queue(`INSERT INTO chunks (job_id, first_seq, last_seq, first_line, last_line, n, body)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, c.First, c.Last(), c.FirstLine, c.LastLine, c.N, append([]byte(nil), c.Body...))
	}
	lastLine := st.lastLine
	c.Reset(evs[0].Seq)
	for i := range evs {
		e := &evs[i]
		if c.Full(e) {
			flush()
			c.Reset(e.Seq)
		}
		if err := c.Add(e); err != nil {
			return err
		}
		if e.Type == jobs.TypeLine {
			lastLine = max(lastLine, e.Line)
		}
	}
	flush()
	if p, ok := st.progress.Advance(evs); ok {
		b.Queue(`UPDATE jobs SET progress_percent = $1, progress_message = $2, progress_time = $3,
			progress_state = $4, progress_base_percent = $5, progress_base_time = $6, progress_rate = $7 WHERE id = $8`,
			*p.Percent, p.Message, *p.Time, p.State, *p.BasePercent, *p.BaseTime, *p.Rate, id)
	}
	last := &evs[len(evs)-1]
	var heardAt *time.Time
	if heard {
		now := time.Now()
		heardAt = &now
	}
	if last.Type != jobs.TypeExit {
		b.Queue(`UPDATE jobs SET last_seq = $1, last_line = $2, last_heard = COALESCE($3, last_heard) WHERE id = $4`,
			last.Seq, lastLine, heardAt, id)
	} else {
		finished := last.Time
		if finished.IsZero() {
			finished = time.Now()
		}
		b.Queue(`UPDATE jobs SET last_seq = $1, last_line = $2, status = $3, exit_code = $4,
			signal = $5, finished_at = $6, last_heard = COALESCE($7, last_heard),
			incomplete = $8, incomplete_reason = $9 WHERE id = $10`,
			last.Seq, lastLine, last.Status, last.ExitCode, last.Signal, µs(finished), heardAt,
			last.Incomplete, last.IncompleteReason, id)
	}
	db.queueNotify(&b, id, last.Seq)
	return tx.SendBatch(ctx, &b).Close()
}

// Events returns the events of job id with seq > after, in seq order, at
// most limit of them. Fewer than limit (possibly none) means the stored log
// ends there for now. Data slices of one chunk share one buffer. An
// unknown job is an error wrapping jobs.ErrNotFound.
func (db *DB) Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error) {
	if limit <= 0 || after < 0 {
		return nil, fmt.Errorf("events of job %d: after %d, limit %d: %w", id, after, limit, jobs.ErrInvalid)
	}
	evs, err := db.eventsIn(ctx, id, after, limit)
	if err == nil && len(evs) == 0 {
		err = db.jobExists(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("events of job %d: %w", id, err)
	}
	return evs, nil
}

// chunksAfter selects the chunk rows of job $1 that hold the events
// $2+1 .. $2+$3, in seq order. Chunks are contiguous and disjoint, so
// ordering by last_seq is ordering by first_seq, and the (job_id,
// last_seq) index seeks straight to the chunk holding $2+1; the bounds
// keep the answer to the rows needed (PostgreSQL sends a query's whole
// answer, where SQLite steps row by row), and the index scan to a range:
// a chunk holding seq $2+$3 ends at most MaxChunkEvents-1 later.
var chunksAfter = fmt.Sprintf(`SELECT first_seq, n, body FROM chunks
	WHERE job_id = $1 AND last_seq > $2 AND last_seq < $2 + $3 + %d AND first_seq <= $2 + $3
	ORDER BY last_seq`, store.MaxChunkEvents)

// eventsIn reads at most limit events of job id with seq > after, in seq
// order, from the chunk rows that hold them (one query: a statement sees
// one snapshot).
func (db *DB) eventsIn(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error) {
	rows, err := db.pool.Query(ctx, chunksAfter, id, after, limit)
	if err != nil {
		return nil, db.translate(err)
	}
	defer rows.Close()
	var evs []jobs.Event
	for len(evs) < limit && rows.Next() {
		var (
			first jobs.Seq
			n     int
		)
		// Scanning into []byte copies the body: the events' Data slices
		// share it.
		var raw []byte
		if err := rows.Scan(&first, &n, &raw); err != nil {
			return nil, db.translate(err)
		}
		if evs == nil {
			evs = make([]jobs.Event, 0, min(limit, store.MaxChunkEvents))
		}
		if evs, err = store.AppendDecoded(evs, raw, first, n, after, limit); err != nil {
			return nil, fmt.Errorf("chunk at seq %d: %w", first, err)
		}
	}
	rows.Close()
	return evs, db.translate(rows.Err())
}

func (db *DB) jobExists(ctx context.Context, id jobs.ID) error {
	var one int
	err := db.pool.QueryRow(ctx, "SELECT 1 FROM jobs WHERE id = $1", id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
	}
	return db.translate(err)
}

// Tail returns the last n events of job id (fewer when it has fewer), as
// every backend's Tail.
func (db *DB) Tail(ctx context.Context, id jobs.ID, n int) ([]jobs.Event, error) {
	if n <= 0 {
		return nil, fmt.Errorf("tail of job %d: n %d: %w", id, n, jobs.ErrInvalid)
	}
	var last jobs.Seq
	err := db.pool.QueryRow(ctx, "SELECT last_seq FROM jobs WHERE id = $1", id).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("tail of job %d: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("tail of job %d: %w", id, db.translate(err))
	}
	after := max(last-jobs.Seq(n), 0)
	if after == last {
		return nil, nil
	}
	// Events appended since last_seq was read are beyond the limit.
	evs, err := db.eventsIn(ctx, id, after, int(last-after))
	if err != nil {
		return nil, fmt.Errorf("tail of job %d: %w", id, err)
	}
	return evs, nil
}

// EventsBefore returns the (at most) n events of job id right before seq
// before, as every backend's EventsBefore.
func (db *DB) EventsBefore(ctx context.Context, id jobs.ID, before jobs.Seq, n int) ([]jobs.Event, error) {
	if n <= 0 || before < 1 {
		return nil, fmt.Errorf("events of job %d before seq %d: n %d: %w", id, before, n, jobs.ErrInvalid)
	}
	after, limit := store.BeforeRange(before, n)
	var evs []jobs.Event
	var err error
	if limit > 0 {
		evs, err = db.eventsIn(ctx, id, after, limit)
	}
	if err == nil && len(evs) == 0 {
		err = db.jobExists(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("events of job %d before seq %d: %w", id, before, err)
	}
	return evs, nil
}

// SeqOfLine returns the seq of the first event of job id whose visual line
// number is at least line, or 0 when the job has no such line (yet); see
// the SQLite backend's SeqOfLine. It seeks by the chunks' last_line and
// decodes one chunk body. An unknown job is an error wrapping
// jobs.ErrNotFound.
func (db *DB) SeqOfLine(ctx context.Context, id jobs.ID, line int64) (jobs.Seq, error) {
	if line < 1 {
		return 0, fmt.Errorf("line %d of job %d: %w", line, id, jobs.ErrInvalid)
	}
	var (
		first jobs.Seq
		body  []byte
	)
	err := db.pool.QueryRow(ctx, `SELECT first_seq, body FROM chunks
		WHERE job_id = $1 AND last_line >= $2 ORDER BY last_seq LIMIT 1`, id, line).Scan(&first, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		err = db.jobExists(ctx, id)
		if err == nil {
			return 0, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("line %d of job %d: %w", line, id, db.translate(err))
	}
	d := store.NewChunkDecoder(body, first)
	var e jobs.Event
	for {
		err := d.Next(&e)
		if err == io.EOF {
			return 0, fmt.Errorf("line %d of job %d: %w: chunk at seq %d has no line >= %d though its last_line says so",
				line, id, store.ErrCorrupt, first, line)
		}
		if err != nil {
			return 0, fmt.Errorf("line %d of job %d: chunk at seq %d: %w", line, id, first, err)
		}
		if e.Type == jobs.TypeLine && e.Line >= line {
			return e.Seq, nil
		}
	}
}
