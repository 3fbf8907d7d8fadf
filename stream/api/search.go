package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

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

// backward search windows, in events: a window is read forward in one
// piece, starting small and doubling.
const (
	minSearchWindow = 16 << 10
	maxSearchWindow = 256 << 10
)

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

// searcher is one Search call.
type searcher struct {
	src    SearchSource
	id     jobs.ID
	until  jobs.Seq // the end of the log searched
	q      SearchQuery
	m      *matcher
	budget SearchBudget
	start  time.Time
	events int // read so far
	pages  ranger
	sc     lineScanner

	// Lines that matched wait in pending until no open line comes before
	// them, then go to emit in seq order.
	pending []Match
	emit    func(Match) bool // false: stop (the limit is reached)
	stopped bool
	bytes   int // text answered

	res SearchResult
}

// spent reports whether the budget is used up.
func (s *searcher) spent() bool {
	return (s.budget.Events > 0 && s.events >= s.budget.Events) ||
		(s.budget.Time > 0 && time.Since(s.start) >= s.budget.Time)
}

// lineDone takes a finished line from the scanner.
func (s *searcher) lineDone(l *visualLine) {
	if s.stopped || ((l.directive || l.marker) && !s.q.Directives) {
		return
	}
	var ranges [][2]int
	ranges, ok := s.m.match(l.text, ranges)
	if !ok {
		return
	}
	mt := Match{Seq: l.seq, Line: l.line, Stream: l.stream, Ranges: ranges}
	if s.q.Limit > 0 {
		text := l.text
		if len(text) > MaxMatchText {
			cut := MaxMatchText
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
			text = text[:cut]
		}
		mt.Text = string(text)
		mt.Truncated = len(text) < len(l.text) || l.full
	}
	if mt.Ranges == nil {
		mt.Ranges = [][2]int{}
	}
	i, _ := slices.BinarySearchFunc(s.pending, mt.Seq, func(a Match, seq jobs.Seq) int { return int(a.Seq - seq) })
	s.pending = slices.Insert(s.pending, i, mt)
}

// release emits the pending matches that no open line comes before.
func (s *searcher) release() {
	lo := s.sc.minOpen()
	n := 0
	for n < len(s.pending) && s.pending[n].Seq < lo && !s.stopped {
		if !s.emit(s.pending[n]) {
			s.stopped = true
		}
		n++
	}
	s.pending = s.pending[n:]
}

// read reads the events after cursor, at most want of them and none past
// until; none means the end. The caller counts them (s.events).
func (s *searcher) read(ctx context.Context, cursor jobs.Seq, want int) ([]jobs.Event, error) {
	n := s.pages.pageSize(int(min(jobs.Seq(want), s.until-cursor)))
	evs, err := s.src.Events(ctx, s.id, cursor, n)
	if err != nil {
		return nil, err
	}
	if err := checkRun(s.id, evs, cursor+1); err != nil {
		return nil, err
	}
	if len(evs) > 0 && evs[len(evs)-1].Seq > s.until {
		evs = evs[:s.until-evs[0].Seq+1]
	}
	s.pages.measure(evs)
	return evs, nil
}

// readAhead reads the pages of events after..to in a goroutine, one page
// ahead of the caller, so that the store's reading and the matching use
// two cores. While it runs it alone calls s.read.
type readAhead struct {
	pages chan pageRead
	stop  context.CancelFunc
	done  chan struct{}
}

type pageRead struct {
	evs []jobs.Event
	err error
}

