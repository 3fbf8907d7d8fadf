package search

import (
	"context"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jobrun/jobrun/jobs"
)

// How Search reads: forward, page after page from after=, one page read
// ahead (readAhead); backward, in windows that end where the previous one
// began, each read forward. Lines are assembled by a lineScanner, matched
// when they end, and released in seq order once no open line comes before
// them (pending), so that what is answered and where the cursor stands
// never depend on how the log was paged.

// searchPageEvents is the most events of one read: the most a store
// chunk holds (store.MaxChunkEvents), which *sqlite.DB decodes into a
// slice of that capacity without growing it.
const searchPageEvents = 4096

// backward search windows, in events: a window is read forward in one
// piece, starting small and doubling.
const (
	minSearchWindow = 16 << 10
	maxSearchWindow = 256 << 10
)

// searcher is one Search call.
type searcher struct {
	src    Source
	id     jobs.ID
	until  jobs.Seq // the end of the log searched
	q      Query
	m      *matcher
	budget Budget
	start  time.Time
	events int // read so far
	pages  jobs.PageSizer
	sc     lineScanner

	// Lines that matched wait in pending until no open line comes before
	// them, then go to emit in seq order.
	pending []Match
	emit    func(Match) bool // false: stop (the limit is reached)
	stopped bool
	bytes   int // text answered

	res Result
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
	ranges, ok := s.m.match(l.text, l.ascii, ranges)
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
	n := s.pages.Next(int(min(jobs.Seq(want), s.until-cursor)))
	evs, err := s.src.Events(ctx, s.id, cursor, n)
	if err != nil {
		return nil, err
	}
	if err := jobs.CheckRun(s.id, evs, cursor+1); err != nil {
		return nil, err
	}
	if len(evs) > 0 && evs[len(evs)-1].Seq > s.until {
		evs = evs[:s.until-evs[0].Seq+1]
	}
	s.pages.Measure(evs)
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
			evs, err := s.read(ctx, cursor, int(min(to-cursor, searchPageEvents)))
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
		k := e.Stream.Slot()
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
		s.res.Total = intPtr(s.res.Count)
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
		s.res.Total = intPtr(s.res.Count)
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
	for want := 256; s.sc.hasOpen() && cursor < s.until; want = min(want*2, maxPageEvents) {
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

func intPtr(n int) *int { return &n }

// MaxAnswerBytes bounds the text of one call's matches: it stops adding
// matches once they hold about this many bytes (the first always).
const MaxAnswerBytes = 4 << 20

// Page sizes of the reads: about pageBytes, at most maxPageEvents.
const (
	pageBytes     = 1 << 20
	maxPageEvents = 8192
)
