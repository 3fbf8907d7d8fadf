package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jobrun/jobrun/jobs"
)

// TestPageLoginAndShareLink signs in on the login page of a serve with a
// token, in real Chromium, and signs out; and opens a share link in a
// browser that has no session: the job's page works, read-only, and
// nothing else does.
func TestPageLoginAndShareLink(t *testing.T) {
	agentEnv(t)
	db := filepath.Join(t.TempDir(), "jobrun.db")
	_, base := startSecureServe(t, db, "--token", e2eToken)
	ex := startJobrun(t, db, "exec", "-q", "--server", base, "--token", e2eToken, "--", "sh", "-c", `echo "shared line"; exec sleep 60`)
	defer ex.cmd.Process.Kill()
	var j jobs.Job
	waitFor(t, func() bool {
		st, body := getWith(t, http.DefaultClient, base+"/api/jobs/1", e2eToken)
		return st == 200 && json.Unmarshal([]byte(body), &j) == nil && j.Status == jobs.StatusRunning
	})
	uid := string(j.UID)

	b := newBrowser(t)
	b.navigate(t, base+"/jobs/1")
	b.waitFor(t, 10*time.Second, `location.pathname === '/login' && document.getElementById('next')?.value === '/jobs/1'`, `location.href`)
	// A wrong token first: the page says so.
	b.do(t, chromedp.SendKeys(chromedp.ID("token"), "not-the-token\n"))
	b.waitFor(t, 10*time.Second, `location.search.includes('error=invalid') && document.getElementById('login-msg')?.hidden === false`, `location.href + ' ' + document.body.innerText`)
	b.do(t, chromedp.SendKeys(chromedp.ID("token"), e2eToken+"\n"))
	b.waitFor(t, 10*time.Second, `location.pathname === '/jobs/1'`, `location.href`)
	b.waitFor(t, 15*time.Second, `document.body?.dataset.stream === 'live'`, `location.href`)
	b.waitFor(t, 10*time.Second, `document.getElementById('log')?.innerText.includes('shared line')`, `document.body.innerText`)
	b.waitFor(t, 10*time.Second, `document.getElementById('cancel')?.hidden === false`, `document.getElementById('status').textContent`)
	if c := eval[string](t, b, `document.cookie`); c != "" {
		t.Errorf("scripts can read cookies %q: the session cookie must be HttpOnly", c)
	}
	b.waitFor(t, 10*time.Second, `document.getElementById('signout')?.hidden === false`, `document.body.innerText`)
	// Signed in, the login page goes on by itself.
	b.navigate(t, base+"/login?next=/")
	b.waitFor(t, 10*time.Second, `location.pathname === '/' && document.querySelector('#jobs tr[data-id="1"]')`, `location.href`)
	// Sign out: back on the login page, and the session is gone.
	b.waitFor(t, 10*time.Second, `document.getElementById('signout')?.hidden === false`, `document.body.innerText`)
	b.do(t, chromedp.Click(chromedp.CSS(`#signout button`)))
	b.waitFor(t, 10*time.Second, `location.pathname === '/login' && document.getElementById('token') !== null`, `location.href`)
	b.navigate(t, base+"/")
	b.waitFor(t, 10*time.Second, `location.pathname === '/login'`, `location.href`)
	time.Sleep(300 * time.Millisecond) // the login page's own check of the cookie must not go on
	if p := eval[string](t, b, `location.pathname`); p != "/login" {
		t.Errorf("after signing out, the login page went on to %s", p)
	}

	// A share link, in a browser without a session.
	link, stderr, code := runJobrun(t, []string{"JOBRUN_SERVER=" + base, "JOBRUN_TOKEN=" + e2eToken}, "share", "--expires", "1h", "1")
	link = strings.TrimSpace(link)
	if code != 0 {
		t.Fatalf("share: exit %d %q", code, stderr)
	}
	v := newBrowser(t)
	v.navigate(t, link)
	v.waitFor(t, 10*time.Second, `location.pathname === '/jobs/`+uid+`' && location.search === ''`, `location.href`)
	v.waitFor(t, 15*time.Second, `document.body?.dataset.stream === 'live'`, `location.href`)
	v.waitFor(t, 10*time.Second, `document.getElementById('log')?.innerText.includes('shared line')`, `document.body.innerText`)
	if !eval[bool](t, v, `document.getElementById('cancel').hidden`) {
		t.Error("a share link's page offers Cancel")
	}
	if !eval[bool](t, v, `document.getElementById('signout').hidden`) {
		t.Error("a share link's page offers Sign out (logout ends sessions, not share links)")
	}
	// The dashboard is not shared.
	v.navigate(t, base+"/")
	v.waitFor(t, 10*time.Second, `location.pathname === '/login'`, `location.href`)
	ex.cmd.Process.Kill()
}
