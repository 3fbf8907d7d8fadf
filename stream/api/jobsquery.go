package api

import (
	"fmt"
	"net/url"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// The job listing's parameters, shared by GET /api/jobs, the dashboard
// stream and the Client: limit, before and the filter (status, q, host,
// since, until).

// JobsPage is the answer of GET /api/jobs.
type JobsPage struct {
	Jobs []jobs.Job `json:"jobs"`
	// NextBefore is the before= of the next page: the smallest id of this
	// one when it is full (limit jobs), nil when it is the last (a full
	// page may be followed by an empty one).
	NextBefore *jobs.ID `json:"next_before"`
}

// NewJobsPage returns the page of list, a listing of at most limit jobs.
func NewJobsPage(list []jobs.Job, limit int) JobsPage {
	if list == nil {
		list = []jobs.Job{}
	}
	p := JobsPage{Jobs: list}
	if len(list) > 0 && len(list) >= limit {
		next := list[len(list)-1].ID
		p.NextBefore = &next
	}
	return p
}

// jobsQuery is a listing's parameters.
type jobsQuery struct {
	filter jobs.Filter
	limit  int
	before jobs.ID
}

// parseJobsQuery reads limit (1..1000, default 100), before and the
// filter from q. Errors wrap jobs.ErrInvalid; unknown parameters are
// ignored (cache busters).
func parseJobsQuery(q url.Values) (jobsQuery, error) {
	var jq jobsQuery
	limit, err := intParam(q.Get("limit"), "limit", 100, 1, 1000)
	if err != nil {
		return jq, err
	}
	before, err := intParam(q.Get("before"), "before", 0, 0, 1<<62)
	if err != nil {
		return jq, err
	}
	jq.limit, jq.before = int(limit), jobs.ID(before)
	f := &jq.filter
	for _, v := range q["status"] {
		sts, err := jobs.ParseStatuses(v)
		if err != nil {
			return jq, fmt.Errorf("status=%q: %w", v, err)
		}
		f.Statuses = append(f.Statuses, sts...)
	}
	f.Name, f.Host = q.Get("q"), q.Get("host")
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return jq, fmt.Errorf("%s=%q: want an RFC 3339 time such as 2026-11-25T21:00:00Z: %w", p.name, v, jobs.ErrInvalid)
		}
		*p.t = t
	}
	if err := f.Validate(); err != nil {
		return jq, err
	}
	return jq, nil
}
