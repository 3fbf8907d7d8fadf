package jobs_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// progressDialects is what child mode "progress" writes to stdout, line by
// line, and the progress event each line must be followed by ("" for
// none).
var progressDialects = []struct{ line, want string }{
	{"starting\n", ""},
	{"[#####     ] 55% copying\n", `55 auto "55% copying"`},
	{"Step 6/10 : RUN make\n", `60 6/10 auto "Step 6/10 : RUN make"`},
	{"released 2026/11/25 v1.2.3\n", ""},
	{"::progress 3/10 step three\n", `30 3/10 explicit "step three"`},
	// The job reports its own progress now: the heuristics are off.
	{"[######    ] 65% copying\n", ""},
	{"\x1b]9;4;1;45\x07building\n", `45 osc "building"`},
	{"##vso[task.setprogress value=75;]Upload Log\n", `75 vso "Upload Log"`},
	{`{"progress":0.5,"msg":"half way"}` + "\n", `50 json "half way"`},
	{"\x1b]9;4;2;70\x1b\\\n", `70 osc error`},
	{"::progress 80\n", `80 explicit`},
	{"done\n", ""},
}

// progressFragWrites are child mode "progressfrag"'s writes, and
// progressFragEvents how many events the log has after each.
var (
	progressFragWrites = []string{"\r45%", "\r67%", "\n", "::progress 90 almost", "\n"}
	progressFragEvents = []int{3, 6, 7, 9, 10}
)

// progressChild is child modes "progress..." (see the tests below).
func progressChild(mode string) int {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch mode {
	case "progress":
		for _, d := range progressDialects {
			out.WriteString(d.line)
			out.Flush()
		}
		fmt.Fprintln(os.Stderr, "[7/8] on stderr")
	case "progressfrag":
		// A bar drawn after its "\r", as most tools draw it: each value is
		// a fragment until the next redraw. Then a directive in two writes.
		// Each write waits for a line on stdin: the test sends it once the
		// previous write is stored, flushed as a fragment.
		in := bufio.NewReader(os.Stdin)
		for _, s := range progressFragWrites {
			os.Stdout.WriteString(s)
			in.ReadString('\n')
		}
	case "progressbar":
		// 9,999 redraws as fast as the pipe takes them, ending at 99.99%:
		// a value that is never "prompt", so only the final flush can
		// store it.
		for i := 1; i < 10000; i++ {
			fmt.Fprintf(out, "\r[%-20s] %5.2f%%", strings.Repeat("#", i/500), float64(i)/100)
			out.Flush()
		}
		out.WriteString("\n")
	case "progressquiet":
		// Three quick values, then a quiet period until stdin has a line.
		os.Stdout.WriteString("1%\r2%\r3%\r")
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Stdout.WriteString("bye\n")
	}
	return 0
}

// progressString is a compact form of a progress event.
func progressString(p *progress.Report) string {
	var b strings.Builder
	b.WriteString(strconv.FormatFloat(p.Percent, 'f', -1, 64))
	if p.Current != nil && p.Total != nil {
		fmt.Fprintf(&b, " %v/%v", *p.Current, *p.Total)
	}
	b.WriteString(" " + p.Source)
	if p.State != progress.StateNormal {
		b.WriteString(" " + p.State)
	}
	if p.Message != "" {
		b.WriteString(" " + strconv.Quote(p.Message))
	}
	return b.String()
}

