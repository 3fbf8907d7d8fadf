package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
)

// Share links (the signing is stream/access's) let anyone who has one watch one job, read-only, until the
// link expires, without the server's token. The link's token is
// "s1.<job uid>.<expires, unix seconds>.<mac>", the MAC an HMAC-SHA256
// of the uid and the expiry under the server's secret (Auth.Secret): the
// server keeps no list of links, and a link cannot be changed to name
// another job or a later expiry.

// ShareLink is a share link, as POST /api/jobs/{ref}/share answers.
type ShareLink struct {
	URL       string    `json:"url"`   // the job's page with ?token=
	Token     string    `json:"token"` // the share token alone (also a bearer token)
	Job       jobs.ID   `json:"job"`
	UID       jobs.UID  `json:"uid"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ShareURL is the link to job uid's page at base (a server's root URL)
// with token.
func ShareURL(base string, uid jobs.UID, token string) string {
	return strings.TrimSuffix(base, "/") + "/jobs/" + url.PathEscape(string(uid)) + "?token=" + url.QueryEscape(token)
}

// ShareRequest is the body of POST /api/jobs/{ref}/share.
type ShareRequest struct {
	// Expires is how long the link lasts, a Go duration such as "24h".
	Expires string `json:"expires"`
}

// serveShare serves POST /api/jobs/{ref}/share {"expires":"24h"}: 201 with
// a ShareLink. It needs full access, like cancel, and the same-origin and
// JSON checks.
func (s *Server) serveShare(w http.ResponseWriter, r *http.Request) {
	if err := s.allowChange(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.Auth.CanShare() {
		s.writeError(w, r, fmt.Errorf("share links are not available here (jobrun serve makes them): %w", jobs.ErrNotFound))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.writeError(w, r, fmt.Errorf("Content-Type %q: send application/json: %w", r.Header.Get("Content-Type"), stream.ErrMediaType))
		return
	}
	var req ShareRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCancelBody))
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, r, fmt.Errorf("body: want a JSON object such as {\"expires\":\"24h\"}: %w", jobs.ErrInvalid))
		return
	}
	ttl := 24 * time.Hour
	if req.Expires != "" {
		d, err := time.ParseDuration(req.Expires)
		if err != nil || d < time.Second || d > access.MaxShareTTL {
			s.writeError(w, r, fmt.Errorf("expires %q: want a duration from 1s to %s, such as 24h: %w", req.Expires, access.MaxShareTTL, jobs.ErrInvalid))
			return
		}
		ttl = d
	}
	j, err := s.lookup(r.Context(), r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	tok := s.Auth.ShareToken(j.UID, exp)
	link := ShareLink{URL: ShareURL(s.baseURL(r), j.UID, tok), Token: tok, Job: j.ID, UID: j.UID, ExpiresAt: exp.UTC()}
	s.logger().Info("stream: share link made", "job", j.ID, "expires_at", link.ExpiresAt, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(link)
}

// baseURL is the server's root as its users reach it: PublicURL, or the
// scheme and Host of the request.
func (s *Server) baseURL(r *http.Request) string {
	if s.PublicURL != "" {
		return strings.TrimSuffix(s.PublicURL, "/")
	}
	scheme := "http"
	if access.IsHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
