package access_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/ingest"
	"github.com/jobrun/jobrun/stream/streamtest"
)

const (
	fullToken = "full-token-0123456789abcdef"
	readToken = "read-token-0123456789abcdef"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// gated is a jobrun serve front in miniature: a Gate before the API, the
// ingest endpoint and a stand-in for the pages, on 127.0.0.1.
type gated struct {
	base    string
	srv     *api.Server
	gate    *access.Gate
	running jobs.Job // job 1, running
	other   jobs.Job // job 2, running
	cancels *streamtest.Canceler
	seen    chan string // r.RemoteAddr of each page request
	secure  chan bool   // isHTTPS as the API saw it (via the share URL)
}

func newGated(t *testing.T, configure func(g *access.Gate)) *gated {
	t.Helper()
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	auth := &access.Auth{Token: fullToken, ReadToken: readToken, Secret: testSecret}
	srv := streamtest.NewServer(db, hub)
	srv.Auth = auth
	var c streamtest.Canceler
	srv.Cancel = c.Cancel
	in := &ingest.Server{Store: db, Hub: hub, Logger: slog.New(slog.DiscardHandler)}
	gt := &gated{srv: srv, cancels: &c, seen: make(chan string, 16)}
	mux := http.NewServeMux()
	mux.Handle("/api/", srv)
	mux.Handle("/api/ingest", in)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case gt.seen <- r.RemoteAddr:
		default:
		}
		fmt.Fprintf(w, "page %s access=%s", r.URL.Path, access.GrantOf(r.Context()).Scope)
	})
	g := &access.Gate{Next: mux, Auth: auth, Logger: slog.New(slog.DiscardHandler)}
	if configure != nil {
		configure(g)
	}
	gt.gate = g
	ts := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		in.Close()
		ts.Close()
	})
	gt.base = ts.URL
	gt.running = streamtest.NewJob(t, db)
	gt.other = streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, gt.running.ID, streamtest.Lines(1, 3))
	return gt
}

