package main

import (
	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/postgres"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/ingest"
	"github.com/jobrun/jobrun/stream/search"
)

// Where the parts meet: each consumer declares the small interface it
// needs, and these checks prove, at compile time, that what cmd/jobrun
// plugs in satisfies it.
var (
	_ jobs.Store     = (*sqlite.DB)(nil)    // the runner commits to the store
	_ jobs.Publisher = (*stream.Hub)(nil)   // then publishes to the hub (exec, serve)
	_ jobs.Publisher = (*ingest.Agent)(nil) // or to the agent (exec --server)
	_ stream.History = (*sqlite.DB)(nil)    // the hub replays from the store
	_ api.Store      = storeAdapter{}       // the API reads jobs, events, ranges, listings
	_ ingest.Store   = (*sqlite.DB)(nil)    // the ingest endpoint stores agents' events
	_ stream.History = (*sqlite.Spool)(nil) // an agent replays from its spool

	// serve, ls, logs, rm and prune work on either backend.
	_ serverStore    = (*sqlite.DB)(nil)
	_ serverStore    = (*postgres.DB)(nil)
	_ stream.History = (*postgres.DB)(nil)
	_ ingest.Store   = (*postgres.DB)(nil)
	_ jobs.Store     = (*postgres.DB)(nil) // jobrun migrate; exec never runs a job into PostgreSQL

	// The hub hears of other processes' commits through either backend.
	_ stream.Changes = (*sqlite.Changes)(nil)
	_ stream.Changes = (*postgres.Changes)(nil)
)

// logs --grep searches the database as the API's search does.
var _ search.Source = (*sqlite.DB)(nil)
