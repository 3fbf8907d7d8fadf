package api

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// piece is shorthand for a test line event: stream o (stdout), e (stderr)
// or t (tty), its line, and its terminator; "p" is a progress event. The
// capital letters O, E and T are the same streams with empty text (the
// "\n" after a last frame `100%\r`).
type piece struct {
	s    byte
	line int64
	eol  string
}

func mkEvents(ps []piece) []jobs.Event {
	evs := make([]jobs.Event, len(ps))
	for i, p := range ps {
		e := jobs.Event{Seq: jobs.Seq(i + 1), Time: time.Unix(0, 0), Type: jobs.TypeLine, Line: p.line, EOL: p.eol,
			Data: fmt.Appendf(nil, "piece %d", i+1)}
		if p.s >= 'A' && p.s <= 'Z' {
			e.Data = nil
			p.s += 'a' - 'A'
		}
		switch p.s {
		case 'o':
			e.Stream = jobs.StreamStdout
		case 'e':
			e.Stream = jobs.StreamStderr
		case 't':
			e.Stream = jobs.StreamTTY
		case 'p':
			e = jobs.Event{Seq: e.Seq, Time: e.Time, Type: jobs.TypeProgress, Progress: &progress.Report{Percent: 1}}
		}
		evs[i] = e
	}
	return evs
}

// marks returns the keep flags as a string: k kept, - left out.
func marks(evs []jobs.Event, until jobs.Seq) (string, int) {
	keep := make([]bool, len(evs))
	n := collapseMarks(evs, until, keep)
	var b strings.Builder
	for _, k := range keep {
		if k {
			b.WriteByte('k')
		} else {
			b.WriteByte('-')
		}
	}
	return b.String(), n
}

