package main

import (
	"github.com/jobrun/jobrun/jobs"
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
)

// logs --grep searches the database as the API's search does.
var _ search.Source = (*sqlite.DB)(nil)
