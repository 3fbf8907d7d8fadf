package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// The rules of jobs reported by agents (jobrun exec --server), which every
// backend applies the same way: what a reported job and a batch must be,
// how a resent batch is told from a new one, and how a silent agent's job
// reads.

// Limits on what an agent reports.
const (
	MaxNameBytes    = 4 << 10
	MaxCommandBytes = 64 << 10 // of the command's JSON
	maxPathBytes    = 4 << 10
	maxHostBytes    = 255
)

// CheckAgentJob validates a reported job and fills in defaults:
// created_at now, started_at created_at, and an empty command.
func CheckAgentJob(j *jobs.Job) error {
	if ref, err := jobs.ParseRef(string(j.UID)); err != nil || ref.UID == "" {
		return fmt.Errorf("uid %q is not a valid uid: %w", j.UID, jobs.ErrInvalid)
	}
	switch {
	case len(j.Name) > MaxNameBytes:
		return fmt.Errorf("name longer than %d bytes: %w", MaxNameBytes, jobs.ErrInvalid)
	case len(j.Cwd) > maxPathBytes:
		return fmt.Errorf("cwd longer than %d bytes: %w", maxPathBytes, jobs.ErrInvalid)
	case len(j.Host) > maxHostBytes:
		return fmt.Errorf("host longer than %d bytes: %w", maxHostBytes, jobs.ErrInvalid)
	}
	if j.Command == nil {
		j.Command = []string{}
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now()
	}
	if j.StartedAt == nil || j.StartedAt.IsZero() {
		t := j.CreatedAt
		j.StartedAt = &t
	}
	for _, t := range []time.Time{j.CreatedAt, *j.StartedAt} {
		if y := t.Year(); y < 1 || y > 9999 {
			return fmt.Errorf("time %v outside years 1-9999: %w", t, jobs.ErrInvalid)
		}
	}
	return nil
}

// AgentCommand checks a reported job (CheckAgentJob, which fills in its
// defaults) and returns its command as stored: JSON, at most
// MaxCommandBytes.
func AgentCommand(j *jobs.Job) (string, error) {
	if err := CheckAgentJob(j); err != nil {
		return "", err
	}
	cmdJSON, err := json.Marshal(j.Command)
	if err != nil {
		return "", err
	}
	if len(cmdJSON) > MaxCommandBytes {
		return "", fmt.Errorf("command longer than %d bytes: %w", MaxCommandBytes, jobs.ErrInvalid)
	}
	return string(cmdJSON), nil
}

// CheckIngest checks an agent's batch before any database work: not
// empty, valid (Validate), no line longer than jobs.MaxLineBytes.
func CheckIngest(evs []jobs.Event) error {
	if len(evs) == 0 {
		return fmt.Errorf("empty batch: %w", jobs.ErrInvalid)
	}
	if err := Validate(evs); err != nil {
		return err
	}
	for i := range evs {
		if len(evs[i].Data) > jobs.MaxLineBytes {
			return fmt.Errorf("event seq %d: line of %d bytes, longer than %d: %w",
				evs[i].Seq, len(evs[i].Data), jobs.MaxLineBytes, jobs.ErrInvalid)
		}
	}
	return nil
}

// Resent returns how many events at the start of an agent's batch are
// stored already, for a job whose last stored seq is last: those are
// compared with the stored ones (CompareResent), the rest appended. A
// batch that would leave a gap after last wraps jobs.ErrInvalid.
func Resent(evs []jobs.Event, last jobs.Seq) (int, error) {
	first := evs[0].Seq
	if first > last+1 {
		return 0, fmt.Errorf("first seq %d leaves a gap after the last stored seq %d: %w", first, last, jobs.ErrInvalid)
	}
	if first > last {
		return 0, nil
	}
	return int(min(last-first+1, jobs.Seq(len(evs)))), nil
}

// AcceptsEvents reports whether job id, of status st, takes events after
// its last stored seq last: a lost job wraps jobs.ErrGone, another
// finished one jobs.ErrConflict.
func AcceptsEvents(id jobs.ID, st jobs.Status, last jobs.Seq) error {
	switch {
	case st == jobs.StatusLost:
		return fmt.Errorf("job %d: %w", id, jobs.ErrGone)
	case st.Final():
		return fmt.Errorf("job %d already ended (%s) at seq %d: %w", id, st, last, jobs.ErrConflict)
	}
	return nil
}

// CompareResent checks that resent events are the same as the stored
// ones, comparing their wire JSON. A difference at the server's own lost
// exit event (the job's last, status lost) means the job was ended as
// lost: jobs.ErrGone; any other difference wraps jobs.ErrMismatch.
func CompareResent(id jobs.ID, resent, stored []jobs.Event, st jobs.Status, last jobs.Seq) error {
	if len(stored) != len(resent) {
		return fmt.Errorf("%w: job %d holds %d of seq %d..%d", ErrCorrupt, id, len(stored),
			resent[0].Seq, resent[0].Seq+jobs.Seq(len(resent))-1)
	}
	var a, b []byte
	for i := range resent {
		a = resent[i].AppendJSON(a[:0])
		b = stored[i].AppendJSON(b[:0])
		if bytes.Equal(a, b) {
			continue
		}
		s := resent[i].Seq
		if st == jobs.StatusLost && s == last {
			return fmt.Errorf("job %d ended as lost at seq %d: %w", id, s, jobs.ErrGone)
		}
		return fmt.Errorf("job %d, seq %d: %w", id, s, jobs.ErrMismatch)
	}
	return nil
}

// LostExit is the exit event a backend appends itself at seq when it
// ends a job as lost.
func LostExit(seq jobs.Seq) jobs.Event {
	return jobs.Event{Seq: seq, Time: time.UnixMicro(time.Now().UnixMicro()).UTC(), Type: jobs.TypeExit, Status: jobs.StatusLost}
}

// AgentStatus derives the status a job reads with: a running agent job
// whose agent has been silent for longer than timeout is unreachable.
func AgentStatus(j *jobs.Job, now time.Time, timeout time.Duration) {
	if !j.Agent || j.Status != jobs.StatusRunning {
		return
	}
	if j.LastHeard == nil || now.Sub(*j.LastHeard) > timeout {
		j.Status = jobs.StatusUnreachable
	}
}
