package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Screenshots for the README and docs/ are not a test: they are written by
//
//	go test ./cmd/jobrun -run TestScreenshots -screenshots
//
// (or scripts/screenshots.sh), which runs a few demo jobs with the real
// binary and photographs the dashboard and a job page, light and dark.
var screenshots = flag.Bool("screenshots", false, "write docs/screenshots/*.png instead of skipping TestScreenshots")

// demoBuild is a build log with colours, a group, stderr and progress; it
// stops at about 70% and waits, so that the pages show a running job.
const demoBuild = `set -e
printf '::group::Install dependencies\n'
for p in golang.org/x/sys github.com/mattn/go-sqlite3 github.com/coder/websocket; do printf '\033[2mfetching\033[0m %s\n' "$p"; done
printf '::endgroup::\n'
printf '\033[1;34m==>\033[0m Compiling 24 packages\n'
i=0
while [ $i -lt 17 ]; do
  i=$((i+1))
  printf '\033[32m✓\033[0m compiled \033[1mpkg/module%02d\033[0m \033[2m(%d ms)\033[0m\n' $i $((i*37%300+20))
  echo "::progress $((i*100/24)) compiling pkg/module$(printf %02d $i)"
  if [ $i = 9 ]; then echo "warning: pkg/legacy uses a deprecated API (Dial); use DialContext" >&2; fi
  sleep 0.4
done
printf 'linking \033[33m[=============>          ]\033[0m 58%%\r'
sleep 600`

func TestScreenshots(t *testing.T) {
	if !*screenshots {
		t.Skip("run with -screenshots to write docs/screenshots/*.png")
	}
	out, err := filepath.Abs("../../docs/screenshots")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "jobrun.db")
	run := func(name string, script string) {
		jobrunOutput(t, db, "exec", "-q", "--name", name, "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c", script)
	}
	run("unit tests", `i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo "::progress $((i*100/40))"; echo "ok  pkg/$i"; done; sleep 1.2`)
	run("deploy staging", `echo "deploying to staging"; sleep 0.7; echo "error: health check failed: 503 from /healthz" >&2; exit 1`)
	run("lint", `echo "golangci-lint run ./..."; sleep 0.4; echo "0 issues."`)
	build := startJobrun(t, db, "exec", "-q", "--name", "build release", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c", demoBuild)
	build.baseURL(t)
	backup := startJobrun(t, db, "exec", "-q", "--name", "nightly backup", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`echo "::progress 31 copying /var/lib/postgres (31 GB of 100 GB)"; sleep 600`)
	backup.baseURL(t)
	_, base := startServe(t, db)
	time.Sleep(8 * time.Second) // let the build reach its pause

	b := newBrowser(t)
	shoot := func(name, url string, dark bool, w, h int64, mobile bool, ready string) {
		t.Helper()
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		defer cancel()
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		}); err != nil {
			t.Fatal(err)
		}
		opts := []chromedp.EmulateViewportOption{}
		if mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
		}
		b.do(t, chromedp.EmulateViewport(w, h, opts...), chromedp.Navigate(url))
		b.waitFor(t, 20*time.Second, ready, `document.body.innerText.slice(0, 200)`)
		time.Sleep(700 * time.Millisecond) // transitions
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/screenshots/%s", name)
	}
	dashReady := `document.querySelectorAll('#jobs tbody tr').length === 5`
	jobReady := `document.body.dataset.stream === 'live' && document.querySelectorAll('#log .row').length > 10`
	shoot("dashboard-light.png", base+"/", false, 1280, 560, false, dashReady)
	shoot("dashboard-dark.png", base+"/", true, 1280, 560, false, dashReady)
	shoot("job-light.png", base+"/jobs/4", false, 1280, 800, false, jobReady)
	shoot("job-dark.png", base+"/jobs/4", true, 1280, 800, false, jobReady)
	shoot("job-phone.png", base+"/jobs/4", true, 390, 800, true, jobReady)
	_ = cdp.Empty{}
}
