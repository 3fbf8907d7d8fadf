package api_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// namedJob creates a running job with a name and host, created at created.
func namedJob(t *testing.T, db *sqlite.DB, name, host string, created time.Time) jobs.Job {
	t.Helper()
	j := jobs.Job{Name: name, Host: host, Command: []string{"x"}, Cwd: "/", CreatedAt: created}
	if err := db.CreateJob(streamtest.Ctx(t), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// endJob commits job id's exit event with status st at seq.
func endJob(t *testing.T, db *sqlite.DB, hub *stream.Hub, id jobs.ID, seq jobs.Seq, st jobs.Status) {
	t.Helper()
	code := 1
	if st == jobs.StatusSucceeded {
		code = 0
	}
	streamtest.Commit(t, db, hub, id, []jobs.Event{{Seq: seq, Time: time.Now(), Type: jobs.TypeExit, Status: st, ExitCode: &code}})
}

// listPage reads GET /api/jobs?query and fails unless it answers 200.
func listPage(t *testing.T, base, query string) api.JobsPage {
	t.Helper()
	status, _, body := get(t, base, "/api/jobs?"+query)
	if status != 200 {
		t.Fatalf("GET /api/jobs?%s: %d %s", query, status, body)
	}
	var p api.JobsPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("GET /api/jobs?%s: %s: %v", query, body, err)
	}
	if !strings.Contains(string(body), `"next_before":`) {
		t.Errorf("GET /api/jobs?%s: %s has no next_before", query, body)
	}
	return p
}

func pageIDs(p api.JobsPage) []jobs.ID {
	ids := []jobs.ID{}
	for _, j := range p.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

func TestJobsListFilters(t *testing.T) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	deploy := namedJob(t, db, "Deploy prod", "web1", t0)
	build := namedJob(t, db, "build", "ci", t0.Add(time.Hour))
	deploy2 := namedJob(t, db, "deploy staging", "web2", t0.Add(2*time.Hour))
	running := namedJob(t, db, "nightly deploy", "ci", t0.Add(3*time.Hour))
	endJob(t, db, hub, deploy.ID, 1, jobs.StatusFailed)
	endJob(t, db, hub, build.ID, 1, jobs.StatusSucceeded)
	endJob(t, db, hub, deploy2.ID, 1, jobs.StatusCanceled)

	for _, tc := range []struct {
		query string
		want  []jobs.ID
	}{
		{"", []jobs.ID{running.ID, deploy2.ID, build.ID, deploy.ID}},
		{"status=failed", []jobs.ID{deploy.ID}},
		{"status=failed&status=canceled", []jobs.ID{deploy2.ID, deploy.ID}},
		{"status=failed,canceled", []jobs.ID{deploy2.ID, deploy.ID}},
		{"status=running", []jobs.ID{running.ID}},
		{"status=unreachable", []jobs.ID{}},
		{"q=DEPLOY", []jobs.ID{running.ID, deploy2.ID, deploy.ID}},
		{"q=deploy&status=failed", []jobs.ID{deploy.ID}},
		{"host=ci", []jobs.ID{running.ID, build.ID}},
		{"since=" + url.QueryEscape(t0.Add(time.Hour).Format(time.RFC3339)), []jobs.ID{running.ID, deploy2.ID, build.ID}},
		{"until=" + url.QueryEscape(t0.Add(time.Hour).Format(time.RFC3339)), []jobs.ID{deploy.ID}},
		{"since=2026-03-01T13:00:00%2B01:00&until=2026-03-01T14:00:00.5Z", []jobs.ID{deploy2.ID, build.ID, deploy.ID}},
		{"cachebuster=1&q=build", []jobs.ID{build.ID}},
	} {
		p := listPage(t, base, tc.query)
		if got := pageIDs(p); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("?%s: %v, want %v", tc.query, got, tc.want)
		}
		if p.NextBefore != nil {
			t.Errorf("?%s: next_before %d, want null (all fit in a page)", tc.query, *p.NextBefore)
		}
	}

	// The Go client sends the same filter.
	cl := &remote.Client{BaseURL: base}
	p, err := cl.Jobs(streamtest.Ctx(t), jobs.Filter{Statuses: []jobs.Status{jobs.StatusFailed, jobs.StatusCanceled}, Name: "Deploy",
		Since: t0, Until: t0.Add(3 * time.Hour)}, 10, 0)
	if got := pageIDs(p); err != nil || !reflect.DeepEqual(got, []jobs.ID{deploy2.ID, deploy.ID}) {
		t.Errorf("Client.Jobs: %v, %v; want [%d %d]", got, err, deploy2.ID, deploy.ID)
	}
}

// TestJobsListPaging pages a filter with next_before: every matching job
// once, newest first, and null after the last page.
func TestJobsListPaging(t *testing.T) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	var want []jobs.ID
	for i := range 11 {
		name := fmt.Sprintf("other %d", i)
		if i%2 == 0 {
			name = fmt.Sprintf("deploy %d", i)
		}
		j := namedJob(t, db, name, "h", time.Now())
		if i%2 == 0 {
			want = append([]jobs.ID{j.ID}, want...)
		}
	}
	var got []jobs.ID
	query := "q=deploy&limit=2"
	for pages := 1; ; pages++ {
		p := listPage(t, base, query)
		got = append(got, pageIDs(p)...)
		if p.NextBefore == nil {
			if len(p.Jobs) == 2 {
				t.Errorf("a full page ended with next_before null")
			}
			break
		}
		if last := p.Jobs[len(p.Jobs)-1].ID; *p.NextBefore != last {
			t.Errorf("next_before %d, want the page's last id %d", *p.NextBefore, last)
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		query = fmt.Sprintf("q=deploy&limit=2&before=%d", *p.NextBefore)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
}

func TestJobsListBadParameters(t *testing.T) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	for _, query := range []string{
		"status=done",
		"status=failed,",
		"status=Running",
		"since=yesterday",
		"since=2026-03-01",
		"until=2026-13-01T00:00:00Z",
		"q=" + strings.Repeat("x", jobs.MaxFilterText+1),
		"host=" + strings.Repeat("x", jobs.MaxFilterText+1),
		"before=x",
		"limit=1001",
	} {
		status, ctype, body := get(t, base, "/api/jobs?"+query)
		var e struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
		}
		if err := json.Unmarshal(body, &e); status != 400 || ctype != "application/json" || err != nil || e.Code != 400 || e.Error == "" {
			t.Errorf("?%.60s: %d %s %.200s, want 400 with a JSON error", query, status, ctype, body)
		}
	}
}
