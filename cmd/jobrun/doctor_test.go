package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doctorLines runs jobrun doctor with args and returns its report by
// check name ("ok websocket the upgrade passes ..." under "websocket") and
// its exit code.
func doctorLines(t *testing.T, args ...string) (map[string]string, string, int) {
	t.Helper()
	out, stderr, code := jobrunRun(t, "", append([]string{"doctor"}, args...)...)
	lines := map[string]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == statusOK || f[0] == statusWarn || f[0] == statusFail || f[0] == statusSkip) {
			lines[f[1]] = strings.TrimSpace(line)
		}
	}
	return lines, out + stderr, code
}

// wantCheck checks that the report's line for name has status and
// contains every one of subs (in the line or its fix).
func wantCheck(t *testing.T, lines map[string]string, out, name, status string, subs ...string) {
	t.Helper()
	line := lines[name]
	if !strings.HasPrefix(line, status+" ") {
		t.Errorf("%s: got %q, want %s\n%s", name, line, status, out)
		return
	}
	// The fix is on the next line of the output.
	i := strings.Index(out, line)
	rest := out[i:]
	if j := strings.Index(rest[len(line):], "\n"+status); j >= 0 {
		rest = rest[:len(line)+j]
	}
	for _, s := range subs {
		if !strings.Contains(rest, s) {
			t.Errorf("%s: %q says nothing of %q", name, rest, s)
		}
	}
}

// TestDoctorDirect: against jobrun serve itself every check passes.
func TestDoctorDirect(t *testing.T) {
	t.Setenv("JOBRUN_HEARTBEAT", "1s")
	db := filepath.Join(t.TempDir(), "server.db")
	_, base := startServe(t, db)
	lines, out, code := doctorLines(t, "--server", base, "--idle-check", "3s")
	if code != 0 {
		t.Errorf("doctor exit %d, want 0:\n%s", code, out)
	}
	for _, name := range []string{"tls", "server", "token", "websocket", "sse", "longpoll", "idle"} {
		wantCheck(t, lines, out, name, statusOK)
	}
	wantCheck(t, lines, out, "idle", statusOK, "stayed open for 3s", "heartbeat every 1s")
	wantCheck(t, lines, out, "longpoll", statusOK, "1s long poll")

	if _, _, code := jobrunRun(t, "", "doctor", "--server", "ftp://x"); code != 2 {
		t.Errorf("doctor with a bad URL: exit %d, want 2", code)
	}
	lines, out, code = doctorLines(t, "--server", "http://"+freeAddr(t), "--idle-check", "0")
	if code != 1 {
		t.Errorf("doctor of a port where nothing listens: exit %d, want 1", code)
	}
	wantCheck(t, lines, out, "server", statusFail, "cannot reach", "serve --addr")
}

// TestDoctorBehindNginx: through the recommended nginx configuration
// everything passes; through the broken ones doctor names what breaks and
// what to change.
func TestDoctorBehindNginx(t *testing.T) {
	t.Setenv("JOBRUN_HEARTBEAT", "2s")
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	startServeAt(t, db, addr)
	nx := startNginx(t, addr)

	t.Run("recommended", func(t *testing.T) {
		lines, out, code := doctorLines(t, "--server", nx.good, "--idle-check", "5s")
		if code != 0 {
			t.Errorf("doctor exit %d, want 0:\n%s", code, out)
		}
		for _, name := range []string{"server", "token", "websocket", "sse", "longpoll", "idle"} {
			wantCheck(t, lines, out, name, statusOK)
		}
	})
	t.Run("upgrades dropped", func(t *testing.T) {
		lines, out, code := doctorLines(t, "--server", nx.noUpgrade, "--idle-check", "5s")
		if code != 1 {
			t.Errorf("doctor exit %d, want 1:\n%s", code, out)
		}
		wantCheck(t, lines, out, "websocket", statusFail, "426", "drops the Upgrade", "proxy_set_header Upgrade $http_upgrade", "proxy_http_version 1.1")
		wantCheck(t, lines, out, "sse", statusOK, "not buffered")
		wantCheck(t, lines, out, "longpoll", statusOK)
		wantCheck(t, lines, out, "idle", statusSkip, "upgrade fails")
	})
	t.Run("buffered", func(t *testing.T) {
		lines, out, code := doctorLines(t, "--server", nx.buffering, "--idle-check", "0")
		if code != 1 {
			t.Errorf("doctor exit %d, want 1:\n%s", code, out)
		}
		wantCheck(t, lines, out, "sse", statusFail, "buffered", "proxy_buffering off")
		wantCheck(t, lines, out, "websocket", statusOK)
	})
	t.Run("short idle timeout", func(t *testing.T) {
		lines, out, code := doctorLines(t, "--server", nx.shortIdle, "--idle-check", "5s")
		if code != 1 {
			t.Errorf("doctor exit %d, want 1:\n%s", code, out)
		}
		wantCheck(t, lines, out, "idle", statusFail, "cuts idle connections after about 1", "before jobrun's heartbeat (every 2s)", "proxy_read_timeout")
		wantCheck(t, lines, out, "longpoll", statusFail, "2s long poll", "cut after", "HTTP 504")
	})
}

