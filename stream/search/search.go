// Package search finds text in a job's log as its page shows it: the
// visual lines (lines.go: pieces of a line joined, the last frame of a \r
// bar, escapes stripped as the page strips them, text.go), matched by a
// literal or an RE2 expression (match.go), read page by page from any
// store through Source (scan.go), within a budget per call that a cursor
// continues. stream/api serves it as GET /api/jobs/{ref}/search and
// jobrun logs --grep runs it on a local store; docs/protocol.md has the
// wire form.
//
// A line's seq is the seq of its first event; lines are searched in seq
// order. A forward search (After) looks at the lines with seq > After, a
// backward one (Before) at those with seq < Before, nearest first; both
// answer matches in seq order. A line is decided (matched or not) once it
// ends; ScannedTo is how far every line is decided, so the next call
// continues from it and no line is reported twice or missed.
//
// It imports jobs only.
package search

import (
	"context"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Source is what Find reads: pages of events (stream.History's
// Events) and where a line starts (RangeReader's SeqOfLine), to tell
// whether the first piece of a stream that a search meets continues a
// line begun before it. *sqlite.DB satisfies it.
type Source interface {
	Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error)
	SeqOfLine(ctx context.Context, id jobs.ID, line int64) (jobs.Seq, error)
}

// Query is what to look for in a job's log, and where.
type Query struct {
	// Text is the literal text to find, or with Regex an RE2 regular
	// expression; required.
	Text  string
	Regex bool
	// Case makes the search case-sensitive; by default it ignores case.
	Case bool
	// Directives also searches directive and marker lines, which the
	// page hides unless asked.
	Directives bool
	// Stream limits the search to one stream; "" searches all.
	Stream jobs.Stream
	// After searches forward, the lines with seq > After; Before, when
	// not 0, searches backward instead, the lines with seq < Before
	// (nearest first).
	After, Before jobs.Seq
	// Limit is the most matches answered, 1..MaxLimit; 0 counts the
	// matches without answering them.
	Limit int
}

// Limits of a search.
const (
	// DefaultLimit is the matches answered without limit=.
	DefaultLimit = 100
	// MaxLimit is the largest limit= accepted.
	MaxLimit = 1000
	// MaxMatchText bounds the text answered for one match; a longer line
	// is cut (at a character boundary) and marked truncated.
	MaxMatchText = 64 << 10
)

// Budget bounds the work of one Find call; the zero value bounds
// nothing. Search reads at least one page (or, backward, one window)
// whatever the budget, so that every call makes progress.
type Budget struct {
	Time   time.Duration // stop reading after this long
	Events int           // stop reading after this many events
}

// Match is one matching visual line.
type Match struct {
	Seq    jobs.Seq    `json:"seq"`  // the line's first event
	Line   int64       `json:"line"` // its line number
	Stream jobs.Stream `json:"stream"`
	// Text is the line's text as the page shows it (escapes stripped, the
	// last frame of a \r line), at most MaxMatchText bytes.
	Text      string `json:"text"`
	Truncated bool   `json:"truncated,omitempty"`
	// Ranges are the matches in Text as [start, end) offsets in UTF-16
	// code units (JavaScript's string indices), at most MaxRanges;
	// an RE2 match of nothing (`x*`) matches the line with no range.
	Ranges [][2]int `json:"ranges"`
}

// Result is the answer of one search request.
type Result struct {
	Matches []Match `json:"matches"`
	// Count is the number of matching lines in the range scanned: the
	// matches answered, or, with limit 0, counted.
	Count int `json:"count"`
	// NextAfter continues forward (after=): after a forward search, from
	// scanned_to, null when it reached the end of the log; after a
	// backward one, from the last match (or before-1).
	NextAfter *jobs.Seq `json:"next_after"`
	// NextBefore continues backward (before=): after a backward search,
	// from scanned_to, null when it reached the start; after a forward
	// one, from the first match (or after+1). Null when nothing is before
	// it.
	NextBefore *jobs.Seq `json:"next_before"`
	// ScannedTo is how far every line is decided: forward, the lines with
	// after < seq <= scanned_to; backward, scanned_to <= seq < before.
	ScannedTo jobs.Seq `json:"scanned_to"`
	// Total is the number of matching lines in the whole log when this
	// request scanned all of it (from after=0, or backward from its end,
	// without reaching limit); else null, and the client keeps counting
	// with the cursors.
	Total *int `json:"total"`
	// LastSeq is the log's last seq that the search looked at (the job's
	// last stored seq when it began): scanned_to / last_seq is the
	// progress of a forward search.
	LastSeq jobs.Seq `json:"last_seq"`
}

// Check reports what is wrong with q, wrapping jobs.ErrInvalid: a bad
// regular expression, an empty text, a limit or cursor out of range.
func (q Query) Check() error {
	_, err := q.compile()
	return err
}

func (q Query) compile() (*matcher, error) {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return nil, fmt.Errorf("limit %d: want 0 to %d: %w", q.Limit, MaxLimit, jobs.ErrInvalid)
	}
	if q.After < 0 || q.Before < 0 {
		return nil, fmt.Errorf("after %d, before %d: want seqs: %w", q.After, q.Before, jobs.ErrInvalid)
	}
	return newMatcher(q.Text, q.Regex, q.Case)
}

// Find searches job j's log as stored up to j.LastSeq: one request's
// worth, within b. Its errors are
// the store's, ctx's, and for a bad query one wrapping jobs.ErrInvalid.
func Find(ctx context.Context, src Source, j jobs.Job, q Query, b Budget) (Result, error) {
	m, err := q.compile()
	if err != nil {
		return Result{}, err
	}
	s := &searcher{src: src, id: j.ID, until: j.LastSeq, q: q, m: m, budget: b, start: time.Now(),
		pages: jobs.PageSizer{Bytes: pageBytes, MaxEvents: maxPageEvents}}
	s.sc.done = s.lineDone
	if q.Before > 0 {
		err = s.backward(ctx)
	} else {
		err = s.forward(ctx)
	}
	if err != nil {
		return Result{}, err
	}
	s.res.LastSeq = s.until
	if s.res.Matches == nil {
		s.res.Matches = []Match{}
	}
	return s.res, nil
}

// All runs a forward search from q.After to the end of a log,
// calling fn with each match in seq order: search is one request (Find
// on a store, the Go client's Search on a server), called again with the cursor
// until the log is searched or fn returns an error (returned as is).
// jobrun logs --grep runs it, locally and against a server.
func All(ctx context.Context, search func(context.Context, Query) (Result, error), q Query, fn func(Match) error) error {
	if q.Before > 0 {
		return fmt.Errorf("All searches forward: %w", jobs.ErrInvalid)
	}
	if q.Limit == 0 {
		q.Limit = MaxLimit
	}
	for {
		res, err := search(ctx, q)
		if err != nil {
			return err
		}
		for _, m := range res.Matches {
			if err := fn(m); err != nil {
				return err
			}
		}
		if res.NextAfter == nil {
			return nil
		}
		q.After = *res.NextAfter
	}
}