// doReq makes a request without following redirects; headers are name,
// value pairs.
func doReq(t *testing.T, method, url, body string, headers ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func bodyOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// errorBody decodes a JSON error answer.
func errorBody(t *testing.T, resp *http.Response) (msg string, code int) {
	t.Helper()
	var eb struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return eb.Error, eb.Code
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestGateNeedsACredential(t *testing.T) {
	g := newGated(t, nil)
	for _, path := range []string{"/api/jobs", "/api/info", "/api/jobs/1", "/api/jobs/1/log", "/api/jobs/1/events?wait=1s",
		"/api/stream", "/api/jobs/1/stream", "/api/ingest"} {
		resp := doReq(t, "GET", g.base+path, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="jobrun"` {
			t.Errorf("GET %s: WWW-Authenticate %q", path, got)
		}
		if msg, code := errorBody(t, resp); code != 401 || !strings.Contains(msg, "needs a token") {
			t.Errorf("GET %s: error %q code %d", path, msg, code)
		}
	}
	// Pages redirect to the login page, which says where to go back.
	for _, path := range []string{"/", "/jobs/1?x=1"} {
		resp := doReq(t, "GET", g.base+path, "")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || loc != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without a token: %d Location %q, want 303 to the login page", path, resp.StatusCode, loc)
		}
	}
	// The login page, the assets and the health check are public.
	for _, path := range []string{"/login", "/assets/style.css", "/healthz"} {
		if resp := doReq(t, "GET", g.base+path, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s: %d, want 200", path, resp.StatusCode)
		}
	}
	// A wrong token is refused as such.
	resp := doReq(t, "GET", g.base+"/api/jobs", "", bearer("nope")...)
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(got, "invalid_token") {
		t.Errorf("wrong token: %d %q, want 401 invalid_token", resp.StatusCode, got)
	}
}

func TestGateScopes(t *testing.T) {
	g := newGated(t, nil)
	cancelURL := fmt.Sprintf("%s/api/jobs/%d/cancel", g.base, g.running.ID)
	changeHeaders := func(tok string) []string {
		return append(bearer(tok), "Content-Type", "application/json", "Origin", g.base)
	}
	// Full: reads and changes.
	if resp := doReq(t, "GET", g.base+"/api/jobs", "", bearer(fullToken)...); resp.StatusCode != 200 {
		t.Errorf("full token, GET /api/jobs: %d", resp.StatusCode)
	}
	if resp := doReq(t, "POST", cancelURL, "{}", changeHeaders(fullToken)...); resp.StatusCode != http.StatusAccepted {
		t.Errorf("full token, cancel: %d %s", resp.StatusCode, bodyOf(t, resp))
	}
	// Read: reads, no changes, no ingest.
	for _, path := range []string{"/api/jobs?status=running", fmt.Sprintf("/api/jobs/%d/progress", g.running.ID)} {
		if resp := doReq(t, "GET", g.base+path, "", bearer(readToken)...); resp.StatusCode != 200 {
			t.Errorf("read token, GET %s: %d", path, resp.StatusCode)
		}
	}
	if resp := doReq(t, "GET", g.base+"/api/jobs/1/search?q=x", "", bearer(readToken)...); resp.StatusCode != 200 {
		t.Errorf("read token, search: %d, want 200", resp.StatusCode)
	}
	resp := doReq(t, "POST", cancelURL, "{}", changeHeaders(readToken)...)
	if msg, code := errorBody(t, resp); resp.StatusCode != 403 || code != 403 || !strings.Contains(msg, "read-only") {
		t.Errorf("read token, cancel: %d %q", resp.StatusCode, msg)
	}
	if got := g.cancels.Calls(); len(got) != 1 {
		t.Errorf("cancels reaching the runner: %v, want only the full token's", got)
	}
	ctx := streamtest.Ctx(t)
	_, resp, err := websocket.Dial(ctx, streamtest.WSURL(g.base, "/api/ingest"), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + readToken}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("read token, ingest: %v (%v), want 403", resp, err)
	}
	// A read-only viewer's cancel message gets an error notice, not a
	// cancel.
	c, _, err := websocket.Dial(ctx, streamtest.WSURL(g.base, fmt.Sprintf("/api/jobs/%d/stream", g.running.ID)),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + readToken}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, p, err := c.Read(ctx); err != nil || !strings.Contains(string(p), `"seq":1`) {
		t.Fatalf("first message: %s %v", p, err)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"cancel"}`))
	_, p, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(p), `"type":"error"`) || !strings.Contains(string(p), `"code":403`) {
		t.Errorf("read-only cancel message: %s %v, want an error notice with code 403", p, err)
	}
	if got := g.cancels.Calls(); len(got) != 1 {
		t.Errorf("cancels reaching the runner: %v", got)
	}
	// /api/info says what the page may offer.
	resp = doReq(t, "GET", g.base+"/api/info", "", bearer(readToken)...)
	if b := bodyOf(t, resp); !strings.Contains(b, `"access":"read"`) {
		t.Errorf("info for a read token: %s", b)
	}
}

func TestGateLoginAndSessions(t *testing.T) {
	g := newGated(t, nil)
	form := func(tok, next string) string { return url.Values{"token": {tok}, "next": {next}}.Encode() }
	formHeaders := []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", g.base}

	// Another site cannot sign the browser in (login CSRF).
	resp := doReq(t, "POST", g.base+"/login", form(fullToken, "/"), "Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example")
	if resp.StatusCode != 403 {
		t.Errorf("login from another site: %d, want 403", resp.StatusCode)
	}
	// A wrong token goes back to the login page with an error.
	resp = doReq(t, "POST", g.base+"/login", form("wrong", "/jobs/1"), formHeaders...)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, "error=invalid") || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %d %q %v", resp.StatusCode, loc, resp.Cookies())
	}
	// The right one sets the session cookie and goes on; never to
	// another site.
	resp = doReq(t, "POST", g.base+"/login", form(fullToken, "//evil.example/x"), formHeaders...)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/" {
		t.Errorf("login with next=//evil.example: %d %q, want 303 to /", resp.StatusCode, loc)
	}
	resp = doReq(t, "POST", g.base+"/login", form(fullToken, "/jobs/1#L3"), formHeaders...)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/jobs/1" {
		t.Errorf("login: %d %q", resp.StatusCode, loc)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v, want one session cookie", cookies)
	}
	sc := cookies[0]
	if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure || !strings.HasPrefix(sc.Name, "jobrun_session_") {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over http", sc)
	}
	if strings.Contains(sc.Value, fullToken) {
		t.Errorf("the cookie holds the token")
	}
	cookie := sc.Name + "=" + sc.Value
	if resp := doReq(t, "GET", g.base+"/api/jobs", "", "Cookie", cookie); resp.StatusCode != 200 {
		t.Errorf("GET /api/jobs with the session: %d", resp.StatusCode)
	}
	if b := bodyOf(t, doReq(t, "GET", g.base+"/jobs/1", "", "Cookie", cookie)); b != "page /jobs/1 access=full" {
		t.Errorf("page with the session: %q", b)
	}
	// A tampered session, or one made under another token (the token was
	// changed), is no session.
	tampered := sc.Name + "=" + strings.Replace(sc.Value, "full", "read", 1)
	if resp := doReq(t, "GET", g.base+"/api/jobs", "", "Cookie", tampered); resp.StatusCode != 401 {
		t.Errorf("tampered session: %d, want 401", resp.StatusCode)
	}
	rotated := &access.Auth{Token: "another-token-0123456789", Secret: testSecret}
	if _, err := rotated.CheckSession(sc.Value, time.Now()); err == nil {
		t.Errorf("a session outlived a change of token")
	}
	if _, err := g.srv.Auth.CheckSession(sc.Value, time.Now().Add(31*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a session 31 days on: %v, want expired", err)
	}

	// A ?token= link sets the cookie and takes the token out of the URL.
	resp = doReq(t, "GET", g.base+"/jobs/1?token="+url.QueryEscape(readToken)+"&x=1", "")
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/jobs/1?x=1" || len(resp.Cookies()) != 1 {
		t.Errorf("?token= link: %d %q %v", resp.StatusCode, loc, resp.Cookies())
	}
	rc := resp.Cookies()[0]
	if b := bodyOf(t, doReq(t, "GET", g.base+"/jobs/1", "", "Cookie", rc.Name+"="+rc.Value)); b != "page /jobs/1 access=read" {
		t.Errorf("page after a read-token link: %q", b)
	}

	// The login page's question.
	resp = doReq(t, "GET", g.base+"/api/auth?next=/jobs/1", "", "Cookie", cookie)
	var who struct {
		Auth   bool   `json:"auth"`
		Access string `json:"access"`
		Next   bool   `json:"next"`
	}
	json.NewDecoder(resp.Body).Decode(&who)
	if !who.Auth || who.Access != "full" || !who.Next {
		t.Errorf("GET /api/auth with a session: %+v", who)
	}

	// Logging out removes the cookie.
	resp = doReq(t, "POST", g.base+"/logout", "", "Origin", g.base, "Cookie", cookie)
	if c := resp.Cookies(); resp.StatusCode != 303 || len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("logout: %d %v", resp.StatusCode, c)
	}
}

