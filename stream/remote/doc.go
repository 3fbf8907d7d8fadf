// Package remote is the Go client of a jobrun server's /api/ (jobrun
// exec's embedded server or jobrun serve): Client reads jobs and logs,
// follows a job's stream exactly once per event across reconnects,
// searches, cancels, removes, prunes and makes share links; Prober
// measures the way to a server (proxies, load balancers, TLS) as a page
// uses it, for jobrun doctor. The wire types are stream/api's, the errors
// stream's (*stream.HTTPError, *stream.CloseError, unwrapping to the jobs
// sentinels); docs/protocol.md is the contract.
package remote
