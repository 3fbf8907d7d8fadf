package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// remover adapts *sqlite.DB to api.Remover, as cmd/jobrun does.
type remover struct{ db *sqlite.DB }

func (r remover) RemoveJob(ctx context.Context, ref jobs.Ref) (jobs.Job, error) {
	return r.db.RemoveJob(ctx, ref, store.RemoveOptions{})
}

func (r remover) Prune(ctx context.Context, q api.PruneRequest) (api.PruneResult, error) {
	res, err := r.db.Prune(ctx, store.PruneQuery{Before: time.Now().Add(-q.OlderThan()), Keep: q.Keep}, store.RemoveOptions{})
	return api.PruneResult{Removed: res.Removed}, err
}

// send sends method url with body and headers (name, value, ...).
func send(t *testing.T, method, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
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

func TestRemoveAndPruneAPI(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	srv.Remover = remover{db}
	base := streamtest.Serve(t, srv)
	running := streamtest.NewJob(t, db)
	done := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, done.ID, append(streamtest.Lines(1, 2), streamtest.ExitEvent(3)))
	origin := base
	json := "application/json"
	url := func(id jobs.ID) string { return fmt.Sprintf("%s/api/jobs/%d", base, id) }

	for _, tc := range []struct {
		name    string
		method  string
		url     string
		body    string
		headers []string
		code    int
		want    string
	}{
		{"no origin", "DELETE", url(done.ID), "{}", []string{"Content-Type", json}, 403, "Origin"},
		{"other site", "DELETE", url(done.ID), "{}", []string{"Content-Type", json, "Origin", "http://evil.example"}, 403, "not this server"},
		{"form post", "DELETE", url(done.ID), "{}", []string{"Content-Type", "text/plain", "Origin", origin}, 415, "application/json"},
		{"not an object", "DELETE", url(done.ID), "[]", []string{"Content-Type", json, "Origin", origin}, 400, "JSON object"},
		{"running", "DELETE", url(running.ID), "{}", []string{"Content-Type", json, "Origin", origin}, 409, "still running"},
		{"unknown", "DELETE", url(99), "{}", []string{"Content-Type", json, "Origin", origin}, 404, "not found"},
		{"bad ref", "DELETE", base + "/api/jobs/NOT-A-REF", "{}", []string{"Content-Type", json, "Origin", origin}, 400, "neither"},
		{"prune without age", "POST", base + "/api/prune", `{"keep":1}`, []string{"Content-Type", json, "Origin", origin}, 400, "older_than_seconds"},
		{"prune unknown field", "POST", base + "/api/prune", `{"older_than":"1h"}`, []string{"Content-Type", json, "Origin", origin}, 400, "unknown field"},
		{"prune from other site", "POST", base + "/api/prune", `{"older_than_seconds":1}`, []string{"Content-Type", json, "Sec-Fetch-Site", "cross-site"}, 403, "cross-site"},
		{"prune by GET", "GET", base + "/api/prune", "", nil, 405, ""},
		{"removed", "DELETE", url(done.ID), "{}", []string{"Content-Type", json, "Origin", origin}, 200, fmt.Sprintf(`{"removed":{"id":%d`, done.ID)},
		{"removed already", "DELETE", url(done.ID), "{}", []string{"Content-Type", json, "Origin", origin}, 404, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := send(t, tc.method, tc.url, tc.body, tc.headers...)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.url, code, body, tc.code, tc.want)
			}
		})
	}
	if _, err := db.Job(ctx, jobs.Ref{ID: running.ID}); err != nil {
		t.Errorf("the running job: %v", err)
	}

	// The Go client, through prune.
	old := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, old.ID, []jobs.Event{streamtest.ExitEvent(1)})
	cl := &remote.Client{BaseURL: base}
	res, err := cl.Prune(ctx, api.PruneRequest{OlderThanSeconds: 3600})
	if err != nil || len(res.Removed) != 0 {
		t.Errorf("Prune of jobs younger than an hour: %v, %v; want nothing removed", res, err)
	}
	_, err = cl.Remove(ctx, fmt.Sprint(running.ID))
	if !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("Client.Remove of a running job: %v, want ErrConflict", err)
	}
	j, err := cl.Remove(ctx, string(old.UID))
	if err != nil || j.ID != old.ID {
		t.Errorf("Client.Remove by uid: %+v, %v", j, err)
	}

	// Without a Remover (jobrun exec's embedded server): 404.
	plain := streamtest.Serve(t, streamtest.NewServer(db, hub))
	code, body := send(t, "DELETE", fmt.Sprintf("%s/api/jobs/%d", plain, running.ID), "{}", "Content-Type", json, "Origin", plain)
	if code != 404 || !strings.Contains(body, "not available here") {
		t.Errorf("DELETE without a Remover: %d %s, want 404", code, body)
	}
}
