package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jobrun/jobrun/stream"
)

// Gate is the front door of jobrun serve: every request passes it before
// the API, the streams, the ingest endpoint and the pages (Next). In
// order, it:
//
//   - finds the client's address: the peer's, or, when the peer is a
//     TrustedProxies address, the last untrusted one in X-Forwarded-For
//     (and the scheme from X-Forwarded-Proto); r.RemoteAddr is set to it;
//   - limits the requests in progress per client address (streams hold
//     one for their whole life): 429 beyond MaxClientConns;
//   - refuses Host names that are not loopback or PublicURL's host, when
//     RestrictHost (DNS rebinding: a loopback server without a token);
//   - bounds request bodies (MaxBodyBytes: 413);
//   - serves its own endpoints: POST /login, POST /logout, GET /api/auth;
//   - when Auth needs a credential, authenticates the request (a bearer
//     token, the session cookie, or a share link's cookie) and refuses
//     what its scope does not allow: 401 JSON for the API, a redirect to
//     /login for pages, 403 for a scope too weak; the request's Grant
//     goes in its context (GrantOf), where Server checks it again for
//     cancel and for the job a share link names.
//
// Set the fields before the first request; zero values mean the documented
// defaults.
type Gate struct {
	// Next serves what passes; required.
	Next http.Handler
	// Auth holds the tokens and the secret. nil, or no tokens: every
	// request has full access (loopback, or serve --insecure).
	Auth *Auth
	// PublicURL is the server's root as users reach it (behind a proxy):
	// its host is accepted in Host when RestrictHost.
	PublicURL string
	// RestrictHost refuses requests whose Host is neither a loopback name
	// nor PublicURL's host (403).
	RestrictHost bool
	// TrustedProxies are the peers whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed. Default: none.
	TrustedProxies []netip.Prefix
	// MaxClientConns bounds the requests in progress from one client
	// address (a WebSocket or an event stream counts for its whole life).
	// Default 256; negative: no limit.
	MaxClientConns int
	// MaxBodyBytes bounds a request body. Default 64 KiB.
	MaxBodyBytes int64
	// Logger receives refusals (never a token). nil discards them.
	Logger *slog.Logger

	mu    sync.Mutex
	conns map[string]int
	fails map[string]*failures
}

// DefaultMaxClientConns is Gate.MaxClientConns's default.
const DefaultMaxClientConns = 256

// Failed authentications: after maxFailures within failWindow from one
// client address, its further failed attempts get 429 until the window
// passes; its valid ones pass.
const (
	maxFailures = 20
	failWindow  = time.Minute
)

type failures struct {
	n     int
	since time.Time
}

type httpsKey struct{}

// IsHTTPS reports whether the client reached the server over https: TLS
// here, or a trusted proxy that says so (X-Forwarded-Proto).
// discard is the logger of a nil Logger field: nothing here logs to a
// global.
var discard = slog.New(slog.DiscardHandler)

func IsHTTPS(r *http.Request) bool {
	if v, ok := r.Context().Value(httpsKey{}).(bool); ok {
		return v
	}
	return r.TLS != nil
}

func (g *Gate) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return discard
}