// TestGateFailedAttemptsAreLimited: an address that keeps failing gets 429
// for its failures; a valid credential from the same address (an agent
// behind the same NAT as someone guessing) still passes, by bearer token,
// login form or token link.
func TestGateFailedAttemptsAreLimited(t *testing.T) {
	g := newGated(t, nil)
	var last int
	for range 25 {
		last = doReq(t, "GET", g.base+"/api/jobs", "", bearer("guess")...).StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("the 25th wrong token in a minute: %d, want 429", last)
	}
	if code := doReq(t, "GET", g.base+"/api/jobs", "", bearer(fullToken)...).StatusCode; code != http.StatusOK {
		t.Errorf("the right token from the same address: %d, want 200", code)
	}
	if code := doReq(t, "GET", g.base+"/api/jobs", "", bearer("another guess")...).StatusCode; code != http.StatusTooManyRequests {
		t.Errorf("a wrong token after the right one: %d, want 429 still", code)
	}
	form := func(tok string) string { return url.Values{"token": {tok}, "next": {"/"}}.Encode() }
	headers := []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", g.base}
	if resp := doReq(t, "POST", g.base+"/login", form("guess"), headers...); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a wrong token on the login page: %d, want 429", resp.StatusCode)
	}
	if resp := doReq(t, "POST", g.base+"/login", form(fullToken), headers...); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Errorf("the right token on the login page: %d %v, want 303 with the session cookie", resp.StatusCode, resp.Cookies())
	}
	if resp := doReq(t, "GET", g.base+"/jobs/1?token="+fullToken, ""); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Errorf("a link with the right token: %d %v, want 303 with the session cookie", resp.StatusCode, resp.Cookies())
	}
}

