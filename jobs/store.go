package jobs

import "context"

// Store is what the Runner needs from persistence. *sqlite.DB satisfies it.
type Store interface {
	// CreateJob inserts j as a running job, filling in j.ID and any zero
	// CreatedAt/StartedAt. It also takes the runner lock for j.UID, held
	// until the job's exit event is appended, so that another process can
	// tell a live runner from a dead one.
	CreateJob(ctx context.Context, j *Job) error
	// AppendEvents commits events (contiguous seq, the first one following
	// the job's last stored seq) in one transaction. An exit event also
	// finishes the job (status, exit code, finished_at) and releases the
	// runner lock.
	AppendEvents(ctx context.Context, id ID, events []Event) error
}

// Publisher receives events after they are committed. Publish must not
// block on viewers and takes ownership of events: the caller does not
// modify them afterwards. *stream.Hub satisfies it.
type Publisher interface {
	Publish(id ID, events []Event)
}
