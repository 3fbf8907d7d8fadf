// Package stream delivers jobs' event logs to viewers: the Hub (fan-out
// with exact replay by seq), the HTTP and WebSocket API (Server) and its Go
// client (Client). It imports jobs, never store: History and the Publisher
// seam meet *store.DB and the runner in cmd/jobrun.
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
//     cursor), else reads a page from History (about 2 MiB, at most 8192
//     events), else waits. The switch-over from History to live needs no
//     merging: after a History page the cursor simply moves on, and a ring
//     batch at or below it is skipped or cut.
//   - Shared encoding. A published batch is encoded to its JSON array once
//     (Batch.JSON) and the same bytes go to every viewer.
//   - Waking. Each job's topic has a notify channel that Publish closes and
//     replaces; waiters then re-read the ring or History. For jobs that
//     another process writes, the Hub's poller watches History's
//     DataVersion (PRAGMA data_version) while someone waits, and Poke wakes
//     them; jobs published by this process ignore pokes, since the Hub
//     already knows their last seq.
//
// # Slow viewers
//
// Publish never blocks and there are no per-viewer queues: memory is the
// ring (RingBytes per job) plus up to two pages (one read ahead) per
// viewer reading History. A viewer that falls behind the ring is served
// from History and catches up at its own pace, never slowing the job or
// the other viewers. On the WebSocket,
// each write is bounded by Server.WriteTimeout and each ping by
// Heartbeat+WriteTimeout; a viewer that misses either is closed with 4429
// (the close frame reaches it if it resumes reading soon; otherwise the
// connection is torn down) and resumes with after=<last seq it saw>. An
// event stream (SSE) bounds each write with the same WriteTimeout
// (http.ResponseController.SetWriteDeadline) and is cut when it misses it;
// the browser resumes with Last-Event-ID.
//
// # Transports
//
// The WebSocket stream, the event stream and the long poll all read a
// Subscription (or, with collapse=1, a collapsedFeed around one), so they
// deliver the same events in the same order; range reads page through
// History and RangeReader. Collapse leaves out \r frames that a later
// line event replaced, in the history only (seq <= the job's last seq
// when the request came), deciding each event from at most
// CollapseWindow events after it, so what is left out never depends on
// how the history was paged (collapse.go states the rule).
//
// # Dashboard
//
// Publish marks a job in every JobWatch when it publishes the job's first
// batch, a progress event or its exit; Poke (and the poller) marks all.
// A JobWatch is a dirty set, so marking never blocks. One feed goroutine
// per Server, alive while a dashboard is open, takes the marks at most
// every DashboardInterval, reads the jobs, and merges the changed ones
// into each connection's pending set (latest state per job), which the
// connection's writer sends when it can.
//
// # Agents
//
// Ingest (GET /api/ingest) takes jobs that agents (jobrun exec --server)
// run elsewhere. Each connection reports one job: it registers the job by
// its uid (the store makes a retried hello the same job), then for each
// events message the store appends what follows its last seq and checks
// that what it already holds is resent unchanged, the appended events are
// published to the Hub after the commit, and only then acknowledged. So
// an ack means committed, and a publish means committed too: the agent
// may forget what was acknowledged, and viewers never see what the store
// does not hold. Agent is the other side: it reads the job from the
// agent's spool (a History of its own, through a private Hub that the
// runner publishes to), sends what the server lacks, and reconnects with
// backoff until the exit is acknowledged; what is not acknowledged is
// simply read from the spool again. Ingest.Cancel writes a cancel on the
// job's agent connections.
//
// # Who closes what
//
// The Hub owns its goroutines, the poller and the History reads ahead:
// Hub.Close cancels them and waits.
// A Subscription is closed by its consumer. Each stream connection has a
// writer (the handler goroutine), a reader goroutine (client messages and
// departure; after Accept the request context does not tell) and a pinger;
// whichever ends the stream first sends the close frame, then the others
// stop, and the handler waits for them. Event streams and long polls are
// plain handlers with a context that Server.Close cancels. Server.Close
// closes every open WebSocket with 1001, ends event streams and long
// polls, stops the dashboard feed, and waits for all of them, because
// http.Server.Shutdown leaves hijacked connections alone and would wait
// for event streams forever.
//
// # Operations
//
// Server.Metrics (a consumer-side interface; cmd/jobrun implements it with
// Prometheus) counts viewers by transport, drops (4429, event stream write
// timeouts) and resumes; Ingest.Metrics counts what agents reported and the
// store committed. Neither is called per event. DELETE /api/jobs/{ref} and
// POST /api/prune go to Server.Remover with the rules of cancel. The probe
// endpoints (probe.go) serve jobrun doctor and touch no job; the idle probe
// is a tracked WebSocket without a pinger.
//
// # Access
//
// Gate is jobrun serve's front door; every request passes it before
// Server, Ingest and the pages. It decides the client's address (trusted
// proxies only), limits requests in progress per client, checks Host (a
// loopback server without a token), and, when Auth has a token, turns the
// request's credential (bearer token, signed session cookie, or a share
// link's cookie) into an Access in the request's context, refusing what
// the scope does not allow (401, 403, or a redirect to /login). Server
// checks the Access again where it matters, so that a request that
// reaches it some other way cannot do more: a change (cancel, remove,
// share, also the cancel stream message) needs ScopeFull, and a share
// link reads its own job only (Server.lookup). A request without an
// Access in its context (jobrun exec's embedded server, loopback only)
// has full access. Tokens and MACs are compared in constant time; nothing
// logs a token. Share links and sessions are stateless: HMAC-SHA256 under
// Auth.Secret, sessions also bound to the token they were opened with.
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
//
// The dashboard stream (GET /api/stream) uses 1001, 1011, 4400 and 4429
// the same way. The ingest endpoint uses 1001, 1009, 1011, 4400 and 4409
// too, and 4408 (agent silent), 4410 (the job was ended as lost) and 4422
// (a resent seq differs from the stored event); Ingest.Close closes every
// agent connection with 1001 and waits. Plain HTTP requests get 400, 404 and 409 with a JSON body
// {"error":"...","code":404}, and 403, 415 (cancel from another site or
// without a JSON body) and 503 (a stream opened after Server.Close).
package stream
