package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// A job's latest progress lives in its row (migration 0002), updated in
// the transaction that appends its progress events, so that listing jobs
// with their percent and ETA never reads a log.

// progressColumns follow jobColumns in every job query.
const progressColumns = `progress_percent, progress_message, progress_time, progress_state,
	progress_base_percent, progress_base_time, progress_rate`

// progressRow holds the scanned progress columns of a job.
type progressRow struct {
	percent     sql.NullFloat64
	message     string
	time        sql.NullInt64
	state       string
	basePercent sql.NullFloat64
	baseTime    sql.NullInt64
	rate        sql.NullFloat64
}

func (p *progressRow) dest() []any {
	return []any{&p.percent, &p.message, &p.time, &p.state, &p.basePercent, &p.baseTime, &p.rate}
}

// progress is the row as the store's progress state.
func (p *progressRow) progress() store.Progress {
	return store.Progress{
		Percent: nullFloat(p.percent), Message: p.message, Time: nullTime(p.time), State: p.state,
		BasePercent: nullFloat(p.basePercent), BaseTime: nullTime(p.baseTime), Rate: nullFloat(p.rate),
	}
}

func nullFloat(f sql.NullFloat64) *float64 {
	if !f.Valid {
		return nil
	}
	return &f.Float64
}

func nullTime(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromMicros(us.Int64)
	return &t
}

// updateProgress stores the latest progress of job id after evs, which
// hold progress events, and feeds each of them to the job's estimate.
// Called inside the append transaction.
func updateProgress(ctx context.Context, tx *sql.Tx, id jobs.ID, evs []jobs.Event) error {
	var row progressRow
	err := tx.QueryRowContext(ctx, "SELECT "+progressColumns+" FROM jobs WHERE id = ?", id).Scan(row.dest()...)
	if err != nil {
		return err
	}
	cur := row.progress()
	p, ok := cur.Advance(evs)
	if !ok {
		return nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET progress_percent = ?, progress_message = ?, progress_time = ?,
		progress_state = ?, progress_base_percent = ?, progress_base_time = ?, progress_rate = ? WHERE id = ?`,
		*p.Percent, p.Message, micros(*p.Time), p.State,
		*p.BasePercent, micros(*p.BaseTime), *p.Rate, id)
	return err
}

// expectedLimit bounds the past runs that expected_seconds looks at.
const expectedLimit = "20" // store.ExpectedRuns

// expectedQuery finds the durations of the latest succeeded runs before a
// job with its name, or its command and working directory. Each side
// reads at most expectedLimit rows from its partial index (the literal
// 'succeeded' lets SQLite use it).
const expectedQuery = `
SELECT id, finished_at - started_at FROM (
	SELECT id, started_at, finished_at FROM jobs
	WHERE status = 'succeeded' AND name = ? AND id < ? ORDER BY id DESC LIMIT ` + expectedLimit + `)
UNION
SELECT id, finished_at - started_at FROM (
	SELECT id, started_at, finished_at FROM jobs
	WHERE status = 'succeeded' AND command = ? AND cwd = ? AND id < ? ORDER BY id DESC LIMIT ` + expectedLimit + `)
ORDER BY id DESC LIMIT ` + expectedLimit

// fillExpected sets j.ExpectedSeconds: the median duration of the latest
// succeeded earlier runs of the same command (see expectedQuery).
func (db *DB) fillExpected(ctx context.Context, j *jobs.Job) error {
	cmd := j.Command
	if cmd == nil {
		cmd = []string{}
	}
	cmdJSON, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	rows, err := db.reader.QueryContext(ctx, expectedQuery, j.Name, j.ID, string(cmdJSON), j.Cwd, j.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	var durs []float64
	for rows.Next() {
		var id int64
		var us sql.NullInt64
		if err := rows.Scan(&id, &us); err != nil {
			return err
		}
		if us.Valid && us.Int64 >= 0 {
			durs = append(durs, float64(us.Int64)/1e6)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	j.ExpectedSeconds = store.ExpectedSeconds(durs)
	return nil
}
