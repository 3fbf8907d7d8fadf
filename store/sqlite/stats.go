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

// Stats reads the summary in one read transaction: one pass over the jobs
// table (not the events) and three PRAGMAs.
func (db *DB) Stats(ctx context.Context) (store.Stats, error) {
	st := store.Stats{Jobs: make(map[jobs.Status]int64)}
	cutoff := micros(time.Now().Add(-db.opts.AgentTimeout))
	rows, err := db.reader.QueryContext(ctx, `SELECT status,
		agent = 1 AND status = ? AND (last_heard IS NULL OR last_heard < ?), count(*)
		FROM jobs GROUP BY 1, 2`, jobs.StatusRunning, cutoff)
	if err != nil {
		return st, fmt.Errorf("database stats: %w", db.translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status      jobs.Status
			unreachable bool
			n           int64
		)
		if err := rows.Scan(&status, &unreachable, &n); err != nil {
			return st, fmt.Errorf("database stats: %w", db.translate(err))
		}
		if unreachable {
			status = jobs.StatusUnreachable
		}
		st.Jobs[status] += n
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("database stats: %w", db.translate(err))
	}
	rows.Close()
	var pages, free, size int64
	for _, p := range []struct {
		name string
		v    *int64
	}{{"page_count", &pages}, {"freelist_count", &free}, {"page_size", &size}} {
		if err := db.reader.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(p.v); err != nil {
			return st, fmt.Errorf("database stats: %s: %w", p.name, db.translate(err))
		}
	}
	st.Bytes, st.FreeBytes = (pages-free)*size, free*size
	return st, nil
}

// Ping checks that the database answers a query (GET /healthz).
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.reader.QueryRowContext(ctx, "SELECT 1 FROM jobs LIMIT 1").Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("database %s does not answer: %w", db.path, db.translate(err))
	}
	return nil
}
