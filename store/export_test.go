package store

import "github.com/jobrun/jobrun/jobs"

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
	return ms[v-1].sql
}

// ChunkBody encodes evs (seq first, first+1, ...) as one chunk row's body.
func ChunkBody(first jobs.Seq, evs []jobs.Event) []byte {
	var c chunkEncoder
	c.reset(first)
	for i := range evs {
		if err := c.add(&evs[i]); err != nil {
			panic(err)
		}
	}
	return c.body
}
