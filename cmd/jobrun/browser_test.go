package main

// The pages in a real browser: headless Chromium (Debian's chromium
// package) driven with chromedp, against the real jobrun binary. Without
// Chromium these tests skip, except under CI=true, where they fail.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// pageRow is one rendered log row: [seq, stream, line, text].
type pageRow struct {
	Seq    int
	Stream string
	Line   int
	Text   string
}

// collectRowsJS scrolls the log from its top to its bottom and returns
// every row it rendered on the way, keyed by (first seq, stream), in seq
// order: what a person scrolling through the whole log would see.
const collectRowsJS = `(async () => {
  const el = document.getElementById('log');
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const idle = async () => {
    for (let i = 0; i < 1000; i++) {
      await frame(); await frame();
      if ((el.dataset.busy || '0') === '0') return;
      await sleep(10);
    }
    throw new Error('the log stayed busy');
  };
  for (let i = 0; i < 1000; i++) {
    el.scrollTop = 0;
    await idle();
    if (el.dataset.atStart === 'true' && el.scrollTop === 0) break;
  }
  const rows = new Map();
  for (let i = 0; i < 100000; i++) {
    for (const r of el.querySelectorAll('.row')) {
      rows.set(r.dataset.seq + ':' + r.dataset.stream, [Number(r.dataset.seq), r.dataset.stream, Number(r.dataset.line), r.querySelector('.txt').textContent]);
    }
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1 && el.dataset.attached === 'true') break;
    el.scrollTop += Math.max(1, el.clientHeight - 40);
    await idle();
  }
  return [...rows.values()].sort((a, b) => a[0] - b[0]);
})()`

func collectRows(t *testing.T, b *browser) []pageRow {
	t.Helper()
	raw := eval[[][]any](t, b, collectRowsJS)
	rows := make([]pageRow, len(raw))
	for i, r := range raw {
		rows[i] = pageRow{Seq: int(r[0].(float64)), Stream: r[1].(string), Line: int(r[2].(float64)), Text: r[3].(string)}
	}
	return rows
}

// logLines returns the lines of a job's stored output, as `jobrun logs`
// prints them.
func logLines(t *testing.T, db string, id int) []string {
	t.Helper()
	out, code := jobrunOutput(t, db, "logs", fmt.Sprint(id))
	if code != 0 {
		t.Fatalf("jobrun logs %d: exit %d", id, code)
	}
	s := strings.TrimSuffix(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// checkComplete checks that the page shows every line of the job exactly
// once, in order, and nothing else.
func checkComplete(t *testing.T, b *browser, db string, id int) {
	t.Helper()
	want := logLines(t, db, id)
	rows := collectRows(t, b)
	if len(rows) != len(want) {
		t.Errorf("page shows %d rows, jobrun logs has %d lines", len(rows), len(want))
	}
	seen := make(map[string]bool)
	for i, r := range rows {
		key := fmt.Sprintf("%s:%d", r.Stream, r.Line)
		if seen[key] {
			t.Fatalf("line %s shown twice", key)
		}
		seen[key] = true
		if i < len(want) && r.Text != want[i] {
			t.Fatalf("row %d (seq %d, line %d) = %q, want %q", i, r.Seq, r.Line, r.Text, want[i])
		}
	}
	if n := eval[int](t, b, `Number(document.getElementById('log').dataset.count)`); n != len(want) {
		t.Errorf("the page's row count is %d, want %d", n, len(want))
	}
	if len(rows) > 0 && len(want) > 0 && rows[len(rows)-1].Text != want[len(want)-1] {
		t.Errorf("last row %q, want %q", rows[len(rows)-1].Text, want[len(want)-1])
	}
}

// waitStream waits until the page's stream is in state (live, ended, ...).
func waitStream(t *testing.T, b *browser, timeout time.Duration, state string) {
	t.Helper()
	b.waitFor(t, timeout, fmt.Sprintf(`document.body.dataset.stream === %q`, state),
		`document.body.dataset.stream + ' / ' + document.body.dataset.transport + ' / ' + document.getElementById('conn').textContent + ' / last seq ' + document.getElementById('log').dataset.lastSeq`)
}

// domNodes counts the elements of the page.
const domNodes = `document.getElementsByTagName('*').length`

// heapUsed collects garbage and returns the page's JavaScript heap in bytes.
func heapUsed(t *testing.T, b *browser) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}
	h, err := chromedp.Call(ctx, runtime.GetHeapUsage, cdp.Empty{})
	if err != nil {
		t.Fatalf("heap usage: %v", err)
	}
	return h.UsedSize
}

