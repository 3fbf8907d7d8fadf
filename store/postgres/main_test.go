package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/postgres"
	"github.com/jobrun/jobrun/store/postgres/pgtest"
	"github.com/jobrun/jobrun/store/storetest"
)

// testHost is the Options.Host of every DB in these tests.
const testHost = "testhost"

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// open opens the database at url, closed at cleanup.
func open(t testing.TB, url string, o postgres.Options) *postgres.DB {
	t.Helper()
	if o.Host == "" {
		o.Host = testHost
	}
	db, err := postgres.Open(storetest.Ctx(t), url, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// raw opens a plain connection to url, for what the API does not show.
func raw(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(storetest.Ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestConformance runs the store contract's suite against PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Create: func(t *testing.T) string { return pgtest.DB(t) },
		Open: func(ctx context.Context, url string, o storetest.Options) (storetest.Store, error) {
			return postgres.Open(ctx, url, postgres.Options{Host: testHost, AgentTimeout: o.AgentTimeout, OnCommit: o.OnCommit})
		},
		ChunkRows: func(t *testing.T, url string, id jobs.ID) int {
			t.Helper()
			conn, err := pgx.Connect(storetest.Ctx(t), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var n int
			if err := conn.QueryRow(storetest.Ctx(t), "SELECT count(*) FROM chunks WHERE job_id = $1", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		},
		SetSchemaVersion: func(t *testing.T, url string, v int) {
			t.Helper()
			if _, err := raw(t, url).Exec(storetest.Ctx(t), "UPDATE jobrun_schema SET version = $1", v); err != nil {
				t.Fatal(err)
			}
		},
		LatestSchema: postgres.LatestSchema(),
		Changes:      func(s storetest.Store) storetest.Feed { return s.(*postgres.DB).Changes() },
	})
}
