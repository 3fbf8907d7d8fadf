package main

// The progress chart's whole history, and the dashboard's paging and
// filters in its address, in a real browser.

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPageChartWholeHistory: a job of 1,000,000 lines whose progress goes
// from 0 to 100 over them, opened at its tail (the page loads only the
// last page of the log), charts its progress from the start: the chart
// begins at 0% at the left edge and ends at 100%.
func TestPageChartWholeHistory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	// Ten steps of 100,000 lines; a pause after each progress line, so
	// that no value is coalesced away.
	script := `BEGIN { print "::progress 0"; for (i = 1; i <= 1000000; i++) { print i; ` +
		`if (i % 100000 == 0) { print "::progress " i / 10000; fflush(); system("sleep 0.3") } } }`
	if _, code := jobrunOutput(t, db, "exec", "-q", "--progress", "explicit", "--addr", "127.0.0.1:0", "--linger", "0",
		"--", "awk", script); code != 0 {
		t.Fatalf("exec: exit %d", code)
	}
	_, base := startServe(t, db)
	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	waitStream(t, b, 30*time.Second, "ended")
	chart := `document.getElementById('chart')`
	b.waitFor(t, 20*time.Second, `!`+chart+`.hasAttribute('hidden') && /0% to 100%/.test(`+chart+`.getAttribute('aria-label'))`,
		chart+`.getAttribute('aria-label') + ' / hidden: ' + `+chart+`.hasAttribute('hidden')`)
	// The page holds only the tail of the log...
	if first := eval[int](t, b, `Number(document.getElementById('log').dataset.firstSeq)`); first < 900000 {
		t.Fatalf("the page holds the log from seq %d; want only its tail", first)
	}
	// ...and the curve starts at the job's start, at 0%, and climbs
	// through the steps in between.
	pts := eval[[][]float64](t, b, `document.querySelector('#chart polyline').getAttribute('points').split(' ').map((p) => p.split(',').map(Number))`)
	if len(pts) < 2 {
		t.Fatalf("chart points %v", pts)
	}
	if x, y := pts[0][0], pts[0][1]; x > 15 || y != 60 {
		t.Errorf("the curve starts at (%v, %v); want at the left edge (x under 15 of 300) at 0%% (y 60)", x, y)
	}
	levels := map[float64]bool{}
	for _, p := range pts {
		levels[p[1]] = true
	}
	if len(levels) < 11 {
		t.Errorf("the curve has %d levels, want the 11 steps from 0%% to 100%%: %v", len(levels), pts)
	}
}

// dashJobs runs n short jobs: job i (1-based) is named "deploy i" when i
// is a multiple of 5, else "build i", and fails when i is a multiple of 3.
func dashJobs(t *testing.T, db string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		name, cmd := fmt.Sprintf("build %d", i), "true"
		if i%5 == 0 {
			name = fmt.Sprintf("deploy %d", i)
		}
		if i%3 == 0 {
			cmd = "false"
		}
		jobrunOutput(t, db, "exec", "-q", "--name", name, "--addr", "127.0.0.1:0", "--linger", "0", "--", cmd)
	}
}

// shownRows returns the ids and statuses of the dashboard's rows, in order.
func shownRows(t *testing.T, b *browser) (ids []int, statuses []string) {
	t.Helper()
	rows := eval[[][]any](t, b, `[...document.querySelectorAll('#jobs tbody tr')].map((r) => [Number(r.dataset.id), r.dataset.status])`)
	for _, r := range rows {
		ids = append(ids, int(r[0].(float64)))
		statuses = append(statuses, r[1].(string))
	}
	return ids, statuses
}