func TestPageDashboardShowsNewJobAndProgress(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	_, base := startServe(t, db)
	b := newBrowser(t)
	b.navigate(t, base+"/")
	b.waitFor(t, 10*time.Second, `!document.getElementById('empty').hidden`, `document.body.innerText`)

	ex := startJobrun(t, db, "exec", "-q", "--name", "progress demo", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`for i in 1 2 3 4 5 6 7 8 9 10; do echo "::progress $((i*10)) step $i"; echo "working $i"; sleep 0.4; done`)
	ex.baseURL(t)
	row := `document.querySelector('#jobs tr[data-id="1"]')`
	b.waitFor(t, 15*time.Second, row, `document.body.innerText`)
	// Watch the bar while the job runs: it must move without a reload.
	seen := map[float64]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := eval[struct {
			Status  string
			Percent string
			Name    string
		}](t, b, `(() => { const r = `+row+`; return {status: r.dataset.status, percent: r.querySelector('progress').dataset.percent, name: r.querySelector('.name a').textContent}; })()`)
		if st.Name != "progress demo" {
			t.Fatalf("row name %q", st.Name)
		}
		if st.Status == "running" && st.Percent != "" {
			var p float64
			fmt.Sscan(st.Percent, &p)
			seen[p] = true
		}
		if st.Status != "running" {
			if st.Status != "succeeded" || st.Percent != "100" {
				t.Errorf("finished row: status %s, percent %q; want succeeded at 100", st.Status, st.Percent)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job never finished on the dashboard")
		}
		time.Sleep(50 * time.Millisecond)
	}
	between := 0
	for p := range seen {
		if p > 0 && p < 100 {
			between++
		}
	}
	if between < 2 {
		t.Errorf("progress values seen while running: %v; want the bar to move through at least two values below 100", seen)
	}
	if feed := eval[string](t, b, `document.body.dataset.feed`); feed != "websocket" {
		t.Errorf("the dashboard's feed is %q, want the /api/stream WebSocket", feed)
	}
	if n := eval[int](t, b, `performance.getEntriesByType('navigation').length`); n != 1 {
		t.Errorf("%d navigations; the dashboard must update without reloading", n)
	}
	if got := eval[string](t, b, `document.querySelector('#jobs tr[data-id="1"] progress').getAttribute('aria-label')`); got == "" {
		t.Error("the progress bar has no accessible name")
	}
	ex.wait(t)
}

// ansiScript prints colours, a \r progress bar, stderr, a group and
// hostile output.
const ansiScript = `printf '\033[31mred\033[0m \033[1;32mbold green\033[0m \033[38;5;208morange\033[0m \033[38;2;10;20;30mrgb\033[0m\n'
i=0; while [ $i -lt 200 ]; do i=$((i+1)); printf 'bar %d%%\r' $i; done; printf 'bar done\n'
echo "to stderr" >&2
printf '::group::Build step\n'; echo inside the group; printf '::endgroup::\n'
printf '<img src=x onerror="document.title=1">\n'
printf '\033]8;;javascript:alert(1)\033\\bad link\033]8;;\033\\ \033]8;;https://example.com/x\033\\good link\033]8;;\033\\\n'
echo done`

