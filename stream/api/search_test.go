package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/search"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// logWriter makes a job's events the way the recorder numbers them: a
// stream's piece continues the line its stream left open (eol "" or
// "\r"); otherwise it starts the next line number.
type logWriter struct {
	evs  []jobs.Event
	line int64
	open map[jobs.Stream]int64 // the stream's open line
	t    time.Time
}

func newLogWriter() *logWriter {
	return &logWriter{open: map[jobs.Stream]int64{}, t: time.Now()}
}

// write adds a piece and returns its seq.
func (w *logWriter) write(st jobs.Stream, text, eol string, directive bool) jobs.Seq {
	line, ok := w.open[st]
	if !ok {
		w.line++
		line = w.line
	}
	if eol == "" || eol == "\r" {
		w.open[st] = line
	} else {
		delete(w.open, st)
	}
	seq := jobs.Seq(len(w.evs) + 1)
	w.evs = append(w.evs, jobs.Event{Seq: seq, Time: w.t, Type: jobs.TypeLine, Stream: st, Line: line,
		Data: []byte(text), EOL: eol, Directive: directive})
	return seq
}

func (w *logWriter) out(text string) jobs.Seq { return w.write(jobs.StreamStdout, text, "\n", false) }

// searchLog is a finished job with the lines the search tests look for,
// among filler lines "line SEQ of the output...".
type searchLog struct {
	db    *sqlite.DB
	job   jobs.Job
	last  jobs.Seq
	small *searchLog // the same top lines, and an exit: a log to read whole
	// seqs of the special lines
	top, stderr, coloured, frames, directive, cologne, split, splitEnd, sentinel, bottom jobs.Seq
}