func (s *searcher) readAhead(ctx context.Context, after, to jobs.Seq) *readAhead {
	ctx, cancel := context.WithCancel(ctx)
	ra := &readAhead{pages: make(chan pageRead, 1), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(ra.done)
		defer close(ra.pages)
		for cursor := after; cursor < to; {
			evs, err := s.read(ctx, cursor, int(min(to-cursor, rangePageEvents)))
			select {
			case ra.pages <- pageRead{evs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(evs) == 0 {
				return
			}
			cursor = evs[len(evs)-1].Seq
		}
	}()
	return ra
}

// next returns the next page, none at the end.
func (ra *readAhead) next() ([]jobs.Event, error) {
	p := <-ra.pages
	return p.evs, p.err
}

// close stops the reading and waits for it.
func (ra *readAhead) close() {
	ra.stop()
	<-ra.done
}

// settle marks the lines that the first event of each stream in evs
// continues from before the scan's start, asking the store where each
// such line starts.
func (s *searcher) settle(ctx context.Context, evs []jobs.Event, start jobs.Seq) error {
	for i := range evs {
		e := &evs[i]
		if e.Type != jobs.TypeLine || (s.q.Stream != "" && e.Stream != s.q.Stream) {
			continue
		}
		k := streamSlot(e.Stream)
		if s.sc.known[k] {
			continue
		}
		s.sc.known[k] = true
		if start <= 1 {
			continue
		}
		first, err := s.src.SeqOfLine(ctx, s.id, e.Line)
		if err != nil {
			return err
		}
		if first > 0 && first < start {
			s.sc.startedBefore(e)
		}
	}
	return nil
}

// feed adds evs to the scanner, emitting what it can, until stopped; it
// returns how many it took.
func (s *searcher) feed(evs []jobs.Event, noNew bool) int {
	for i := range evs {
		e := &evs[i]
		if e.Type != jobs.TypeLine || (s.q.Stream != "" && e.Stream != s.q.Stream) {
			continue
		}
		s.sc.add(e, noNew)
		if len(s.pending) > 0 {
			s.release()
			if s.stopped {
				return i + 1
			}
		}
	}
	return len(evs)
}

// answer is the emit of an answer: it keeps the match when the limit and
// MaxAnswerBytes allow (the first always), and reports whether to go on.
func (s *searcher) answer(mt Match) bool {
	s.res.Count++
	if s.q.Limit == 0 {
		return true
	}
	s.res.Matches = append(s.res.Matches, mt)
	s.bytes += len(mt.Text) + 64
	return len(s.res.Matches) < s.q.Limit && s.bytes < MaxAnswerBytes
}

// forward searches the lines with seq > q.After.
func (s *searcher) forward(ctx context.Context) error {
	after := s.q.After
	s.emit = s.answer
	s.sc.reset()
	cursor := after
	ra := s.readAhead(ctx, after, s.until)
	defer ra.close()
	for cursor < s.until && !s.stopped {
		if cursor > after && s.spent() {
			break
		}
		evs, err := ra.next()
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			cursor = s.until // the store holds no more: that is the end
			break
		}
		s.events += len(evs)
		if err := s.settle(ctx, evs, after+1); err != nil {
			return err
		}
		n := s.feed(evs, false)
		cursor = evs[n-1].Seq
	}
	scanned := cursor
	switch {
	case s.stopped:
		scanned = s.res.Matches[len(s.res.Matches)-1].Seq
	case cursor >= s.until:
		s.sc.flush()
		s.release()
		if s.stopped {
			scanned = s.res.Matches[len(s.res.Matches)-1].Seq
		}
	default:
		// The budget ran out: the lines still open are decided when a
		// later request reads them whole, unless one of them holds back
		// all progress; then it is decided on what was read of it.
		if lo := s.sc.minOpen(); lo-1 > after {
			scanned = min(lo-1, cursor)
		} else {
			s.sc.flush()
			s.release()
			if s.stopped {
				scanned = s.res.Matches[len(s.res.Matches)-1].Seq
			}
		}
	}
	s.res.ScannedTo = scanned
	if scanned < s.until {
		s.res.NextAfter = seqPtr(scanned)
	} else if after == 0 {
		s.res.Total = &s.res.Count
	}
	first := after + 1
	if len(s.res.Matches) > 0 {
		first = s.res.Matches[0].Seq
	}
	if first > 1 {
		s.res.NextBefore = seqPtr(first)
	}
	return nil
}

// backward searches the lines with seq < q.Before, nearest first: it
// reads windows of the log forward, each ending where the previous one
// began, and keeps the last matches of each.
func (s *searcher) backward(ctx context.Context) error {
	end := min(s.q.Before, s.until+1) // the lines searched have seq < end
	window := minSearchWindow
	if s.budget.Events > 0 {
		window = max(min(window, s.budget.Events), 1)
	}
	var last lastMatches // of the current window
	s.emit = func(mt Match) bool {
		s.res.Count++
		last.add(mt)
		return true
	}
	var found [][]Match // per window, the nearest first
	full := false       // the limit is reached
	scanned, hi := end, end
	for hi > 1 && !full {
		if hi < end && s.spent() {
			break
		}
		lo := max(hi-jobs.Seq(window), 1)
		if s.q.Limit > 0 {
			last.reset(s.q.Limit - len(s.res.Matches))
		}
		if err := s.window(ctx, lo, hi); err != nil {
			return err
		}
		scanned, hi = lo, lo
		if s.q.Limit > 0 {
			kept := last.items()
			found = append(found, kept)
			s.res.Matches = append(s.res.Matches, kept...) // counted; put in order below
			if full = len(s.res.Matches) == s.q.Limit; full {
				scanned = kept[0].Seq
			}
		}
		window = min(window*2, maxSearchWindow)
	}
	if s.q.Limit > 0 {
		s.res.Matches = s.res.Matches[:0]
		for i := len(found) - 1; i >= 0; i-- {
			s.res.Matches = append(s.res.Matches, found[i]...)
		}
		s.res.Count = len(s.res.Matches)
		// Within MaxAnswerBytes: drop the farthest matches.
		bytes := 0
		for i := len(s.res.Matches) - 1; i >= 0; i-- {
			if bytes += len(s.res.Matches[i].Text) + 64; bytes > MaxAnswerBytes && i < len(s.res.Matches)-1 {
				s.res.Matches = s.res.Matches[i+1:]
				s.res.Count = len(s.res.Matches)
				scanned, full = s.res.Matches[0].Seq, true
				break
			}
		}
	}
	s.res.ScannedTo = scanned
	if scanned > 1 {
		s.res.NextBefore = seqPtr(scanned)
	} else if end > s.until && !full {
		s.res.Total = &s.res.Count
	}
	next := end - 1
	if n := len(s.res.Matches); n > 0 {
		next = s.res.Matches[n-1].Seq
	}
	if next < s.until {
		s.res.NextAfter = seqPtr(next)
	}
	return nil
}

// lastMatches keeps the last n matches added (a ring).
type lastMatches struct {
	buf  []Match
	next int // where the next one goes
	full bool
}

func (r *lastMatches) reset(n int) {
	r.buf, r.next, r.full = make([]Match, n), 0, false
}

func (r *lastMatches) add(mt Match) {
	if len(r.buf) == 0 {
		return
	}
	r.buf[r.next] = mt
	if r.next++; r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// items returns the matches kept, in the order added.
func (r *lastMatches) items() []Match {
	if !r.full {
		return r.buf[:r.next:r.next]
	}
	return append(r.buf[r.next:len(r.buf):len(r.buf)], r.buf[:r.next]...)
}

// window scans the lines with lo <= seq < hi, reading on past hi only to
// finish the lines begun before it.
func (s *searcher) window(ctx context.Context, lo, hi jobs.Seq) error {
	s.sc.reset()
	s.pending = s.pending[:0]
	cursor := lo - 1
	ra := s.readAhead(ctx, cursor, hi-1)
	for cursor < hi-1 {
		evs, err := ra.next()
		if err != nil {
			ra.close()
			return err
		}
		if len(evs) == 0 {
			break
		}
		s.events += len(evs)
		if err := s.settle(ctx, evs, lo); err != nil {
			ra.close()
			return err
		}
		s.feed(evs, false)
		cursor = evs[len(evs)-1].Seq
	}
	ra.close() // before reading here
	for want := 256; s.sc.hasOpen() && cursor < s.until; want = min(want*2, rangePageEvents) {
		evs, err := s.read(ctx, cursor, want)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		s.events += len(evs)
		s.feed(evs, true)
		cursor = evs[len(evs)-1].Seq
	}
	s.sc.flush()
	s.release()
	return ctx.Err()
}

func seqPtr(s jobs.Seq) *jobs.Seq { return &s }

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
