package stream

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Share links let anyone who has one watch one job, read-only, until the
// link expires, without the server's token. The link's token is
// "s1.<job uid>.<expires, unix seconds>.<mac>", the MAC an HMAC-SHA256
// of the uid and the expiry under the server's secret (Auth.Secret): the
// server keeps no list of links, and a link cannot be changed to name
// another job or a later expiry.

// sharePrefix starts every share token.
const sharePrefix = "s1."

// MaxShareTTL is the longest a share link may last.
const MaxShareTTL = 366 * 24 * time.Hour

// shareMAC is the MAC of a share token's uid and expiry.
func shareMAC(secret []byte, uid jobs.UID, exp int64) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("jobrun share v1\x00"))
	m.Write([]byte(uid))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// ShareToken returns the token of a share link to job uid that is valid
// until exp (to the second), signed with secret.
func ShareToken(secret []byte, uid jobs.UID, exp time.Time) string {
	sec := exp.Unix()
	return sharePrefix + string(uid) + "." + strconv.FormatInt(sec, 10) + "." +
		base64.RawURLEncoding.EncodeToString(shareMAC(secret, uid, sec))
}

// VerifyShare checks a share token and returns the job it is for and when
// it expires. A token that was not made with secret, or is malformed, is
// errUnauthorized; an expired one errExpired.
func VerifyShare(secret []byte, tok string, now time.Time) (jobs.UID, time.Time, error) {
	bad := fmt.Errorf("the share link is not valid: %w", errUnauthorized)
	rest, ok := strings.CutPrefix(tok, sharePrefix)
	if !ok || len(tok) > 256 || len(secret) == 0 {
		return "", time.Time{}, bad
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return "", time.Time{}, bad
	}
	uid := jobs.UID(parts[0])
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || uid == "" {
		return "", time.Time{}, bad
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(mac, shareMAC(secret, uid, sec)) {
		return "", time.Time{}, bad
	}
	exp := time.Unix(sec, 0)
	if !now.Before(exp) {
		return "", time.Time{}, fmt.Errorf("the share link expired at %s; ask for a new one: %w",
			exp.UTC().Format(time.RFC3339), errExpired)
	}
	return uid, exp, nil
}

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

// shareRequest is the body of POST /api/jobs/{ref}/share.
type shareRequest struct {
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
	if s.Auth == nil || len(s.Auth.Secret) == 0 {
		s.writeError(w, r, fmt.Errorf("share links are not available here (jobrun serve makes them): %w", jobs.ErrNotFound))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.writeError(w, r, fmt.Errorf("Content-Type %q: send application/json: %w", r.Header.Get("Content-Type"), errMediaType))
		return
	}
	var req shareRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCancelBody))
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, r, fmt.Errorf("body: want a JSON object such as {\"expires\":\"24h\"}: %w", jobs.ErrInvalid))
		return
	}
	ttl := 24 * time.Hour
	if req.Expires != "" {
		d, err := time.ParseDuration(req.Expires)
		if err != nil || d < time.Second || d > MaxShareTTL {
			s.writeError(w, r, fmt.Errorf("expires %q: want a duration from 1s to %s, such as 24h: %w", req.Expires, MaxShareTTL, jobs.ErrInvalid))
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
	tok := ShareToken(s.Auth.Secret, j.UID, exp)
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
	if isHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Share asks the server for a share link to job ref that lasts ttl (POST
// /api/jobs/{ref}/share).
func (c *Client) Share(ctx context.Context, ref string, ttl time.Duration) (ShareLink, error) {
	u, err := c.endpoint("/api/jobs/"+url.PathEscape(ref)+"/share", nil)
	if err != nil {
		return ShareLink{}, err
	}
	body, _ := json.Marshal(shareRequest{Expires: ttl.String()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return ShareLink{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	base, err := url.Parse(c.BaseURL)
	if err != nil {
		return ShareLink{}, fmt.Errorf("server URL %q: %w", c.BaseURL, err)
	}
	req.Header.Set("Origin", base.Scheme+"://"+base.Host)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return ShareLink{}, fmt.Errorf("share job %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return ShareLink{}, fmt.Errorf("share job %s: %w", ref, readHTTPError(resp))
	}
	var link ShareLink
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&link); err != nil {
		return ShareLink{}, fmt.Errorf("share job %s: decode: %w", ref, err)
	}
	return link, nil
}