func TestGateShareLinks(t *testing.T) {
	g := newGated(t, func(g *access.Gate) { g.PublicURL = "https://jobs.example.com" })
	g.srv.PublicURL = "https://jobs.example.com"
	ctx := streamtest.Ctx(t)

	// Only the full token makes links.
	shareURL := fmt.Sprintf("%s/api/jobs/%d/share", g.base, g.running.ID)
	hdr := func(tok string) []string {
		return append(bearer(tok), "Content-Type", "application/json", "Origin", g.base)
	}
	if resp := doReq(t, "POST", shareURL, `{"expires":"1h"}`, hdr(readToken)...); resp.StatusCode != 403 {
		t.Errorf("share with the read token: %d, want 403", resp.StatusCode)
	}
	if resp := doReq(t, "POST", shareURL, `{"expires":"forever"}`, hdr(fullToken)...); resp.StatusCode != 400 {
		t.Errorf("share with a bad expiry: %d, want 400", resp.StatusCode)
	}
	resp := doReq(t, "POST", shareURL, `{"expires":"1h"}`, hdr(fullToken)...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("share: %d %s", resp.StatusCode, bodyOf(t, resp))
	}
	var link api.ShareLink
	if err := json.NewDecoder(resp.Body).Decode(&link); err != nil {
		t.Fatal(err)
	}
	wantURL := "https://jobs.example.com/jobs/" + string(g.running.UID) + "?token="
	if !strings.HasPrefix(link.URL, wantURL) || link.Job != g.running.ID || time.Until(link.ExpiresAt) > time.Hour {
		t.Errorf("link %+v, want %s... for an hour", link, wantURL)
	}

	// The link's token reads its job, by uid or id, and nothing else.
	tok := link.Token
	for path, want := range map[string]int{
		"/api/jobs/" + string(g.running.UID):               200,
		fmt.Sprintf("/api/jobs/%d", g.running.ID):          200,
		fmt.Sprintf("/api/jobs/%d/log", g.running.ID):      200,
		fmt.Sprintf("/api/jobs/%d/events", g.running.ID):   200,
		fmt.Sprintf("/api/jobs/%d/progress", g.running.ID): 200,
		"/api/info": 200,
		fmt.Sprintf("/api/jobs/%d/progress", g.other.ID):     403,
		"/api/jobs/" + string(g.other.UID):                   403,
		fmt.Sprintf("/api/jobs/%d/events", g.other.ID):       403,
		"/api/jobs/" + string(g.running.UID):                 200,
		fmt.Sprintf("/api/jobs/%d", g.running.ID):            200,
		fmt.Sprintf("/api/jobs/%d/log", g.running.ID):        200,
		fmt.Sprintf("/api/jobs/%d/events", g.running.ID):     200,
		fmt.Sprintf("/api/jobs/%d/search?q=x", g.running.ID): 200,
		fmt.Sprintf("/api/jobs/%d/search?q=x", g.other.ID):   403,
		"/api/jobs/" + string(g.other.UID):                   403,
		fmt.Sprintf("/api/jobs/%d/events", g.other.ID):       403,
		"/api/jobs":   403,
		"/api/stream": 403,
		fmt.Sprintf("/api/jobs/%d/cancel", g.running.ID): 403, // GET: still not for a share link
	} {
		if got := doReq(t, "GET", g.base+path, "", bearer(tok)...).StatusCode; got != want {
			t.Errorf("share token, GET %s: %d, want %d", path, got, want)
		}
	}
	if resp := doReq(t, "POST", fmt.Sprintf("%s/api/jobs/%d/cancel", g.base, g.running.ID), "{}", hdr(tok)...); resp.StatusCode != 403 {
		t.Errorf("share token, cancel: %d, want 403", resp.StatusCode)
	}
	// Its stream works; another job's closes with 4403 or is refused.
	c, _, err := websocket.Dial(ctx, streamtest.WSURL(g.base, fmt.Sprintf("/api/jobs/%d/stream", g.running.ID)),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || !strings.Contains(string(p), `"seq":3`) {
		t.Errorf("shared job's stream: %s %v", p, err)
	}
	c.CloseNow()
	c, _, err = websocket.Dial(ctx, streamtest.WSURL(g.base, fmt.Sprintf("/api/jobs/%d/stream", g.other.ID)),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != stream.CodeForbidden {
		t.Errorf("another job's stream with a share token: close %v (%v), want 4403", got, err)
	}

	// In a browser: the link sets a cookie for its job and lands on the
	// job's page without the token.
	u, _ := url.Parse(link.URL)
	resp = doReq(t, "GET", g.base+u.RequestURI(), "")
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/jobs/"+string(g.running.UID) {
		t.Fatalf("opening the link: %d %q", resp.StatusCode, loc)
	}
	sc := resp.Cookies()[0]
	// Secure: the public URL is https (a proxy in front terminates TLS).
	if sc.Name != "jobrun_share_"+string(g.running.UID) || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || !sc.Secure {
		t.Errorf("share cookie %+v", sc)
	}
	cookie := sc.Name + "=" + sc.Value
	if b := bodyOf(t, doReq(t, "GET", g.base+"/jobs/"+string(g.running.UID), "", "Cookie", cookie)); b != "page /jobs/"+string(g.running.UID)+" access=share" {
		t.Errorf("job page with the share cookie: %q", b)
	}
	if resp := doReq(t, "GET", g.base+"/api/jobs/"+string(g.running.UID)+"/events", "", "Cookie", cookie); resp.StatusCode != 200 {
		t.Errorf("events with the share cookie: %d", resp.StatusCode)
	}
	if resp := doReq(t, "GET", g.base+"/", "", "Cookie", cookie); resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "error=scope") {
		t.Errorf("dashboard with only a share cookie: %d %q, want a redirect to the login page saying why", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]int{
		"/api/info": 200,
		fmt.Sprintf("/api/jobs/%d", g.running.ID): 200, // by id: the job is checked, not the name
		fmt.Sprintf("/api/jobs/%d", g.other.ID):   403,
	} {
		if got := doReq(t, "GET", g.base+path, "", "Cookie", cookie).StatusCode; got != want {
			t.Errorf("share cookie, GET %s: %d, want %d", path, got, want)
		}
	}
	if b := bodyOf(t, doReq(t, "GET", g.base+"/api/info", "", "Cookie", cookie)); !strings.Contains(b, `"access":"share"`) {
		t.Errorf("info with a share cookie: %s", b)
	}

	// Expired and forged links are refused, saying so.
	expired := access.ShareToken(testSecret, g.running.UID, time.Now().Add(-time.Minute))
	resp = doReq(t, "GET", g.base+"/api/jobs/"+string(g.running.UID), "", bearer(expired)...)
	if msg, _ := errorBody(t, resp); resp.StatusCode != 401 || !strings.Contains(msg, "expired") {
		t.Errorf("expired share token: %d %q", resp.StatusCode, msg)
	}
	resp = doReq(t, "GET", g.base+"/jobs/"+string(g.running.UID)+"?token="+url.QueryEscape(expired), "")
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=expired") {
		t.Errorf("opening an expired link: %d %q, want the login page saying it expired", resp.StatusCode, loc)
	}
	forged := access.ShareToken([]byte("another secret, another server.."), g.other.UID, time.Now().Add(time.Hour))
	resp = doReq(t, "GET", g.base+"/api/jobs/"+string(g.other.UID), "", bearer(forged)...)
	if msg, _ := errorBody(t, resp); resp.StatusCode != 401 || !strings.Contains(msg, "not valid") {
		t.Errorf("forged share token: %d %q", resp.StatusCode, msg)
	}
	// A link cannot be turned to another job.
	moved := strings.Replace(tok, string(g.running.UID), string(g.other.UID), 1)
	if got := doReq(t, "GET", g.base+"/api/jobs/"+string(g.other.UID), "", bearer(moved)...).StatusCode; got != 401 {
		t.Errorf("share token edited to another job: %d, want 401", got)
	}
}

