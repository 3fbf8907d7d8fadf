// Package stream is jobrun's fan-out: the Hub delivers each job's event
// log to any number of viewers with exact replay by seq, and this package
// holds the vocabulary every endpoint of the wire shares (close codes,
// StatusCode and CloseCode, the JSON error body, the errors clients see).
// It imports jobs only; the History it replays from is satisfied by each
// store backend, and the runner publishes to the Hub as a jobs.Publisher,
// both wired in cmd/jobrun.
//
// The endpoints live in packages of their own, each with one job:
//
//	stream/api     the /api/ contract, both ends: streams, range reads, the dashboard, the Go client
//	stream/access  who may do what: tokens, the gate, login, share links, Origin and Host checks
//	stream/ingest  the agent protocol, both ends: the ingest endpoint and the agent's delivery
//
// api and ingest do not import each other; both may import access.
//
// # Invariants
//
//   - Publish after commit. The runner publishes a batch only after the
//     store committed it, so History holds everything any viewer was
//     shown, and a viewer can always resume from History.
//   - Seq is the cursor. A Subscription is nothing but the last seq it
//     returned; Next returns only events with seq > that cursor, contiguous
//     from cursor+1, so duplicates and gaps are impossible by construction.
//     Next serves from the job's ring of recently published batches when the
//     ring reaches back to cursor+1 (cutting a batch that straddles the
//     cursor, from its shared encoding), else from a page of History
//     (about 2 MiB, at most 8192 events) that the job's subscribers share,
//     else waits. The switch-over from History to live needs no
//     merging: after a History page the cursor simply moves on, and a ring
//     batch at or below it is skipped or cut.
//   - Shared encoding. A published batch is encoded to its JSON array once
//     (Batch.JSON) and the same bytes go to every viewer.
//   - Waking. Each job's topic has a notify channel that Publish closes and
//     replaces; waiters then re-read the ring or History. For jobs that
//     another process writes, the Hub asks its Changes (the store
//     backend's feed of commits made elsewhere: SQLite's data_version
//     polled, PostgreSQL's LISTEN) while someone waits, and Poke wakes
//     them; jobs published by this process ignore pokes, since the Hub
//     already knows their last seq, unless Changes reports them beyond it
//     (another replica took the job over).
//
// # Slow viewers
//
// Publish never blocks and there are no per-viewer queues: memory is the
// ring (RingBytes per job), the History pages in use or cached (CacheBytes
// per job; pages.go), and the reads in flight (at most MaxReads). Viewers
// behind at the same point share one read and one encoding of each page.
// A viewer that falls behind the ring is served from History and catches
// up at its own pace, never slowing the job or the other viewers. Each job
// has its own lock: the viewers of one job never wait on another's. How a transport bounds its writes and closes a viewer
// that stops reading is stream/api's business (4429, resume with after=).
//
// # Dashboard
//
// Publish marks a job in every JobWatch when it publishes the job's first
// batch, a progress event or its exit; a job that Changes reports
// committed elsewhere is marked too, and Poke marks all.
// A JobWatch is a dirty set, so marking never blocks.
//
// # Who closes what
//
// The Hub owns its goroutines, the watcher of Changes and the History
// reads:
// Hub.Close cancels them and waits. A Subscription and a JobWatch are
// closed by their consumer.
//
// # Close codes
//
//	1000  the exit event was sent; the job is over
//	1001  the server is shutting down; reconnect with after=
//	1011  internal error (a History read failed)
//	4400  malformed request (bad job reference or after)
//	4404  unknown job
//	4409  after is beyond the job's last stored seq; start over with after=0
//	4429  the viewer fell too far behind; resume with after=
//	4401  the credential is not valid
//	4403  the credential does not reach this job (a share link of another)
//	4408  ingest: the agent was silent for longer than the agent timeout
//	4410  ingest: the job was ended as lost
//	4422  ingest: a resent seq differs from the stored event
//
// Plain HTTP requests get 400, 404 and 409 with a JSON body
// {"error":"...","code":404}, and 401, 403, 415, 429 and 503 (StatusCode).
package stream
