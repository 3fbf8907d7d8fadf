package store

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jobrun/jobrun/jobs"
)

// Migration is one embedded SQL file, NNNN_name.sql, that brings a
// backend's schema to version NNNN. Each backend embeds its own.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the *.sql files of dir in fsys in version order.
// Versions must be 1, 2, 3, ... with no gap: a gap is a bug in the
// binary.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its version number", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}

// SchemaError reports a database whose schema version this binary cannot
// use: a newer one (it wraps jobs.ErrSchemaTooNew), or, for a command
// that does not migrate, an older one (jobs.ErrConflict).
type SchemaError struct {
	Name        string // the database's path or URL
	Have, Knows int
}

func (e *SchemaError) Error() string {
	if e.Have > e.Knows {
		return fmt.Sprintf("database %s has schema version %d, this jobrun knows up to %d; upgrade jobrun", e.Name, e.Have, e.Knows)
	}
	return fmt.Sprintf("database %s has schema version %d, this jobrun needs %d; start this jobrun's serve once (it migrates the database)",
		e.Name, e.Have, e.Knows)
}

func (e *SchemaError) Unwrap() error {
	if e.Have > e.Knows {
		return jobs.ErrSchemaTooNew
	}
	return jobs.ErrConflict
}
