package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
)

// allowChange checks a request that changes something (cancel, remove,
// share): its access is full, and it comes from this site (or an allowed
// origin).
func (s *Server) allowChange(r *http.Request) error {
	if a := access.GrantOf(r.Context()); !a.CanChange() {
		return fmt.Errorf("%s access is read-only: this needs the server's full token: %w", a.Scope, stream.ErrForbidden)
	}
	return access.CheckOrigin(r, s.OriginPatterns, s.PublicURL)
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