// TestDoctorTokenAndTLS: doctor against jobrun serve with a token, a
// read-only token and TLS from a private CA: an unknown CA, a missing or
// wrong token, the read token, and all right; and a certificate that does
// not cover the URL's name.
func TestDoctorTokenAndTLS(t *testing.T) {
	t.Setenv("JOBRUN_HEARTBEAT", "1s")
	ca := newTestCA(t)
	db := filepath.Join(t.TempDir(), "server.db")
	_, base := startSecureServe(t, db, "--token", e2eToken, "--read-token", e2eReadToken,
		"--tls-cert", ca.certFile, "--tls-key", ca.keyFile)
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("serve's URL %s, want https://127.0.0.1:port", base)
	}

	lines, out, code := doctorLines(t, "--server", base, "--idle-check", "0")
	if code != 1 {
		t.Errorf("unknown CA: exit %d, want 1", code)
	}
	wantCheck(t, lines, out, "tls", statusFail, "does not trust", "jobrun test CA", "--ca-cert")

	lines, out, code = doctorLines(t, "--server", base, "--ca-cert", ca.caFile, "--idle-check", "0")
	if code != 1 {
		t.Errorf("no token: exit %d, want 1", code)
	}
	// The test CA's certificates last a day: doctor warns of the expiry.
	wantCheck(t, lines, out, "tls", statusWarn, "valid for 127.0.0.1", "0 days left", "jobrun test CA", "renew")
	wantCheck(t, lines, out, "server", statusOK, "asks for a token")
	wantCheck(t, lines, out, "token", statusFail, "needs a token", "JOBRUN_TOKEN")
	wantCheck(t, lines, out, "websocket", statusSkip)

	lines, out, _ = doctorLines(t, "--server", base, "--ca-cert", ca.caFile, "--token", "wrong-token-0123456789", "--idle-check", "0")
	wantCheck(t, lines, out, "token", statusFail, "refuses this token")

	lines, out, code = doctorLines(t, "--server", base, "--ca-cert", ca.caFile, "--token", e2eReadToken, "--idle-check", "2s")
	if code != 0 {
		t.Errorf("read token: exit %d, want 0:\n%s", code, out)
	}
	wantCheck(t, lines, out, "token", statusOK, "read-only")
	for _, name := range []string{"websocket", "sse", "longpoll", "idle"} {
		wantCheck(t, lines, out, name, statusOK)
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(e2eToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, out, code = doctorLines(t, "--server", base, "--ca-cert", ca.caFile, "--token-file", tokenFile, "--idle-check", "0")
	if code != 0 {
		t.Errorf("full token: exit %d, want 0:\n%s", code, out)
	}
	wantCheck(t, lines, out, "token", statusOK, "the token is accepted: full access")

	// httptest's certificate covers 127.0.0.1 and example.com, not localhost.
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	caFile := filepath.Join(t.TempDir(), "httptest.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, out, _ = doctorLines(t, "--server", strings.Replace(ts.URL, "127.0.0.1", "localhost", 1), "--ca-cert", caFile, "--idle-check", "0")
	wantCheck(t, lines, out, "tls", statusFail, "not localhost", "127.0.0.1", "example.com")
}
