// Package ingest is the agent protocol, both ends: Server takes the jobs
// that agents (jobrun exec --server) run elsewhere at GET /api/ingest, and
// Agent delivers one job from an agent's spool to a server. proto.go
// lists the messages and codec.go the binary form of an events message;
// docs/protocol.md is the contract.
//
// # Invariants
//
//   - One connection reports one job. It registers the job by its uid (the
//     Store makes a retried hello the same job), then for each events
//     message the Store appends what follows its last seq and checks that
//     what it already holds is resent unchanged (4422 otherwise).
//   - Ack means committed. The appended events are published to the Hub
//     after the commit, and only then acknowledged: the agent may forget
//     what was acknowledged, and viewers never see what the store does not
//     hold.
//   - Nothing is only in memory. Agent reads the job from the agent's spool
//     (a stream.History of its own, through a private stream.Hub that the
//     runner publishes to), sends what the server lacks, and reconnects with
//     backoff until the exit is acknowledged; what is not acknowledged is
//     simply read from the spool again.
//   - Server.Cancel writes a cancel on the job's agent connections; a job
//     with no agent connected answers jobs.ErrConflict (409).
//
// # Who closes what
//
// Each connection has its handler goroutine (reads and answers) and a
// heartbeat goroutine; a watchdog closes a silent agent with 4408.
// Server.Close closes every agent connection with 1001 and waits. Agent
// owns one goroutine, ended by Close.
//
// This package does not import stream/api: cmd/jobrun joins the two
// (api.Server.Cancel is set to Server.Cancel).
package ingest
