package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
)

// Jobs returns a page of the server's jobs that f selects, newest first:
// at most limit (1..1000), with id < before when before is not 0 (GET
// /api/jobs).
func (c *Client) Jobs(ctx context.Context, f jobs.Filter, limit int, before jobs.ID) (api.JobsPage, error) {
	resp, err := c.get(ctx, "/api/jobs", jobsValues(f, limit, before))
	if err != nil {
		return api.JobsPage{}, fmt.Errorf("list jobs: %w", err)
	}
	defer resp.Body.Close()
	var page api.JobsPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return api.JobsPage{}, fmt.Errorf("list jobs: decode: %w", err)
	}
	if page.Jobs == nil {
		page.Jobs = []jobs.Job{}
	}
	return page, nil
}

// Log returns the job's stored output bytes (GET /api/jobs/{ref}/log):
// both streams interleaved in seq order, or only stream when it is not "".
// The caller closes the body. A transfer that breaks off (the server
// failed to read the log, or the connection dropped) is a read error
// saying so, wrapping io.ErrUnexpectedEOF: never a clean end.
func (c *Client) Log(ctx context.Context, ref string, stream jobs.Stream) (io.ReadCloser, error) {
	var q url.Values
	if stream != "" {
		q = url.Values{"stream": {string(stream)}}
	}
	resp, err := c.get(ctx, "/api/jobs/"+url.PathEscape(ref)+"/log", q)
	if err != nil {
		return nil, fmt.Errorf("log of job %s: %w", ref, err)
	}
	return logBody{resp.Body, ref}, nil
}

// logBody names a broken transfer in the errors of a log's body.
type logBody struct {
	io.ReadCloser
	ref string
}

func (b logBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("log of job %s: the transfer broke off, the log is cut short: %w", b.ref, err)
	}
	return n, err
}

// Cancel asks the server to cancel job ref (POST /api/jobs/{ref}/cancel).
// A job that is not running, or whose runner the server cannot reach, is
// an *HTTPError unwrapping to jobs.ErrConflict.
func (c *Client) Cancel(ctx context.Context, ref string) error {
	u, err := c.endpoint("/api/jobs/"+url.PathEscape(ref)+"/cancel", nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader([]byte("{}")))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// The server refuses changes from other sites: say that this request
	// comes from the server's own origin, which it does.
	base, err := url.Parse(c.BaseURL)
	if err != nil {
		return fmt.Errorf("server URL %q: %w", c.BaseURL, err)
	}
	req.Header.Set("Origin", base.Scheme+"://"+base.Host)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("cancel job %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cancel job %s: %w", ref, stream.ReadHTTPError(resp))
	}
	return nil
}

// get makes a GET request and returns a 200 answer; any other answer is an
// *HTTPError.
func (c *Client) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u, err := c.endpoint(path, q)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, stream.ReadHTTPError(resp)
	}
	return resp, nil
}

// jobsValues is a listing's parameters.
func jobsValues(f jobs.Filter, limit int, before jobs.ID) url.Values {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if before > 0 {
		q.Set("before", strconv.FormatInt(int64(before), 10))
	}
	for _, s := range f.Statuses {
		q.Add("status", string(s))
	}
	if f.Name != "" {
		q.Set("q", f.Name)
	}
	if f.Host != "" {
		q.Set("host", f.Host)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	return q
}
