package access

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// Browsers sign in once: the login page (ui, GET /login) posts the token
// in a plain form to POST /login, or the user opens a link with ?token=;
// either way the answer sets a cookie and redirects, so the token leaves
// the address bar and the history at once. The cookie is HttpOnly,
// SameSite=Strict, and Secure over https. A full or read token gets a
// session cookie (signed, see Auth.NewSession); a share link's token is
// kept as is in a cookie of its own job.
//
// SameSite=Strict cookies are not sent with a navigation that another site
// started (a link in a chat): such a request lands on the login page,
// whose script asks GET /api/auth, which the browser does send the cookie
// with, and goes on to the page at once when the cookie is good.

// serveLogin serves POST /login (a form: token, next).
func (g *Gate) serveLogin(w http.ResponseWriter, r *http.Request) {
	if err := g.sameSite(r); err != nil {
		stream.WriteJSONError(w, http.StatusForbidden, err.Error())
		return
	}
	if err := r.ParseForm(); err != nil {
		stream.WriteJSONError(w, http.StatusBadRequest, "login: want a form with token and next")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !g.Auth.Enabled() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	acc, err := g.Auth.Check(tok, time.Now())
	if err != nil {
		if err := g.failed(r, err); errors.Is(err, stream.ErrTooManyFailures) {
			g.refuse(w, r, err)
			return
		}
		q := url.Values{"error": {"invalid"}, "next": {next}}
		if errors.Is(err, errExpired) {
			q.Set("error", "expired")
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
		return
	}
	g.setCookie(w, r, acc, tok)
	if acc.Scope == ScopeShare {
		next = "/jobs/" + url.PathEscape(string(acc.Job))
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// tokenLink answers a page request with ?token=: it sets the cookie and
// redirects to the same page without the token (a share link: to its
// job's page).
func (g *Gate) tokenLink(w http.ResponseWriter, r *http.Request, tok string) {
	q := r.URL.Query()
	q.Del("token")
	next := r.URL.Path
	if len(q) > 0 {
		next += "?" + q.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	acc, err := g.Auth.Check(tok, time.Now())
	if err != nil {
		if err := g.failed(r, err); errors.Is(err, stream.ErrTooManyFailures) {
			g.refuse(w, r, err)
			return
		}
		lq := url.Values{"error": {"invalid"}, "next": {next}}
		if errors.Is(err, errExpired) {
			lq.Set("error", "expired")
		}
		http.Redirect(w, r, "/login?"+lq.Encode(), http.StatusSeeOther)
		return
	}
	g.setCookie(w, r, acc, tok)
	if acc.Scope == ScopeShare {
		next = "/jobs/" + url.PathEscape(string(acc.Job))
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// setCookie sets the cookie of a credential that passed Check.
func (g *Gate) setCookie(w http.ResponseWriter, r *http.Request, acc Grant, tok string) {
	c := &http.Cookie{Path: "/", HttpOnly: true, Secure: g.secure(r), SameSite: http.SameSiteStrictMode}
	switch acc.Scope {
	case ScopeShare:
		c.Name, c.Value, c.Expires = shareCookieName(acc.Job), tok, acc.Expires
	default:
		c.Name = g.Auth.sessionCookieName()
		c.Value, c.Expires = g.Auth.NewSession(acc, time.Now())
	}
	c.MaxAge = max(1, int(time.Until(c.Expires).Seconds()))
	http.SetCookie(w, c)
}

// serveLogout serves POST /logout: the session cookie is removed.
func (g *Gate) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		stream.WriteJSONError(w, http.StatusMethodNotAllowed, "logout is a POST")
		return
	}
	if err := g.sameSite(r); err != nil {
		stream.WriteJSONError(w, http.StatusForbidden, err.Error())
		return
	}
	if g.Auth.Enabled() {
		http.SetCookie(w, &http.Cookie{Name: g.Auth.sessionCookieName(), Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, Secure: g.secure(r), SameSite: http.SameSiteStrictMode})
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// whoami is the answer of GET /api/auth.
type whoami struct {
	// Auth says whether the server needs a credential at all.
	Auth bool `json:"auth"`
	// Access is the request's scope: "full", "read", "share" or "none".
	Access string `json:"access"`
	// Job is the job of a share link.
	Job jobs.UID `json:"job,omitempty"`
	// ExpiresAt is when the session or share link ends.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Next reports whether the credential may open the page next= names.
	Next bool `json:"next"`
	// Error says why a credential that was sent is not good (expired).
	Error string `json:"error,omitempty"`
}

// serveWhoami serves GET /api/auth?next=PATH: what the request's
// credential allows, for the login page.
func (g *Gate) serveWhoami(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		stream.WriteJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	nu, _ := url.Parse(next)
	ans := whoami{Auth: g.Auth.Enabled(), Access: "full", Next: true}
	if ans.Auth {
		acc, err := g.authenticate(r, nu.Path)
		if errors.Is(err, stream.ErrTooManyFailures) {
			g.refuse(w, r, err)
			return
		}
		if err != nil {
			ans.Error = err.Error()
		}
		ans.Access, ans.Job = acc.Scope.String(), acc.Job
		if !acc.Expires.IsZero() {
			e := acc.Expires.UTC()
			ans.ExpiresAt = &e
		}
		probe := &http.Request{Method: http.MethodGet, URL: nu}
		ans.Next = acc.Scope != ScopeNone && allowed(acc, probe) == nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(ans)
}

// safeNext keeps a redirect target on this server: a path, never another
// site ("//evil", "https://evil", "/\\evil").
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return u.RequestURI()
}

// sameSite refuses a form post that another site could have made (login
// CSRF): it needs Sec-Fetch-Site same-origin, or an Origin whose host is
// the request's Host or PublicURL's host.
func (g *Gate) sameSite(r *http.Request) error {
	return CheckOrigin(r, nil, g.PublicURL)
}

// secure reports whether cookies get the Secure attribute: the browser
// came over https, or PublicURL, the address users reach, is https (a
// proxy in front that is not a TrustedProxies address).
func (g *Gate) secure(r *http.Request) bool {
	return IsHTTPS(r) || strings.HasPrefix(strings.ToLower(g.PublicURL), "https://")
}
