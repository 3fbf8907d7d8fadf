package store

import "github.com/jobrun/jobrun/jobs"

// Copying a database from one backend to another (jobrun migrate): rows
// as they are stored, not as they read.

// JobRow is a job's row as stored: its status as written (never the
// derived unreachable), no ExpectedSeconds, and its progress state raw
// (Progress) rather than as a snapshot.
type JobRow struct {
	Job      jobs.Job
	Progress Progress
}

// ChunkRow is one stored chunk row of a job: the events First..Last in
// the body of store/codec.go.
type ChunkRow struct {
	First, Last         jobs.Seq
	FirstLine, LastLine int64
	N                   int
	Body                []byte
}