// TestSearch searches a finished job of 2,000,000 lines (100,000 with
// -short or -race) in a real store, built once for its subtests. The lines
// it looks for are near the top, and one near the bottom; only a few
// subtests read the whole log.
func TestSearch(t *testing.T) {
	n := 2_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	start := time.Now()
	f, err := buildSearchLog(t, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stored %d lines in %v", n, time.Since(start).Round(time.Millisecond))
	t.Run("TopFromTheTail", func(t *testing.T) { testSearchTopFromTheTail(t, f) })
	t.Run("Pages", func(t *testing.T) { testSearchPages(t, f) })
	t.Run("VisualLines", func(t *testing.T) { testSearchVisualLines(t, f) })
	t.Run("BadQueries", func(t *testing.T) { testSearchBadQueries(t, f) })
}

// buildSearchLog writes the fixture's events in batches of 50,000.
func buildSearchLog(t testing.TB, n int) (*searchLog, error) {
	db := streamtest.OpenDB(t)
	ctx := streamtest.Ctx(t)
	j := streamtest.NewJob(t, db)
	f := &searchLog{db: db}
	w := newLogWriter()
	filler := func(k int) {
		for range k {
			w.out(fmt.Sprintf("line %d of the output, some padding to look real", len(w.evs)+1))
		}
	}
	filler(4)
	f.top = w.out("NEEDLE near the top")
	filler(2)
	f.stderr = w.write(jobs.StreamStderr, "stderr needle", "\n", false)
	filler(1)
	f.coloured = w.out("\x1b[1;31mCOLOURED\x1b[0m needle")
	f.frames = w.write(jobs.StreamStdout, "frame-old 10%", "\r", false)
	w.write(jobs.StreamStdout, "frame-old 50%", "\r", false)
	w.write(jobs.StreamStdout, "frame-final 100%", "\r", false)
	w.write(jobs.StreamStdout, "", "\n", false)
	f.directive = w.write(jobs.StreamStdout, "::progress 50 directive-needle", "\n", true)
	f.cologne = w.out("Grüße aus Köln 😀 needle")
	f.split = w.write(jobs.StreamStdout, "spl", "", false)
	w.write(jobs.StreamStderr, "interleaved", "\n", false)
	f.splitEnd = w.write(jobs.StreamStdout, "it-word", "\n", false)
	f.sentinel = w.out("the sentinel")
	filler(n - len(w.evs) - 11)
	f.bottom = w.out("NEEDLE near the bottom")
	filler(n - len(w.evs))
	code := 0
	w.evs = append(w.evs, jobs.Event{Seq: jobs.Seq(len(w.evs) + 1), Time: w.t, Type: jobs.TypeExit,
		Status: jobs.StatusSucceeded, ExitCode: &code})
	for i := 0; i < len(w.evs); i += 50_000 {
		if err := db.AppendEvents(ctx, j.ID, w.evs[i:min(i+50_000, len(w.evs))]); err != nil {
			return nil, err
		}
	}
	small := streamtest.NewJob(t, db)
	top := append(slices.Clone(w.evs[:f.sentinel]), w.evs[len(w.evs)-1])
	top[len(top)-1].Seq = f.sentinel + 1
	if err := db.AppendEvents(ctx, small.ID, top); err != nil {
		return nil, err
	}
	var err error
	if f.job, err = db.Job(ctx, jobs.Ref{ID: j.ID}); err != nil {
		return nil, err
	}
	f.last = f.job.LastSeq
	f.small = &searchLog{}
	*f.small = *f
	if f.small.job, err = db.Job(ctx, jobs.Ref{ID: small.ID}); err != nil {
		return nil, err
	}
	f.small.last = f.small.job.LastSeq
	return f, nil
}

// searchServer serves the fixture with a search budget of events per
// request (0: the default time budget).
func searchServer(t *testing.T, f *searchLog, events int) string {
	t.Helper()
	srv := streamtest.NewServer(f.db, streamtest.NewHub(t, f.db, stream.HubOptions{}))
	srv.SearchEvents = events
	return streamtest.Serve(t, srv)
}

// searchReq sends one search request; params is a query string.
func searchReq(t *testing.T, base string, f *searchLog, params string) (int, search.Result, string) {
	t.Helper()
	resp, body := request(t, streamtest.Ctx(t), fmt.Sprintf("%s/api/jobs/%d/search?%s", base, f.job.ID, params))
	var res search.Result
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("search %s: %v in %.300s", params, err, body)
		}
	}
	return resp.StatusCode, res, string(body)
}

// searchAll follows a search's cursor (forward, or backward with
// before=) to the end and returns every match, in the order found, the
// counts summed, the requests made and the last answer.
func searchAll(t *testing.T, base string, f *searchLog, params string) (matches []search.Match, count, requests int, last search.Result) {
	t.Helper()
	v, err := url.ParseQuery(params)
	if err != nil {
		t.Fatal(err)
	}
	back := v.Has("before")
	for {
		requests++
		code, res, body := searchReq(t, base, f, v.Encode())
		if code != http.StatusOK {
			t.Fatalf("search %s: %d %s", v.Encode(), code, body)
		}
		if back {
			matches = append(slices.Clone(res.Matches), matches...)
		} else {
			matches = append(matches, res.Matches...)
		}
		count += res.Count
		last = res
		next := res.NextAfter
		if back {
			next = res.NextBefore
		}
		if next == nil {
			return
		}
		if requests > 10_000 {
			t.Fatalf("search %s: no end after %d requests", params, requests)
		}
		if back {
			v.Set("before", strconv.FormatInt(int64(*next), 10))
		} else {
			v.Set("after", strconv.FormatInt(int64(*next), 10))
		}
	}
}

// searchFirst searches forward from the start until it has n matches.
func searchFirst(t *testing.T, base string, f *searchLog, params string, n int) []search.Match {
	t.Helper()
	var ms []search.Match
	var after jobs.Seq
	for len(ms) < n {
		code, res, body := searchReq(t, base, f, fmt.Sprintf("%s&limit=%d&after=%d", params, n-len(ms), after))
		if code != http.StatusOK {
			t.Fatalf("search %s: %d %s", params, code, body)
		}
		ms = append(ms, res.Matches...)
		if res.NextAfter == nil {
			break
		}
		after = *res.NextAfter
	}
	return ms
}

