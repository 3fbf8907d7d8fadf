package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"sort"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
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

// estimate is the job's progress.Estimate as stored.
func (p *progressRow) estimate() progress.Estimate {
	var e progress.Estimate
	if !p.percent.Valid || !p.time.Valid {
		return e
	}
	e.LastPercent, e.LastTime = p.percent.Float64, fromMicros(p.time.Int64)
	e.BasePercent, e.BaseTime = e.LastPercent, e.LastTime
	if p.basePercent.Valid && p.baseTime.Valid {
		e.BasePercent, e.BaseTime = p.basePercent.Float64, fromMicros(p.baseTime.Int64)
	}
	e.Rate = p.rate.Float64
	return e
}

// jobProgress is the job's JSON progress, nil when it never reported any.
// The ETA is given only while the job runs and its progress is in state
// normal.
func (p *progressRow) jobProgress(status jobs.Status) *progress.Snapshot {
	if !p.percent.Valid || !p.time.Valid {
		return nil
	}
	jp := &progress.Snapshot{Percent: p.percent.Float64, Message: p.message, Time: fromMicros(p.time.Int64), State: p.state}
	if jp.State == "" {
		jp.State = progress.StateNormal
	}
	e := p.estimate()
	if e.Rate > 0 {
		r := roundTo(e.Rate, 1e6)
		jp.Rate = &r
	}
	if !status.Final() && jp.State == progress.StateNormal {
		if eta, ok := e.ETA(); ok {
			s := roundTo(eta.Seconds(), 1e3)
			jp.ETASeconds = &s
		}
	}
	return jp
}

// roundTo rounds v to a multiple of 1/perUnit: 1e3 keeps milliseconds.
func roundTo(v, perUnit float64) float64 { return math.Round(v*perUnit) / perUnit }

// updateProgress stores the latest progress of job id after evs, which
// hold progress events, and feeds each of them to the job's estimate.
// Called inside the append transaction.
func updateProgress(ctx context.Context, tx *sql.Tx, id jobs.ID, evs []jobs.Event) error {
	var row progressRow
	err := tx.QueryRowContext(ctx, "SELECT "+progressColumns+" FROM jobs WHERE id = ?", id).Scan(row.dest()...)
	if err != nil {
		return err
	}
	est := row.estimate()
	var last *jobs.Event
	for i := range evs {
		if e := &evs[i]; e.Type == jobs.TypeProgress && e.Progress != nil {
			est.Add(*e.Progress, e.Time)
			last = e
		}
	}
	if last == nil {
		return nil
	}
	p := last.Progress
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET progress_percent = ?, progress_message = ?, progress_time = ?,
		progress_state = ?, progress_base_percent = ?, progress_base_time = ?, progress_rate = ? WHERE id = ?`,
		p.Percent, p.Message, micros(last.Time), p.State,
		est.BasePercent, micros(est.BaseTime), est.Rate, id)
	return err
}

// expectedLimit bounds the past runs that expected_seconds looks at.
const expectedLimit = "20"

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
	if m, ok := median(durs); ok {
		m = roundTo(m, 1e3)
		j.ExpectedSeconds = &m
	}
	return nil
}

// median returns the median of v (sorting it), if v is not empty.
func median(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2], true
	}
	return (v[n/2-1] + v[n/2]) / 2, true
}
