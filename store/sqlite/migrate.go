package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

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

// schemaError reports a database written by a newer jobrun.
type schemaError struct {
	path        string
	have, knows int
}

func (e *schemaError) Error() string {
	return fmt.Sprintf("database %s has schema version %d, this jobrun knows up to %d; upgrade jobrun", e.path, e.have, e.knows)
}

func (e *schemaError) Unwrap() error { return jobs.ErrSchemaTooNew }

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
		return &schemaError{db.path, v, latest}
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
			return &schemaError{db.path, v, latest}
		}
		for _, m := range ms[v:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		// PRAGMA takes no placeholders; latest is our own integer.
		_, err = tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(latest))
		return err
	})
	var se *schemaError
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