// TestRunProgressDialects: every source yields its progress event right
// after the line event it was found in (no coalescing here: a negative
// interval), directives are marked, other lines have no progress.
func TestRunProgressDialects(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	run := start(ctx, t, &jobs.Runner{Store: db, ProgressInterval: -1}, "progress")
	wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkLog(t, evs)

	// The recorder parses in seq order, both streams in one goroutine: the
	// stderr line is guessed from only if it came before the job's first
	// report of its own (a directive on stdout).
	var reported jobs.Seq
	for _, e := range evs {
		if e.Type == jobs.TypeLine && e.Directive && reported == 0 {
			reported = e.Seq
		}
	}
	var stdout []jobs.Event
	for i, e := range evs {
		if e.Type == jobs.TypeLine && e.Stream == jobs.StreamStderr {
			if string(e.Data) != "[7/8] on stderr" {
				t.Errorf("stderr line %q", e.Data)
			}
			guessed := i+1 < len(evs) && evs[i+1].Type == jobs.TypeProgress
			switch {
			case e.Seq < reported && !guessed:
				t.Errorf("the stderr line, before the job's own reports, is not followed by its progress event")
			case e.Seq < reported && progressString(evs[i+1].Progress) != `87.5 7/8 auto "[7/8] on stderr"`:
				t.Errorf("stderr progress %s", progressString(evs[i+1].Progress))
			case e.Seq > reported && guessed:
				t.Errorf("the stderr line after the job's own reports is followed by guessed progress %s", progressString(evs[i+1].Progress))
			}
			continue
		}
		if e.Type == jobs.TypeProgress && evs[i-1].Stream == jobs.StreamStderr {
			continue
		}
		stdout = append(stdout, e)
	}
	k := 0
	for _, d := range progressDialects {
		if k >= len(stdout) || stdout[k].Type != jobs.TypeLine {
			t.Fatalf("event %d: want the line %q, got %+v", k, d.line, stdout[k])
		}
		line := stdout[k]
		if got := string(line.Data) + line.EOL; got != d.line {
			t.Fatalf("line %q, want %q", got, d.line)
		}
		if want := strings.HasPrefix(d.line, "::progress"); line.Directive != want {
			t.Errorf("line %q: directive %v, want %v", d.line, line.Directive, want)
		}
		k++
		if d.want == "" {
			if k < len(stdout) && stdout[k].Type == jobs.TypeProgress {
				t.Errorf("line %q is followed by progress %s, want none", d.line, progressString(stdout[k].Progress))
				k++
			}
			continue
		}
		if k >= len(stdout) || stdout[k].Type != jobs.TypeProgress {
			t.Errorf("line %q is not followed by a progress event", d.line)
			continue
		}
		if got := progressString(stdout[k].Progress); got != d.want {
			t.Errorf("line %q: progress %s, want %s", d.line, got, d.want)
		}
		if !stdout[k].Time.Equal(line.Time) {
			t.Errorf("line %q: progress time %v, want the line's %v", d.line, stdout[k].Time, line.Time)
		}
		k++
	}
}

// TestRunProgressModes: off finds nothing and marks no directive;
// explicit finds only the machine-readable sources; a regex comes first.
func TestRunProgressModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		r     jobs.Runner
		wants string
	}{
		{"off", jobs.Runner{Progress: progress.Off}, "[]"},
		{"explicit", jobs.Runner{Progress: progress.Explicit}, "[30 45 50 70 75 80]"},
		{"regex", jobs.Runner{ProgressRegex: `copying|(?P<current>\d+)/(?P<total>\d+)\] on (?P<message>\w+)`, Progress: progress.Explicit},
			"[30 45 50 70 75 80 87.5]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := openDB(t)
			r := tc.r
			r.Store, r.ProgressInterval = db, -1
			run := start(ctx, t, &r, "progress")
			wait(ctx, t, run)
			evs := allEvents(ctx, t, db, run.Job().ID)
			checkLog(t, evs)
			got := percents(evs)
			sort.Float64s(got) // stderr's may come first
			if fmt.Sprint(got) != tc.wants {
				t.Errorf("progress %v, want %s", got, tc.wants)
			}
			for _, e := range evs {
				if e.Directive && tc.name == "off" {
					t.Errorf("line %q marked directive with progress off", e.Data)
				}
			}
		})
	}
	if _, err := (&jobs.Runner{Store: openDB(t), ProgressRegex: `(\d+)%`}).Start(testCtx(t), jobs.Spec{Command: []string{"true"}}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("Start with a regex without named groups: error %v, want ErrInvalid", err)
	}
}

