package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/jobrun/jobrun/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]store.Migration, error) { return store.Migrations(migrationFS, "migrations") }

// migrate brings the schema up to date. The version is read again inside
// the BEGIN IMMEDIATE transaction, so when several processes open a new
// file at once, the first one migrates and the others find nothing to do.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	latest := len(ms)
	v, err := userVersion(ctx, db.writer)
	if err != nil {
		return fmt.Errorf("read schema version of %s: %w", db.path, db.translate(err))
	}
	if v > latest {
		return &store.SchemaError{Name: db.path, Have: v, Knows: latest}
	}
	if v == latest {
		return nil
	}
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		v, err := userVersion(ctx, tx)
		if err != nil {
			return err
		}
		if v > latest {
			return &store.SchemaError{Name: db.path, Have: v, Knows: latest}
		}
		for _, m := range ms[v:] {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		// PRAGMA takes no placeholders; latest is our own integer.
		_, err = tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(latest))
		return err
	})
	var se *store.SchemaError
	if err != nil && !errors.As(err, &se) {
		return fmt.Errorf("migrate %s: %w", db.path, err)
	}
	return err
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func userVersion(ctx context.Context, q queryRower) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}