func TestPageRendersANSIAndCarriageReturnBar(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	gate, open := startGate(t)
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--", "sh", "-c", gate+ansiScript)
	base := p.baseURL(t)
	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	waitStream(t, b, 20*time.Second, "live")
	open()
	waitStream(t, b, 20*time.Second, "ended")
	b.waitFor(t, 10*time.Second, `[...document.querySelectorAll('#log .row .txt')].some((e) => e.textContent === 'done')`, `document.getElementById('log').innerText`)
	// exec stops serving once its viewer has the end: the page says where
	// the log is.
	if note := eval[string](t, b, `document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent`); !strings.Contains(note, "jobrun logs 1") {
		t.Errorf("after the end the page says %q; want where to read the log (jobrun logs 1)", note)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exec exit %d", code)
	}

	type span struct {
		Class, Color, Weight string
	}
	spanOf := func(text string) span {
		return eval[span](t, b, `(() => {
			const s = [...document.querySelectorAll('#log .txt span')].find((e) => e.textContent === `+fmt.Sprintf("%q", text)+`);
			if (!s) return {class: 'missing', color: '', weight: ''};
			const cs = getComputedStyle(s);
			return {class: s.className, color: cs.color, weight: cs.fontWeight};
		})()`)
	}
	red := spanOf("red")
	if red.Class != "fg-1" || red.Color != "rgb(207, 34, 46)" {
		t.Errorf("red: %+v, want class fg-1 and the theme's red rgb(207, 34, 46)", red)
	}
	green := spanOf("bold green")
	if green.Class != "fg-2 bold" || green.Weight != "700" {
		t.Errorf("bold green: %+v, want classes fg-2 bold and weight 700", green)
	}
	if o := spanOf("orange"); o.Color != "rgb(255, 135, 0)" {
		t.Errorf("256-colour 208: %+v, want rgb(255, 135, 0)", o)
	}
	if c := spanOf("rgb"); c.Color != "rgb(10, 20, 30)" {
		t.Errorf("24-bit colour: %+v, want rgb(10, 20, 30)", c)
	}

	bars := eval[[]string](t, b, `[...document.querySelectorAll('#log .row .txt')].map((e) => e.textContent).filter((s) => s.startsWith('bar'))`)
	if len(bars) != 1 || bars[0] != "bar done" {
		t.Errorf("the \\r bar shows as %q, want one row \"bar done\"", bars)
	}
	if cls := eval[string](t, b, `[...document.querySelectorAll('#log .row')].find((r) => r.textContent.includes('to stderr')).className`); !strings.Contains(cls, "stderr") {
		t.Errorf("stderr row class %q, want it marked stderr", cls)
	}

	// Hostile output stays text.
	if n := eval[int](t, b, `document.querySelectorAll('#log img, #log script').length`); n != 0 {
		t.Errorf("%d elements injected by the job's output", n)
	}
	if title := eval[string](t, b, `document.title`); title == "1" {
		t.Error("job output ran script")
	}
	links := eval[[]string](t, b, `[...document.querySelectorAll('#log .txt a')].map((a) => a.textContent + ' ' + a.href)`)
	if len(links) != 1 || links[0] != "good link https://example.com/x" {
		t.Errorf("links %q, want only the https one", links)
	}

	// The group starts collapsed; its toggle is a labelled button.
	if eval[bool](t, b, `[...document.querySelectorAll('#log .txt')].some((e) => e.textContent === 'inside the group')`) {
		t.Error("a ::group:: is expanded by default")
	}
	fold := `document.querySelector('#log .row.group button.fold')`
	if got := eval[string](t, b, fold+`.getAttribute('aria-expanded') + ' ' + `+fold+`.getAttribute('aria-label')`); got != "false Expand group Build step" {
		t.Errorf("group toggle: %q", got)
	}
	b.do(t, chromedp.Click(chromedp.CSS("#log .row.group button.fold")))
	b.waitFor(t, 5*time.Second, `[...document.querySelectorAll('#log .txt')].some((e) => e.textContent === 'inside the group')`, `document.getElementById('log').innerText`)

	// Directive lines are hidden until asked for.
	if eval[bool](t, b, `[...document.querySelectorAll('#log .txt')].some((e) => e.textContent === '::endgroup::')`) {
		t.Error("the ::endgroup:: marker is shown by default")
	}
	b.do(t, chromedp.Click(chromedp.ID("directives")))
	b.waitFor(t, 5*time.Second, `[...document.querySelectorAll('#log .txt')].some((e) => e.textContent === '::endgroup::')`, `document.getElementById('log').innerText`)

	// Search asks the server, and exec has stopped serving: it says so.
	b.do(t, chromedp.SendKeys(chromedp.ID("q"), "STDERR\n"))
	b.waitFor(t, 10*time.Second, `document.getElementById('found').textContent.startsWith('search failed: cannot reach the server')`, `document.getElementById('found').textContent`)
	// jobrun serve searches it: Enter finds the next match and marks its row.
	_, serveBase := startServe(t, db)
	sb := b.newTab(t)
	sb.navigate(t, serveBase+"/jobs/1")
	waitStream(t, sb, 20*time.Second, "ended")
	sb.do(t, chromedp.SendKeys(chromedp.ID("q"), "STDERR\n"))
	sb.waitFor(t, 10*time.Second, `document.querySelector('#log .row.hit') !== null && document.getElementById('found').dataset.total === '1'`, `document.getElementById('found').textContent`)
	if got := eval[string](t, sb, `(() => { const r = document.querySelector('#log .row.hit'); return r.querySelector('.txt').textContent + ' / ' + r.querySelector('mark').textContent + ' / ' + document.getElementById('found').textContent.replace(r.dataset.line, 'N'); })()`); got != "to stderr / stderr / line N · 1 match" {
		t.Errorf("search hit %q, want the stderr row", got)
	}
	// Timestamps show on demand.
	b.do(t, chromedp.Click(chromedp.ID("times")))
	b.waitFor(t, 5*time.Second, `/^\d\d:\d\d:\d\d\.\d{3}$/.test(document.querySelector('#log .row .ts')?.textContent || '')`, `document.querySelector('#log .row').innerText`)
}

