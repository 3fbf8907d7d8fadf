package search

import (
	"math"

	"github.com/jobrun/jobrun/jobs"
)

// MaxLine bounds the text kept of one visual line: search matches
// the first MaxLine bytes of a line's text (a page would not show
// more of it either).
const MaxLine = 1 << 20

// visualLine is one visual line of a log, as the job page shows it: the
// line events of one stream that share a line number (recorders number a
// stream's line when it starts, in increasing order, and keep the number
// for its fragments and \r frames), joined by the rule of
// ui/static/logmodel.js:
//   - a fragment (eol "") is continued by the stream's next piece;
//   - after a piece ending in "\r", the next piece with text replaces the
//     line's text (a progress bar redrawn 10,000 times shows its last
//     frame); an empty piece replaces nothing, so `100%\r` then `\n`
//     leaves the 100% frame on the line;
//   - "\n" and "\r\n" end it.
//
// Its text has the escapes stripped (search_text.go). It is a directive
// line when its pieces say so (the replacing piece decides after a "\r"),
// and a marker line when its first piece is `::endgroup::` or `^^^ +++`;
// the page hides both unless asked.
type visualLine struct {
	seq       jobs.Seq // the line's first event: the line's identity
	line      int64
	stream    jobs.Stream
	text      []byte
	ascii     bool // text is known to be ASCII (else it may be or not)
	directive bool
	marker    bool
	active    bool // the line is open: more pieces may come
	skip      bool // it started before the scan: its pieces are read past, never reported
	replace   bool // the last piece ended in "\r" (or was empty after one): the next text replaces
	full      bool // text reached MaxLine
}

// lineScanner assembles visual lines from a job's events in seq order,
// starting at any seq: the lines open at the start (one per stream at
// most) are marked skip by the caller (startedBefore) before their first
// piece is added. It calls done for each line that ends, with text valid
// only during the call.
type lineScanner struct {
	open  [4]visualLine // by streamSlot
	esc   [4]escMode    // the stream's escape parser state
	known [4]bool       // the stream's open line at the start is settled
	one   visualLine    // a line of a single plain piece, text aliasing it
	done  func(l *visualLine)
}

// reset prepares the scanner for a scan that starts at a seq where
// nothing is known of the streams' open lines.
func (sc *lineScanner) reset() {
	for k := range sc.open {
		sc.open[k].active = false
		sc.esc[k] = modeGround
		sc.known[k] = false
	}
}

// startedBefore notes that e, the first event of its stream in this scan,
// continues a line that started before the scan.
func (sc *lineScanner) startedBefore(e *jobs.Event) {
	l := &sc.open[e.Stream.Slot()]
	*l = visualLine{seq: e.Seq, line: e.Line, stream: e.Stream, text: l.text[:0], active: true, skip: true}
}

// add takes the next line event. With noNew, an event that does not
// continue an open line is left out (reading past the end of a range only
// to finish its lines).
func (sc *lineScanner) add(e *jobs.Event, noNew bool) {
	k := e.Stream.Slot()
	sc.known[k] = true
	l := &sc.open[k]
	ends := e.EOL != "" && e.EOL != "\r"
	if l.active && l.line == e.Line {
		pending := false
		switch {
		case l.skip:
		case l.replace && len(e.Data) == 0:
			pending = true // an empty piece replaces nothing
		case l.replace:
			var full bool
			l.text, sc.esc[k], full = appendText(l.text[:0], e.Data, sc.esc[k], MaxLine)
			l.full = full
			l.directive = e.Directive
		default:
			var full bool
			l.text, sc.esc[k], full = appendText(l.text, e.Data, sc.esc[k], MaxLine)
			l.full = l.full || full
			l.directive = l.directive || e.Directive
		}
		l.replace = e.EOL == "\r" || (pending && e.EOL == "")
		if e.EOL != "" {
			sc.esc[k] = modeGround
		}
		if ends {
			sc.finish(l)
		}
		return
	}
	if l.active {
		// Another line of the stream: the open one ended without a
		// terminator (the page starts a new row too).
		sc.finish(l)
	}
	if noNew {
		return
	}
	if ends && sc.esc[k] == modeGround && isPlainASCII(e.Data) {
		// The common line: one piece, nothing to strip.
		sc.one = visualLine{seq: e.Seq, line: e.Line, stream: e.Stream, text: e.Data, ascii: true,
			directive: e.Directive, marker: isMarker(e.Data), full: len(e.Data) > MaxLine}
		if sc.one.full {
			sc.one.text = sc.one.text[:MaxLine]
		}
		sc.done(&sc.one)
		return
	}
	*l = visualLine{seq: e.Seq, line: e.Line, stream: e.Stream, text: l.text[:0], directive: e.Directive, active: true}
	l.text, sc.esc[k], l.full = appendText(l.text, e.Data, sc.esc[k], MaxLine)
	l.marker = isMarker(l.text)
	l.replace = e.EOL == "\r"
	if e.EOL != "" {
		sc.esc[k] = modeGround
	}
	if ends {
		sc.finish(l)
	}
}

// finish ends line l and reports it unless it is skipped.
func (sc *lineScanner) finish(l *visualLine) {
	l.active = false
	if !l.skip {
		sc.done(l)
	}
}

// flush ends every open line (the end of the log, or of what a scan may
// read), in seq order.
func (sc *lineScanner) flush() {
	for {
		var first *visualLine
		for k := range sc.open {
			if l := &sc.open[k]; l.active && (first == nil || l.seq < first.seq) {
				first = l
			}
		}
		if first == nil {
			return
		}
		sc.finish(first)
	}
}

// minOpen returns the first seq of the earliest open line that will be
// reported, or math.MaxInt64 when there is none: every line with a smaller
// seq is decided.
func (sc *lineScanner) minOpen() jobs.Seq {
	m := jobs.Seq(math.MaxInt64)
	for k := range sc.open {
		if l := &sc.open[k]; l.active && !l.skip && l.seq < m {
			m = l.seq
		}
	}
	return m
}

// hasOpen reports whether a line that will be reported is still open.
func (sc *lineScanner) hasOpen() bool {
	return sc.minOpen() != math.MaxInt64
}
