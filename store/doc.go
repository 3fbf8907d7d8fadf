// Package store is what jobrun's store backends share: the contract they
// keep, and the pieces of it that do not depend on a database.
//
//   - The chunk codec (codec.go): a job's events are stored as chunk rows,
//     each a contiguous seq range of one job in a compact binary body; a
//     backend stores the rows a ChunkEncoder makes and decodes them with a
//     ChunkDecoder, so that every backend holds the same bytes.
//   - Validate (validate.go): what a batch must be before any database work
//     (contiguous seq, known types, the exit event last).
//   - The query vocabulary (query.go): JobsQuery, RemoveOptions,
//     PruneQuery, PruneResult, Stats, Expired; rows as stored, for copying
//     between backends (export.go).
//   - The rules of jobs reported by agents (agent.go: what a reported job
//     and a batch must be, how a resend is told from new events, how a
//     silent agent's job reads) and of a job's progress state
//     (progress.go), which each backend stores in its own columns.
//
// The guarantees every backend keeps: seq contiguous from 1 with no gap or
// duplicate; one append is one transaction, and callers publish only what
// a call returned without error; ingest is idempotent by (job uid, seq), a
// resent seq with other content refused with jobs.ErrMismatch; removing a
// job never holds up appends for long; the schema is versioned and a
// database from a newer jobrun is refused with jobs.ErrSchemaTooNew.
//
// The backends: store/sqlite (the default; one file, one writer) and
// store/postgres (several jobrun serve replicas on one database). The
// conformance suite, store/storetest, checks every guarantee above
// against both. This package imports no database driver.
package store
