package store

import (
	"fmt"

	"github.com/jobrun/jobrun/jobs"
)

// Validate checks a batch before any database work (every backend calls
// it first): seq from 1 and contiguous, known types, a valid stream and
// terminator on every line, an exit event only last, only with a final
// status and a bounded incomplete_reason.
func Validate(evs []jobs.Event) error {
	if len(evs) > 0 && evs[0].Seq < 1 {
		return fmt.Errorf("first seq %d: seq starts at 1: %w", evs[0].Seq, jobs.ErrInvalid)
	}
	for i := range evs {
		e := &evs[i]
		if e.Seq != evs[0].Seq+jobs.Seq(i) {
			return fmt.Errorf("event %d has seq %d, want %d (seq must be contiguous): %w", i, e.Seq, evs[0].Seq+jobs.Seq(i), jobs.ErrInvalid)
		}
		if y := e.Time.Year(); y < 1 || y > 9999 {
			return fmt.Errorf("event seq %d: time %v outside years 1-9999 (the wire format): %w", e.Seq, e.Time, jobs.ErrInvalid)
		}
		switch e.Type {
		case jobs.TypeLine:
			if streamCode(e.Stream) == 0 {
				return fmt.Errorf("event seq %d: line with stream %q: %w", e.Seq, e.Stream, jobs.ErrInvalid)
			}
			if e.EOL != "" && jobs.EOLCode(e.EOL) == 0 {
				return fmt.Errorf("event seq %d: line with terminator %q: %w", e.Seq, e.EOL, jobs.ErrInvalid)
			}
		case jobs.TypeExit:
			if i != len(evs)-1 {
				return fmt.Errorf("event seq %d: exit event is not the last of the batch: %w", e.Seq, jobs.ErrInvalid)
			}
			if !e.Status.Final() {
				return fmt.Errorf("event seq %d: exit with status %q: %w", e.Seq, e.Status, jobs.ErrInvalid)
			}
			if len(e.IncompleteReason) > jobs.MaxIncompleteReason {
				return fmt.Errorf("event seq %d: incomplete_reason longer than %d bytes: %w", e.Seq, jobs.MaxIncompleteReason, jobs.ErrInvalid)
			}
		case jobs.TypeProgress:
			if p := e.Progress; p == nil || !(p.Percent >= 0 && p.Percent <= 100) {
				return fmt.Errorf("event seq %d: progress without a percent in 0..100: %w", e.Seq, jobs.ErrInvalid)
			}
		default:
			return fmt.Errorf("event seq %d: unknown type %q: %w", e.Seq, e.Type, jobs.ErrInvalid)
		}
	}
	return nil
}

// CheckAppend checks that a runner's batch, whose first event has seq
// first, may be appended to job id, of status st, whose last stored seq is
// last: the job runs and the batch follows without a gap or a repeat
// (jobs.ErrConflict).
func CheckAppend(id jobs.ID, st jobs.Status, last, first jobs.Seq) error {
	if st.Final() {
		return fmt.Errorf("job %d is already %s: %w", id, st, jobs.ErrConflict)
	}
	if first != last+1 {
		return fmt.Errorf("first seq %d does not follow the last stored seq %d: %w", first, last, jobs.ErrConflict)
	}
	return nil
}
