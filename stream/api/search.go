package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Search: GET /api/jobs/{ref}/search finds the visual lines of a job's
// log (search_lines.go) whose text matches, anywhere in a log of any
// length, reading it page by page through the same store reads as the
// streams (one short read transaction each), within a budget per request
// that the client continues from with a cursor. docs/protocol.md has the
// wire form.
//
// A line's seq is the seq of its first event; lines are searched in seq
// order. A forward search (after=A) looks at the lines with seq > A, a
// backward one (before=B) at those with seq < B, nearest first; both
// answer matches in seq order. A line is decided (matched or not) once it
// ends; scanned_to is how far every line is decided, so the next request
// continues from it and no line is reported twice or missed.

// SearchSource is what Search reads: pages of events (stream.History's
// Events) and where a line starts (RangeReader's SeqOfLine), to tell
// whether the first piece of a stream that a search meets continues a
// line begun before it. *sqlite.DB satisfies it.
type SearchSource interface {
	Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error)
	SeqOfLine(ctx context.Context, id jobs.ID, line int64) (jobs.Seq, error)
}

// SearchQuery is what to look for in a job's log, and where.
type SearchQuery struct {
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
	// Limit is the most matches answered, 1..MaxSearchLimit; 0 counts the
	// matches without answering them.
	Limit int
}

// Limits of a search.
const (
	// DefaultSearchLimit is the matches answered without limit=.
	DefaultSearchLimit = 100
	// MaxSearchLimit is the largest limit= accepted.
	MaxSearchLimit = 1000
	// MaxMatchText bounds the text answered for one match; a longer line
	// is cut (at a character boundary) and marked truncated.
	MaxMatchText = 64 << 10
)

// SearchBudget bounds the work of one Search call; the zero value bounds
// nothing. Search reads at least one page (or, backward, one window)
// whatever the budget, so that every call makes progress.
type SearchBudget struct {
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
	// code units (JavaScript's string indices), at most MaxSearchRanges;
	// an RE2 match of nothing (`x*`) matches the line with no range.
	Ranges [][2]int `json:"ranges"`
}

// SearchResult is the answer of one search request.
type SearchResult struct {
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
func (q SearchQuery) Check() error {
	_, err := q.compile()
	return err
}

func (q SearchQuery) compile() (*matcher, error) {
	if q.Limit < 0 || q.Limit > MaxSearchLimit {
		return nil, fmt.Errorf("limit %d: want 0 to %d: %w", q.Limit, MaxSearchLimit, jobs.ErrInvalid)
	}
	if q.After < 0 || q.Before < 0 {
		return nil, fmt.Errorf("after %d, before %d: want seqs: %w", q.After, q.Before, jobs.ErrInvalid)
	}
	return newMatcher(q.Text, q.Regex, q.Case)
}

// Search searches job j's log as stored up to j.LastSeq. Its errors are
// the store's, ctx's, and for a bad query one wrapping jobs.ErrInvalid.
func Search(ctx context.Context, src SearchSource, j jobs.Job, q SearchQuery, b SearchBudget) (SearchResult, error) {
	m, err := q.compile()
	if err != nil {
		return SearchResult{}, err
	}
	s := &searcher{src: src, id: j.ID, until: j.LastSeq, q: q, m: m, budget: b, start: time.Now()}
	s.sc.done = s.lineDone
	if q.Before > 0 {
		err = s.backward(ctx)
	} else {
		err = s.forward(ctx)
	}
	if err != nil {
		return SearchResult{}, err
	}
	s.res.LastSeq = s.until
	if s.res.Matches == nil {
		s.res.Matches = []Match{}
	}
	return s.res, nil
}

// parseSearchQuery reads the parameters of GET /api/jobs/{ref}/search.
func parseSearchQuery(r *http.Request) (SearchQuery, error) {
	v := r.URL.Query()
	q := SearchQuery{Text: v.Get("q"), Limit: DefaultSearchLimit}
	var err error
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"regex", &q.Regex}, {"case", &q.Case}, {"directives", &q.Directives}} {
		if *f.dst, err = boolParam(v.Get(f.name), f.name); err != nil {
			return q, err
		}
	}
	switch st := v.Get("stream"); st {
	case "":
	case string(jobs.StreamStdout), string(jobs.StreamStderr), string(jobs.StreamTTY):
		q.Stream = jobs.Stream(st)
	default:
		return q, fmt.Errorf("stream=%q: want stdout, stderr or tty: %w", st, jobs.ErrInvalid)
	}
	if v.Has("after") && v.Has("before") {
		return q, fmt.Errorf("after and before: give one of them: %w", jobs.ErrInvalid)
	}
	n, err := intParam(v.Get("after"), "after", 0, 0, 1<<62)
	if err != nil {
		return q, err
	}
	q.After = jobs.Seq(n)
	if n, err = intParam(v.Get("before"), "before", 0, 1, 1<<62); err != nil {
		return q, err
	}
	q.Before = jobs.Seq(n)
	if n, err = intParam(v.Get("limit"), "limit", DefaultSearchLimit, 0, MaxSearchLimit); err != nil {
		return q, err
	}
	q.Limit = int(n)
	return q, nil
}

// serveSearch serves GET /api/jobs/{ref}/search.
func (s *Server) serveSearch(w http.ResponseWriter, r *http.Request) {
	q, err := parseSearchQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := q.Check(); err != nil {
		s.writeError(w, r, err) // before looking the job up: a bad query is 400 whatever the job
		return
	}
	ctx := r.Context()
	j, err := s.lookup(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := Search(ctx, s.Store, j, q, SearchBudget{Time: s.searchTime(), Events: s.SearchEvents})
	if err != nil {
		if ctx.Err() != nil {
			return // the client left (a page's next keystroke)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, res)
}

func (s *Server) searchTime() time.Duration {
	if s.SearchTime > 0 {
		return s.SearchTime
	}
	return time.Second
}

// SearchAll runs a forward search from q.After to the end of a log,
// calling fn with each match in seq order: search is one request (Search
// on a store, Client.Search on a server), called again with the cursor
// until the log is searched or fn returns an error (returned as is).
// jobrun logs --grep runs it, locally and against a server.
func SearchAll(ctx context.Context, search func(context.Context, SearchQuery) (SearchResult, error), q SearchQuery, fn func(Match) error) error {
	if q.Before > 0 {
		return fmt.Errorf("SearchAll searches forward: %w", jobs.ErrInvalid)
	}
	if q.Limit == 0 {
		q.Limit = MaxSearchLimit
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
