package main

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// barColor is the colour a progress bar's value is painted in (sel: the
// bar, at least a few percent full), read from a screenshot: computed
// styles do not reach ::-webkit-progress-value.
func barColor(t *testing.T, b *browser, sel string) string {
	t.Helper()
	r := eval[[]float64](t, b, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.left, r.top, r.height, devicePixelRatio]; })()`, sel))
	time.Sleep(500 * time.Millisecond) // the width transition (.3s) of a bar just filled
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	c := color.RGBAModel.Convert(img.At(int((r[0]+5)*r[3]), int((r[1]+r[2]/2)*r[3]))).(color.RGBA)
	return fmt.Sprintf("rgb(%d, %d, %d)", c.R, c.G, c.B)
}

// TestPageHeaderFollowsStatus: the tab title carries a running job's
// percent and a finished job's outcome, the favicon and the progress bar's
// colour follow the status (the bar as on the dashboard), and the bell
// notifies when the job ends while the page is hidden.
func TestPageHeaderFollowsStatus(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	if _, code := jobrunOutput(t, db, "exec", "-q", "--name", "ok demo", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`echo "::progress 50 half"; echo done`); code != 0 {
		t.Fatalf("ok demo: exit %d", code)
	}
	release := filepath.Join(t.TempDir(), "release")
	ex := startJobrun(t, db, "exec", "-q", "--name", "title demo", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`echo "::progress 45 halfway"; echo working; while [ ! -e "`+release+`" ]; do sleep 0.05; done; exit 3`)
	ex.baseURL(t)
	_, base := startServe(t, db)
	b := newBrowser(t)
	favicon := `new URL(document.querySelector('link[rel="icon"]').href).pathname`

	// A finished job: its outcome, and the bar of the dashboard's colour.
	b.navigate(t, base+"/")
	b.waitFor(t, 10*time.Second, `document.querySelectorAll('#jobs tbody tr').length === 2`, `document.body.innerText`)
	if got := eval[string](t, b, favicon); got != "/assets/favicon.svg" {
		t.Errorf("the dashboard's favicon is %s", got)
	}
	dashOK := barColor(t, b, `#jobs tr[data-id="1"] progress`)
	b.navigate(t, base+"/jobs/1")
	waitStream(t, b, 15*time.Second, "ended")
	if got := eval[string](t, b, `document.title`); got != "✓ ok demo · jobrun" {
		t.Errorf("title of a succeeded job %q", got)
	}
	if got := eval[string](t, b, favicon); got != "/assets/favicon-succeeded.svg" {
		t.Errorf("favicon of a succeeded job %s", got)
	}
	if got := barColor(t, b, "#progress"); got != dashOK || got != "rgb(26, 127, 55)" {
		t.Errorf("a succeeded job's bar is %s on its page, %s on the dashboard; want both green rgb(26, 127, 55)", got, dashOK)
	}

	// A running job: its percent first.
	b.navigate(t, base+"/jobs/2")
	waitStream(t, b, 15*time.Second, "live")
	b.waitFor(t, 10*time.Second, `document.title === '45% title demo · jobrun'`, `document.title`)
	if got := eval[string](t, b, favicon); got != "/assets/favicon-running.svg" {
		t.Errorf("favicon of a running job %s", got)
	}
	if got := barColor(t, b, "#progress"); got != "rgb(9, 105, 218)" {
		t.Errorf("a running job's bar is %s, want blue rgb(9, 105, 218)", got)
	}
	// The bell: permission granted, turned on, the page hidden.
	u := strings.TrimSuffix(base, "/")
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: u,
	}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	b.waitFor(t, 5*time.Second, `!document.getElementById('notify').hidden`, `document.getElementById('notify').dataset.state`)
	b.do(t, chromedp.Click(chromedp.ID("notify")))
	b.waitFor(t, 5*time.Second, `document.getElementById('notify').getAttribute('aria-pressed') === 'true'`,
		`document.getElementById('notify').dataset.state + ' ' + Notification.permission`)
	eval[bool](t, b, `(() => { Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' }); return true; })()`)

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, 15*time.Second, `document.getElementById('status').textContent === 'failed'`, `document.getElementById('status').textContent`)
	if got := eval[string](t, b, `document.title`); got != "✗ title demo · jobrun" {
		t.Errorf("title of a failed job %q", got)
	}
	if got := eval[string](t, b, favicon); got != "/assets/favicon-failed.svg" {
		t.Errorf("favicon of a failed job %s", got)
	}
	b.waitFor(t, 5*time.Second, `document.getElementById('notify').dataset.sent === '1'`, `document.getElementById('notify').dataset.sent`)
	for _, icon := range []string{"favicon.svg", "favicon-running.svg", "favicon-succeeded.svg", "favicon-failed.svg", "favicon-canceled.svg"} {
		got := eval[string](t, b, `fetch('/assets/`+icon+`').then((r) => r.status + ' ' + r.headers.get('content-type'))`)
		if got != "200 image/svg+xml" {
			t.Errorf("/assets/%s: %s, want 200 image/svg+xml", icon, got)
		}
	}
	failed := barColor(t, b, "#progress")
	b.navigate(t, base+"/")
	b.waitFor(t, 10*time.Second, `document.querySelector('#jobs tr[data-id="2"]')?.dataset.status === 'failed'`, `document.body.innerText`)
	if dash := barColor(t, b, `#jobs tr[data-id="2"] progress`); failed != dash || failed != "rgb(207, 34, 46)" {
		t.Errorf("a failed job's bar is %s on its page, %s on the dashboard; want both red rgb(207, 34, 46)", failed, dash)
	}
	// A server without a token has no session to sign out of.
	if !eval[bool](t, b, `document.getElementById('signout').hidden`) {
		t.Error("Sign out shows on a server without a token")
	}
	ex.wait(t)
}
