package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/jobrun/jobrun/stream/search"
)

// Search sends one search request for job ref (GET
// /api/jobs/{ref}/search): the server answers what it found within its
// budget, and the result's cursors (NextAfter, NextBefore) continue it. A
// bad query is an *HTTPError unwrapping to jobs.ErrInvalid.
func (c *Client) Search(ctx context.Context, ref string, q search.Query) (search.Result, error) {
	v := url.Values{"q": {q.Text}, "limit": {strconv.Itoa(q.Limit)}}
	for name, on := range map[string]bool{"regex": q.Regex, "case": q.Case, "directives": q.Directives} {
		if on {
			v.Set(name, "1")
		}
	}
	if q.Stream != "" {
		v.Set("stream", string(q.Stream))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(int64(q.Before), 10))
	} else {
		v.Set("after", strconv.FormatInt(int64(q.After), 10))
	}
	resp, err := c.get(ctx, "/api/jobs/"+url.PathEscape(ref)+"/search", v)
	if err != nil {
		return search.Result{}, fmt.Errorf("search job %s: %w", ref, err)
	}
	defer resp.Body.Close()
	var res search.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return search.Result{}, fmt.Errorf("search job %s: decode: %w", ref, err)
	}
	return res, nil
}
