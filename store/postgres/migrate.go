package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]store.Migration, error) { return store.Migrations(migrationFS, "migrations") }

// LatestSchema is the schema version this binary migrates to.
func LatestSchema() int {
	ms, err := migrations()
	if err != nil {
		panic(err) // the embedded files are part of the binary
	}
	return len(ms)
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
	defer unlock(ctx, conn, migrationLock)
	v, err := schemaVersion(ctx, conn)
	if err != nil {
		return err
	}
	if v > latest {
		return &store.SchemaError{Name: name, Have: v, Knows: latest}
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
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
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

// unlock releases the session advisory lock key held on conn. A
// connection that cannot say it did is closed (the server then drops the
// lock) rather than go back to the pool holding it.
func unlock(ctx context.Context, conn *pgxpool.Conn, key int64) {
	ctx = context.WithoutCancel(ctx)
	var released bool
	if err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released); err != nil || !released {
		conn.Conn().Close(ctx)
	}
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
		return &store.SchemaError{Name: name, Have: v, Knows: latest}
	}
	return nil
}