func seqsOf(ms []search.Match) []jobs.Seq {
	var s []jobs.Seq
	for _, m := range ms {
		s = append(s, m.Seq)
	}
	return s
}

func testSearchTopFromTheTail(t *testing.T, f *searchLog) {
	base := searchServer(t, f, 0)
	// The page opens at the tail; backward from there, the search reaches
	// the top, one budget per request.
	ms, _, requests, _ := searchAll(t, base, f, fmt.Sprintf("q=near+the+top&limit=1&before=%d", f.last+1))
	if got := seqsOf(ms); !slices.Equal(got, []jobs.Seq{f.top}) {
		t.Fatalf("matches at %v, want the line at seq %d", got, f.top)
	}
	m := ms[0]
	if m.Line != int64(f.top) || m.Stream != jobs.StreamStdout || m.Text != "NEEDLE near the top" || !slices.Equal(m.Ranges, [][2]int{{7, 19}}) {
		t.Errorf("match %+v", m)
	}
	t.Logf("found the top of %d events from the tail in %d request(s)", f.last, requests)
	// Counting the whole log from the start.
	_, count, _, last := searchAll(t, base, f, "q=needle&limit=0&after=0")
	if count != 5 {
		t.Errorf("needle counted %d times, want 5", count)
	}
	if last.ScannedTo != f.last || last.LastSeq != f.last {
		t.Errorf("last answer scanned to %d of %d, want the end %d", last.ScannedTo, last.LastSeq, f.last)
	}
}

func testSearchPages(t *testing.T, f *searchLog) {
	base := searchServer(t, f, 40_000) // many requests, each reading about 40,000 events
	want := []jobs.Seq{f.top, f.stderr, f.coloured, f.cologne, f.bottom}

	fwd, count, requests, last := searchAll(t, base, f, "q=needle&limit=2&after=0")
	if got := seqsOf(fwd); !slices.Equal(got, want) || count != len(want) {
		t.Errorf("forward: matches %v (count %d), want %v", got, count, want)
	}
	if requests < int(f.last)/50_000 {
		t.Errorf("forward: %d requests, want about one per 40,000 events", requests)
	}
	if last.Total != nil {
		t.Errorf("forward in pieces: total %d, want null", *last.Total)
	}
	back, count, _, _ := searchAll(t, base, f, fmt.Sprintf("q=needle&limit=2&before=%d", f.last+1))
	if got := seqsOf(back); !slices.Equal(got, want) || count != len(want) {
		t.Errorf("backward: matches %v (count %d), want %v", got, count, want)
	}

	// One page's cursors: two matches, then the next two after them, and
	// back before them.
	_, res, _ := searchReq(t, base, f, "q=needle&limit=2")
	if got := seqsOf(res.Matches); !slices.Equal(got, want[:2]) || res.ScannedTo != f.stderr || *res.NextAfter != f.stderr || *res.NextBefore != f.top {
		t.Errorf("first page: %v scanned_to %d next_after %v next_before %v", got, res.ScannedTo, res.NextAfter, res.NextBefore)
	}
	_, res, _ = searchReq(t, base, f, fmt.Sprintf("q=needle&limit=2&after=%d", f.stderr))
	if got := seqsOf(res.Matches); !slices.Equal(got, want[2:4]) {
		t.Errorf("after=%d: %v, want %v", f.stderr, got, want[2:4])
	}
	_, res, _ = searchReq(t, base, f, fmt.Sprintf("q=needle&limit=2&before=%d", f.cologne))
	if got := seqsOf(res.Matches); !slices.Equal(got, want[1:3]) || *res.NextBefore != f.stderr || *res.NextAfter != f.coloured {
		t.Errorf("before=%d: %v next_before %v next_after %v, want %v", f.cologne, got, res.NextBefore, res.NextAfter, want[1:3])
	}

	// A search that reads a whole log in one request has its total.
	small := f.small
	base = searchServer(t, small, 0)
	_, res, _ = searchReq(t, base, small, "q=needle&limit=0")
	if res.Total == nil || *res.Total != 4 || res.Count != 4 || len(res.Matches) != 0 || res.NextAfter != nil || res.ScannedTo != small.last {
		t.Errorf("count in one request: total %v count %d matches %d next_after %v scanned_to %d, want 4, 4, none, null, %d",
			res.Total, res.Count, len(res.Matches), res.NextAfter, res.ScannedTo, small.last)
	}
	_, res, _ = searchReq(t, base, small, fmt.Sprintf("q=needle&limit=0&before=%d", small.last+1))
	if res.Total == nil || *res.Total != 4 || res.NextBefore != nil || res.ScannedTo != 1 {
		t.Errorf("count backward in one request: total %v next_before %v scanned_to %d, want 4, null, 1", res.Total, res.NextBefore, res.ScannedTo)
	}
	_, res, _ = searchReq(t, base, small, "q=needle&limit=3")
	if res.Total != nil || len(res.Matches) != 3 || *res.NextAfter != f.coloured {
		t.Errorf("stopped by the limit: total %v, %d matches, next_after %v; want null, 3, %d", res.Total, len(res.Matches), res.NextAfter, f.coloured)
	}
	_, res, _ = searchReq(t, base, small, "q=needle&limit=5")
	if res.Total == nil || *res.Total != 4 || res.NextAfter != nil || *res.NextBefore != f.top {
		t.Errorf("within the limit: total %v next_after %v next_before %v; want 4, null, %d", res.Total, res.NextAfter, res.NextBefore, f.top)
	}
}

