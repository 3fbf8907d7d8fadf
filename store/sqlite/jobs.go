package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// micros is how times are stored: unix microseconds, UTC when read back.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// CreateJob inserts j as a running job and fills in j.ID, j.Status, a zero
// j.UID (a new one), zero j.CreatedAt/StartedAt (now) and an empty j.Host
// (Options.Host). It takes the job's runner lock before inserting the row,
// so that no process can ever see the job running with its lock free while
// this runner lives; the lock is held until the job's exit event is
// appended or the DB is closed. A UID already in use is an error wrapping
// jobs.ErrConflict.
func (db *DB) CreateJob(ctx context.Context, j *jobs.Job) error {
	if j.UID == "" {
		j.UID = jobs.NewUID()
	}
	if ref, err := jobs.ParseRef(string(j.UID)); err != nil || ref.UID != j.UID {
		return fmt.Errorf("create job: uid %q is not a valid uid: %w", j.UID, jobs.ErrInvalid)
	}
	now := fromMicros(micros(time.Now()))
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	if j.StartedAt == nil || j.StartedAt.IsZero() {
		j.StartedAt = &now
	}
	// What the caller holds is what Job will return: µs precision, UTC.
	started := fromMicros(micros(*j.StartedAt))
	j.CreatedAt, j.StartedAt = fromMicros(micros(j.CreatedAt)), &started
	if j.Host == "" {
		j.Host = db.opts.Host
	}
	cmd := j.Command
	if cmd == nil {
		cmd = []string{}
	}
	cmdJSON, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("create job: %w", err)
	}

	lock, err := db.acquireLock(j.UID, true)
	if errors.Is(err, errLockHeld) {
		return fmt.Errorf("create job %s: a running job already has this uid: %w", j.UID, jobs.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.UID, err)
	}
	var id jobs.ID
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO jobs
			(uid, name, command, cwd, host, status, created_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`,
			j.UID, j.Name, string(cmdJSON), j.Cwd, j.Host, jobs.StatusRunning,
			micros(j.CreatedAt), micros(*j.StartedAt)).Scan(&id)
	})
	if err != nil {
		// Nobody else can hold the lock of a uid whose insert failed here
		// (we hold it), so the file can go.
		lock.release()
		return fmt.Errorf("create job %s: %w", j.UID, err)
	}
	db.keepLock(j.UID, lock)
	j.ID, j.Status, j.LastSeq = id, jobs.StatusRunning, 0
	j.ExitCode, j.Signal, j.FinishedAt = nil, "", nil
	return nil
}

const jobColumns = `id, uid, name, command, cwd, host, status, exit_code, signal,
	created_at, started_at, finished_at, last_seq, last_line, agent, last_heard, ` + progressColumns

type scanner interface{ Scan(dest ...any) error }

func scanJob(s scanner) (jobs.Job, error) {
	j, p, err := scanJobRow(s)
	if err != nil {
		return j, err
	}
	j.Progress = p.Snapshot(j.Status)
	return j, nil
}

// scanJobRow scans a job row and its raw progress state.
func scanJobRow(s scanner) (jobs.Job, store.Progress, error) {
	var (
		j                 jobs.Job
		command           string
		exitCode          sql.NullInt64
		created           sql.NullInt64
		started, finished sql.NullInt64
		heard             sql.NullInt64
		progress          progressRow
	)
	dest := append([]any{&j.ID, &j.UID, &j.Name, &command, &j.Cwd, &j.Host, &j.Status, &exitCode, &j.Signal,
		&created, &started, &finished, &j.LastSeq, &j.LastLine, &j.Agent, &heard}, progress.dest()...)
	if err := s.Scan(dest...); err != nil {
		return j, store.Progress{}, err
	}
	if err := json.Unmarshal([]byte(command), &j.Command); err != nil {
		return j, store.Progress{}, fmt.Errorf("job %d: stored command is not a JSON array: %w", j.ID, err)
	}
	if exitCode.Valid {
		c := int(exitCode.Int64)
		j.ExitCode = &c
	}
	if created.Valid {
		j.CreatedAt = fromMicros(created.Int64)
	}
	if started.Valid {
		t := fromMicros(started.Int64)
		j.StartedAt = &t
	}
	if finished.Valid {
		t := fromMicros(finished.Int64)
		j.FinishedAt = &t
	}
	if heard.Valid {
		t := fromMicros(heard.Int64)
		j.LastHeard = &t
	}
	return j, progress.progress(), nil
}

// Job returns the job named by ref (its ID, or its UID when ref.UID is
// set). An unknown job is an error wrapping jobs.ErrNotFound.
func (db *DB) Job(ctx context.Context, ref jobs.Ref) (jobs.Job, error) {
	query, arg := "SELECT "+jobColumns+" FROM jobs WHERE id = ?", any(ref.ID)
	if ref.UID != "" {
		query, arg = "SELECT "+jobColumns+" FROM jobs WHERE uid = ?", any(ref.UID)
	}
	j, err := scanJob(db.reader.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return jobs.Job{}, fmt.Errorf("job %s: %w", ref, jobs.ErrNotFound)
	}
	if err == nil {
		err = db.fillExpected(ctx, &j)
	}
	if err != nil {
		return jobs.Job{}, fmt.Errorf("job %s: %w", ref, db.translate(err))
	}
	store.AgentStatus(&j, time.Now(), db.opts.AgentTimeout)
	return j, nil
}

// Jobs returns a page of jobs, newest (highest ID) first.
func (db *DB) Jobs(ctx context.Context, q store.JobsQuery) ([]jobs.Job, error) {
	q, err := q.Page()
	if err != nil {
		return nil, err
	}
	query, args := "SELECT "+jobColumns+" FROM jobs ORDER BY id DESC LIMIT ?", []any{q.Limit}
	if q.Before != 0 {
		query, args = "SELECT "+jobColumns+" FROM jobs WHERE id < ? ORDER BY id DESC LIMIT ?", []any{q.Before, q.Limit}
	}
	rows, err := db.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", db.translate(err))
	}
	defer rows.Close()
	list := []jobs.Job{}
	now := time.Now()
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", db.translate(err))
		}
		store.AgentStatus(&j, now, db.opts.AgentTimeout)
		list = append(list, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", db.translate(err))
	}
	rows.Close() // before more queries: the read pool is small
	for i := range list {
		if err := db.fillExpected(ctx, &list[i]); err != nil {
			return nil, fmt.Errorf("list jobs: %w", db.translate(err))
		}
	}
	return list, nil
}

// ExportJobs returns up to limit job rows with id > after, in id order, as
// stored (jobrun migrate copies them to another backend).
func (db *DB) ExportJobs(ctx context.Context, after jobs.ID, limit int) ([]store.JobRow, error) {
	rows, err := db.reader.QueryContext(ctx, "SELECT "+jobColumns+" FROM jobs WHERE id > ? ORDER BY id LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("export jobs: %w", db.translate(err))
	}
	defer rows.Close()
	var out []store.JobRow
	for rows.Next() {
		var r store.JobRow
		if r.Job, r.Progress, err = scanJobRow(rows); err != nil {
			return nil, fmt.Errorf("export jobs: %w", db.translate(err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export jobs: %w", db.translate(err))
	}
	return out, nil
}

// ExportChunks returns up to limit chunk rows of job id that follow seq
// after (first_seq > after), in seq order, as stored.
func (db *DB) ExportChunks(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]store.ChunkRow, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT first_seq, last_seq, first_line, last_line, n, body FROM chunks
		WHERE job_id = ? AND first_seq > ? ORDER BY first_seq LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("export events of job %d: %w", id, db.translate(err))
	}
	defer rows.Close()
	var out []store.ChunkRow
	for rows.Next() {
		var c store.ChunkRow
		if err := rows.Scan(&c.First, &c.Last, &c.FirstLine, &c.LastLine, &c.N, &c.Body); err != nil {
			return nil, fmt.Errorf("export events of job %d: %w", id, db.translate(err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export events of job %d: %w", id, db.translate(err))
	}
	return out, nil
}