func TestPageFollowsAndPauses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	// The job ends only when the test says: after the end exec stops
	// serving, and jumping back to the latest lines reads them from it.
	gate, end := startGate(t)
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--", "sh", "-c",
		`sleep 0.5; seq 1 40000; i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo "tail $i"; sleep 0.1; done; `+gate)
	base := p.baseURL(t)
	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	log := `document.getElementById('log')`
	lastVisible := `(() => { const el = ` + log + `; const rows = [...el.querySelectorAll('.row')]; const v = el.getBoundingClientRect(); const shown = rows.filter((r) => { const a = r.getBoundingClientRect(); return a.top >= v.top - 1 && a.bottom <= v.bottom + 1; }); return shown.length ? shown[shown.length - 1].querySelector('.txt').textContent : ''; })()`
	// Following: the newest line is on screen as it arrives.
	b.waitFor(t, 20*time.Second, `/^tail \d+$/.test(`+lastVisible+`)`, lastVisible)
	if !eval[bool](t, b, `document.getElementById('latest').hidden`) {
		t.Error("the jump-to-latest button shows while following")
	}
	if n := eval[int](t, b, `Number(`+log+`.dataset.count)`); n > 31000 {
		t.Errorf("the page holds %d rows of a 40,000-line live log; it must drop far pages", n)
	}
	// Scrolling up pauses following.
	eval[bool](t, b, `(() => { `+log+`.scrollTop -= 3000; return true; })()`)
	b.waitFor(t, 10*time.Second, `!document.getElementById('latest').hidden && /new line/.test(document.getElementById('latest').textContent)`,
		`document.getElementById('latest').hidden + ' ' + document.getElementById('latest').textContent`)
	before := eval[string](t, b, lastVisible)
	time.Sleep(500 * time.Millisecond)
	if after := eval[string](t, b, lastVisible); after != before {
		t.Errorf("the log scrolled from %q to %q while paused", before, after)
	}
	b.do(t, chromedp.Click(chromedp.ID("latest")))
	b.waitFor(t, 10*time.Second, lastVisible+` === 'tail 40'`, lastVisible)
	end()
	waitStream(t, b, 30*time.Second, "ended")
	if !eval[bool](t, b, `document.getElementById('latest').hidden`) {
		t.Errorf("the jump-to-latest button still shows at the end: %s", eval[string](t, b, `JSON.stringify({...`+log+`.dataset, top: `+log+`.scrollTop, h: `+log+`.scrollHeight, ch: `+log+`.clientHeight})`))
	}
	if total := eval[int](t, b, `Number(`+log+`.dataset.total)`); total != 40040 {
		t.Errorf("virtual rows %d, want 40040", total)
	}
}