func testSearchVisualLines(t *testing.T, f *searchLog) {
	base := searchServer(t, f, 0)
	for _, c := range []struct {
		name, params string
		want         []jobs.Seq
		text         string   // of the first match
		ranges       [][2]int // of the first match
	}{
		{"ignores case", "q=NeEdLe+NEAR", []jobs.Seq{f.top}, "NEEDLE near the top", [][2]int{{0, 11}}},
		{"case", "q=needle&case=1", []jobs.Seq{f.stderr, f.coloured, f.cologne}, "stderr needle", [][2]int{{7, 13}}},
		{"regex", "regex=1&q=" + url.QueryEscape(`^line [13] of`), []jobs.Seq{1, 3}, "line 1 of the output, some padding to look real", [][2]int{{0, 9}}},
		{"regex ignores case unless case=1", "regex=1&case=1&q=" + url.QueryEscape(`^LINE 3 `), nil, "", nil},
		{"stream", "q=needle&stream=stderr", []jobs.Seq{f.stderr}, "stderr needle", [][2]int{{7, 13}}},
		{"escapes are stripped", "q=coloured+needle", []jobs.Seq{f.coloured}, "COLOURED needle", [][2]int{{0, 15}}},
		{"escapes are not text", "q=" + url.QueryEscape("[1;31m"), nil, "", nil},
		{"a \\r line is its last frame", "q=frame-final", []jobs.Seq{f.frames}, "frame-final 100%", [][2]int{{0, 11}}},
		{"replaced frames are not searched", "q=frame-old", nil, "", nil},
		{"directives are hidden", "q=directive-needle", nil, "", nil},
		{"directives=1", "q=directive-needle&directives=1", []jobs.Seq{f.directive}, "::progress 50 directive-needle", [][2]int{{14, 30}}},
		{"UTF-16 offsets", "q=k%C3%96LN", []jobs.Seq{f.cologne}, "Grüße aus Köln 😀 needle", [][2]int{{10, 14}}},
		{"UTF-16 offsets after an astral character", "q=" + url.QueryEscape("😀 needle"), []jobs.Seq{f.cologne}, "Grüße aus Köln 😀 needle", [][2]int{{15, 24}}},
		{"pieces of a line are joined", "q=split-word", []jobs.Seq{f.split}, "split-word", [][2]int{{0, 10}}},
		{"a line is known by its first seq", fmt.Sprintf("q=split-word&before=%d", f.split), nil, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Backward over the top of the log, where the lines are ...
			params := c.params
			if !strings.Contains(params, "before=") {
				params += fmt.Sprintf("&before=%d", f.sentinel+1)
			}
			ms, count, _, _ := searchAll(t, base, f, params)
			if got := seqsOf(ms); !slices.Equal(got, c.want) || count != len(c.want) {
				t.Fatalf("backward: matches at %v (count %d), want %v", got, count, c.want)
			}
			if len(ms) == 0 {
				return
			}
			if ms[0].Text != c.text || !slices.Equal(ms[0].Ranges, c.ranges) {
				t.Errorf("first match %q %v, want %q %v", ms[0].Text, ms[0].Ranges, c.text, c.ranges)
			}
			// ... and forward from the start, as far as the last one.
			ms = searchFirst(t, base, f, c.params, len(c.want))
			if got := seqsOf(ms); !slices.Equal(got, c.want) {
				t.Errorf("forward: matches at %v, want %v", got, c.want)
			}
		})
	}
	// A forward search that starts inside a line does not take the line's
	// end for a line.
	_, res, _ := searchReq(t, base, f, fmt.Sprintf("regex=1&q=%s&after=%d&limit=1", url.QueryEscape("it-word|sentinel"), f.split))
	if got := seqsOf(res.Matches); !slices.Equal(got, []jobs.Seq{f.sentinel}) {
		t.Errorf("after=%d (inside the split line): matches at %v, want only the sentinel at %d", f.split, got, f.sentinel)
	}
	// A backward search reads past before to finish a line begun before it.
	_, res, _ = searchReq(t, base, f, fmt.Sprintf("q=split-word&before=%d", f.split+1))
	if got := seqsOf(res.Matches); !slices.Equal(got, []jobs.Seq{f.split}) {
		t.Errorf("before=%d: matches at %v, want the split line at %d", f.split+1, got, f.split)
	}
}

