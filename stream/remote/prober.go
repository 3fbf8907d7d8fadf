package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/stream/api"
)

// Prober measures the way from a client to a jobrun server (proxies, load
// balancers) as a page uses it, through the WebSocket stream and the probe
// endpoints (probe.go). It reports what happened on the wire and judges
// nothing: jobrun doctor turns the measures into verdicts and advice.
type Prober struct {
	// BaseURL is the server's root, such as "https://jobs.example.com";
	// required.
	BaseURL string
	// HTTP makes the requests and the WebSocket handshakes (with the
	// token, proxies and trusted roots); nil means http.DefaultClient.
	HTTP *http.Client
}

func (p *Prober) httpClient() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return http.DefaultClient
}

// url is the URL of path (with its query) under the base.
func (p *Prober) url(path string) string { return strings.TrimSuffix(p.BaseURL, "/") + path }

// wsURL is url with the ws or wss scheme.
func (p *Prober) wsURL(path string) string {
	u := p.url(path)
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}

// Origin is the Origin header a page of the server sends.
func (p *Prober) Origin() string {
	scheme, rest, _ := strings.Cut(p.BaseURL, "://")
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host
}

// Refusal is an HTTP answer where the probe wanted something else.
type Refusal struct {
	Status int    // the HTTP status
	Body   []byte // at most 4 KiB of the body
}

// JobrunError is the message of jobrun's JSON error body, or "" when the
// answer is not one (it came from something on the way).
func (r *Refusal) JobrunError() string {
	if r == nil {
		return ""
	}
	var e struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
	}
	if json.Unmarshal(r.Body, &e) != nil || e.Code == 0 {
		return ""
	}
	return e.Error
}

func refusalOf(resp *http.Response) *Refusal {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	}
	return &Refusal{Status: resp.StatusCode, Body: body}
}

// UpgradeMeasure is what WebSocket saw.
type UpgradeMeasure struct {
	// DialErr is set when the upgrade failed; Refused then holds the HTTP
	// answer, if one came.
	DialErr error
	Refused *Refusal
	// Snapshot: the first message was the dashboard's snapshot.
	Snapshot bool
	// ReadErr is the error of reading the first message (nil with
	// Snapshot), and ReadTimedOut that no message came within the wait.
	ReadErr      error
	ReadTimedOut bool
	// CloseCode is the close code that ended the read, or -1.
	CloseCode websocket.StatusCode
}

// WebSocket opens the dashboard stream (GET /api/stream) as the dashboard
// does and waits up to 10 s for its first message.
func (p *Prober) WebSocket(ctx context.Context) UpgradeMeasure {
	var m UpgradeMeasure
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, p.wsURL("/api/stream?limit=1"), &websocket.DialOptions{
		HTTPClient: p.httpClient(),
		HTTPHeader: http.Header{"Origin": {p.Origin()}},
	})
	if err != nil {
		m.DialErr = err
		if resp != nil {
			m.Refused = refusalOf(resp)
		}
		return m
	}
	defer c.CloseNow()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	_, msg, err := c.Read(rctx)
	m.Snapshot = err == nil && strings.Contains(string(msg), `"snapshot"`)
	m.ReadErr = err
	m.ReadTimedOut = err != nil && rctx.Err() != nil
	m.CloseCode = websocket.CloseStatus(err)
	c.Close(websocket.StatusNormalClosure, "")
	return m
}

// SSEMeasure is what SSE saw.
type SSEMeasure struct {
	Err         error    // no answer at all
	Refused     *Refusal // an answer other than 200
	ContentType string   // of a 200 answer
	// Arrivals are the times, from the request, at which the probe's
	// events arrived (2 when the stream was not cut); Elapsed is how long
	// the read lasted in all.
	Arrivals []time.Duration
	Elapsed  time.Duration
}

// SSE opens the event stream probe, which sends one event at once and a
// second after hold: a buffering proxy delivers both at the end.
func (p *Prober) SSE(ctx context.Context, hold time.Duration) SSEMeasure {
	var m SSEMeasure
	ctx, cancel := context.WithTimeout(ctx, hold+20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url("/api/probe/sse?hold="+hold.String()), nil)
	if err != nil {
		m.Err = err
		return m
	}
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := p.httpClient().Do(req)
	if err != nil {
		m.Err = err
		return m
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		m.Refused = refusalOf(resp)
		return m
	}
	m.ContentType = resp.Header.Get("Content-Type")
	if !strings.HasPrefix(m.ContentType, "text/event-stream") {
		return m
	}
	sc := bufio.NewScanner(resp.Body)
	for len(m.Arrivals) < 2 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			m.Arrivals = append(m.Arrivals, time.Since(start))
		}
	}
	m.Elapsed = time.Since(start)
	return m
}

// PollMeasure is what LongPoll saw.
type PollMeasure struct {
	Err     error    // no answer
	Refused *Refusal // an answer other than 200
	Took    time.Duration
}

// LongPoll makes a long poll that the server holds for wait, as the
// page's long polls are held.
func (p *Prober) LongPoll(ctx context.Context, wait time.Duration) PollMeasure {
	var m PollMeasure
	ctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url("/api/probe/poll?wait="+wait.String()), nil)
	if err != nil {
		m.Err = err
		return m
	}
	start := time.Now()
	resp, err := p.httpClient().Do(req)
	if err != nil {
		m.Err, m.Took = err, time.Since(start)
		return m
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	m.Took = time.Since(start)
	if resp.StatusCode != http.StatusOK {
		m.Refused = refusalOf(resp)
	} else if err != nil {
		m.Err = err
	}
	return m
}

// IdleMeasure is what Idle saw.
type IdleMeasure struct {
	// DialErr is set when the WebSocket could not be opened; Refused then
	// holds the HTTP answer, if one came.
	DialErr error
	Refused *Refusal
	// Survived: the silent connection was still open after the whole
	// hold; otherwise Cut is when it ended, and CloseCode how (-1: no
	// close frame, the connection was dropped).
	Survived  bool
	Cut       time.Duration
	CloseCode websocket.StatusCode
}

// Idle holds a WebSocket on which neither side sends anything, not even
// pings, for up to hold, and reports whether and when the way cut it.
func (p *Prober) Idle(ctx context.Context, hold time.Duration) IdleMeasure {
	var m IdleMeasure
	limit := min(hold+30*time.Second, api.MaxProbeIdle)
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	c, resp, err := websocket.Dial(dctx, p.wsURL("/api/probe/idle?max="+limit.String()), &websocket.DialOptions{
		HTTPClient: p.httpClient(),
		HTTPHeader: http.Header{"Origin": {p.Origin()}},
	})
	dcancel()
	if err != nil {
		m.DialErr = err
		if resp != nil {
			m.Refused = refusalOf(resp)
		}
		return m
	}
	defer c.CloseNow()
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, hold)
	defer rcancel()
	_, _, err = c.Read(rctx) // the server sends nothing
	m.Cut = time.Since(start)
	if rctx.Err() != nil && ctx.Err() == nil {
		m.Survived = true
		c.Close(websocket.StatusNormalClosure, "")
		return m
	}
	m.CloseCode = websocket.CloseStatus(err)
	return m
}
