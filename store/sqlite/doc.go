// Package sqlite keeps jobs and their event logs in one SQLite file: the
// default store backend, and the only package that imports the SQLite
// driver. The rest of jobrun sees it through the interfaces its consumers
// declare (jobs.Store, stream.History, api.Store, ingest.Store), all
// satisfied by *DB. The chunk encoding and the query vocabulary are the
// store package's, shared with every backend.
//
// Invariants:
//
//   - The database file must live on a local file system. SQLite's WAL mode
//     relies on shared memory (the -shm file) and POSIX locks that network
//     file systems (NFS, SMB, most FUSE mounts) do not provide correctly;
//     several processes sharing a file there can corrupt it.
//   - Several processes may open one file at once (exec, ls, logs -f). Each
//     *DB has exactly one writer connection, and every write transaction
//     starts with BEGIN IMMEDIATE, so it takes the write lock up front and
//     waits for it (up to Options.BusyTimeout) instead of failing halfway
//     when a read transaction would have to be upgraded.
//   - Readers use a separate pool of query-only connections and short
//     transactions (one page of events each), so a long replay never holds
//     a read snapshot that keeps the WAL from being checkpointed.
//   - The WAL is bounded (checkpoint.go): each *DB owns a checkpointer, a
//     goroutine with a connection of its own, started by Open and ended by
//     Close. When the -wal file passes Options.WALLimit (32 MiB), or stays
//     unchanged for a second above 4 MiB, it checkpoints PASSIVE (no write
//     lock) and then TRUNCATE, whose wait for the write lock and for the
//     readers still on the WAL is bounded by Options.CheckpointWait
//     (100 ms; appends wait at most that plus the copy of the last frames),
//     and retries a second later when readers or another process's
//     checkpoint were in the way. The writer's journal_size_limit is
//     WALLimit too. SQLite's own PASSIVE checkpoints (wal_autocheckpoint,
//     1000 pages) still run in the writer after its commits.
//   - Events are stored in chunk rows: one row holds a contiguous seq range
//     of one job (at most 4096 events or about 1 MiB of encoded body; see
//     store/codec.go). Chunks of one job never overlap and leave no gap, and
//     jobs.last_seq is the last seq of the job's last chunk: both are
//     checked and written in the same transaction.
//   - One AppendEvents call is one transaction. Publishing events to viewers
//     after the call returns (never before) is the caller's duty; the store
//     only guarantees that what it returned without error is durable enough
//     to be replayed (WAL with synchronous=NORMAL: committed transactions
//     survive a crash of the process; the last ones may be lost on power
//     failure).
//   - A running job's runner holds an flock on <path>.locks/<uid>, taken
//     before the job's row is inserted and released after its exit event is
//     committed. A running job of this host whose lock is free has lost its
//     runner; RecoverLost (run by Open) writes its final "lost" exit event.
//   - Files: the parent folder is created with mode 0700, the database with
//     0600 before SQLite opens it; SQLite gives the -wal and -shm files the
//     mode of the database file, so they are 0600 too. Lock files are 0600
//     in a 0700 folder.
//   - Jobs reported by agents (jobrun exec --server, see ingest.go) are
//     marked agent = 1 and hold no runner lock here: RecoverLost never
//     touches them. The server registers them by uid (RegisterJob, never a
//     second job for one uid) and stores their events idempotently by seq
//     (IngestEvents: a resent seq must be the same event). Their status
//     reads as "unreachable" when the agent has been silent for longer than
//     Options.AgentTimeout (derived on read, never stored), and
//     ExpireAgents writes the final "lost" exit event, the one event of an
//     agent job the server writes itself.
//   - An agent keeps each job it reports in a spool (spool.go): a DB of its
//     own, <dir>/<uid>.db, held (flock on <dir>/<uid>.lock) by the process
//     delivering it, removed once the server has acknowledged everything.
//   - Removing a finished job (RemoveJob, Prune; prune.go) deletes its
//     jobs row in one short transaction (foreign keys off on the writer
//     for that transaction only, so nothing cascades), then its chunk rows
//     a few per transaction with pauses: the writer is never held for
//     long. Chunks without a job are orphans of an interrupted remove;
//     Prune sweeps them. Job ids are never reused (AUTOINCREMENT). New
//     files are auto_vacuum=incremental (set by the writer's DSN before
//     the first table, only in an empty file: opening an existing file
//     writes nothing, so a full disk still lets it be read), so Reclaim
//     can return free pages step by step; Vacuum converts older files.
//   - Schema versions are PRAGMA user_version; migrations are embedded and
//     run in one BEGIN IMMEDIATE transaction that re-reads the version, so
//     processes opening a new file at once migrate it exactly once.
package sqlite