func testSearchBadQueries(t *testing.T, f *searchLog) {
	base := searchServer(t, f, 0)
	for _, params := range []string{"", "q=", "regex=1&q=(", "regex=1&q=a%7B2,1%7D", "q=x&after=1&before=5", "q=x&limit=1001",
		"q=x&limit=-1", "q=x&stream=stdin", "q=x&case=yes", "q=x&after=-1", "q=x&before=0"} {
		code, _, body := searchReq(t, base, f, params)
		var eb struct {
			Error string `json:"error"`
		}
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &eb) != nil || eb.Error == "" {
			t.Errorf("search ?%s: %d %s, want 400 with a JSON error", params, code, body)
		}
	}
	resp, body := request(t, streamtest.Ctx(t), base+"/api/jobs/999/search?q=x")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("search of an unknown job: %d %s, want 404", resp.StatusCode, body)
	}
	cl := &remote.Client{BaseURL: base}
	if _, err := cl.Search(streamtest.Ctx(t), strconv.FormatInt(int64(f.job.ID), 10), search.Query{Text: "(", Regex: true, Limit: 1}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("Client.Search with a bad regex: %v, want ErrInvalid", err)
	}
	res, err := cl.Search(streamtest.Ctx(t), string(f.job.UID), search.Query{Text: "needle near", Limit: 1})
	if err != nil || len(res.Matches) != 1 || res.Matches[0].Seq != f.top {
		t.Errorf("Client.Search: %+v %v", res, err)
	}
}
