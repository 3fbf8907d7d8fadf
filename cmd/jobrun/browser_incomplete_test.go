package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPageWarnsOfIncompleteLog: a job whose stored log is incomplete (its
// database filled up, through the test knob JOBRUN_TEST_MAX_PAGES) carries
// a warning on its page, live when its exit event comes and when the page
// is opened later, and on the dashboard; a complete job carries none.
func TestPageWarnsOfIncompleteLog(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	if _, code := jobrunOutput(t, db, "exec", "-q", "--name", "complete", "--addr", "127.0.0.1:0", "--linger", "0", "--", "echo", "ok"); code != 0 {
		t.Fatalf("complete job: exit %d", code)
	}
	_, base := startServe(t, db)
	wait, open := startGate(t)
	t.Setenv("JOBRUN_TEST_MAX_PAGES", fullDiskPages) // for the exec only: serve runs already
	ex := startJobrun(t, db, "exec", "--standalone", "-q", "--name", "fills the disk", "--addr", "127.0.0.1:0", "--linger", "0",
		"--", "sh", "-c", wait+fullDiskJob)
	ex.baseURL(t)

	b := newBrowser(t)
	dash := b.newTab(t)
	dash.navigate(t, base+"/")
	dash.waitFor(t, 10*time.Second, `document.querySelectorAll('#jobs tbody tr').length === 2`, `document.body.innerText`)
	// warned reports whether the warning sel is on screen (laid out).
	warned := func(b *browser, sel string) bool {
		return eval[bool](t, b, `(() => { const w = document.querySelector(`+"`"+sel+"`"+`); return !!w && w.getClientRects().length > 0; })()`)
	}
	if warned(dash, `#jobs tr[data-id="1"] .incomplete`) || warned(dash, `#jobs tr[data-id="2"] .incomplete`) {
		t.Errorf("the dashboard warns of a complete or running job")
	}
	b.navigate(t, base+"/jobs/2")
	waitStream(t, b, 15*time.Second, "live")
	if warned(b, "#incomplete") {
		t.Errorf("a running job's page warns of an incomplete log")
	}

	open()
	const text = `document.getElementById('incomplete').textContent`
	b.waitFor(t, 60*time.Second, `document.getElementById('status').textContent === 'failed' && !document.getElementById('incomplete').hidden`,
		`document.getElementById('status').textContent + ' / ' + `+text)
	if got := eval[string](t, b, text); !strings.HasPrefix(got, "The stored log is incomplete: storing the output failed after seq ") || !strings.Contains(got, "disk full") {
		t.Errorf("the live page's warning: %q", got)
	}
	if !warned(b, "#incomplete") {
		t.Errorf("the live page's warning is not shown")
	}
	dash.waitFor(t, 15*time.Second, `(() => { const w = document.querySelector('#jobs tr[data-id="2"] .incomplete'); return w && !w.hidden; })()`,
		`document.querySelector('#jobs tr[data-id="2"]').innerText`)
	if !warned(dash, `#jobs tr[data-id="2"] .incomplete`) || warned(dash, `#jobs tr[data-id="1"] .incomplete`) {
		t.Errorf("the dashboard warns of the wrong jobs: %q", eval[string](t, dash, `document.querySelector('#jobs tbody').innerText`))
	}
	if title := eval[string](t, dash, `document.querySelector('#jobs tr[data-id="2"] .incomplete').title`); !strings.Contains(title, "disk full") {
		t.Errorf("the dashboard's warning does not say why: title %q", title)
	}

	// Opened later, from the stored job.
	b.navigate(t, base+"/jobs/2")
	waitStream(t, b, 15*time.Second, "ended")
	if !warned(b, "#incomplete") {
		t.Errorf("the finished job's page does not warn: %q", eval[string](t, b, text))
	}
	b.navigate(t, base+"/jobs/1")
	waitStream(t, b, 15*time.Second, "ended")
	if warned(b, "#incomplete") {
		t.Errorf("a complete job's page warns: %q", eval[string](t, b, text))
	}
}
