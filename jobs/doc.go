// Package jobs is jobrun's domain: jobs, their ordered event logs, and the
// runner that turns a child process's output into events.
//
// Invariants:
//   - A job's events are numbered by Seq from 1, contiguous: no gap, no
//     duplicate. The process that runs a job assigns seq; nothing else
//     writes to a running job's log except the final "lost" exit event,
//     written only when the runner is provably dead.
//   - The exit event is always the last event of a job. When the runner
//     could not store all of the output (the store kept failing), the
//     stored log stops where storing failed and the exit event that
//     follows it (seq still contiguous) carries Incomplete and a reason;
//     if even that cannot be stored, the job ends lost later.
//   - Concatenating Data and EOL of one stream's line events in seq order
//     gives back exactly the bytes the child wrote to that stream, except
//     masked values (Runner.Mask, ::add-mask:: lines), which read MaskText:
//     the one deliberate exception. Masking runs on each stream's bytes
//     before echo and splitter, holding back a possible value's start
//     until more bytes decide (mask.go).
//   - Line is the visual line number: fragments (EOL "") of one line and
//     the "\r" redraws of one line share a number, per stream.
//   - A progress event follows the line event it was found in (the next
//     seq), unless the job's progress.Coalescer held it back, in which case
//     it follows the events read until the interval passed; the last value
//     held is always stored before the exit event.
//   - The runner hands events to its Store, and only after the Store has
//     committed them to its Publisher, so anything a viewer has seen can be
//     replayed.
//
// This package imports no other jobrun package but its own leaf,
// jobs/progress, which finds progress in output (parsing, coalescing,
// ETA) and defines the progress payloads (progress.Report in Event,
// progress.Snapshot in Job). The interfaces it needs (Store, Publisher)
// are declared here and satisfied by sqlite.DB and stream.Hub.
package jobs
