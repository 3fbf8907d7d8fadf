package api_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// post sends a cancel request with headers (name, value, ...).
func post(t *testing.T, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCancel(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	var c streamtest.Canceler
	srv.Cancel = c.Cancel
	base := streamtest.Serve(t, srv)
	running := streamtest.NewJob(t, db)
	finished := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, finished.ID, []jobs.Event{streamtest.ExitEvent(1)})
	origin := base // http://127.0.0.1:port: the same origin
	url := fmt.Sprintf("%s/api/jobs/%d/cancel", base, running.ID)
	json := "application/json"

	for _, tc := range []struct {
		name    string
		url     string
		body    string
		headers []string
		code    int
	}{
		{"no origin", url, "{}", []string{"Content-Type", json}, 403},
		{"foreign origin", url, "{}", []string{"Origin", "http://evil.example", "Content-Type", json}, 403},
		{"look-alike origin", url, "{}", []string{"Origin", origin + ".evil.example", "Content-Type", json}, 403},
		{"null origin", url, "{}", []string{"Origin", "null", "Content-Type", json}, 403},
		{"cross-site fetch", url, "{}", []string{"Origin", origin, "Sec-Fetch-Site", "cross-site", "Content-Type", json}, 403},
		{"same-site fetch", url, "{}", []string{"Sec-Fetch-Site", "same-site", "Content-Type", json}, 403},
		{"form post", url, "{}", []string{"Origin", origin, "Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"text post", url, "{}", []string{"Origin", origin, "Content-Type", "text/plain"}, 415},
		{"no content type", url, "{}", []string{"Origin", origin}, 415},
		{"empty body", url, "", []string{"Origin", origin, "Content-Type", json}, 400},
		{"array body", url, "[]", []string{"Origin", origin, "Content-Type", json}, 400},
		{"null body", url, "null", []string{"Origin", origin, "Content-Type", json}, 400},
		{"two objects", url, "{} {}", []string{"Origin", origin, "Content-Type", json}, 400},
		{"huge body", url, `{"x":"` + strings.Repeat("x", 8000) + `"}`, []string{"Origin", origin, "Content-Type", json}, 400},
		{"unknown job", base + "/api/jobs/999/cancel", "{}", []string{"Origin", origin, "Content-Type", json}, 404},
		{"bad ref", base + "/api/jobs/Bad.Ref/cancel", "{}", []string{"Origin", origin, "Content-Type", json}, 400},
		{"finished job", fmt.Sprintf("%s/api/jobs/%d/cancel", base, finished.ID), "{}", []string{"Origin", origin, "Content-Type", json}, 409},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.url, tc.body, tc.headers...)
			if code != tc.code || !strings.Contains(body, fmt.Sprintf(`"code":%d`, tc.code)) {
				t.Errorf("%d %s, want %d with a JSON error", code, body, tc.code)
			}
		})
	}
	if got := c.Calls(); len(got) != 0 {
		t.Fatalf("refused requests reached Cancel: %v", got)
	}

	for _, h := range [][]string{
		{"Origin", origin, "Content-Type", "application/json; charset=utf-8"},
		{"Sec-Fetch-Site", "same-origin", "Content-Type", json},
		{"Origin", origin, "Sec-Fetch-Site", "same-origin", "Content-Type", json},
	} {
		if code, body := post(t, url, `{}`, h...); code != http.StatusAccepted || !strings.Contains(body, "cancel requested") {
			t.Errorf("%v: %d %s, want 202", h, code, body)
		}
	}
	if got := c.Calls(); len(got) != 3 || got[0] != running.ID {
		t.Errorf("Cancel calls %v, want job %d three times", got, running.ID)
	}
	if code, _ := post(t, base+"/api/jobs/"+string(running.UID)+"/cancel", `{"reason":"by uid"}`, "Origin", origin, "Content-Type", json); code != 202 {
		t.Errorf("cancel by uid: %d", code)
	}
	if status, _, _ := get(t, base, fmt.Sprintf("/api/jobs/%d/cancel", running.ID)); status != http.StatusMethodNotAllowed {
		t.Errorf("GET cancel: %d, want 405", status)
	}

	// The hook's verdict.
	c.Answer(fmt.Errorf("job runs elsewhere: %w", jobs.ErrConflict))
	if code, _ := post(t, url, "{}", "Origin", origin, "Content-Type", json); code != 409 {
		t.Errorf("Cancel says conflict: %d, want 409", code)
	}
	c.Answer(errors.New("kill: operation not permitted"))
	if code, body := post(t, url, "{}", "Origin", origin, "Content-Type", json); code != 500 || strings.Contains(body, "permitted") {
		t.Errorf("Cancel fails: %d %s, want 500 without details", code, body)
	}
	c.Answer(nil)

	// The same over the job's stream.
	ws := dial(t, ctx, base, fmt.Sprintf("/api/jobs/%d/stream", running.ID))
	before := len(c.Calls())
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	if _, p, err := readEvents(ctx, ws); err != nil || string(p) != `[{"type":"notice","message":"cancel requested"}]` {
		t.Errorf("cancel message: %s, %v", p, err)
	}
	if got := c.Calls(); len(got) != before+1 || got[before] != running.ID {
		t.Errorf("Cancel calls %v after the stream message", got)
	}
	c.Answer(fmt.Errorf("job %d is not run by this process: %w", running.ID, jobs.ErrConflict))
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	if _, p, err := readEvents(ctx, ws); err != nil || !strings.Contains(string(p), `"type":"error"`) || !strings.Contains(string(p), `"code":409`) {
		t.Errorf("refused cancel message: %s, %v", p, err)
	}
}