func TestCollapseRule(t *testing.T) {
	bar := func(n int) []piece {
		var ps []piece
		for range n {
			ps = append(ps, piece{'o', 1, "\r"})
		}
		return ps
	}
	spacer := func(n int) []piece {
		var ps []piece
		for i := range n {
			ps = append(ps, piece{'e', int64(i + 2), "\n"})
		}
		return ps
	}
	cat := func(pss ...[]piece) []piece {
		var out []piece
		for _, ps := range pss {
			out = append(out, ps...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ps   []piece
		want string
	}{
		{"bar then newline", []piece{{'o', 1, "\r"}, {'o', 1, "\r"}, {'o', 1, "\n"}}, "--k"},
		{"unfinished bar keeps its last frame", []piece{{'o', 1, "\r"}, {'o', 1, "\r"}}, "-k"},
		{"fragment frames (slow tqdm)", []piece{{'o', 1, ""}, {'o', 1, "\r"}, {'o', 1, ""}, {'o', 1, "\r"}, {'o', 1, ""}}, "----k"},
		{"fragment then newline is no frame", []piece{{'o', 1, ""}, {'o', 1, "\n"}}, "kk"},
		{"crlf is no frame", []piece{{'o', 1, "\r\n"}, {'o', 2, "\n"}}, "kk"},
		{"other stream in between", []piece{{'o', 1, "\r"}, {'e', 2, "\n"}, {'o', 1, "\n"}}, "-kk"},
		{"frame of the other stream is separate", []piece{{'o', 1, "\r"}, {'e', 2, "\r"}, {'e', 2, "\n"}}, "k-k"},
		{"progress in between is kept", []piece{{'o', 1, "\r"}, {'p', 0, ""}, {'o', 1, "\r"}}, "-kk"},
		{"tty stream", []piece{{'t', 1, "\r"}, {'t', 1, "\r"}, {'t', 1, "\n"}, {'t', 2, "\n"}}, "--kk"},
		{"next piece on another line (not from jobrun)", []piece{{'o', 1, "\r"}, {'o', 2, "\n"}}, "kk"},
		{"replacement at the window", cat(bar(1), spacer(CollapseWindow-1), []piece{{'o', 1, "\n"}}),
			"-" + strings.Repeat("k", CollapseWindow)},
		{"replacement beyond the window", cat(bar(1), spacer(CollapseWindow), []piece{{'o', 1, "\n"}}),
			strings.Repeat("k", CollapseWindow+2)},
		{"fragment counts from itself", cat([]piece{{'o', 1, ""}}, spacer(CollapseWindow-1), []piece{{'o', 1, "\r"}, {'o', 1, "\n"}}),
			"k" + strings.Repeat("k", CollapseWindow-1) + "-k"},

		// An empty piece replaces nothing: the last frame stays.
		{"last frame then an empty newline (pipe)", []piece{{'o', 1, "\r"}, {'o', 1, "\r"}, {'O', 1, "\n"}}, "-kk"},
		{"last frame then an empty crlf (pty)", []piece{{'t', 1, "\r"}, {'t', 1, "\r"}, {'T', 1, "\r\n"}, {'t', 2, "\n"}}, "-kkk"},
		{"empty fragment, then text replaces", []piece{{'o', 1, "\r"}, {'O', 1, ""}, {'o', 1, "\n"}}, "-kk"},
		{"empty fragment, then the line ends", []piece{{'o', 1, "\r"}, {'O', 1, ""}, {'O', 1, "\n"}}, "kkk"},
		{"empty frame, then text replaces both", []piece{{'o', 1, "\r"}, {'O', 1, "\r"}, {'o', 1, "\n"}}, "--k"},
		{"empty frame, then the line ends", []piece{{'o', 1, "\r"}, {'O', 1, "\r"}, {'O', 1, "\n"}}, "kkk"},
		{"a line that starts with \\r (tqdm)", []piece{{'O', 1, "\r"}, {'o', 1, "\r"}, {'o', 1, "\r"}, {'O', 1, "\n"}}, "--kk"},
		{"slow tqdm: fragment frames closed by empty \\r pieces", []piece{{'o', 1, ""}, {'O', 1, "\r"}, {'o', 1, ""}, {'O', 1, "\r"}, {'o', 1, ""}, {'O', 1, "\n"}}, "----kk"},
		{"text after empty pieces replaces", []piece{{'o', 1, "\r"}, {'O', 1, ""}, {'O', 1, "\r"}, {'O', 1, ""}, {'o', 1, "\r"}, {'O', 1, "\n"}}, "---kkk"},
		{"other streams do not break the wait", []piece{{'o', 1, "\r"}, {'E', 2, "\n"}, {'O', 1, "\r"}, {'e', 3, "\n"}, {'o', 1, "\n"}}, "-k-kk"},
		{"an empty piece on another line breaks it (not from jobrun)", []piece{{'o', 1, "\r"}, {'O', 2, "\r"}, {'o', 1, "\n"}}, "kkk"},
		{"the window counts from the frame, not from the empty pieces", cat(bar(1), []piece{{'O', 1, ""}}, spacer(CollapseWindow-2), []piece{{'o', 1, "\n"}}),
			"-" + strings.Repeat("k", CollapseWindow)},
		{"beyond the window past empty pieces", cat(bar(1), []piece{{'O', 1, ""}}, spacer(CollapseWindow-1), []piece{{'o', 1, "\n"}}),
			strings.Repeat("k", CollapseWindow+2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := mkEvents(tc.ps)
			got, n := marks(evs, jobs.Seq(len(evs)))
			if got != tc.want || n != len(evs) {
				t.Errorf("marks = %s (%d decided), want %s (all)", got, n, tc.want)
			}
		})
	}
}

// TestCollapseDecided: without the end of the history, only events whose
// window is inside the slice are decided, and those decisions hold.
func TestCollapseDecided(t *testing.T) {
	evs := mkEvents(make([]piece, 0))
	for i := range 1000 {
		evs = append(evs, mkEvents([]piece{{'o', 1, "\r"}})[0])
		evs[i].Seq = jobs.Seq(i + 1)
	}
	got, n := marks(evs, 5000)
	if n != 1000-CollapseWindow {
		t.Errorf("decided %d, want %d", n, 1000-CollapseWindow)
	}
	if strings.Contains(got[:n], "k") {
		t.Errorf("decided frames kept: %s", got[:n])
	}
}

// TestCollapserMatchesRule: pushing a random log in random pieces keeps
// exactly what the rule keeps for the whole log at once.
func TestCollapserMatchesRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var ps []piece
		line := int64(0)
		open := map[byte]int64{}
		for range rng.IntN(3000) + 1 {
			s := "oep"[rng.IntN(3)]
			if s == 'p' {
				ps = append(ps, piece{'p', 0, ""})
				continue
			}
			l, ok := open[s]
			if !ok {
				line++
				l = line
			}
			eol := []string{"\r", "\r", "\r", "", "\n", "\r\n"}[rng.IntN(6)]
			if eol == "\n" || eol == "\r\n" {
				delete(open, s)
			} else {
				open[s] = l
			}
			if rng.IntN(4) == 0 {
				s -= 'a' - 'A' // empty text
			}
			ps = append(ps, piece{s, l, eol})
		}
		evs := mkEvents(ps)
		until := jobs.Seq(len(evs))
		want, _ := marks(evs, until)

		c := collapser{until: until}
		var kept []jobs.Event
		for rest := evs; len(rest) > 0; {
			n := min(rng.IntN(300)+1, len(rest))
			kept = c.push(rest[:n], kept)
			rest = rest[n:]
		}
		var b strings.Builder
		j := 0
		for _, e := range evs {
			if j < len(kept) && kept[j].Seq == e.Seq {
				b.WriteByte('k')
				j++
			} else {
				b.WriteByte('-')
			}
		}
		if got := b.String(); got != want || len(c.held) != 0 {
			t.Fatalf("round %d: pushed in pieces: %s (held %d)\nwhole: %s", round, got, len(c.held), want)
		}
	}
}

