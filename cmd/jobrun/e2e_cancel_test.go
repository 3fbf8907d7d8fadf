package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

// loopScript runs until it is stopped; SIGTERM ends it (exit 143).
const loopScript = `echo ready; while :; do sleep 0.05; done`

// postCancel posts a cancel request with headers (name, value, ...).
func postCancel(t *testing.T, base string, id jobs.ID, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/jobs/%d/cancel", base, id), strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// jobStatus reads the only job of db with jobrun ls --json.
func jobStatus(t *testing.T, db string) jobs.Job {
	t.Helper()
	out, _ := jobrunOutput(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal(out, &list); err != nil || len(list.Jobs) != 1 {
		t.Fatalf("ls --json: %s, %v", out, err)
	}
	return list.Jobs[0]
}

// TestCancelOverHTTP: POST /api/jobs/{id}/cancel from the page's origin
// stops a running jobrun exec job: SIGTERM, status canceled, exit 143.
// Requests another site could make are refused and change nothing.
func TestCancelOverHTTP(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "--addr", "127.0.0.1:0", "--linger", "0", "--kill-after", "10s", "--", "sh", "-c", loopScript)
	base := p.baseURL(t)
	waitFor(t, func() bool { return strings.Contains(p.stdout.String(), "ready") })

	for _, h := range [][]string{
		{"Content-Type", "application/json"},
		{"Origin", "http://evil.example", "Content-Type", "application/json"},
		{"Origin", base, "Content-Type", "text/plain"},
		{"Origin", base, "Sec-Fetch-Site", "cross-site", "Content-Type", "application/json"},
	} {
		if code, body := postCancel(t, base, 1, h...); code != http.StatusForbidden && code != http.StatusUnsupportedMediaType {
			t.Errorf("%v: %d %s, want 403 or 415", h, code, body)
		}
	}
	if code, _ := postCancel(t, base, 2, "Origin", base, "Content-Type", "application/json"); code != http.StatusNotFound {
		t.Errorf("cancel of an unknown job: %d, want 404", code)
	}
	if j := jobStatus(t, db); j.Status != jobs.StatusRunning {
		t.Fatalf("after refused cancels the job is %s, want running", j.Status)
	}

	if code, body := postCancel(t, base, 1, "Origin", base, "Content-Type", "application/json"); code != http.StatusAccepted {
		t.Fatalf("cancel: %d %s, want 202", code, body)
	}
	if code := p.wait(t); code != 128+int(syscall.SIGTERM) {
		t.Errorf("jobrun exit = %d, want %d; stderr %q", code, 128+int(syscall.SIGTERM), p.stderrString())
	}
	j := jobStatus(t, db)
	if j.Status != jobs.StatusCanceled || j.ExitCode == nil || *j.ExitCode != 143 || j.Signal != "SIGTERM" {
		t.Errorf("job = %s, exit %v, signal %q; want canceled, 143, SIGTERM", j.Status, j.ExitCode, j.Signal)
	}
}

// TestCancelOverWebSocket: a {"type":"cancel"} message on the job's stream
// gets a notice and stops the job; the stream then delivers the exit event
// (canceled) and closes with 1000. A cancel of the finished job, while
// exec lingers, is refused with 409.
func TestCancelOverWebSocket(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "--addr", "127.0.0.1:0", "--linger", "30s", "--kill-after", "10s", "--", "sh", "-c", loopScript)
	base := p.baseURL(t)
	waitFor(t, func() bool { return strings.Contains(p.stdout.String(), "ready") })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+"/api/jobs/1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	var notice bool
	var exit *jobs.Event
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusNormalClosure {
				t.Errorf("stream ended with %v, want 1000 after the exit event", err)
			}
			break
		}
		var evs []json.RawMessage
		if err := json.Unmarshal(msg, &evs); err != nil {
			t.Fatalf("message %s: %v", msg, err)
		}
		for _, raw := range evs {
			var e jobs.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			switch {
			case e.Seq == 0 && strings.Contains(string(raw), `"cancel requested"`):
				notice = true
			case e.Seq == 0:
				t.Errorf("unexpected notice %s", raw)
			case e.Type == jobs.TypeExit:
				exit = &e
			}
		}
	}
	if !notice {
		t.Error(`no {"type":"notice","message":"cancel requested"}`)
	}
	if exit == nil || exit.Status != jobs.StatusCanceled || exit.ExitCode == nil || *exit.ExitCode != 143 {
		t.Errorf("exit event %+v, want canceled with 143", exit)
	}

	// The viewer got the exit event: exec exits by itself. A server of
	// the database refuses to cancel the finished job.
	if code := p.wait(t); code != 143 {
		t.Errorf("jobrun exit = %d, want 143", code)
	}
	if j := jobStatus(t, db); j.Status != jobs.StatusCanceled {
		t.Errorf("job status %s, want canceled", j.Status)
	}
	serve := serveDB(t, db)
	if code, body := postCancel(t, serve, 1, "Origin", serve, "Content-Type", "application/json"); code != http.StatusConflict {
		t.Errorf("cancel of the finished job: %d %s, want 409", code, body)
	}
}
