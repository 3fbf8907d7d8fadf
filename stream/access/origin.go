package access

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/jobrun/jobrun/stream"
)

// CheckOrigin refuses a request that a page of another site could have
// made: it needs Sec-Fetch-Site: same-origin, or an Origin that is this
// server: its host is the request's Host, it is publicURL's origin, or it
// matches one of patterns (as websocket.AcceptOptions.OriginPatterns
// does: a host pattern, or "scheme://host" pattern, path.Match syntax).
// A Sec-Fetch-Site other than same-origin is refused even so.
func CheckOrigin(r *http.Request, patterns []string, publicURL string) error {
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "":
	case "same-origin":
		// A browser says so (a page cannot set Sec-Fetch-*). Its Origin
		// may be "null": a form post from a page whose Referrer-Policy is
		// no-referrer, as jobrun's pages are.
		return nil
	default:
		return fmt.Errorf("refusing a %s request (Sec-Fetch-Site): %w", site, stream.ErrForbidden)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return fmt.Errorf("send a same-origin Origin header (or Sec-Fetch-Site: same-origin): %w", stream.ErrForbidden)
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q is not a URL: %w", origin, stream.ErrForbidden)
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
	return fmt.Errorf("origin %q is not this server (%s): %w", origin, r.Host, stream.ErrForbidden)
}