func TestPageSurvivesConnectionCutByProxy(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "120s", "--", "sh", "-c",
		`i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "line $i"; if [ $((i % 100)) = 0 ]; then sleep 0.2; fi; done`)
	base := p.baseURL(t)
	proxy := newTCPProxy(t, strings.TrimPrefix(base, "http://"))
	b := newBrowser(t)
	b.navigate(t, proxy.URL()+"/jobs/1")
	waitStream(t, b, 15*time.Second, "live")
	b.waitFor(t, 15*time.Second, `Number(document.getElementById('log').dataset.lastSeq) >= 500`, `document.getElementById('log').dataset.lastSeq`)

	proxy.stop() // the network path dies mid-job
	waitStream(t, b, 15*time.Second, "reconnecting")
	if !eval[bool](t, b, `!document.getElementById('banner').hidden && /Reconnecting/.test(document.getElementById('banner').textContent)`) {
		t.Error("no reconnecting banner while the connection is down")
	}
	time.Sleep(1500 * time.Millisecond)
	proxy.start(t)
	waitStream(t, b, 60*time.Second, "ended")
	serveInPlaceOf(t, p, db, base)
	checkComplete(t, b, db, 1)
}

func TestPageFallsBackToSSEAndLongPolling(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "120s", "--", "sh", "-c",
		`i=0; while [ $i -lt 1500 ]; do i=$((i+1)); echo "line $i"; if [ $((i % 100)) = 0 ]; then sleep 0.3; fi; done`)
	base := p.baseURL(t)
	noWS := refusingProxy(t, base, false)
	noWSnoSSE := refusingProxy(t, base, true)

	sse := newBrowser(t)
	poll := sse.newTab(t)
	sse.navigate(t, noWS+"/jobs/1")
	poll.navigate(t, noWSnoSSE+"/jobs/1")
	cases := []struct {
		b    *browser
		want string
		name string
	}{{sse, "sse", "Server-Sent Events"}, {poll, "polling", "long polling"}}
	for _, tc := range cases {
		waitStream(t, tc.b, 30*time.Second, "ended")
	}
	// Both have the end: exec exits; jobrun serve takes its place for the
	// pages' reads of the log.
	serveInPlaceOf(t, p, db, base)
	for _, tc := range cases {
		if got := eval[string](t, tc.b, `document.body.dataset.transport`); got != tc.want {
			t.Errorf("transport %q, want %q", got, tc.want)
		}
		if got := eval[string](t, tc.b, `document.getElementById('conn').textContent`); !strings.Contains(got, tc.name) {
			t.Errorf("the page says %q; it should name the transport %q", got, tc.name)
		}
		checkComplete(t, tc.b, db, 1)
	}
}

