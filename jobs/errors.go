package jobs

import "errors"

// Sentinel errors shared by every package. Adapters wrap them with context
// (fmt.Errorf("...: %w", ErrNotFound)) and transports map them to HTTP
// statuses and WebSocket close codes in exactly one place each.
var (
	// ErrNotFound: the job (or another named thing) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is malformed (bad parameter, bad JSON).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: the request does not fit the stored state, for example a
	// resume cursor beyond the last stored seq of a job.
	ErrConflict = errors.New("conflict")
	// ErrTooSlow: a viewer fell too far behind and was cut off; it resumes
	// by seq.
	ErrTooSlow = errors.New("viewer too slow")
	// ErrMismatch: an event resent with a seq that is already stored does
	// not carry the same content as the stored one.
	ErrMismatch = errors.New("event differs from the stored event with the same seq")
	// ErrGone: the job has ended as lost and takes no more events.
	ErrGone = errors.New("job has ended as lost")
	// ErrSchemaTooNew: the database was written by a newer jobrun.
	ErrSchemaTooNew = errors.New("database schema is newer than this jobrun")
	// ErrUnavailable: the store cannot be reached for now (a database
	// server restarting, a network cut); the same request may succeed
	// later.
	ErrUnavailable = errors.New("database unavailable")
)
