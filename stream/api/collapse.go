package api

import (
	"context"
	"math"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// CollapseWindow bounds how far collapse=1 looks ahead: a piece of a `\r`
// frame is left out only when the line event that replaces the frame comes
// at most this many seqs after the piece. It bounds what a collapsing
// reader holds back (this many events) whatever the log.
const CollapseWindow = 128

// The collapse rule (docs/protocol.md, "Collapse"). Take one stream's line
// events in seq order. A frame is a run of them on one visual line that ends
// with a piece whose eol is "\r" and starts after the stream's previous
// piece that ended in "\r", "\n" or "\r\n": the fragments (eol "") and the
// "\r" piece that a terminal draws before returning to the start of the
// line. The frame's replacement is the stream's first line event N after
// its "\r" piece whose text is not empty, provided that the events of the
// stream in between are all empty pieces on the same line that do not end
// it (eol "" or "\r"): an empty piece replaces nothing, so a frame followed
// by an empty "\n" or "\r\n" piece (`100%\r`, then `\n`) is the last
// frame of its line and stays. A piece P of a frame is left out when its
// frame's replacement N exists in the history being collapsed, is on the
// same line (always so, since "\r" leaves the line open) and
// N.seq - P.seq <= CollapseWindow. N replaces the whole frame on the page,
// so leaving the frame out changes nothing that is shown. Every other event
// is kept: "\n"/"\r\n" pieces, the pieces of the last frame of a line,
// events beyond the history, and every event that is not a line.

// collapseMarks sets keep[i] for evs[i], which are contiguous and all part
// of the history (seq <= until), and returns how many leading events it
// decided for good: all of them when evs reach until, else those whose
// CollapseWindow lies inside evs. keep has len(evs) elements.
func collapseMarks(evs []jobs.Event, until jobs.Seq, keep []bool) int {
	var next [4]jobs.Seq  // the stream's next line event after i (0: none in evs)
	var nextLine [4]int64 // and its line
	var text [4]jobs.Seq  // the replacement of a "\r" piece at i (0: none in evs)
	var textLine [4]int64 // and its line
	var repl [4]jobs.Seq  // the event replacing the frame that i belongs to (0: none)
	for i := len(evs) - 1; i >= 0; i-- {
		e := &evs[i]
		keep[i] = true
		if e.Type != jobs.TypeLine {
			continue
		}
		k := e.Stream.Slot()
		switch {
		case next[k] == 0 || nextLine[k] != e.Line:
			repl[k] = 0
		case e.EOL == "\r":
			repl[k] = 0
			if textLine[k] == e.Line {
				repl[k] = text[k]
			}
		case e.EOL == "":
			// A fragment belongs to the frame of the stream's next piece.
		default:
			repl[k] = 0
		}
		if r := repl[k]; r != 0 && r-e.Seq <= CollapseWindow {
			keep[i] = false
		}
		next[k], nextLine[k] = e.Seq, e.Line
		switch {
		case len(e.Data) > 0:
			text[k], textLine[k] = e.Seq, e.Line
		case e.EOL != "" && e.EOL != "\r", textLine[k] != e.Line:
			// An empty piece that ends the line, or one on another line
			// than the text after it: no replacement reaches past it.
			text[k] = 0
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].Seq >= until {
		return len(evs)
	}
	last := evs[len(evs)-1].Seq
	n := 0
	for n < len(evs) && evs[n].Seq+CollapseWindow <= last {
		n++
	}
	return n
}

// collapser applies the collapse rule to the history part (seq <= until)
// of a job's events, pushed in seq order, holding back at most
// CollapseWindow events that it cannot decide yet.
type collapser struct {
	until jobs.Seq
	held  []jobs.Event // undecided history events, contiguous
	keep  []bool       // scratch for collapseMarks
}

// push adds history events (contiguous with what was pushed before, all
// seq <= until) and appends the ones decided to be kept to out.
func (c *collapser) push(evs []jobs.Event, out []jobs.Event) []jobs.Event {
	c.held = append(c.held, evs...)
	n := len(c.held)
	if cap(c.keep) < n {
		c.keep = make([]bool, n)
	}
	keep := c.keep[:n]
	d := collapseMarks(c.held, c.until, keep)
	for i := range d {
		if keep[i] {
			out = append(out, c.held[i])
		}
	}
	rest := copy(c.held, c.held[d:])
	clear(c.held[rest:])
	c.held = c.held[:rest]
	return out
}

// source is what a stream transport reads batches from: a
// stream.Subscription, or a collapsedFeed around one.
type source interface {
	// NextWithin returns the next batch, or context.DeadlineExceeded when
	// none came within d (see stream.Subscription.NextWithin).
	NextWithin(ctx context.Context, d time.Duration) (*stream.Batch, error)
}

// collapsedFeed is a Subscription with the collapse rule applied to the
// history (events with seq <= until, stored when the request came); live
// events pass through as published, sharing their encoding.
type collapsedFeed struct {
	sub       *stream.Subscription
	c         collapser
	cursor    jobs.Seq // the last seq taken from sub
	out       []*stream.Batch
	pageBytes int
}

// newSource returns what a stream request reads: sub itself, or, with
// collapse, sub collapsed up to until, cut into messages of about
// pageBytes.
func newSource(sub *stream.Subscription, after, until jobs.Seq, collapse bool, pageBytes int) source {
	if !collapse || after >= until {
		return sub
	}
	return &collapsedFeed{sub: sub, c: collapser{until: until}, cursor: after, pageBytes: pageBytes}
}

// NextWithin returns the next batch to send, as Subscription.NextWithin
// does; batches
// of the history may have holes in seq.
func (f *collapsedFeed) NextWithin(ctx context.Context, d time.Duration) (*stream.Batch, error) {
	for {
		if len(f.out) > 0 {
			b := f.out[0]
			f.out[0] = nil
			f.out = f.out[1:]
			return b, nil
		}
		if f.cursor >= f.c.until && len(f.c.held) == 0 {
			return f.sub.NextWithin(ctx, d)
		}
		b, err := f.sub.NextWithin(ctx, d)
		if err != nil {
			return nil, err
		}
		evs := b.Events
		hist := len(evs)
		if b.Last > f.c.until {
			hist = max(int(f.c.until-b.First+1), 0)
		}
		kept := f.c.push(evs[:hist], nil)
		f.cursor = b.Last
		f.out = append(f.out, stream.PrivateBatches(kept, f.pageBytes)...)
		if hist < len(evs) {
			// The live part as one batch of its own, whatever its size,
			// as the Hub published it.
			f.out = append(f.out, stream.PrivateBatches(evs[hist:], math.MaxInt)...)
		}
		b.Recycle()
	}
}
