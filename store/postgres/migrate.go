package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobrun/jobrun/jobs"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded SQL file, migrations/NNNN_name.sql, that
// brings the schema to version NNNN.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Versions
// must be 1, 2, 3, ... with no gap: a gap is a bug in this binary.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its version number", name)
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// LatestSchema is the schema version this binary migrates to.
func LatestSchema() int {
	ms, err := migrations()
	if err != nil {
		panic(err) // the embedded files are part of the binary
	}
	return len(ms)
}

// schemaError reports a database whose schema this binary cannot use.
type schemaError struct {
	name        string
	have, knows int
}

func (e *schemaError) Error() string {
	if e.have > e.knows {
		return fmt.Sprintf("database %s has schema version %d, this jobrun knows up to %d; upgrade jobrun", e.name, e.have, e.knows)
	}
	return fmt.Sprintf("database %s has schema version %d, this jobrun needs %d; start this jobrun's serve once (it migrates the database)",
		e.name, e.have, e.knows)
}

func (e *schemaError) Unwrap() error {
	if e.have > e.knows {
		return jobs.ErrSchemaTooNew
	}
	return jobs.ErrConflict
}

// The schema version lives in a table of its own, created by the first
// migration run, so that it can be read before anything else exists.
const versionTable = `CREATE TABLE IF NOT EXISTS jobrun_schema (version integer NOT NULL)`

// schemaVersion reads the schema version; 0 for a database without one.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('jobrun_schema') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := q.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM jobrun_schema").Scan(&v)
	return v, err
}

// migrationLock is the advisory lock key that serialises migrations:
// replicas starting at the same moment migrate once.
const migrationLock int64 = 0x6a6f6272756e0001 // "jobrun" 1

// migrate brings the schema up to date, holding the migration lock on one
// connection: whoever takes it first migrates, the others wait, then find
// nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool, name string) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	latest := len(ms)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	v, err := schemaVersion(ctx, conn)
	if err != nil {
		return err
	}
	if v > latest {
		return &schemaError{name, v, latest}
	}
	if v == latest {
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, versionTable); err != nil {
		return err
	}
	for _, m := range ms[v:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM jobrun_schema"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO jobrun_schema (version) VALUES ($1)", latest); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// checkSchema refuses a database whose schema is not exactly this
// binary's, without changing it (the commands that do not migrate). A
// database without a schema yet is jobs.ErrNotFound.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, name string) error {
	v, err := schemaVersion(ctx, pool)
	if err != nil {
		return err
	}
	switch latest := LatestSchema(); {
	case v == 0:
		return fmt.Errorf("database %s has no jobrun schema yet (jobrun serve creates it): %w", name, jobs.ErrNotFound)
	case v != latest:
		return &schemaError{name, v, latest}
	}
	return nil
}
