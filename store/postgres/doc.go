// Package postgres keeps jobs and their event logs in PostgreSQL, for
// several jobrun serve replicas behind one load balancer; it is the only
// package that imports the PostgreSQL driver (pgx, with its pool). The
// rest of jobrun sees it through the interfaces its consumers declare
// (stream.History, stream.Changes, api.Store, ingest.Store), all
// satisfied by *DB, as by the SQLite backend's. The chunk encoding and the
// rules of agent jobs are the store package's, shared with SQLite, and the
// conformance suite (store/storetest) runs against both.
//
// Invariants:
//
//   - Events are stored in chunk rows, the same rows as SQLite's (the
//     binary body of store/codec.go in a bytea): one row holds a
//     contiguous seq range of one job; chunks of one job never overlap and
//     leave no gap, and jobs.last_seq is the last seq of the job's last
//     chunk. Every write of a job's events runs in one transaction that
//     first locks the job's row (SELECT ... FOR UPDATE), so writers of one
//     job, in any process, take turns; the primary key (job_id, first_seq)
//     is the backstop.
//   - One AppendEvents or IngestEvents call is one transaction, sent in few
//     round trips (the inserts, the job's update and the notification go
//     in one batch). Publishing to viewers after the call returns is the
//     caller's duty.
//   - Every transaction that appends events (or registers a job) sends
//     NOTIFY jobrun_jobs 'ID SEQ' before it commits: PostgreSQL delivers it
//     only after the commit, and once per transaction, never per line.
//     Removes and prunes send '*'. A DB listens on one connection of its own
//     (listen.go), started on first use; Changes (changes.go) feeds a
//     stream.Hub from it. After that connection drops, it reconnects and
//     every feed re-reads the last seq of the jobs that ran meanwhile: no
//     missed notification leaves a viewer waiting.
//   - Ingest is idempotent by (job uid, seq) in the database, not in one
//     process: an agent may reconnect to another replica and resend, and
//     two replicas given the same batch store it once (ingest.go).
//   - Jobs are reported by agents through jobrun serve: nothing here tells a
//     live runner from a dead one (SQLite's runner locks are files), so
//     jobrun exec never runs a job straight into PostgreSQL.
//   - One replica at a time ends silent agents' jobs as lost (the reaper
//     advisory lock), and each such job's row is locked while its lost
//     exit is appended: one lost event, never two.
//   - Replicas tell each other, through NOTIFY, about cancel requests for
//     jobs whose agent another replica holds, and about a new secret
//     (relay.go). The secret that signs sessions and share links is in the
//     settings table: whoever can read the database can forge links.
//   - Schema versions are in the jobrun_schema table; migrations are
//     embedded and run under an advisory lock, so replicas starting at the
//     same moment migrate once. Only serve migrates (Options.NoMigrate);
//     the other commands refuse a schema that is not exactly theirs, and
//     every process refuses a newer one, naming both versions.
//   - Removing a finished job deletes its row in one short transaction,
//     then its chunks a few per transaction with pauses (prune.go).
//   - Lost connections and a restarting server are jobs.ErrUnavailable
//     (HTTP 503); the pool reconnects by itself.
package postgres