func TestGateTrustedProxy(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			g := newGated(t, func(g *access.Gate) {
				if trusted {
					g.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
			})
			doReq(t, "GET", g.base+"/jobs/1", "", append(bearer(fullToken), "X-Forwarded-For", "198.51.100.1, 203.0.113.7")...)
			got := <-g.seen
			if want := "203.0.113.7"; (got == want) != trusted {
				t.Errorf("client address %q (trusted proxy %v)", got, trusted)
			}
			// The scheme decides Secure cookies.
			resp := doReq(t, "POST", g.base+"/login", url.Values{"token": {fullToken}}.Encode(),
				"Content-Type", "application/x-www-form-urlencoded", "Origin", g.base, "X-Forwarded-Proto", "https")
			if c := resp.Cookies(); len(c) != 1 || c[0].Secure != trusted {
				t.Errorf("cookie behind a proxy saying https: %+v (trusted %v)", c, trusted)
			}
		})
	}
}

func TestGateLimits(t *testing.T) {
	g := newGated(t, func(g *access.Gate) { g.MaxClientConns = 2 })
	ctx := streamtest.Ctx(t)
	// Two streams hold the two places...
	for range 2 {
		c, _, err := websocket.Dial(ctx, streamtest.WSURL(g.base, fmt.Sprintf("/api/jobs/%d/stream", g.running.ID)),
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + fullToken}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// ... so a third request waits its turn.
	resp := doReq(t, "GET", g.base+"/api/jobs", "", bearer(fullToken)...)
	if msg, code := errorBody(t, resp); resp.StatusCode != 429 || code != 429 || !strings.Contains(msg, "too many connections") {
		t.Errorf("third connection: %d %q", resp.StatusCode, msg)
	}

	g = newGated(t, nil)
	big := strings.Repeat("x", 100<<10)
	resp = doReq(t, "POST", fmt.Sprintf("%s/api/jobs/%d/cancel", g.base, g.running.ID), big,
		append(bearer(fullToken), "Content-Type", "application/json", "Origin", g.base)...)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("100 KiB body: %d, want 413", resp.StatusCode)
	}
}

