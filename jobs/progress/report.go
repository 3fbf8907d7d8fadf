package progress

import "time"

// Report is one progress value: what Parse finds, and the payload of a
// progress event (jobs.Event.Progress).
type Report struct {
	Percent float64  `json:"percent"`
	Message string   `json:"message,omitempty"`
	Current *float64 `json:"current,omitempty"`
	Total   *float64 `json:"total,omitempty"`
	Source  string   `json:"source,omitempty"`
	State   string   `json:"state,omitempty"`
}

// The values of Report.Source: where a progress value was found.
const (
	SourceRegex    = "regex"    // the user's --progress-regex
	SourceExplicit = "explicit" // a ::progress directive line
	SourceOSC      = "osc"      // the terminal sequence OSC 9;4
	SourceVSO      = "vso"      // Azure Pipelines ##vso[task.setprogress]
	SourceJSON     = "json"     // a JSON line with "progress" or "percent"
	SourceAuto     = "auto"     // a heuristic on ordinary output
)

// The values of Report.State. Parse always sets one; only OSC 9;4 says
// anything but normal.
const (
	StateNormal        = "normal"
	StateIndeterminate = "indeterminate"
	StateError         = "error"
	StatePaused        = "paused"
)

// Directive reports whether p came from a ::progress directive, whose line
// event the runner marks "directive": true so that pages can hide it.
func (p Report) Directive() bool { return p.Source == SourceExplicit }

// Snapshot is a job's latest progress, kept with the job so that a
// list of jobs never needs their logs.
type Snapshot struct {
	Percent float64   `json:"percent"` // 0..100; the last value reported, which may go down
	Message string    `json:"message"`
	Time    time.Time `json:"time"`  // of the progress event
	State   string    `json:"state"` // StateNormal, ...
	// ETASeconds is the estimated time from Time to 100%, while the job
	// runs and it can be estimated (see Estimate).
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
	// Rate is the smoothed progress rate in percent per second, when
	// known.
	Rate *float64 `json:"rate,omitempty"`
}
