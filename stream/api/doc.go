// Package api is the /api/ contract of a jobrun server, both ends: the
// Server (job metadata, raw logs, range reads, search-ready paging, the
// live streams over WebSocket, Server-Sent Events and long polling, the
// dashboard stream, cancel, remove, share, and the probes jobrun doctor
// uses) and its Go Client. docs/protocol.md is the wire contract.
//
// Server reads everything from its Store (required): stream.History for
// jobs and events, RangeReader for reads by position, JobLister for the
// listing. Live events come from a stream.Hub, which the runner or the
// ingest endpoint publishes to after each commit.
//
// # Transports
//
// The WebSocket stream (ws.go), the event stream (sse.go) and the long
// poll (longpoll.go) all read a stream.Subscription (or, with collapse=1,
// a collapsedFeed around one: collapse.go), so they deliver the same
// events in the same order; range reads (ranges.go, events.go) page
// through the Store. Collapse leaves out \r frames that a later line event
// replaced, in the history only (seq <= the job's last seq when the
// request came), deciding each event from at most CollapseWindow events
// after it, so what is left out never depends on how the history was
// paged (collapse.go states the rule).
//
// # Search
//
// GET /api/jobs/{ref}/search (search.go) matches the visual lines of a
// log as the job page shows them (search_lines.go: pieces joined, escapes
// stripped as ui/static/ansi.js does, a \r line as its last frame), read
// page by page from the Store like a range read, within a time budget per
// request (Server.SearchTime); the answer says how far it got and the
// client continues from there. Search and SearchAll are the same search
// for a store without a server (jobrun logs --grep).
//
// # Slow viewers
//
// On the WebSocket, each write is bounded by Server.WriteTimeout and each
// ping by Heartbeat+WriteTimeout; a viewer that misses either is closed
// with 4429 (the close frame reaches it if it resumes reading soon;
// otherwise the connection is torn down) and resumes with after=<last seq
// it saw>. An event stream bounds each write with the same WriteTimeout
// (http.ResponseController.SetWriteDeadline) and is cut when it misses
// it; the browser resumes with Last-Event-ID.
//
// # Dashboard
//
// One feed goroutine per Server, alive while a dashboard is open, takes a
// stream.JobWatch's marks at most every DashboardInterval, reads the
// jobs, and merges the changed ones into each connection's pending set
// (latest state per job), which the connection's writer sends when it
// can. Each connection has a filter (jobs.Filter, the parameters of GET
// /api/jobs): a changed job it selects is sent, one it no longer selects
// (or a removed one) becomes a removal.
//
// # Progress history
//
// GET /api/jobs/{ref}/progress (progress.go) reads a job's events page by
// page from the Store and reduces its progress events as it goes (M4 per
// time bucket, with the changes of state), so that its memory is bounded
// by the points asked for, not by the log.
//
// # Access
//
// Server checks the request's access.Grant where it matters, so that a
// request that did not pass an access.Gate cannot do more: a change
// (cancel, remove, share, also the cancel stream message) needs full
// scope and a same-site origin, and a share link reads its own job only
// (Server.lookup). A request without a Grant in its context (jobrun
// exec's embedded server, loopback only) has full access.
//
// # Who closes what
//
// Each stream connection has a writer (the handler goroutine), a reader
// goroutine (client messages and departure; after Accept the request
// context does not tell) and a pinger; whichever ends the stream first
// sends the close frame, then the others stop, and the handler waits for
// them. Event streams and long polls are plain handlers with a context
// that Server.Close cancels. Server.Close closes every open WebSocket with
// 1001, ends event streams and long polls, stops the dashboard feed, and
// waits for all of them, because http.Server.Shutdown leaves hijacked
// connections alone and would wait for event streams forever.
//
// # Operations
//
// Server.Metrics (a consumer-side interface; cmd/jobrun implements it with
// Prometheus) counts viewers by transport, drops (4429, event stream write
// timeouts) and resumes; it is never called per event. DELETE
// /api/jobs/{ref} and POST /api/prune go to Server.Remover with the rules
// of cancel. The probe endpoints (probe.go) serve jobrun doctor, whose
// measuring side is remote.Prober, and touch no job; the idle
// probe is a tracked WebSocket without a pinger. Health serves /healthz.
//
// Errors become statuses and close codes through stream.StatusCode and
// stream.CloseCode only. A failure after an answer has begun (the raw log
// and event streams are sent as they are read) cannot become a status:
// Server.abort cuts the connection without the end of the body, so that
// a client sees a broken transfer rather than a complete-looking,
// truncated answer; a WebSocket closes with 1011. Client reports both:
// Log's body fails its read, Follow gives up when 1011 recurs at one seq.
package api