func TestGateHostAndOrigin(t *testing.T) {
	g := newGated(t, func(g *access.Gate) {
		g.Auth = nil // loopback without a token
		g.RestrictHost = true
		g.PublicURL = "https://jobs.example.com"
	})
	g.srv.PublicURL = "https://jobs.example.com"
	g.srv.OriginPatterns = []string{"*.trusted.example"}
	ctx := streamtest.Ctx(t)
	req := func(host string) int {
		r, _ := http.NewRequest("GET", g.base+"/api/jobs", nil)
		r.Host = host
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for host, want := range map[string]int{"localhost:7070": 200, "127.0.0.1": 200, "jobs.example.com": 200, "evil.example": 403} {
		if got := req(host); got != want {
			t.Errorf("Host %s: %d, want %d", host, got, want)
		}
	}
	// Without a token, everyone has full access.
	if b := bodyOf(t, doReq(t, "GET", g.base+"/api/info", "")); !strings.Contains(b, `"access":"full"`) {
		t.Errorf("info without a token: %s", b)
	}
	// WebSocket origins: same origin, the public URL, allowed patterns.
	for origin, ok := range map[string]bool{
		"":                           true,
		g.base:                       true,
		"https://jobs.example.com":   true,
		"http://jobs.example.com":    false,
		"https://ci.trusted.example": true,
		"https://evil.example":       false,
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, streamtest.WSURL(g.base, fmt.Sprintf("/api/jobs/%d/stream", g.running.ID)), &websocket.DialOptions{HTTPHeader: h})
		if (err == nil) != ok {
			t.Errorf("stream with Origin %q: %v, want allowed=%v", origin, err, ok)
		}
		if err == nil {
			c.CloseNow()
		} else if resp != nil && resp.StatusCode != 403 {
			t.Errorf("stream with Origin %q: %d, want 403", origin, resp.StatusCode)
		}
		// The same rule for changes.
		resp2 := doReq(t, "POST", fmt.Sprintf("%s/api/jobs/%d/cancel", g.base, g.running.ID), "{}", "Content-Type", "application/json", "Origin", origin)
		// A change needs an Origin (or Sec-Fetch-Site), where a stream
		// does not: a WebSocket from a page always has one.
		if wantOK := ok && origin != ""; (resp2.StatusCode != 403) != wantOK {
			t.Errorf("cancel with Origin %q: %d, want allowed=%v", origin, resp2.StatusCode, wantOK)
		}
	}
}

