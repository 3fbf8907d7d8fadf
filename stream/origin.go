package stream

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// originAllowed refuses a request that a page of another site could have
// made: it needs Sec-Fetch-Site: same-origin, or an Origin that is this
// server: its host is the request's Host, it is publicURL's origin, or it
// matches one of patterns (as websocket.AcceptOptions.OriginPatterns
// does: a host pattern, or "scheme://host" pattern, path.Match syntax).
// A Sec-Fetch-Site other than same-origin is refused even so.
func originAllowed(r *http.Request, patterns []string, publicURL string) error {
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "":
	case "same-origin":
		// A browser says so (a page cannot set Sec-Fetch-*). Its Origin
		// may be "null": a form post from a page whose Referrer-Policy is
		// no-referrer, as jobrun's pages are.
		return nil
	default:
		return fmt.Errorf("refusing a %s request (Sec-Fetch-Site): %w", site, errForbidden)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return fmt.Errorf("send a same-origin Origin header (or Sec-Fetch-Site: same-origin): %w", errForbidden)
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q is not a URL: %w", origin, errForbidden)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	if pu, err := url.Parse(publicURL); publicURL != "" && err == nil &&
		strings.EqualFold(u.Scheme, pu.Scheme) && strings.EqualFold(u.Host, pu.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not this server (%s): %w", origin, r.Host, errForbidden)
}

// allowChange checks a request that changes something (cancel, remove,
// share): its access is full, and it comes from this site (or an allowed
// origin).
func (s *Server) allowChange(r *http.Request) error {
	if a := AccessOf(r.Context()); !a.CanChange() {
		return fmt.Errorf("%s access is read-only: this needs the server's full token: %w", a.Scope, errForbidden)
	}
	return originAllowed(r, s.OriginPatterns, s.PublicURL)
}

// originPatterns is what websocket.Accept gets: the allowed patterns and
// PublicURL's origin.
func (s *Server) originPatterns() []string {
	if s.PublicURL == "" {
		return s.OriginPatterns
	}
	u, err := url.Parse(s.PublicURL)
	if err != nil || u.Host == "" {
		return s.OriginPatterns
	}
	return append(append([]string(nil), s.OriginPatterns...), strings.ToLower(u.Scheme+"://"+u.Host))
}
