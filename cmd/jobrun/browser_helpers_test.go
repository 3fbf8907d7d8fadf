package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the page tests drive: Debian's chromium
// package (scripts/test.sh installs it), or JOBRUN_CHROMIUM.
func chromiumPath() string {
	if p := os.Getenv("JOBRUN_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// needChromium skips a page test when Chromium is not installed, except
// under CI=true, where a missing browser is a failure: CI must never pass
// by skipping the browser suite.
func needChromium(t testing.TB) string {
	t.Helper()
	p := chromiumPath()
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium not found at %s (CI=true: page tests must run; scripts/test.sh installs it): %v", p, err)
		}
		t.Skipf("Chromium not found at %s; install it (apt-get install -y chromium) to run the page tests", p)
	}
	return p
}

// browser is one tab of a headless Chromium with a fresh profile. Page
// exceptions (uncaught errors, unhandled rejections) and Content-Security-
// Policy violations fail the test.
type browser struct {
	ctx context.Context // the tab; actions run on contexts derived from it

	mu         sync.Mutex
	exceptions []string
}

// newBrowser starts headless Chromium for t; it is closed by t.Cleanup.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := needChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Timers of a headless tab must not be throttled: the page's
		// dead-connection detection and backoff run on them.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		// performance.memory reports exact heap sizes with this flag.
		chromedp.Flag("enable-precise-memory-info", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	// Start the browser with a context without deadline: the first run
	// binds the browser's life to its context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return watch(t, ctx, cancel)
}

// newTab opens another tab of b's browser.
func (b *browser) newTab(t testing.TB) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	return watch(t, ctx, cancel)
}

// watch collects the page exceptions of the tab ctx until it closes; the
// test fails with them at cleanup. cancel closes the tab.
func watch(t testing.TB, ctx context.Context, cancel context.CancelFunc) *browser {
	b := &browser{ctx: ctx}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			// Exceptions, and anything the Content-Security-Policy refused
			// (the pages must work under it).
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.HasPrefix(m.Text, "Refused to") {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exceptions {
			t.Errorf("page exception: %s", e)
		}
	})
	// Cleanups run last-registered first: close the tab, wait for the
	// collector, then report.
	t.Cleanup(func() { <-done })
	t.Cleanup(cancel)
	return b
}

// do runs actions with a bound in time.
func (b *browser) do(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// navigate opens url and waits for the load event.
func (b *browser) navigate(t testing.TB, url string) {
	t.Helper()
	b.do(t, chromedp.Navigate(url))
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its JSON value into T.
func eval[T any](t testing.TB, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("eval %s: %v", short(expr), err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is truthy, failing after
// timeout with the value of describe (an expression telling the state).
func (b *browser) waitFor(t testing.TB, timeout time.Duration, expr, describe string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok := eval[bool](t, b, "!!("+expr+")")
		if ok {
			return
		}
		if time.Now().After(deadline) {
			state := ""
			if describe != "" {
				state = eval[string](t, b, "String("+describe+")")
			}
			t.Fatalf("waited %v for %s; state: %s", timeout, short(expr), state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startGate returns a shell command that waits until open is called, to
// put before a job's script: the job then starts only once the test's
// viewer is there (jobrun exec exits as soon as its job has ended and no
// viewer needs it).
func startGate(t testing.TB) (wait string, open func()) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "go")
	return fmt.Sprintf("while [ ! -e %q ]; do sleep 0.02; done; ", file), func() {
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}