// TestShareTokens checks signing and verifying alone.
func TestShareTokens(t *testing.T) {
	uid := jobs.NewUID()
	exp := time.Now().Add(time.Hour)
	tok := access.ShareToken(testSecret, uid, exp)
	got, gotExp, err := access.VerifyShare(testSecret, tok, time.Now())
	if err != nil || got != uid || gotExp.Unix() != exp.Unix() {
		t.Errorf("verify: %v %v %v", got, gotExp, err)
	}
	for name, bad := range map[string]string{
		"empty":         "",
		"not a share":   fullToken,
		"later expiry":  strings.Replace(tok, fmt.Sprint(exp.Unix()), fmt.Sprint(exp.Unix()+3600), 1),
		"truncated mac": tok[:len(tok)-2],
		"extra part":    tok + ".x",
		"other secret":  access.ShareToken([]byte("x"), uid, exp),
		"huge":          "s1." + strings.Repeat("a", 1000),
	} {
		if _, _, err := access.VerifyShare(testSecret, bad, time.Now()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := access.VerifyShare(testSecret, tok, exp.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("after expiry: %v", err)
	}

}

// TestAuthSetSecret: a rotated secret (jobrun secret rotate on a shared
// database) ends the share links and sessions signed with the old one,
// and signs new ones.
func TestAuthSetSecret(t *testing.T) {
	auth := &access.Auth{Token: fullToken, Secret: testSecret}
	uid := jobs.NewUID()
	now := time.Now()
	old := auth.ShareToken(uid, now.Add(time.Hour))
	session, _ := auth.NewSession(access.Grant{Scope: access.ScopeFull}, now)
	if _, err := auth.Check(old, now); err != nil {
		t.Fatalf("share token before the rotation: %v", err)
	}
	auth.SetSecret([]byte("another secret, 32 bytes long..."))
	if _, err := auth.Check(old, now); err == nil {
		t.Error("a share token of the old secret is accepted after the rotation")
	}
	if _, err := auth.CheckSession(session, now); err == nil {
		t.Error("a session of the old secret is accepted after the rotation")
	}
	if _, err := auth.Check(auth.ShareToken(uid, now.Add(time.Hour)), now); err != nil {
		t.Errorf("share token of the new secret: %v", err)
	}
}