// scrollToEnd scrolls the dashboard to its end until no older jobs are
// left to load.
func scrollToEnd(t *testing.T, b *browser) {
	t.Helper()
	b.waitFor(t, 10*time.Second, `document.body.dataset.state === 'live'`, `document.body.dataset.state`)
	deadline := time.Now().Add(30 * time.Second)
	for !eval[bool](t, b, `document.getElementById('more').hidden`) {
		eval[bool](t, b, `(() => { scrollTo(0, document.documentElement.scrollHeight); return true; })()`)
		if time.Now().After(deadline) {
			t.Fatalf("still more to load after 30 s of scrolling; %d rows", eval[int](t, b, `document.querySelectorAll('#jobs tbody tr').length`))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openDashboard runs n jobs (dashJobs), serves them and opens path on the
// server in a browser, once the dashboard shows rows.
func openDashboard(t *testing.T, n int, path string) (*browser, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "jobrun.db")
	dashJobs(t, db, n)
	_, base := startServe(t, db)
	b := newBrowser(t)
	b.navigate(t, base+path)
	b.waitFor(t, 10*time.Second, `document.querySelectorAll('#jobs tbody tr').length > 0`, `document.body.innerText.slice(0, 300)`)
	return b, base
}

// TestPageDashboardPagesBack: with 300 jobs the dashboard shows the first
// page, then older pages as it is scrolled to its end, down to job 1: each
// job once, newest first.
func TestPageDashboardPagesBack(t *testing.T) {
	b, _ := openDashboard(t, 300, "/")
	b.waitFor(t, 10*time.Second, `document.querySelectorAll('#jobs tbody tr').length >= 100`, `document.querySelectorAll('#jobs tbody tr').length`)
	if ids, _ := shownRows(t, b); len(ids) != 100 || ids[0] != 300 || ids[99] != 201 {
		t.Fatalf("first page: %d rows from %v; want 100, jobs 300 down to 201", len(ids), ids[:min(len(ids), 3)])
	}
	if eval[bool](t, b, `document.getElementById('more').hidden`) {
		t.Fatal("no way to older jobs shown")
	}
	scrollToEnd(t, b)
	ids, _ := shownRows(t, b)
	want := make([]int, 300)
	for i := range want {
		want[i] = 300 - i
	}
	if !slices.Equal(ids, want) {
		t.Errorf("after scrolling: %d rows %v...%v; want jobs 300 down to 1, each once", len(ids), ids[:min(len(ids), 5)], ids[max(len(ids)-5, 0):])
	}
	if n := eval[int](t, b, `performance.getEntriesByType('navigation').length`); n != 1 {
		t.Errorf("%d navigations; paging must not reload the page", n)
	}
}

// TestPageDashboardFiltersInAddress: /?status=failed shows only failed
// jobs (paging back through them too), the controls show the filter, and
// changing a control changes the address, which reloads to the same view.
func TestPageDashboardFiltersInAddress(t *testing.T) {
	b, base := openDashboard(t, 240, "/?status=failed")
	if got := eval[string](t, b, `document.getElementById('status-filter').value`); got != "failed" {
		t.Errorf("status control shows %q, want failed", got)
	}
	scrollToEnd(t, b)
	ids, statuses := shownRows(t, b)
	if len(ids) != 80 {
		t.Errorf("%d rows for status=failed, want the 80 failed jobs", len(ids))
	}
	for i, st := range statuses {
		if st != "failed" || ids[i]%3 != 0 {
			t.Errorf("row %d: job %d %s, want only failed jobs", i, ids[i], st)
		}
	}

	// Typing a name narrows the list, and the address follows.
	eval[bool](t, b, `(() => { const i = document.getElementById('name-filter'); i.value = 'Deploy'; i.dispatchEvent(new Event('input')); return true; })()`)
	b.waitFor(t, 10*time.Second, `location.search === '?status=failed&q=Deploy'`, `location.search`)
	b.waitFor(t, 10*time.Second, `[...document.querySelectorAll('#jobs tbody tr')].every((r) => /^deploy /.test(r.querySelector('.name a').textContent)) && document.querySelectorAll('#jobs tbody tr').length === 16`,
		`document.querySelectorAll('#jobs tbody tr').length + ' rows: ' + [...document.querySelectorAll('#jobs tbody tr .name a')].map((a) => a.textContent).slice(0, 5)`)
	// Another status: the address changes with it.
	eval[bool](t, b, `(() => { const s = document.getElementById('status-filter'); s.value = 'succeeded'; s.dispatchEvent(new Event('change')); return true; })()`)
	b.waitFor(t, 10*time.Second, `location.search === '?status=succeeded&q=Deploy'`, `location.search`)
	b.waitFor(t, 10*time.Second, `document.querySelectorAll('#jobs tbody tr').length === 32 && [...document.querySelectorAll('#jobs tbody tr')].every((r) => r.dataset.status === 'succeeded')`,
		`document.querySelectorAll('#jobs tbody tr').length + ' rows'`)
	// The address, opened again (shared), gives the same view.
	link := eval[string](t, b, `location.href`)
	b.navigate(t, link)
	b.waitFor(t, 10*time.Second, `document.querySelectorAll('#jobs tbody tr').length === 32`, `document.querySelectorAll('#jobs tbody tr').length + ' rows'`)
	if got := eval[[]string](t, b, `[document.getElementById('status-filter').value, document.getElementById('name-filter').value]`); !slices.Equal(got, []string{"succeeded", "Deploy"}) {
		t.Errorf("controls after reopening %s: %v", link, got)
	}
	// Several statuses from an address: one option stands for them.
	b.navigate(t, base+"/?status="+url.QueryEscape("failed,succeeded")+"&q=deploy+2")
	b.waitFor(t, 10*time.Second, `document.querySelectorAll('#jobs tbody tr').length === 11`, `document.querySelectorAll('#jobs tbody tr').length + ' rows'`)
	if got := eval[string](t, b, `document.getElementById('status-filter').selectedOptions[0].textContent`); !strings.Contains(got, "failed or succeeded") {
		t.Errorf("status control shows %q", got)
	}
}
