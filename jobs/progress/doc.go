// Package progress finds progress in a job's output and thins it to events:
// the dialects tools already print, the heuristics of auto mode, the
// coalescing of fast bars, and the ETA kept with a job. It also defines the
// progress payloads: Report (a progress event's) and Snapshot (a job's
// latest progress).
//
// Invariants:
//   - Parser.Parse tries the sources in one fixed order and the first that
//     yields a valid value wins: the user's regex, a ::progress directive,
//     OSC 9;4 (read from the raw bytes), ##vso[task.setprogress], a JSON
//     line, then, in Auto mode only, the heuristics. Explicit reads all but
//     the heuristics; Off reads nothing.
//   - A Report from Parse has Percent within 0..100 (never NaN), Source and
//     State set, Current and Total both set or both nil with
//     0 <= Current <= Total and Total > 0, and a message of valid UTF-8 on
//     one line, bounded in length.
//   - Parse is safe for concurrent use; a Parser keeps a little state
//     between lines (the last percent, the pv -n rule), so each output
//     stream has its own. The quick scan that skips most lines never
//     changes a result (FuzzProgressParse checks it).
//   - A Coalescer emits at most one value per Interval, except that a
//     change of state or a first 100% goes out at once, and it never loses
//     the last value: what it holds comes out when Due or at Flush. It has
//     no goroutine or timer of its own; its owner passes the time.
//   - An Estimate's ETA comes from the recent rate (a moving average over
//     about the last 30 seconds), restarts when the percent goes down, and
//     is reported only from at least a second of values.
//
// The package imports only the standard library: package jobs imports it,
// never the other way round, so its errors carry no jobrun sentinel (see
// ParseMode).
package progress
