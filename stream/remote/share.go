package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
)

// Share asks the server for a share link to job ref that lasts ttl (POST
// /api/jobs/{ref}/share).
func (c *Client) Share(ctx context.Context, ref string, ttl time.Duration) (api.ShareLink, error) {
	u, err := c.endpoint("/api/jobs/"+url.PathEscape(ref)+"/share", nil)
	if err != nil {
		return api.ShareLink{}, err
	}
	body, _ := json.Marshal(api.ShareRequest{Expires: ttl.String()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return api.ShareLink{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	base, err := url.Parse(c.BaseURL)
	if err != nil {
		return api.ShareLink{}, fmt.Errorf("server URL %q: %w", c.BaseURL, err)
	}
	req.Header.Set("Origin", base.Scheme+"://"+base.Host)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return api.ShareLink{}, fmt.Errorf("share job %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return api.ShareLink{}, fmt.Errorf("share job %s: %w", ref, stream.ReadHTTPError(resp))
	}
	var link api.ShareLink
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&link); err != nil {
		return api.ShareLink{}, fmt.Errorf("share job %s: decode: %w", ref, err)
	}
	return link, nil
}
