package sqlite_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/store/storetest"
)

// TestConformance runs the store contract's suite against SQLite files.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Create: func(t *testing.T) string { return filepath.Join(t.TempDir(), "jobrun.db") },
		Open: func(ctx context.Context, path string, o storetest.Options) (storetest.Store, error) {
			return sqlite.Open(ctx, path, sqlite.Options{Host: testHost, AgentTimeout: o.AgentTimeout, OnCommit: o.OnCommit})
		},
		ChunkRows: func(t *testing.T, path string, id jobs.ID) int { return chunkRows(t, path, id) },
		SetSchemaVersion: func(t *testing.T, path string, v int) {
			t.Helper()
			if _, err := rawDB(t, path).Exec("PRAGMA user_version = " + strconv.Itoa(v)); err != nil {
				t.Fatal(err)
			}
		},
		LatestSchema: sqlite.LatestSchema(),
		Changes:      func(s storetest.Store) storetest.Feed { return s.(*sqlite.DB).Changes() },
	})
}
