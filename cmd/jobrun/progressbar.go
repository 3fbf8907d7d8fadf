package main

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// progressBar keeps a one-line progress bar at the bottom of a terminal
// while `jobrun logs -f` writes the job's output above it: before output
// it clears the bar's line, after it draws the bar again, but only when
// the output ends at the start of a line (drawing over a partial line, or
// the job's own \r bar, would garble it). Progress events update it; they
// are never written as output.
type progressBar struct {
	out   *bufio.Writer
	width func() int // the terminal's width in columns

	shown       bool // the bar is on the screen, the cursor at its end
	atLineStart bool // the output written so far ends with a newline

	have     bool // a progress value is known
	p        progress.Report
	est      progress.Estimate
	seedETA  *float64 // from the job row, until events give an estimate
	expected *float64 // the job's expected_seconds
}

// newProgressBar returns a bar for f if it is a terminal, else nil. job
// seeds it with the job's stored progress (when the events that made it
// are not replayed) and expected duration.
func newProgressBar(out *bufio.Writer, f *os.File, job jobs.Job, replayAll bool) *progressBar {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	b := &progressBar{out: out, atLineStart: true, expected: job.ExpectedSeconds, width: func() int {
		w, _, err := term.GetSize(fd)
		if err != nil || w <= 0 {
			return 80
		}
		return w
	}}
	if jp := job.Progress; jp != nil && !replayAll {
		b.have = true
		b.p = progress.Report{Percent: jp.Percent, Message: jp.Message, State: jp.State}
		b.seedETA = jp.ETASeconds
	}
	return b
}

// update takes a progress event.
func (b *progressBar) update(e *jobs.Event) {
	if e.Progress == nil {
		return
	}
	b.have, b.p, b.seedETA = true, *e.Progress, nil
	b.est.Add(*e.Progress, e.Time)
}

// wrote records output bytes that ended with eol.
func (b *progressBar) wrote(eol string) {
	b.atLineStart = eol == "\n" || eol == "\r\n"
}

// clear removes the bar before output is written.
func (b *progressBar) clear() {
	if b.shown {
		b.out.WriteString("\r\x1b[2K")
		b.shown = false
	}
}

// draw shows the bar if there is something to show and the output is at
// the start of a line.
func (b *progressBar) draw() {
	if !b.atLineStart || b.shown {
		return
	}
	line := b.text(b.width() - 1) // never the last column: no wrap
	if line == "" {
		return
	}
	b.out.WriteString("\x1b[7m" + line + "\x1b[0m")
	b.shown = true
}

// text is the bar's line, at most width columns.
func (b *progressBar) text(width int) string {
	var s strings.Builder
	switch {
	case b.have:
		const cells = 20
		filled := int(math.Round(b.p.Percent / 100 * cells))
		if b.p.State == progress.StateIndeterminate {
			s.WriteString("[" + strings.Repeat("?", cells) + "]")
		} else {
			s.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat("-", cells-filled) + "] ")
			s.WriteString(formatPercent(b.p.Percent))
		}
		if st := b.p.State; st == progress.StateError || st == progress.StatePaused {
			s.WriteString(" " + st)
		}
		if eta, ok := b.eta(); ok {
			s.WriteString(" · ETA " + formatSeconds(eta))
		}
		if b.p.Message != "" {
			s.WriteString(" · " + b.p.Message)
		}
	case b.expected != nil:
		s.WriteString("usually takes " + formatSeconds(*b.expected))
	default:
		return ""
	}
	return clipColumns(s.String(), width)
}

// eta is the estimated seconds left, while the progress is in state
// normal.
func (b *progressBar) eta() (float64, bool) {
	if st := b.p.State; st != "" && st != progress.StateNormal {
		return 0, false
	}
	if d, ok := b.est.ETA(); ok {
		return d.Seconds(), true
	}
	if b.seedETA != nil {
		return *b.seedETA, true
	}
	return 0, false
}

// clipColumns cuts s to n runes (every rune of the bar is one column,
// except wide ones in messages, which may make it a little longer).
func clipColumns(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// formatPercent shows a percent with at most one decimal: "45%", "45.5%".
func formatPercent(p float64) string {
	return strconv.FormatFloat(math.Round(p*10)/10, 'f', -1, 64) + "%"
}

// formatSeconds shows a duration in seconds as "42s", "4m10s", "2h05m".
func formatSeconds(s float64) string {
	d := time.Duration(math.Round(s)) * time.Second
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m" + pad2(int(d.Seconds())%60) + "s"
	default:
		return strconv.Itoa(int(d.Hours())) + "h" + pad2(int(d.Minutes())%60) + "m"
	}
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}
