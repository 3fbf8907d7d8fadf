package sqlite

import (
	"context"
	"database/sql"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// LatestSchema is the schema version this binary migrates to.
func LatestSchema() int {
	ms, err := migrations()
	if err != nil {
		panic(err)
	}
	return len(ms)
}

// MigrationSQL returns the SQL of migration version v (1-based).
func MigrationSQL(v int) string {
	ms, err := migrations()
	if err != nil {
		panic(err)
	}
	return ms[v-1].SQL
}

// ChunkBody encodes evs (seq first, first+1, ...) as one chunk row's body.
func ChunkBody(first jobs.Seq, evs []jobs.Event) []byte {
	var c store.ChunkEncoder
	c.Reset(first)
	for i := range evs {
		if err := c.Add(&evs[i]); err != nil {
			panic(err)
		}
	}
	return c.Body
}

// InsertJobs inserts finished or running jobs as rows, in one transaction,
// without runner locks or events: for benchmarks that need many jobs.
func (db *DB) InsertJobs(ctx context.Context, js []jobs.Job) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO jobs (uid, name, command, cwd, host, status, exit_code,
			created_at, started_at, finished_at) VALUES (?, ?, '[]', '', ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, j := range js {
			var finished any
			if j.FinishedAt != nil {
				finished = micros(*j.FinishedAt)
			}
			if _, err := stmt.ExecContext(ctx, jobs.NewUID(), j.Name, j.Host, j.Status, j.ExitCode,
				micros(j.CreatedAt), micros(j.CreatedAt), finished); err != nil {
				return err
			}
		}
		return nil
	})
}