func TestPageNoticesPausedServer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	t.Setenv("JOBRUN_HEARTBEAT", "1s") // startJobrun passes the environment on
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "120s", "--", "sh", "-c",
		`i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i"; if [ $((i % 100)) = 0 ]; then sleep 0.25; fi; done`)
	base := p.baseURL(t)
	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	waitStream(t, b, 15*time.Second, "live")
	b.waitFor(t, 15*time.Second, `Number(document.getElementById('log').dataset.lastSeq) >= 200`, `document.getElementById('log').dataset.lastSeq`)

	// No close frame, no reset: the server just stops answering.
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			p.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	waitStream(t, b, 15*time.Second, "reconnecting")
	if d := time.Since(stopped); d < 2*time.Second {
		t.Errorf("the page gave up on the connection after %v, before two heartbeats (1s each)", d)
	}
	time.Sleep(2 * time.Second) // stay paused longer than two heartbeat intervals
	resume()
	waitStream(t, b, 60*time.Second, "ended")
	serveInPlaceOf(t, p, db, base)
	checkComplete(t, b, db, 1)
}

// Big jobs are generated once per test run, each in a database of its own
// next to the test binary, by `jobrun exec -- CMD...`.
var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixtureDB{}
)

type fixtureDB struct {
	once sync.Once
	path string
	err  error
}

// generatedDB returns the database named name holding job 1, made by
// running cmd the first time it is asked for.
func generatedDB(t *testing.T, name string, cmd ...string) string {
	t.Helper()
	fixturesMu.Lock()
	f := fixtures[name]
	if f == nil {
		f = &fixtureDB{path: filepath.Join(filepath.Dir(binary), name, "jobrun.db")}
		fixtures[name] = f
	}
	fixturesMu.Unlock()
	f.once.Do(func() {
		if f.err = os.MkdirAll(filepath.Dir(f.path), 0o755); f.err != nil {
			return
		}
		args := append([]string{"exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--"}, cmd...)
		if _, code := jobrunOutput(t, f.path, args...); code != 0 {
			f.err = fmt.Errorf("exec %v: exit %d", cmd, code)
		}
	})
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f.path
}

func millionLineDB(t *testing.T) string {
	return generatedDB(t, "million", "seq", "1", "1000000")
}

