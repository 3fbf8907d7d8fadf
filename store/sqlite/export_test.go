package sqlite

import (
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
