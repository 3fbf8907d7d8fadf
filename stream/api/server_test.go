package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// get fetches base+path and returns the status, content type and body.
func get(t testing.TB, base, path string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func TestHTTPAPI(t *testing.T) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j1 := streamtest.NewJob(t, db)
	j2 := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j2.ID, append(streamtest.Lines(1, 2), streamtest.ExitEvent(3)))

	for _, tc := range []struct {
		name, path string
		status     int
		want       string // a substring of the body
	}{
		{"info", "/api/info", 200, `{"app":"jobrun","role":"exec","version":"test","heartbeat_seconds":20,"access":"full"}`},
		{"list", "/api/jobs", 200, `"uid":"` + string(j1.UID) + `"`},
		{"list limit", "/api/jobs?limit=1", 200, `"id":2`},
		{"list before", "/api/jobs?before=2", 200, `"id":1`},
		{"list before all", "/api/jobs?before=1", 200, `{"jobs":[],"next_before":null}`},
		{"job by id", "/api/jobs/2", 200, `"last_seq":3`},
		{"job by uid", "/api/jobs/" + string(j1.UID), 200, `"status":"running"`},
		{"unknown job", "/api/jobs/999", 404, `"code":404`},
		{"unknown uid", "/api/jobs/abcdefghijklmnopqrstuvwxyz", 404, `"code":404`},
		{"bad ref", "/api/jobs/Bad.Ref", 400, `"code":400`},
		{"zero id", "/api/jobs/0", 400, `"code":400`},
		{"limit zero", "/api/jobs?limit=0", 400, `limit`},
		{"limit too big", "/api/jobs?limit=1001", 400, `limit`},
		{"limit not a number", "/api/jobs?limit=ten", 400, `limit`},
		{"before negative", "/api/jobs?before=-1", 400, `before`},
		{"before zero", "/api/jobs?before=0", 200, `"id":2`},
		{"log bad stream", "/api/jobs/1/log?stream=stdin", 400, `stream`},
		{"log unknown job", "/api/jobs/999/log", 404, `"code":404`},
		{"stream without upgrade", "/api/jobs/1/stream", 426, `WebSocket`},
		{"stream bad after", "/api/jobs/1/stream?after=x", 400, `after`},
		{"stream negative after", "/api/jobs/1/stream?after=-1", 400, `after`},
		{"stream after beyond", "/api/jobs/2/stream?after=4", 409, `start over with after=0`},
		{"stream unknown job", "/api/jobs/999/stream", 404, `"code":404`},
		{"no such endpoint", "/api/nothing", 404, `"code":404`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, ctype, body := get(t, base, tc.path)
			if status != tc.status {
				t.Errorf("status = %d, want %d (body %s)", status, tc.status, body)
			}
			if ctype != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ctype)
			}
			if !strings.Contains(string(body), tc.want) {
				t.Errorf("body = %s, want it to contain %s", body, tc.want)
			}
			if status >= 400 {
				var e struct {
					Error string `json:"error"`
					Code  int    `json:"code"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Code != status || e.Error == "" {
					t.Errorf("error body %s: want {\"error\":...,\"code\":%d}", body, status)
				}
			}
		})
	}

	resp, err := http.Post(base+"/api/jobs", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/jobs = %d, want 405", resp.StatusCode)
	}
}

// TestLogByteExact: /log gives back exactly the bytes of each stream,
// including invalid UTF-8, \r, \r\n and fragments, over several pages.
func TestLogByteExact(t *testing.T) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)

	pieces := []struct {
		stream jobs.Stream
		data   string
		eol    string
	}{
		{jobs.StreamStdout, "héllo wörld", "\n"},
		{jobs.StreamStdout, "\xff\xfe invalid \x80", ""},
		{jobs.StreamStderr, "error: \xc3", "\r\n"},
		{jobs.StreamStdout, " continued", "\r\n"},
		{jobs.StreamStdout, "progress 10%", "\r"},
		{jobs.StreamStdout, "progress 100%", "\n"},
		{jobs.StreamStderr, "", "\n"},
		{jobs.StreamStderr, "tab\there \"quoted\" \\ \u2028", "\n"},
	}
	for i := range 2500 { // more than one page of History
		pieces = append(pieces, struct {
			stream jobs.Stream
			data   string
			eol    string
		}{jobs.StreamStdout, strings.Repeat("x", i%70), "\n"})
	}
	pieces = append(pieces, struct {
		stream jobs.Stream
		data   string
		eol    string
	}{jobs.StreamStdout, "no final newline \xe2\x82", ""})

	var evs []jobs.Event
	want := map[jobs.Stream]string{}
	var all strings.Builder
	for i, p := range pieces {
		evs = append(evs, jobs.Event{Seq: jobs.Seq(i + 1), Time: time.Now(), Type: jobs.TypeLine,
			Stream: p.stream, Line: int64(i + 1), Data: []byte(p.data), EOL: p.eol})
		want[p.stream] += p.data + p.eol
		all.WriteString(p.data + p.eol)
	}
	evs = append(evs, streamtest.ExitEvent(jobs.Seq(len(evs)+1)))
	streamtest.Commit(t, db, hub, j.ID, evs)

	for _, tc := range []struct{ query, want string }{
		{"", all.String()},
		{"?stream=stdout", want[jobs.StreamStdout]},
		{"?stream=stderr", want[jobs.StreamStderr]},
	} {
		status, ctype, body := get(t, base, "/api/jobs/1/log"+tc.query)
		if status != 200 || !strings.HasPrefix(ctype, "text/plain") {
			t.Errorf("log%s: status %d, type %q", tc.query, status, ctype)
		}
		if string(body) != tc.want {
			t.Errorf("log%s: got %d bytes, want %d; differ", tc.query, len(body), len(tc.want))
		}
	}
}

func TestRestrictHost(t *testing.T) {
	h := access.RestrictHost(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost", true},
		{"localhost:7070", true},
		{"LOCALHOST:7070", true},
		{"localhost.:7070", true},
		{"127.0.0.1", true},
		{"127.0.0.1:7070", true},
		{"127.1.2.3:80", true},
		{"[::1]:7070", true},
		{"[::1]", true},
		{"", false},
		{"evil.example", false},
		{"evil.example:7070", false},
		{"localhost.evil.example:7070", false},
		{"127.0.0.1.nip.io", false},
		{"0.0.0.0:7070", false},
		{"192.168.1.10:7070", false},
		{"[::]:7070", false},
		{"[fe80::1]:7070", false},
	} {
		r := httptest.NewRequest("GET", "/api/info", nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Code == http.StatusOK; got != tc.ok {
			t.Errorf("Host %q: status %d, want allowed=%v", tc.host, w.Code, tc.ok)
		}
		if !tc.ok && (w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"code":403`)) {
			t.Errorf("Host %q: got %d %s, want 403 with a JSON body", tc.host, w.Code, w.Body)
		}
	}
}
