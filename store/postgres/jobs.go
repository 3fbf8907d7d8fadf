package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// µs is the precision of stored times, as in SQLite: what a caller holds
// is what a later read returns.
func µs(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

// CreateJob inserts j as a running job and fills in j.ID, j.Status, a zero
// j.UID (a new one), zero j.CreatedAt/StartedAt (now) and an empty j.Host
// (Options.Host). A UID already in use is an error wrapping
// jobs.ErrConflict.
//
// Jobs are run by agents that report to jobrun serve, which holds them in
// the database (RegisterJob); nothing here tells a live runner from a
// dead one, so jobrun exec never runs a job straight into PostgreSQL.
// CreateJob and AppendEvents are the runner's store contract all the
// same, and what tests and jobrun migrate use.
func (db *DB) CreateJob(ctx context.Context, j *jobs.Job) error {
	if j.UID == "" {
		j.UID = jobs.NewUID()
	}
	if ref, err := jobs.ParseRef(string(j.UID)); err != nil || ref.UID != j.UID {
		return fmt.Errorf("create job: uid %q is not a valid uid: %w", j.UID, jobs.ErrInvalid)
	}
	now := µs(time.Now())
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	if j.StartedAt == nil || j.StartedAt.IsZero() {
		j.StartedAt = &now
	}
	started := µs(*j.StartedAt)
	j.CreatedAt, j.StartedAt = µs(j.CreatedAt), &started
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
	var id jobs.ID
	err = db.writeTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO jobs (uid, name, command, cwd, host, status, created_at, started_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			j.UID, j.Name, string(cmdJSON), j.Cwd, j.Host, jobs.StatusRunning, j.CreatedAt, *j.StartedAt).Scan(&id)
		if err != nil {
			return err
		}
		var b pgx.Batch
		db.queueNotify(&b, id, 0)
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.UID, err)
	}
	j.ID, j.Status, j.LastSeq = id, jobs.StatusRunning, 0
	j.ExitCode, j.Signal, j.FinishedAt = nil, "", nil
	return nil
}

const jobColumns = `id, uid, name, command, cwd, host, status, exit_code, signal,
	created_at, started_at, finished_at, last_seq, last_line, agent, last_heard, incomplete, incomplete_reason, ` + progressColumns

const progressColumns = `progress_percent, progress_message, progress_time, progress_state,
	progress_base_percent, progress_base_time, progress_rate`

// progressDest are the scan targets of progressColumns.
func progressDest(p *store.Progress) []any {
	return []any{&p.Percent, &p.Message, &p.Time, &p.State, &p.BasePercent, &p.BaseTime, &p.Rate}
}

func scanJob(row pgx.Row) (jobs.Job, error) {
	var (
		j        jobs.Job
		command  string
		exitCode *int32
		created  *time.Time
		p        store.Progress
	)
	dest := append([]any{&j.ID, &j.UID, &j.Name, &command, &j.Cwd, &j.Host, &j.Status, &exitCode, &j.Signal,
		&created, &j.StartedAt, &j.FinishedAt, &j.LastSeq, &j.LastLine, &j.Agent, &j.LastHeard,
		&j.Incomplete, &j.IncompleteReason}, progressDest(&p)...)
	if err := row.Scan(dest...); err != nil {
		return j, err
	}
	utc(p.Time)
	utc(p.BaseTime)
	j.Progress = p.Snapshot(j.Status)
	if err := json.Unmarshal([]byte(command), &j.Command); err != nil {
		return j, fmt.Errorf("job %d: stored command is not a JSON array: %w", j.ID, err)
	}
	if exitCode != nil {
		c := int(*exitCode)
		j.ExitCode = &c
	}
	if created != nil {
		j.CreatedAt = created.UTC()
	}
	utc(j.StartedAt)
	utc(j.FinishedAt)
	utc(j.LastHeard)
	return j, nil
}

