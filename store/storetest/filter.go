package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

func idsOf(list []jobs.Job) []jobs.ID {
	out := []jobs.ID{}
	for _, j := range list {
		out = append(out, j.ID)
	}
	return out
}

// filterJobs makes jobs of every status, with names, hosts and creation
// times to filter on; base is the creation time of the first.
func filterJobs(t *testing.T, db Store, base time.Time) map[string]jobs.Job {
	t.Helper()
	ctx := Ctx(t)
	made := map[string]jobs.Job{}
	for i, c := range []struct {
		name, host string
		status     jobs.Status
	}{
		{"Deploy prod", "web1", jobs.StatusSucceeded},
		{"deploy staging", "web2", jobs.StatusFailed},
		{"build 100% _fast_", "ci", jobs.StatusFailed},
		{`back\slash`, "ci", jobs.StatusCanceled},
		{"ÉTÉ déploiement", "web1", jobs.StatusLost},
		{"nightly DEPLOY", "ci", jobs.StatusRunning},
	} {
		j := jobs.Job{Name: c.name, Host: c.host, Command: []string{"x"}, CreatedAt: base.Add(time.Duration(i) * time.Hour)}
		if err := db.CreateJob(ctx, &j); err != nil {
			t.Fatal(err)
		}
		if c.status != jobs.StatusRunning {
			code := 1
			Append(t, db, j.ID, []jobs.Event{{Seq: 1, Time: T0, Type: jobs.TypeExit, Status: c.status, ExitCode: &code}})
		}
		made[c.name] = j
	}
	// An agent job, heard now: running for db.
	uid := jobs.NewUID()
	started := base.Add(6 * time.Hour)
	id, _, err := db.RegisterJob(ctx, jobs.Job{UID: uid, Name: "agent deploy", Host: "far", Command: []string{"x"},
		CreatedAt: started, StartedAt: &started})
	if err != nil {
		t.Fatal(err)
	}
	made["agent deploy"] = jobs.Job{ID: id}
	return made
}

// testJobsFilter lists with each filter and checks the answer against the
// expected jobs and against jobs.Filter.Match over every job: the query
// and Match must agree.
func (s suite) testJobsFilter(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	m := filterJobs(t, db, base)
	id := func(name string) jobs.ID { return m[name].ID }
	all, err := db.Jobs(ctx, store.JobsQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    jobs.Filter
		want []jobs.ID
	}{
		{"none", jobs.Filter{}, idsOf(all)},
		{"failed", jobs.Filter{Statuses: []jobs.Status{jobs.StatusFailed}},
			[]jobs.ID{id("build 100% _fast_"), id("deploy staging")}},
		{"failed or lost", jobs.Filter{Statuses: []jobs.Status{jobs.StatusFailed, jobs.StatusLost, jobs.StatusFailed}},
			[]jobs.ID{id("ÉTÉ déploiement"), id("build 100% _fast_"), id("deploy staging")}},
		{"running", jobs.Filter{Statuses: []jobs.Status{jobs.StatusRunning}}, []jobs.ID{id("agent deploy"), id("nightly DEPLOY")}},
		{"unreachable", jobs.Filter{Statuses: []jobs.Status{jobs.StatusUnreachable}}, []jobs.ID{}},
		{"name, any case", jobs.Filter{Name: "dEpLoY"},
			[]jobs.ID{id("agent deploy"), id("nightly DEPLOY"), id("deploy staging"), id("Deploy prod")}},
		{"name with %", jobs.Filter{Name: "100%"}, []jobs.ID{id("build 100% _fast_")}},
		{"name with _", jobs.Filter{Name: "_fast_"}, []jobs.ID{id("build 100% _fast_")}},
		{"_ is not a wildcard", jobs.Filter{Name: "deploy_"}, []jobs.ID{}},
		{"% is not a wildcard", jobs.Filter{Name: "d%y"}, []jobs.ID{}},
		{"backslash", jobs.Filter{Name: `k\s`}, []jobs.ID{id(`back\slash`)}},
		{"non-ASCII letters exactly", jobs.Filter{Name: "ÉTÉ"}, []jobs.ID{id("ÉTÉ déploiement")}},
		{"non-ASCII letters keep their case", jobs.Filter{Name: "été"}, []jobs.ID{}},
		{"host", jobs.Filter{Host: "ci"}, []jobs.ID{id("nightly DEPLOY"), id(`back\slash`), id("build 100% _fast_")}},
		{"host is exact", jobs.Filter{Host: "web"}, []jobs.ID{}},
		{"since", jobs.Filter{Since: base.Add(4 * time.Hour)}, []jobs.ID{id("agent deploy"), id("nightly DEPLOY"), id("ÉTÉ déploiement")}},
		{"since a nanosecond later", jobs.Filter{Since: base.Add(4*time.Hour + 1)}, []jobs.ID{id("agent deploy"), id("nightly DEPLOY")}},
		{"until", jobs.Filter{Until: base.Add(2 * time.Hour)}, []jobs.ID{id("deploy staging"), id("Deploy prod")}},
		{"until a nanosecond later", jobs.Filter{Until: base.Add(2*time.Hour + 1)},
			[]jobs.ID{id("build 100% _fast_"), id("deploy staging"), id("Deploy prod")}},
		{"everything at once", jobs.Filter{Statuses: []jobs.Status{jobs.StatusFailed, jobs.StatusRunning}, Name: "deploy",
			Host: "ci", Since: base.Add(time.Hour), Until: base.Add(6 * time.Hour)}, []jobs.ID{id("nightly DEPLOY")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := db.Jobs(ctx, store.JobsQuery{Filter: tt.f})
			if err != nil {
				t.Fatal(err)
			}
			if got := idsOf(list); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Jobs(%+v) = %v, want %v", tt.f, got, tt.want)
			}
			var matched []jobs.Job
			for _, j := range all {
				if tt.f.Match(j) {
					matched = append(matched, j)
				}
			}
			if got, want := idsOf(list), idsOf(matched); !reflect.DeepEqual(got, want) {
				t.Errorf("Jobs(%+v) = %v, but Filter.Match selects %v", tt.f, got, want)
			}
		})
	}
	for _, f := range []jobs.Filter{
		{Statuses: []jobs.Status{"done"}},
		{Name: strings.Repeat("x", jobs.MaxFilterText+1)},
		{Host: strings.Repeat("x", jobs.MaxFilterText+1)},
	} {
		if _, err := db.Jobs(ctx, store.JobsQuery{Filter: f}); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("Jobs(%+.40v): %v, want ErrInvalid", f, err)
		}
	}
}

