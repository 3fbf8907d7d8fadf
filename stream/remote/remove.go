package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
)

// Remove deletes the finished job ref and its events on the server
// (DELETE /api/jobs/{ref}) and returns the job as it was. A job still
// running is an *HTTPError unwrapping to jobs.ErrConflict; an unknown one
// unwraps to jobs.ErrNotFound.
func (c *Client) Remove(ctx context.Context, ref string) (jobs.Job, error) {
	var out api.Removed
	if err := c.change(ctx, http.MethodDelete, "/api/jobs/"+url.PathEscape(ref), struct{}{}, &out); err != nil {
		return jobs.Job{}, fmt.Errorf("remove job %s: %w", ref, err)
	}
	return out.Removed, nil
}

// Prune deletes the server's finished jobs that q selects (POST
// /api/prune).
func (c *Client) Prune(ctx context.Context, q api.PruneRequest) (api.PruneResult, error) {
	var out api.PruneResult
	if err := c.change(ctx, http.MethodPost, "/api/prune", q, &out); err != nil {
		return api.PruneResult{}, fmt.Errorf("prune: %w", err)
	}
	return out, nil
}

// change sends a request that changes something, with a JSON body and
// the server's own origin (as Cancel does), and decodes a 2xx answer into
// out; any other answer is an *HTTPError.
func (c *Client) change(ctx context.Context, method, path string, body, out any) error {
	u, err := c.endpoint(path, nil)
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	base, err := url.Parse(c.BaseURL)
	if err != nil {
		return fmt.Errorf("server URL %q: %w", c.BaseURL, err)
	}
	req.Header.Set("Origin", base.Scheme+"://"+base.Host)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return stream.ReadHTTPError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
