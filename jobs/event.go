package jobs

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jobrun/jobrun/jobs/progress"
)

// EventType names what an event is. Clients ignore types they do not know.
type EventType string

// The event types.
const (
	TypeLine     EventType = "line"
	TypeProgress EventType = "progress"
	TypeExit     EventType = "exit"
)

// Stream names the output stream a line came from.
type Stream string

// The streams. StreamTTY is the single stream of a job run under a PTY.
const (
	StreamStdout Stream = "stdout"
	StreamStderr Stream = "stderr"
	StreamTTY    Stream = "tty"
)

// Slot numbers the streams from 0 (stdout, stderr, tty; 3 for any
// other), for per-stream state kept in arrays.
func (s Stream) Slot() int {
	switch s {
	case StreamStdout:
		return 0
	case StreamStderr:
		return 1
	case StreamTTY:
		return 2
	}
	return 3
}

// Contiguous reports whether evs are numbered first, first+1, ...
func Contiguous(evs []Event) bool {
	for i := range evs {
		if evs[i].Seq != evs[0].Seq+Seq(i) {
			return false
		}
	}
	return true
}

// CheckRun reports an error when evs, read for job id, do not run
// contiguously from seq first: a store that answers otherwise is broken.
func CheckRun(id ID, evs []Event, first Seq) error {
	if len(evs) > 0 && (evs[0].Seq != first || !Contiguous(evs)) {
		return fmt.Errorf("events of job %d from seq %d: got seq %d..%d, not contiguous",
			id, first, evs[0].Seq, evs[len(evs)-1].Seq)
	}
	return nil
}

// MaxLineBytes is the longest piece of output one line event carries. A
// longer line is split into pieces of at most this many bytes (eol ""),
// never truncated.
const MaxLineBytes = 64 << 10

// MaxIncompleteReason bounds Event.IncompleteReason, in bytes.
const MaxIncompleteReason = 1024

// Event is one entry of a job's ordered event log. Which fields are set
// depends on Type; see docs/protocol.md for the wire form (MarshalJSON).
type Event struct {
	Seq  Seq
	Time time.Time
	Type EventType

	// TypeLine.
	Stream    Stream
	Line      int64  // visual line number, 1-based
	Data      []byte // the exact bytes, without the terminator
	EOL       string // "\n", "\r\n", "\r" or "" (a fragment)
	Directive bool   // the line is a ::progress (or similar) directive

	// TypeExit.
	Status   Status
	ExitCode *int   // nil for StatusLost
	Signal   string // "SIGTERM" when killed by a signal
	// Incomplete marks the exit event of a job whose runner could not
	// store all of its output (a full disk, a database locked past the
	// retry, a write error): the stored log ends before this event, seq
	// still contiguous. IncompleteReason says why, in words. A flag, not
	// a status: Status stays the command's.
	Incomplete       bool
	IncompleteReason string

	// TypeProgress.
	Progress *progress.Report
}

// Size is an estimate of the memory and wire size of e, used to bound
// queues and batches.
func (e *Event) Size() int { return len(e.Data) + 96 }

// ValidText reports whether the line's bytes are valid UTF-8, in which case
// the wire form carries only "text"; otherwise it also carries "data".
func (e *Event) ValidText() bool { return utf8.Valid(e.Data) }

// EOLCode and EOLFromCode map terminators to a compact code for storage.
func EOLCode(eol string) byte {
	switch eol {
	case "\n":
		return 1
	case "\r\n":
		return 2
	case "\r":
		return 3
	}
	return 0
}

// EOLFromCode is the inverse of EOLCode.
func EOLFromCode(c byte) string {
	switch c {
	case 1:
		return "\n"
	case 2:
		return "\r\n"
	case 3:
		return "\r"
	}
	return ""
}
