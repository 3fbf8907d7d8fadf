package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// Client talks to a jobrun server's API (an exec's embedded server or
// jobrun serve).
type Client struct {
	// BaseURL is the server's root, such as "http://127.0.0.1:7070".
	BaseURL string
	// HTTP makes the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// MinBackoff and MaxBackoff bound the wait before reconnecting a
	// stream (doubling, with jitter). Defaults 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// DeadAfter is how long a stream may deliver neither events nor
	// heartbeats before Follow takes the connection for dead (laptop sleep,
	// a half-open TCP connection) and reconnects. Default 45 s: a little
	// over two of the server's 20 s heartbeats.
	DeadAfter time.Duration
	// MaxInternalErrors is how many times in a row Follow takes the
	// server's internal error (close 1011) at the same seq before it gives
	// up and returns it: a server that cannot read the job's log (a
	// damaged database) fails the same way each time. Default 3.
	MaxInternalErrors int
}

// clientMessageLimit bounds one stream message the client accepts; the
// server's messages are about 2 MiB.
const clientMessageLimit = 64 << 20

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// endpoint returns the URL of an API path under BaseURL.
func (c *Client) endpoint(path string, q url.Values) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(c.BaseURL, "/") + path)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", c.BaseURL, err)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Job returns the job that ref (an id or uid) names. A server error is an
// *HTTPError that unwraps to jobs.ErrNotFound, jobs.ErrInvalid, ...
func (c *Client) Job(ctx context.Context, ref string) (jobs.Job, error) {
	u, err := c.endpoint("/api/jobs/"+url.PathEscape(ref), nil)
	if err != nil {
		return jobs.Job{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return jobs.Job{}, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("get job %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jobs.Job{}, fmt.Errorf("get job %s: %w", ref, stream.ReadHTTPError(resp))
	}
	var j jobs.Job
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return jobs.Job{}, fmt.Errorf("get job %s: decode: %w", ref, err)
	}
	return j, nil
}

// Follow streams the events of job ref with seq > after to fn, in seq order,
// each exactly once, until the exit event (or, when after is already the
// exit's seq, until the server says the job is over): then it returns nil. It
// reconnects on drops, on 4429 and on 1011, resuming after the last seq it
// passed to fn, with a growing, jittered wait. It returns fn's error, ctx's
// error, a *CloseError for 4400, 4404, 4409, 4401 and 4403 (the first three
// unwrapping to jobs.ErrInvalid, jobs.ErrNotFound and jobs.ErrConflict) or
// for 1011 repeated MaxInternalErrors times without progress, or an
// *HTTPError when the server refuses the upgrade with a 4xx status.
func (c *Client) Follow(ctx context.Context, ref string, after jobs.Seq, fn func([]jobs.Event) error) error {
	minWait, maxWait := c.MinBackoff, c.MaxBackoff
	if minWait <= 0 {
		minWait = 100 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	maxInternal := c.MaxInternalErrors
	if maxInternal <= 0 {
		maxInternal = 3
	}
	wait := minWait
	last := after
	internal := 0 // internal errors in a row at the same seq
	for {
		start := last
		done, err := c.followOnce(ctx, ref, &last, fn)
		if done {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if last > start {
			wait = minWait // it made progress: the drop is news, not a pattern
			internal = 0
		}
		if websocket.CloseStatus(err) == websocket.StatusInternalError {
			if internal++; internal >= maxInternal {
				return fmt.Errorf("follow job %s: the server failed %d times in a row after seq %d: %w",
					ref, internal, last, stream.CloseErrorOf(err))
			}
		} else {
			internal = 0
		}
		d := wait/2 + rand.N(wait/2+1)
		wait = min(wait*2, maxWait)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// followOnce runs one connection. done reports that Follow must return err
// (nil after the exit event); otherwise it reconnects.
func (c *Client) followOnce(ctx context.Context, ref string, last *jobs.Seq, fn func([]jobs.Event) error) (done bool, err error) {
	u, err := c.endpoint("/api/jobs/"+url.PathEscape(ref)+"/stream",
		url.Values{"after": {strconv.FormatInt(int64(*last), 10)}})
	if err != nil {
		return true, err
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.HTTP})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return true, fmt.Errorf("follow job %s: %w", ref, stream.ReadHTTPError(resp))
		}
		return false, err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(clientMessageLimit)
	deadAfter := c.DeadAfter
	if deadAfter <= 0 {
		deadAfter = 45 * time.Second
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, deadAfter)
		_, p, err := conn.Read(rctx)
		cancel()
		if err != nil {
			switch code := websocket.CloseStatus(err); code {
			case websocket.StatusNormalClosure:
				// The job is over and everything up to its exit was sent
				// (here: before after).
				return true, nil
			case stream.CodeInvalid, stream.CodeNotFound, stream.CodeConflict, stream.CodeUnauthorized, stream.CodeForbidden:
				var ce websocket.CloseError
				errors.As(err, &ce)
				return true, fmt.Errorf("follow job %s: %w", ref, &stream.CloseError{Code: int(code), Reason: ce.Reason})
			}
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			return false, err // dropped, or silent for too long: reconnect
		}
		var evs []jobs.Event
		if err := json.Unmarshal(p, &evs); err != nil {
			return true, fmt.Errorf("follow job %s: bad message: %w", ref, err)
		}
		fresh := evs[:0]
		exit := false
		for _, e := range evs {
			if e.Seq <= *last { // out-of-band notices have no seq
				continue
			}
			if e.Seq != *last+1 {
				return true, fmt.Errorf("follow job %s: got seq %d after %d: %w", ref, e.Seq, *last, jobs.ErrConflict)
			}
			*last = e.Seq
			fresh = append(fresh, e)
			exit = exit || e.Type == jobs.TypeExit
		}
		if len(fresh) > 0 {
			if err := fn(fresh); err != nil {
				return true, err
			}
		}
		if exit {
			conn.Close(websocket.StatusNormalClosure, "")
			return true, nil
		}
	}
}