// testJobsFilterUnreachable: a running agent job whose agent is silent
// reads as unreachable, and the status filter sees it so: listed under
// unreachable and not under running, while a local running job stays
// running.
func (s suite) testJobsFilterUnreachable(t *testing.T) {
	db, name := s.open(t)
	ctx := Ctx(t)
	m := filterJobs(t, db, T0)
	local, agent := m["nightly DEPLOY"].ID, m["agent deploy"].ID
	// The same database read by a server whose agent timeout is a
	// nanosecond: the agent, heard a moment ago, has been silent for
	// longer than that.
	silent := s.openName(t, name, Options{AgentTimeout: time.Nanosecond})
	running := []jobs.Status{jobs.StatusRunning}
	unreachable := []jobs.Status{jobs.StatusUnreachable}
	both := []jobs.Status{jobs.StatusUnreachable, jobs.StatusRunning}
	for _, tt := range []struct {
		name string
		db   Store
		sts  []jobs.Status
		want []jobs.ID
	}{
		{"heard: running", db, running, []jobs.ID{agent, local}},
		{"heard: not unreachable", db, unreachable, []jobs.ID{}},
		{"silent: unreachable", silent, unreachable, []jobs.ID{agent}},
		{"silent: not running", silent, running, []jobs.ID{local}},
		{"silent: running or unreachable", silent, both, []jobs.ID{agent, local}},
	} {
		list, err := tt.db.Jobs(ctx, store.JobsQuery{Filter: jobs.Filter{Statuses: tt.sts}})
		if err != nil {
			t.Fatal(err)
		}
		if got := idsOf(list); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Jobs(status %v) = %v, want %v", tt.name, tt.sts, got, tt.want)
		}
		for _, j := range list {
			if !slices.Contains(tt.sts, j.Status) {
				t.Errorf("%s: job %d listed as %s", tt.name, j.ID, j.Status)
			}
		}
	}
}

// testJobsFilterPaging pages through a filter with Before: every matching
// job once, in id order, none of the others.
func (s suite) testJobsFilterPaging(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	var want []jobs.ID
	for i := range 25 {
		j := jobs.Job{Name: fmt.Sprintf("job %d", i), Command: []string{"x"}}
		if i%3 == 0 {
			j.Name = fmt.Sprintf("Deploy %d", i)
		}
		if err := db.CreateJob(ctx, &j); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			want = append([]jobs.ID{j.ID}, want...)
		}
	}
	var got []jobs.ID
	before := jobs.ID(0)
	for pages := 0; ; pages++ {
		list, err := db.Jobs(ctx, store.JobsQuery{Limit: 2, Before: before, Filter: jobs.Filter{Name: "deploy"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			break
		}
		got = append(got, idsOf(list)...)
		before = list[len(list)-1].ID
		if pages > 20 {
			t.Fatal("paging does not end")
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
}