func TestPageMillionLines(t *testing.T) {
	db := millionLineDB(t)
	_, base := startServe(t, db)
	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	rowWith := func(line int) string {
		return fmt.Sprintf(`[...document.querySelectorAll('#log .row')].find((r) => r.dataset.line === '%d' && r.querySelector('.txt').textContent === '%d')`, line, line)
	}
	visible := func(line int) string {
		return fmt.Sprintf(`(() => { const r = %s; if (!r) return false; const a = r.getBoundingClientRect(), v = document.getElementById('log').getBoundingClientRect(); return a.top >= v.top - 1 && a.bottom <= v.bottom + 1; })()`, rowWith(line))
	}
	state := `document.getElementById('log').dataset.firstSeq + '..' + document.getElementById('log').dataset.lastSeq + ' total ' + document.getElementById('log').dataset.total + ' scrollTop ' + document.getElementById('log').scrollTop`
	b.waitFor(t, 20*time.Second, visible(1000000), state)
	if n := eval[int](t, b, domNodes); n > 3000 {
		t.Errorf("%d DOM elements at the end of a 1,000,000-line log, want fewer than 3000", n)
	}
	// A 7-digit line number fits its gutter: a digit's width or more from
	// the text, and inside the log's left edge.
	gutter := eval[[]float64](t, b, `(() => {
		const r = `+rowWith(1000000)+`;
		const box = (n) => { const g = document.createRange(); g.selectNodeContents(n); return g.getBoundingClientRect(); };
		const ln = box(r.querySelector('.ln')), txt = box(r.querySelector('.txt'));
		return [txt.left - ln.right, ln.left - document.getElementById('log').getBoundingClientRect().left, ln.width / 7];
	})()`)
	if gap, left, digit := gutter[0], gutter[1], gutter[2]; gap < digit || left < digit/4 {
		t.Errorf("line 1000000: %.1f px between the number and the text, %.1f px from the log's edge; want at least a digit (%.1f px) and a quarter", gap, left, digit)
	}
	if total := eval[int](t, b, `Number(document.getElementById('log').dataset.total)`); total != 1000000 {
		t.Errorf("virtual rows %d, want 1000000", total)
	}

	// Scroll up a little (earlier pages load), then all the way to the top.
	eval[bool](t, b, `(() => { document.getElementById('log').scrollTop -= 40000; return true; })()`)
	b.waitFor(t, 20*time.Second, `document.getElementById('log').dataset.busy === '0' && document.querySelector('#log .row') !== null`, state)
	eval[bool](t, b, `(() => { document.getElementById('log').scrollTop = 0; return true; })()`)
	b.waitFor(t, 20*time.Second, visible(1), state)
	if n := eval[int](t, b, domNodes); n > 3000 {
		t.Errorf("%d DOM elements at the top, want fewer than 3000", n)
	}
	// And through the middle with the scrollbar, as a person drags it.
	for _, frac := range []float64{0.5, 0.25, 0.75} {
		eval[bool](t, b, fmt.Sprintf(`(() => { const el = document.getElementById('log'); el.scrollTop = %f * (el.scrollHeight - el.clientHeight); return true; })()`, frac))
		firstShown := `[...document.querySelectorAll('#log .row')].find((r) => { const a = r.getBoundingClientRect(), v = document.getElementById('log').getBoundingClientRect(); return a.top >= v.top && a.bottom <= v.bottom; })`
		b.waitFor(t, 20*time.Second, `document.getElementById('log').dataset.busy === '0' && `+firstShown, state)
		mid := eval[int](t, b, `Number(`+firstShown+`.dataset.line)`)
		if want := int(frac * 1000000); mid < want-50000 || mid > want+50000 {
			t.Errorf("scrolled to %.0f%%: first line %d, want about %d", frac*100, mid, want)
		}
	}
	heap := heapUsed(t, b)
	t.Logf("after scrolling: JavaScript heap %.1f MB, %d DOM elements", heap/(1<<20), eval[int](t, b, domNodes))
	if heap > 150<<20 {
		t.Errorf("JavaScript heap %.0f MB after scrolling a 1,000,000-line log, want below 150 MB", heap/(1<<20))
	}
	if n := eval[int](t, b, domNodes); n > 3000 {
		t.Errorf("%d DOM elements after scrolling, want fewer than 3000", n)
	}

	// A deep link opens the page around its line and highlights it.
	b.navigate(t, base+"/jobs/1#L1234")
	b.waitFor(t, 20*time.Second, visible(1234), state)
	if cls := eval[string](t, b, rowWith(1234)+`.className`); !strings.Contains(cls, "hl") {
		t.Errorf("#L1234 row class %q, want it highlighted", cls)
	}
	if total := eval[int](t, b, `Number(document.getElementById('log').dataset.total)`); total != 1000000 {
		t.Errorf("opened at #L1234: virtual rows %d, want 1000000 (the scrollbar covers the whole log)", total)
	}
	// Another link on the same page: a hash change.
	eval[bool](t, b, `(() => { location.hash = '#L654321'; return true; })()`)
	b.waitFor(t, 20*time.Second, visible(654321), state)
	if heap := heapUsed(t, b); heap > 150<<20 {
		t.Errorf("JavaScript heap %.0f MB, want below 150 MB", heap/(1<<20))
	}
}

func TestPageCancelsJob(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c", `echo started; exec sleep 60`)
	base := p.baseURL(t)
	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	waitStream(t, b, 15*time.Second, "live")
	b.waitFor(t, 10*time.Second, `!document.getElementById('cancel').hidden`, `document.getElementById('status').textContent`)
	// Keyboard: focus the button and press Enter.
	b.do(t, chromedp.Focus(chromedp.ID("cancel")), chromedp.KeyEvent("\r"))
	b.waitFor(t, 20*time.Second, `document.getElementById('status').textContent === 'canceled'`,
		`document.getElementById('status').textContent + ' / ' + document.getElementById('cancel-msg').textContent`)
	waitStream(t, b, 10*time.Second, "ended")
	if !eval[bool](t, b, `document.getElementById('cancel').hidden`) {
		t.Error("the Cancel button still shows for a finished job")
	}
	if code := p.wait(t); code != 128+15 {
		t.Errorf("jobrun exec exit %d, want %d (SIGTERM)", code, 128+15)
	}

	// An unknown job says so.
	_, base2 := startServe(t, db)
	b.navigate(t, base2+"/jobs/999")
	b.waitFor(t, 10*time.Second, `document.getElementById('name').textContent === 'No such job'`, `document.body.innerText`)
}