// ServeHTTP passes r through the gate.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client, https := g.client(r)
	r = r.WithContext(context.WithValue(r.Context(), httpsKey{}, https))
	r.RemoteAddr = client
	ip := hostOf(client)
	if !g.acquire(ip) {
		w.Header().Set("Retry-After", "5")
		stream.WriteJSONError(w, http.StatusTooManyRequests, fmt.Sprintf("too many connections from %s (at most %d at a time)", ip, g.maxConns()))
		return
	}
	defer g.release(ip)
	if g.RestrictHost && !g.hostAllowed(r.Host) {
		stream.WriteJSONError(w, http.StatusForbidden, fmt.Sprintf("host %q is not allowed: use localhost or 127.0.0.1 (or set --public-url)", r.Host))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Body != nil {
		max := g.MaxBodyBytes
		if max <= 0 {
			max = 64 << 10
		}
		if r.ContentLength > max {
			stream.WriteJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", max))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
	switch r.URL.Path {
	case "/login":
		if r.Method == http.MethodPost {
			g.serveLogin(w, r)
			return
		}
	case "/logout":
		g.serveLogout(w, r)
		return
	case "/api/auth":
		g.serveWhoami(w, r)
		return
	}
	if !g.Auth.Enabled() {
		g.Next.ServeHTTP(w, r.WithContext(WithGrant(r.Context(), Grant{Scope: ScopeFull})))
		return
	}
	if isPublic(r.URL.Path) {
		g.Next.ServeHTTP(w, r.WithContext(WithGrant(r.Context(), Grant{})))
		return
	}
	if tok := r.URL.Query().Get("token"); tok != "" && !isAPI(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		g.tokenLink(w, r, tok)
		return
	}
	acc, err := g.authenticate(r, r.URL.Path)
	if err == nil {
		err = allowed(acc, r)
	}
	if err != nil {
		g.refuse(w, r, err)
		return
	}
	g.Next.ServeHTTP(w, r.WithContext(WithGrant(r.Context(), acc)))
}

// isAPI reports whether path is for programs, not pages: under /api/, or
// /metrics (Prometheus): JSON answers, no redirects to the login page.
func isAPI(path string) bool {
	return path == "/api" || strings.HasPrefix(path, "/api/") || path == "/metrics"
}

// isPublic: the paths anyone may read: the login page, the pages'
// assets (code and styles, no data), and the health check.
func isPublic(path string) bool {
	return path == "/login" || path == "/healthz" || strings.HasPrefix(path, "/assets/")
}

// allowed checks the scope of acc against the request.
func allowed(acc Grant, r *http.Request) error {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case acc.Scope == ScopeNone:
		return fmt.Errorf("this server needs a token: send Authorization: Bearer <token>, or sign in at /login: %w", stream.ErrUnauthorized)
	case acc.Scope >= ScopeFull:
		return nil
	case r.URL.Path == "/api/ingest":
		return fmt.Errorf("%s access is read-only: reporting jobs (ingest) needs the server's full token: %w", acc.Scope, stream.ErrForbidden)
	case !read:
		return fmt.Errorf("%s access is read-only: this needs the server's full token: %w", acc.Scope, stream.ErrForbidden)
	case acc.Scope == ScopeShare && !shareMayRead(r.URL.Path):
		return fmt.Errorf("a share link gives access to its job only: %w", stream.ErrForbidden)
	}
	return nil
}

// shareMayRead reports whether a share link may read path: its job's page
// and its job's API reads (Server checks that the job is the link's), and
// the server's info.
func shareMayRead(path string) bool {
	if path == "/api/info" {
		return true
	}
	if _, ok := jobRefOf(path); !ok {
		return false
	}
	if rest, ok := strings.CutPrefix(path, "/jobs/"); ok {
		return !strings.Contains(rest, "/")
	}
	rest := strings.TrimPrefix(path, "/api/jobs/")
	_, sub, _ := strings.Cut(rest, "/")
	switch sub {
	case "", "log", "events", "progress", "search", "stream":
		return true
	}
	return false
}

// jobRefOf returns the job reference in a job's page or API path.
func jobRefOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/jobs/")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/api/jobs/"); !ok {
			return "", false
		}
	}
	ref, _, _ := strings.Cut(rest, "/")
	ref, err := url.PathUnescape(ref)
	return ref, err == nil && ref != ""
}

// authenticate finds the request's credential: a bearer token, else the
// session cookie, else the share cookie of the job that path names. No
// credential is Grant{} and no error; a bad one an error.
func (g *Gate) authenticate(r *http.Request, path string) (Grant, error) {
	now := time.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
			return Grant{}, fmt.Errorf("Authorization: want Bearer <token>: %w", stream.ErrUnauthorized)
		}
		acc, err := g.Auth.Check(strings.TrimSpace(cred), now)
		if err != nil {
			err = g.failed(r, err)
		}
		return acc, err
	}
	var expired error
	if c, err := r.Cookie(g.Auth.sessionCookieName()); err == nil {
		acc, err := g.Auth.CheckSession(c.Value, now)
		if err == nil {
			return acc, nil
		}
		if errors.Is(err, errExpired) {
			expired = err
		}
	}
	// A share link's cookie: the one of the job the path names (by uid),
	// else any good one (Server refuses other jobs than its own).
	ref, _ := jobRefOf(path)
	var found *Grant
	for i, c := range r.Cookies() {
		name, ok := strings.CutPrefix(c.Name, shareCookiePrefix)
		if !ok || i > 64 {
			continue
		}
		uid, exp, err := VerifyShare(g.Auth.key(), c.Value, now)
		switch {
		case err == nil && string(uid) == name:
			if name == ref {
				return Grant{Scope: ScopeShare, Job: uid, Expires: exp}, nil
			}
			if found == nil {
				found = &Grant{Scope: ScopeShare, Job: uid, Expires: exp}
			}
		case errors.Is(err, errExpired):
			expired = err
		}
	}
	if found != nil {
		return *found, nil
	}
	return Grant{}, expired
}

