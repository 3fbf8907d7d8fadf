package api

import (
	"context"
	"fmt"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// RangeReader is what range reads need beyond stream.History: the pages a log
// viewer asks for when it opens at the end, scrolls up or jumps to a line.
// *sqlite.DB satisfies it.
type RangeReader interface {
	// Tail returns the last n events of job id, in seq order.
	Tail(ctx context.Context, id jobs.ID, n int) ([]jobs.Event, error)
	// EventsBefore returns the (at most) n events of job id right before
	// seq before, in seq order.
	EventsBefore(ctx context.Context, id jobs.ID, before jobs.Seq, n int) ([]jobs.Event, error)
	// SeqOfLine returns the seq of the first event of job id whose visual
	// line is at least line, or 0 when there is none.
	SeqOfLine(ctx context.Context, id jobs.ID, line int64) (jobs.Seq, error)
}

// Limits of one range read or long-poll answer.
const (
	// DefaultLimit is the events a range read answers without limit=.
	DefaultLimit = 1000
	// MaxLimit is the largest limit= (and tail=) accepted.
	MaxLimit = 10000
	// MaxAnswerBytes bounds one answer: a range read stops adding events
	// once they hold about this many bytes (jobs.Event.Size), answering at
	// least one event when there is one, so that huge lines cannot make an
	// answer of limit events hundreds of megabytes.
	MaxAnswerBytes = 4 << 20
)

// rangePage bounds one store read of a range: about this many bytes, at
// most rangePageEvents events.
const (
	rangePageBytes  = 1 << 20
	rangePageEvents = 8192
)

// ranger reads the ranges of one job for one request.
type ranger struct {
	h     stream.History
	rr    RangeReader
	id    jobs.ID
	until jobs.Seq // the job's last seq when the request came: the history
	pages jobs.PageSizer
}

// newRanger reads job id's ranges up to until.
func newRanger(h stream.History, rr RangeReader, id jobs.ID, until jobs.Seq) ranger {
	return ranger{h: h, rr: rr, id: id, until: until, pages: jobs.PageSizer{Bytes: rangePageBytes, MaxEvents: rangePageEvents}}
}

// pageSize returns how many events to read next: about rangePageBytes.
func (g *ranger) pageSize(want int) int { return g.pages.Next(want) }

func (g *ranger) measure(evs []jobs.Event) { g.pages.Measure(evs) }

// budget tracks the size of an answer.
type budget struct {
	limit, bytes int
	n            int // events taken
	used         int // bytes taken
}

// take reports whether one more event of size sz fits; the first always
// does.
func (b *budget) take(sz int) bool {
	if b.n >= b.limit || (b.n > 0 && b.used+sz > b.bytes) {
		return false
	}
	b.n++
	b.used += sz
	return true
}

func (b *budget) full() bool { return b.n >= b.limit || b.used >= b.bytes }

// forward returns the events after seq after, in seq order, within limit
// and MaxAnswerBytes. With collapse it reads the history only (seq <=
// until) and leaves out replaced frames; without, it reads whatever is
// stored.
func (g *ranger) forward(ctx context.Context, after jobs.Seq, limit int, collapse bool) ([]jobs.Event, error) {
	b := budget{limit: limit, bytes: MaxAnswerBytes}
	c := collapser{until: g.until}
	var out []jobs.Event
	cursor := after
	for !b.full() {
		want := limit - b.n
		if collapse {
			if cursor >= g.until {
				break
			}
			want = int(min(g.until-cursor, rangePageEvents))
		}
		n := g.pageSize(want)
		evs, err := g.h.Events(ctx, g.id, cursor, n)
		if err != nil {
			return nil, err
		}
		if err := jobs.CheckRun(g.id, evs, cursor+1); err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		g.measure(evs)
		cursor = evs[len(evs)-1].Seq
		if collapse {
			if cursor > g.until {
				evs = evs[:g.until-evs[0].Seq+1]
				cursor = g.until
			}
			evs = c.push(evs, nil)
		}
		for i := range evs {
			if !b.take(evs[i].Size()) {
				return out, nil
			}
			out = append(out, evs[i])
		}
		if !collapse && len(evs) < n {
			break // the end of what is stored
		}
	}
	return out, nil
}

// backward returns the events before seq before, in seq order: the ones
// closest to it within limit and MaxAnswerBytes, reading back from it page
// by page. first, when not nil, is the first page (a Tail). With collapse it
// reads the history only and leaves out replaced frames.
func (g *ranger) backward(ctx context.Context, before jobs.Seq, limit int, collapse bool, first []jobs.Event) ([]jobs.Event, error) {
	b := budget{limit: limit, bytes: MaxAnswerBytes}
	if collapse && before > g.until+1 {
		before = g.until + 1
	}
	// With collapse, the decisions about a page need the CollapseWindow
	// events after it: ahead holds them (the first ones after lo).
	var ahead []jobs.Event
	if collapse && before <= g.until {
		n := int(min(g.until-before+1, CollapseWindow))
		evs, err := g.h.Events(ctx, g.id, before-1, n)
		if err != nil {
			return nil, err
		}
		if err := jobs.CheckRun(g.id, evs, before); err != nil {
			return nil, err
		}
		ahead = evs
	}
	var pages [][]jobs.Event // kept events, newest page first
	lo := before
	keep := []bool(nil)
	for !b.full() && lo > 1 {
		var page []jobs.Event
		if first != nil {
			page, first = first, nil
			if len(page) > 0 && page[len(page)-1].Seq >= lo {
				return nil, fmt.Errorf("tail of job %d ends at seq %d, want before %d", g.id, page[len(page)-1].Seq, lo)
			}
		} else {
			want := limit - b.n
			if collapse {
				want = rangePageEvents
			}
			var err error
			page, err = g.rr.EventsBefore(ctx, g.id, lo, g.pageSize(want))
			if err != nil {
				return nil, err
			}
		}
		if len(page) == 0 {
			break
		}
		if err := jobs.CheckRun(g.id, page, page[0].Seq); err != nil {
			return nil, err
		}
		if page[len(page)-1].Seq != lo-1 {
			return nil, fmt.Errorf("events of job %d before seq %d end at seq %d", g.id, lo, page[len(page)-1].Seq)
		}
		g.measure(page)
		lo = page[0].Seq
		kept := page
		if collapse {
			window := append(page[:len(page):len(page)], ahead...)
			if cap(keep) < len(window) {
				keep = make([]bool, len(window))
			}
			collapseMarks(window, g.until, keep[:len(window)])
			kept = kept[:0:0]
			for i := range page {
				if keep[i] {
					kept = append(kept, page[i])
				}
			}
			ahead = window[:min(len(window), CollapseWindow)]
		}
		// Take from the newest down.
		i := len(kept)
		for i > 0 && b.take(kept[i-1].Size()) {
			i--
		}
		pages = append(pages, kept[i:])
		if i > 0 {
			break
		}
	}
	var out []jobs.Event
	for i := len(pages) - 1; i >= 0; i-- {
		out = append(out, pages[i]...)
	}
	return out, nil
}