// utc puts a scanned time in UTC, as SQLite's are read back.
func utc(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

// Job returns the job named by ref (its ID, or its UID when ref.UID is
// set). An unknown job is an error wrapping jobs.ErrNotFound.
func (db *DB) Job(ctx context.Context, ref jobs.Ref) (jobs.Job, error) {
	query, arg := "SELECT "+jobColumns+" FROM jobs WHERE id = $1", any(ref.ID)
	if ref.UID != "" {
		query, arg = "SELECT "+jobColumns+" FROM jobs WHERE uid = $1", any(ref.UID)
	}
	j, err := scanJob(db.pool.QueryRow(ctx, query, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Job{}, fmt.Errorf("job %s: %w", ref, jobs.ErrNotFound)
	}
	if err == nil {
		list := []jobs.Job{j}
		err = db.fillExpected(ctx, list)
		j = list[0]
	}
	if err != nil {
		return jobs.Job{}, fmt.Errorf("job %s: %w", ref, db.translate(err))
	}
	store.AgentStatus(&j, time.Now(), db.opts.AgentTimeout)
	return j, nil
}

// Jobs returns a page of the jobs q selects, newest (highest ID) first,
// with the filter as conditions of one query (they agree with
// jobs.Filter.Match: the status as read, unreachable derived with the
// same cutoff as store.AgentStatus).
func (db *DB) Jobs(ctx context.Context, q store.JobsQuery) ([]jobs.Job, error) {
	q, err := q.Page()
	if err != nil {
		return nil, err
	}
	if err := q.Filter.Validate(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	now := time.Now()
	where, args := db.jobsWhere(q, now)
	args = append(args, q.Limit)
	rows, err := db.pool.Query(ctx, "SELECT "+jobColumns+" FROM jobs"+where+
		fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", db.translate(err))
	}
	list := []jobs.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list jobs: %w", db.translate(err))
		}
		list = append(list, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", db.translate(err))
	}
	if err := db.fillExpected(ctx, list); err != nil {
		return nil, fmt.Errorf("list jobs: %w", db.translate(err))
	}
	for i := range list {
		store.AgentStatus(&list[i], now, db.opts.AgentTimeout)
	}
	return list, nil
}

// expectedQuery finds the durations, in seconds, of the latest succeeded
// runs before a job with its name, or its command and working directory
// (each side from its partial index; see migrations/0001_init.sql).
var expectedQuery = fmt.Sprintf(`
SELECT id, EXTRACT(EPOCH FROM finished_at - started_at)::float8 FROM (
	(SELECT id, started_at, finished_at FROM jobs
	WHERE status = 'succeeded' AND md5(name) = md5($1) AND name = $1 AND id < $2 ORDER BY id DESC LIMIT %[1]d)
	UNION
	(SELECT id, started_at, finished_at FROM jobs
	WHERE status = 'succeeded' AND md5(cwd || command) = md5($4 || $3) AND command = $3 AND cwd = $4 AND id < $2
	ORDER BY id DESC LIMIT %[1]d)
) runs ORDER BY id DESC LIMIT %[1]d`, store.ExpectedRuns)

// fillExpected sets the ExpectedSeconds of each job (see
// store.ExpectedSeconds), with one query per job sent in one round trip.
func (db *DB) fillExpected(ctx context.Context, list []jobs.Job) error {
	if len(list) == 0 {
		return nil
	}
	var b pgx.Batch
	for i := range list {
		j := &list[i]
		cmd := j.Command
		if cmd == nil {
			cmd = []string{}
		}
		cmdJSON, err := json.Marshal(cmd)
		if err != nil {
			return err
		}
		b.Queue(expectedQuery, j.Name, j.ID, string(cmdJSON), j.Cwd)
	}
	br := db.pool.SendBatch(ctx, &b)
	defer br.Close()
	for i := range list {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var durs []float64
		for rows.Next() {
			var id int64
			var secs *float64
			if err := rows.Scan(&id, &secs); err != nil {
				rows.Close()
				return err
			}
			if secs != nil && *secs >= 0 {
				durs = append(durs, *secs)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		list[i].ExpectedSeconds = store.ExpectedSeconds(durs)
	}
	return br.Close()
}

// jobsWhere is the WHERE clause (with its leading space, or "") and the
// arguments ($1, $2, ...) of q's id bound and filter, at now.
func (db *DB) jobsWhere(q store.JobsQuery, now time.Time) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Before != 0 {
		conds = append(conds, "id < "+arg(q.Before))
	}
	if len(q.Statuses) > 0 {
		conds = append(conds, db.statusCond(q.Statuses, now, arg))
	}
	if q.Host != "" {
		conds = append(conds, "host = "+arg(q.Host))
	}
	if q.Name != "" {
		// The case of ASCII letters only, as jobs.Filter says (whatever
		// the database's collation).
		conds = append(conds, "position("+arg(jobs.LowerASCII(q.Name))+
			" in translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) > 0")
	}
	// created_at holds microseconds: at or after t exactly when it is at
	// or after t rounded up to the microsecond.
	if !q.Since.IsZero() {
		conds = append(conds, "created_at >= "+arg(ceilµs(q.Since)))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "created_at < "+arg(ceilµs(q.Until)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// statusCond selects the jobs whose status, as read at now, is one of
// sts. Running and unreachable share the stored status running; what
// tells them apart is store.AgentStatus's rule, with its cutoff.
func (db *DB) statusCond(sts []jobs.Status, now time.Time, arg func(any) string) string {
	var stored []string
	running, unreachable := false, false
	for _, s := range sts {
		switch s {
		case jobs.StatusRunning:
			running = true
		case jobs.StatusUnreachable:
			unreachable = true
		default:
			stored = append(stored, string(s))
		}
	}
	silent := func() string {
		return "(agent AND (last_heard IS NULL OR last_heard < " + arg(ceilµs(now.Add(-db.opts.AgentTimeout))) + "))"
	}
	var ors []string
	switch {
	case running && unreachable:
		stored = append(stored, string(jobs.StatusRunning))
	case running:
		ors = append(ors, "(status = 'running' AND NOT "+silent()+")")
	case unreachable:
		ors = append(ors, "(status = 'running' AND "+silent()+")")
	}
	if len(stored) > 0 {
		ors = append(ors, "status = ANY("+arg(stored)+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// ceilµs is t rounded up to the microsecond.
func ceilµs(t time.Time) time.Time {
	if t.Nanosecond()%1000 != 0 {
		t = t.Truncate(time.Microsecond).Add(time.Microsecond)
	}
	return t.UTC()
}