// refuse answers a request that may not pass: JSON for the API; for pages
// a redirect to the login page, or a 403 page-less JSON answer for a scope
// too weak.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, err error) {
	code := stream.StatusCode(err)
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "60")
	}
	if code == http.StatusUnauthorized {
		v := `Bearer realm="jobrun"`
		if r.Header.Get("Authorization") != "" {
			v += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	pageGet := !isAPI(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Authorization") == ""
	if pageGet && code != http.StatusTooManyRequests {
		q := url.Values{"next": {r.URL.RequestURI()}}
		switch {
		case errors.Is(err, errExpired):
			q.Set("error", "expired")
		case code == http.StatusForbidden:
			q.Set("error", "scope")
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
		return
	}
	if code != http.StatusUnauthorized || r.Header.Get("Authorization") != "" {
		g.logger().Info("stream: request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "code", code)
	}
	stream.WriteJSONError(w, code, err.Error())
}

// client returns the client's address and whether it came over https.
func (g *Gate) client(r *http.Request) (string, bool) {
	https := r.TLS != nil
	peer, err := netip.ParseAddr(hostOf(r.RemoteAddr))
	if err != nil || !g.trusted(peer) {
		return r.RemoteAddr, https
	}
	if p := strings.TrimSpace(firstValue(r.Header.Get("X-Forwarded-Proto"))); p != "" {
		https = strings.EqualFold(p, "https")
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	// From the nearest hop back: the first address that is not a trusted
	// proxy is the client (what lies before it may be forged).
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !g.trusted(client) {
			break
		}
	}
	if client == peer {
		return r.RemoteAddr, https
	}
	return client.String(), https
}

func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return first
}

func (g *Gate) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range g.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hostOf returns the host part of an address with or without a port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.Trim(addr, "[]")
}

// hostAllowed: a loopback name, or PublicURL's host.
func (g *Gate) hostAllowed(host string) bool {
	if loopbackHost(host) {
		return true
	}
	if g.PublicURL == "" {
		return false
	}
	u, err := url.Parse(g.PublicURL)
	return err == nil && strings.EqualFold(strings.TrimSuffix(hostOf(host), "."), u.Hostname())
}

func (g *Gate) maxConns() int {
	if g.MaxClientConns == 0 {
		return DefaultMaxClientConns
	}
	return g.MaxClientConns
}

// acquire counts a request of client ip in; false when ip has too many.
func (g *Gate) acquire(ip string) bool {
	max := g.maxConns()
	if max < 0 {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil {
		g.conns = make(map[string]int)
	}
	if g.conns[ip] >= max {
		return false
	}
	g.conns[ip]++
	return true
}

func (g *Gate) release(ip string) {
	if g.maxConns() < 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns[ip]--; g.conns[ip] <= 0 {
		delete(g.conns, ip)
	}
}

// failed counts a failed authentication of the request's client and
// returns the error to answer: err, or 429 once the client has failed too
// often lately (maxFailures within failWindow), which is neither counted
// nor logged again. Only failures count, and only failures are refused: a
// valid credential from the same address (an agent behind the NAT of
// someone guessing) always passes.
func (g *Gate) failed(r *http.Request, err error) error {
	ip := hostOf(r.RemoteAddr)
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fails == nil {
		g.fails = make(map[string]*failures)
	}
	if len(g.fails) > 4096 { // forget old windows rather than grow
		for k, f := range g.fails {
			if now.Sub(f.since) >= failWindow {
				delete(g.fails, k)
			}
		}
	}
	f := g.fails[ip]
	if f == nil || now.Sub(f.since) >= failWindow {
		f = &failures{since: now}
		g.fails[ip] = f
	}
	if f.n >= maxFailures {
		return fmt.Errorf("too many failed sign-ins from %s; wait a minute: %w", ip, stream.ErrTooManyFailures)
	}
	f.n++
	g.logger().Warn("stream: authentication failed", "remote", ip, "path", r.URL.Path, "failures", f.n)
	return err
}
