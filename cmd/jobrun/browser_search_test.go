package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// haystackLineDB holds a job of 2,000,000 lines: "haystack needle one"
// on line 11, "needle two" in the middle, "needle three" last.
func haystackLineDB(t *testing.T) string {
	return generatedDB(t, "haystack", "sh", "-c",
		`seq 1 10; echo "haystack needle one"; seq 1 1000000; echo "needle two"; seq 1000001 1999999; echo "needle three"`)
}

// The page opens a 2,000,000-line job at its end; typing finds a line near
// the top, counts the matches of the whole log, and Enter and Shift+Enter
// go through them.
func TestPageSearchesTheWholeLog(t *testing.T) {
	db := haystackLineDB(t)
	_, base := startServe(t, db)
	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	log := `document.getElementById('log')`
	state := `(() => { const r = document.querySelector('#log .row.hit'), el = ` + log + `;
		const where = r ? 'hit line ' + r.dataset.line + ' ' + r.innerHTML.slice(0, 300) + ' at ' + (r.getBoundingClientRect().top - el.getBoundingClientRect().top) + ' of ' + el.clientHeight : 'no hit row';
		return document.getElementById('found').textContent + ' | ' + where + ' | ' + el.dataset.firstSeq + '..' + el.dataset.lastSeq + ' ops ' + el.dataset.ops; })()`
	b.waitFor(t, 30*time.Second, `document.body.dataset.stream === 'ended' && [...document.querySelectorAll('#log .row')].some((r) => r.textContent.endsWith('needle three'))`, state)

	clearQuery := func() { eval[string](t, b, `document.getElementById('q').value = ''`) }
	hit := func(line int, mark string) string {
		return fmt.Sprintf(`(() => { const r = document.querySelector('#log .row.hit'); if (!r || r.dataset.line !== '%d') return false;
			const m = r.querySelector('mark'), v = %s.getBoundingClientRect(), a = r.getBoundingClientRect();
			return m !== null && m.textContent === %q && a.top >= v.top - 1 && a.bottom <= v.bottom + 1; })()`, line, log, mark)
	}
	// Typing searches: the first match from the rows on screen, the end,
	// has none after it, so the search wraps to the top of the log.
	b.do(t, chromedp.SendKeys(chromedp.ID("q"), "hayStack"))
	b.waitFor(t, 60*time.Second, hit(11, "haystack"), state)
	b.waitFor(t, 60*time.Second, `document.getElementById('found').dataset.total === '1'`, state)
	if got := eval[string](t, b, `document.getElementById('found').textContent`); got != "line 11 · 1 match" {
		t.Errorf("status %q, want %q", got, "line 11 · 1 match")
	}

	// Another query: the count covers the whole log; Enter goes on.
	clearQuery()
	b.do(t, chromedp.SendKeys(chromedp.ID("q"), "needle"))
	b.waitFor(t, 60*time.Second, hit(11, "needle"), state)
	b.waitFor(t, 60*time.Second, `document.getElementById('found').dataset.total === '3'`, state)
	for _, want := range []struct {
		key  string
		line int
		mark string
	}{
		{"\r", 1000012, "needle"}, // typing found line 11, on screen
		{"\r", 2000012, "needle"},
		{"\r", 11, "needle"},         // wraps around the end
		{"shift", 2000012, "needle"}, // and back
	} {
		if want.key == "shift" {
			b.do(t, chromedp.Click(chromedp.ID("prev")))
		} else {
			b.do(t, chromedp.SendKeys(chromedp.ID("q"), want.key))
		}
		b.waitFor(t, 60*time.Second, hit(want.line, want.mark), state)
		if got, wantText := eval[string](t, b, `document.getElementById('found').textContent`), fmt.Sprintf("line %s · 3 matches", commas(want.line)); got != wantText {
			t.Errorf("status %q, want %q", got, wantText)
		}
	}
	// Match case and regular expressions.
	b.do(t, chromedp.Click(chromedp.CSS(`label[title^="Regular"]`)))
	clearQuery()
	b.do(t, chromedp.SendKeys(chromedp.ID("q"), `^needle (two|three)$`))
	b.waitFor(t, 60*time.Second, `document.getElementById('found').dataset.total === '2'`, state)
	clearQuery()
	b.do(t, chromedp.SendKeys(chromedp.ID("q"), `(`))
	b.waitFor(t, 30*time.Second, `document.getElementById('found').textContent.startsWith('search failed: ')`, state)
	if heap := heapUsed(t, b); heap > 150<<20 {
		t.Errorf("JavaScript heap %.0f MB after searching, want below 150 MB", heap/(1<<20))
	}
}

// commas writes n with thousands separators, as the page does.
func commas(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
