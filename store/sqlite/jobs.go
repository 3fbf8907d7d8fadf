package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	created_at, started_at, finished_at, last_seq, last_line, agent, last_heard, incomplete, incomplete_reason, ` + progressColumns

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
		&created, &started, &finished, &j.LastSeq, &j.LastLine, &j.Agent, &heard, &j.Incomplete, &j.IncompleteReason},
		progress.dest()...)
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

// Jobs returns a page of the jobs q selects, newest (highest ID) first.
// Every filter is a condition of one query that walks the jobs by id from
// the newest (or from q.Before) and stops at q.Limit matches: a first page
// reads about as many rows as it needs to find its matches, and a filter
// that matches few jobs reads the table once (about 100 ms for 100,000
// jobs, docs/benchmarks.md).
func (db *DB) Jobs(ctx context.Context, q store.JobsQuery) ([]jobs.Job, error) {
	q, err := q.Page()
	if err != nil {
		return nil, err
	}
	if err := q.Filter.Validate(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	// One now for the query and for store.AgentStatus, so that a job's status
	// as listed is the one the status filter saw.
	now := time.Now()
	where, args := db.jobsWhere(q, now)
	rows, err := db.reader.QueryContext(ctx, "SELECT "+jobColumns+" FROM jobs"+where+" ORDER BY id DESC LIMIT ?",
		append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", db.translate(err))
	}
	defer rows.Close()
	list := []jobs.Job{}
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

// jobsWhere is the WHERE clause (with its leading space, or "") and
// arguments of q's id bound and filter, with the unreachable agent jobs
// those of now.
func (db *DB) jobsWhere(q store.JobsQuery, now time.Time) (string, []any) {
	var conds []string
	var args []any
	if q.Before != 0 {
		conds, args = append(conds, "id < ?"), append(args, q.Before)
	}
	if c, a := db.statusCond(q.Statuses, now); c != "" {
		conds, args = append(conds, c), append(args, a...)
	}
	if q.Host != "" {
		conds, args = append(conds, "host = ?"), append(args, q.Host)
	}
	if q.Name != "" {
		// LIKE ignores the case of ASCII letters only, as jobs.Filter
		// says; the pattern's own % and _ are escaped.
		conds = append(conds, `name LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscaper.Replace(q.Name)+"%")
	}
	// created_at holds microseconds: a job created at c (µs) is at or
	// after t exactly when c >= ceilMicros(t), and before t exactly when
	// c < ceilMicros(t), so these agree with Filter.Match to the
	// nanosecond.
	if !q.Since.IsZero() {
		conds, args = append(conds, "created_at >= ?"), append(args, ceilMicros(q.Since))
	}
	if !q.Until.IsZero() {
		conds, args = append(conds, "created_at < ?"), append(args, ceilMicros(q.Until))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// statusCond is the condition selecting jobs whose status, as read at now,
// is one of sts ("" for none). Running and unreachable share the stored
// status running; what tells them apart is store.AgentStatus's rule, written in
// SQL with its cutoff.
func (db *DB) statusCond(sts []jobs.Status, now time.Time) (string, []any) {
	if len(sts) == 0 {
		return "", nil
	}
	var stored []any
	running, unreachable := false, false
	for _, s := range sts {
		switch {
		case s == jobs.StatusRunning:
			running = true
		case s == jobs.StatusUnreachable:
			unreachable = true
		case !slices.Contains(stored, any(s)):
			stored = append(stored, s)
		}
	}
	const silent = "(agent = 1 AND (last_heard IS NULL OR last_heard < ?))"
	var ors []string
	var args []any
	switch {
	case running && unreachable:
		stored = append(stored, jobs.StatusRunning)
	case running:
		ors, args = append(ors, "(status = 'running' AND NOT "+silent+")"), append(args, db.unreachableCutoff(now))
	case unreachable:
		ors, args = append(ors, "(status = 'running' AND "+silent+")"), append(args, db.unreachableCutoff(now))
	}
	if len(stored) > 0 {
		ors = append(ors, "status IN (?"+strings.Repeat(", ?", len(stored)-1)+")")
		args = append(args, stored...)
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// ceilMicros is t in unix microseconds, rounded up.
func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
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