// accessibleNames lists the controls of the page without an accessible
// name (label, aria-label, aria-labelledby or text).
const unnamedControls = `[...document.querySelectorAll('button, input, select, a[href], progress')].filter((e) => {
  if (e.closest('[hidden]') || e.type === 'hidden') return false;
  if (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')) return false;
  if (e.labels && e.labels.length) return false;
  return !(e.textContent || '').trim();
}).map((e) => e.outerHTML.slice(0, 80))`

func TestPagePhoneLayoutAndLabels(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "-q", "--name", "a job with a rather long name to wrap on a phone", "--addr", "127.0.0.1:0", "--linger", "60s", "--", "sh", "-c",
		`echo "::progress 40 halfway there"; echo "::group::Setup"; echo in; echo "::endgroup::"; echo "a line much longer than a phone screen is wide, which scrolls sideways instead of wrapping"; sleep 30`)
	base := p.baseURL(t)
	b := newBrowser(t)
	b.do(t, chromedp.EmulateViewport(390, 800, chromedp.EmulateMobile))
	for _, page := range []string{"/", "/jobs/1"} {
		b.navigate(t, base+page)
		if page == "/" {
			b.waitFor(t, 10*time.Second, `document.querySelector('#jobs tr[data-id="1"]')`, `document.body.innerText`)
		} else {
			waitStream(t, b, 10*time.Second, "live")
			b.waitFor(t, 10*time.Second, `document.querySelectorAll('#log .row').length >= 2`, `document.body.innerText`)
		}
		if w := eval[[]int](t, b, `[document.documentElement.scrollWidth, innerWidth]`); w[0] > w[1] {
			t.Errorf("%s on a 390 px screen is %d px wide: it scrolls sideways", page, w[0])
		}
		if bad := eval[[]string](t, b, unnamedControls); len(bad) > 0 {
			t.Errorf("%s: controls without an accessible name: %q", page, bad)
		}
		if ext := eval[[]string](t, b, `performance.getEntriesByType('resource').map((e) => e.name).filter((u) => !u.startsWith(location.origin + '/'))`); len(ext) > 0 {
			t.Errorf("%s made requests to other origins: %q", page, ext)
		}
		if n := eval[int](t, b, `performance.getEntriesByType('resource').length`); n < 3 {
			t.Errorf("%s: only %d resources seen; the check above would prove nothing", page, n)
		}
	}
	if got := eval[string](t, b, `document.getElementById('progress').value + ' ' + document.getElementById('percent').textContent + ' ' + document.getElementById('pmessage').textContent`); got != "40 40% halfway there" {
		t.Errorf("job header progress %q", got)
	}
}

func TestPageSurvivesServeRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	ex := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i"; if [ $((i % 100)) = 0 ]; then sleep 0.25; fi; done`)
	ex.baseURL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := startJobrun(t, db, "serve", "--addr", addr)
	b := newBrowser(t)
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(srv.stderrString(), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %q", srv.stderrString())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.navigate(t, base+"/jobs/1")
	waitStream(t, b, 15*time.Second, "live")
	b.waitFor(t, 15*time.Second, `Number(document.getElementById('log').dataset.lastSeq) >= 300`, `document.getElementById('log').dataset.lastSeq`)
	srv.cmd.Process.Signal(syscall.SIGTERM) // viewers get 1001 and reconnect
	srv.wait(t)
	waitStream(t, b, 15*time.Second, "reconnecting")
	srv2 := startJobrun(t, db, "serve", "--addr", addr)
	_ = srv2
	waitStream(t, b, 60*time.Second, "ended")
	checkComplete(t, b, db, 1)
}