// TestRunProgressFragments: a bar drawn after its "\r" is parsed as
// fragments, so each value shows when drawn, not at the next redraw; the
// pieces of a directive line are all marked.
func TestRunProgressFragments(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer inW.Close()
	run := start(ctx, t, &jobs.Runner{Store: db, Stdin: inR, FlushAfter: 20 * time.Millisecond, ProgressInterval: -1}, "progressfrag")
	for i, n := range progressFragEvents {
		waitFor(ctx, t, db, run.Job().ID, fmt.Sprintf("%d events after write %q", n, progressFragWrites[i]),
			func(evs []jobs.Event) bool { return len(evs) >= n })
		inW.WriteString("\n")
	}
	wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkLog(t, evs)
	var got []string
	for _, e := range evs {
		switch e.Type {
		case jobs.TypeLine:
			s := fmt.Sprintf("%q%q", e.Data, e.EOL)
			if e.Directive {
				s += "D"
			}
			got = append(got, s)
		case jobs.TypeProgress:
			got = append(got, "P "+progressString(e.Progress))
		}
	}
	want := []string{`"""\r"`, `"45%"""`, `P 45 auto`, `"""\r"`, `"67%"""`, `P 67 auto`, `"""\n"`,
		`"::progress 90 almost"""D`, `P 90 explicit "almost"`, `"""\n"D`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events\n got %s\nwant %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}

// TestRunProgressCoalesced: a \r bar redrawn 10,000 times as fast as
// possible yields a bounded number of progress events, and the last
// value, which only the flush before the exit event can store.
func TestRunProgressCoalesced(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	t0 := time.Now()
	run := start(ctx, t, &jobs.Runner{Store: db}, "progressbar")
	wait(ctx, t, run)
	elapsed := time.Since(t0)
	evs := allEvents(ctx, t, db, run.Job().ID)
	exit := checkLog(t, evs)
	prs := progressEvents(evs)
	if len(prs) == 0 {
		t.Fatal("no progress event")
	}
	// At most one per interval, plus the first and the final flush. The
	// bound follows from the job's duration, so it holds on a slow machine.
	if bound := int(elapsed/progress.DefaultInterval) + 2; len(prs) > bound {
		t.Errorf("%d progress events in %v, want at most %d", len(prs), elapsed, bound)
	}
	last := prs[len(prs)-1]
	if last.Progress.Percent != 99.99 || last.Seq != exit.Seq-1 {
		t.Errorf("last progress %v at seq %d (exit %d), want 99.99 right before the exit", last.Progress.Percent, last.Seq, exit.Seq)
	}
	for i := 1; i < len(prs); i++ {
		if prs[i].Progress.Percent <= prs[i-1].Progress.Percent {
			t.Errorf("progress goes %v then %v", prs[i-1].Progress.Percent, prs[i].Progress.Percent)
		}
	}
	if n := len(evs) - len(prs); n < 10000 {
		t.Errorf("%d line events, want every redraw stored", n)
	}
}

// TestRunProgressQuietPeriod: a value held back by coalescing is stored
// when the interval has passed, while the job is quiet, not only at the
// end.
func TestRunProgressQuietPeriod(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer inW.Close()
	run := start(ctx, t, &jobs.Runner{Store: db, Stdin: inR, ProgressInterval: 50 * time.Millisecond}, "progressquiet")
	waitFor(ctx, t, db, run.Job().ID, "the held value 3%", func(evs []jobs.Event) bool {
		p := percents(evs)
		return len(p) > 0 && p[len(p)-1] == 3
	})
	inW.WriteString("\n")
	wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	checkLog(t, evs)
	if got := fmt.Sprint(percents(evs)); got != "[1 3]" && got != "[1 2 3]" {
		t.Errorf("progress %s, want [1 3] (2 coalesced away) or [1 2 3]", got)
	}
}