// render is what the job page shows of line events (ui/static/logmodel.js,
// without groups): per stream, each row's line and text. A piece
// continues the row its stream left open when it is on the same line; after
// a "\r" piece, the next piece with text replaces the row's text, and empty
// pieces leave it (and the pending replacement) as it is.
func render(evs []jobs.Event) map[jobs.Stream][]string {
	type open struct {
		row     int // index in rows[s], -1: none
		line    int64
		replace bool
	}
	rows := map[jobs.Stream][]string{}
	texts := map[jobs.Stream][]string{}
	st := map[jobs.Stream]*open{}
	for _, e := range evs {
		if e.Type != jobs.TypeLine {
			continue
		}
		o := st[e.Stream]
		if o == nil {
			o = &open{row: -1}
			st[e.Stream] = o
		}
		text := string(e.Data)
		pending := false
		if o.row >= 0 && o.line == e.Line {
			switch {
			case o.replace && text == "":
				pending = true
			case o.replace:
				texts[e.Stream][o.row] = text
			default:
				texts[e.Stream][o.row] += text
			}
		} else {
			rows[e.Stream] = append(rows[e.Stream], fmt.Sprint(e.Line))
			texts[e.Stream] = append(texts[e.Stream], text)
			o.row, o.line = len(texts[e.Stream])-1, e.Line
		}
		if e.EOL == "\n" || e.EOL == "\r\n" {
			o.row = -1
		}
		o.replace = e.EOL == "\r" || (pending && e.EOL == "")
	}
	for s, t := range texts {
		for i := range t {
			rows[s][i] += " " + t[i]
		}
	}
	return rows
}

// TestCollapseShowsTheSame: what collapse leaves out never changes what
// the page shows, on random logs with empty pieces, fragments and frames,
// whole or followed by live events.
func TestCollapseShowsTheSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 500 {
		var evs []jobs.Event
		line := map[jobs.Stream]int64{}
		for i := range rng.IntN(400) + 1 {
			s := []jobs.Stream{jobs.StreamStdout, jobs.StreamStdout, jobs.StreamStderr}[rng.IntN(3)]
			if line[s] == 0 {
				line[s] = 1
			}
			e := jobs.Event{Seq: jobs.Seq(i + 1), Type: jobs.TypeLine, Stream: s, Line: line[s],
				EOL: []string{"\r", "\r", "\r", "", "", "\n", "\r\n"}[rng.IntN(7)]}
			if rng.IntN(3) > 0 {
				e.Data = fmt.Appendf(nil, "%d", i+1)
			}
			if e.EOL == "\n" || e.EOL == "\r\n" {
				line[s]++
			}
			evs = append(evs, e)
		}
		// The history ends anywhere; what follows comes live, uncollapsed.
		until := jobs.Seq(rng.IntN(len(evs)) + 1)
		keep := make([]bool, until)
		collapseMarks(evs[:until], until, keep)
		var shown []jobs.Event
		for i, k := range keep {
			if k {
				shown = append(shown, evs[i])
			}
		}
		shown = append(shown, evs[until:]...)
		got, want := render(shown), render(evs)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d (history until %d of %d): collapsed shows\n%v\nwant\n%v", round, until, len(evs), got, want)
		}
	}
}
