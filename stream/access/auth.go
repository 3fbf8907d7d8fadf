package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// Scope is what a credential allows. The scopes are ordered: each allows
// what the ones below it do.
type Scope int

// Scopes, weakest first.
const (
	// ScopeNone: no credential (only the login page and the assets).
	ScopeNone Scope = iota
	// ScopeShare: one job, read-only: its page, metadata, log and
	// streams (a share link).
	ScopeShare
	// ScopeRead: every job, read-only (--read-token).
	ScopeRead
	// ScopeFull: everything: cancel, ingest, remove, share (--token).
	ScopeFull
)

// String names the scope as the API does ("none", "share", "read", "full").
func (s Scope) String() string {
	switch s {
	case ScopeShare:
		return "share"
	case ScopeRead:
		return "read"
	case ScopeFull:
		return "full"
	}
	return "none"
}

// Grant is what one request may do. Gate puts it in the request's context;
// a request that did not pass a Gate (jobrun exec's embedded server, which
// serves loopback only) has full access.
type Grant struct {
	Scope Scope
	// Job is the one job a ScopeShare access may read.
	Job jobs.UID
	// Expires is when a share link or a session ends (zero: never).
	Expires time.Time
}

// CanChange reports whether the access may change things (cancel, remove,
// share, ingest).
func (a Grant) CanChange() bool { return a.Scope >= ScopeFull }

// CanRead reports whether the access may read job j.
func (a Grant) CanRead(j jobs.Job) bool {
	return a.Scope >= ScopeRead || a.Scope == ScopeShare && a.Job == j.UID
}

type grantKey struct{}

// WithGrant returns ctx carrying a.
func WithGrant(ctx context.Context, a Grant) context.Context {
	return context.WithValue(ctx, grantKey{}, a)
}

// GrantOf returns the access that ctx carries; full access when it
// carries none.
func GrantOf(ctx context.Context) Grant {
	if a, ok := ctx.Value(grantKey{}).(Grant); ok {
		return a
	}
	return Grant{Scope: ScopeFull}
}

// errExpired: a share link or session that has expired (401, as
// stream.ErrUnauthorized).
var errExpired = fmt.Errorf("expired: %w", stream.ErrUnauthorized)

// Auth holds a server's credentials: the tokens, and the secret that signs
// browser sessions and share links. The zero value accepts nothing.
type Auth struct {
	// Token gives full access (jobrun serve --token).
	Token string
	// ReadToken gives read-only access to every job (--read-token).
	ReadToken string
	// Secret signs session cookies and share links; at least 32 bytes.
	// Without it there are neither sessions nor share links.
	Secret []byte
	// SessionTTL is how long a browser session lasts. Default 30 days.
	SessionTTL time.Duration

	rotated atomic.Pointer[[]byte] // SetSecret's, which replaces Secret
}

// SetSecret replaces Secret while the server runs (jobrun secret rotate
// on a database that several replicas share): every session and share
// link signed with the old one stops working. It is safe to call
// concurrently with everything else.
func (a *Auth) SetSecret(secret []byte) {
	s := append([]byte(nil), secret...)
	a.rotated.Store(&s)
}

// key is the secret in use: SetSecret's, else Secret.
func (a *Auth) key() []byte {
	if s := a.rotated.Load(); s != nil {
		return *s
	}
	return a.Secret
}

// ShareToken signs a share link's token for job uid, valid until exp,
// with the secret in use (see the package function ShareToken).
func (a *Auth) ShareToken(uid jobs.UID, exp time.Time) string { return ShareToken(a.key(), uid, exp) }

// CanShare reports whether there is a secret to sign share links with.
func (a *Auth) CanShare() bool { return a != nil && len(a.key()) > 0 }

// Enabled reports whether the server needs a credential at all.
func (a *Auth) Enabled() bool { return a != nil && (a.Token != "" || a.ReadToken != "") }

func (a *Auth) sessionTTL() time.Duration {
	if a.SessionTTL > 0 {
		return a.SessionTTL
	}
	return 30 * 24 * time.Hour
}

// tokenEqual compares a presented token with a configured one in constant
// time (of the hashes, so the length leaks nothing either).
func tokenEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// Check returns the access a bearer credential gives: the full token, the
// read token or a share token. A credential that is none of them is
// stream.ErrUnauthorized, an expired share token errExpired.
func (a *Auth) Check(cred string, now time.Time) (Grant, error) {
	// Both comparisons always run: the time taken does not say which
	// token was close.
	full, read := tokenEqual(cred, a.Token), tokenEqual(cred, a.ReadToken)
	switch {
	case full:
		return Grant{Scope: ScopeFull}, nil
	case read:
		return Grant{Scope: ScopeRead}, nil
	case strings.HasPrefix(cred, sharePrefix) && len(a.key()) > 0:
		uid, exp, err := VerifyShare(a.key(), cred, now)
		if err != nil {
			return Grant{}, err
		}
		return Grant{Scope: ScopeShare, Job: uid, Expires: exp}, nil
	}
	return Grant{}, fmt.Errorf("the token is not valid for this server: %w", stream.ErrUnauthorized)
}

// Sessions. A session cookie's value is "v1.<scope>.<expires unix>.<mac>",
// the MAC an HMAC-SHA256 under a key derived from Secret and the token the
// session was opened with, so that changing --token (or --read-token) ends
// the sessions opened with the old one. Nothing is kept on the server.
const sessionVersion = "v1"

// sessionKey is the MAC key of sessions of scope.
func (a *Auth) sessionKey(scope Scope) []byte {
	tok := a.Token
	if scope == ScopeRead {
		tok = a.ReadToken
	}
	th := sha256.Sum256([]byte(tok))
	m := hmac.New(sha256.New, a.key())
	m.Write([]byte("jobrun session key\x00"))
	m.Write([]byte(scope.String()))
	m.Write([]byte{0})
	m.Write(th[:])
	return m.Sum(nil)
}

// NewSession returns a session cookie value for acc (full or read), valid
// for SessionTTL from now.
func (a *Auth) NewSession(acc Grant, now time.Time) (string, time.Time) {
	exp := now.Add(a.sessionTTL()).Truncate(time.Second)
	payload := sessionVersion + "." + acc.Scope.String() + "." + strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, a.sessionKey(acc.Scope))
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), exp
}

// CheckSession returns the access of a session cookie value.
func (a *Auth) CheckSession(v string, now time.Time) (Grant, error) {
	bad := fmt.Errorf("the session is not valid (sign in again): %w", stream.ErrUnauthorized)
	if len(a.key()) == 0 || len(v) > 256 {
		return Grant{}, bad
	}
	parts := strings.Split(v, ".")
	if len(parts) != 4 || parts[0] != sessionVersion {
		return Grant{}, bad
	}
	var scope Scope
	switch parts[1] {
	case "full":
		scope = ScopeFull
		if a.Token == "" {
			return Grant{}, bad
		}
	case "read":
		scope = ScopeRead
		if a.ReadToken == "" {
			return Grant{}, bad
		}
	default:
		return Grant{}, bad
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return Grant{}, bad
	}
	m := hmac.New(sha256.New, a.sessionKey(scope))
	m.Write([]byte(strings.Join(parts[:3], ".")))
	if !hmac.Equal(mac, m.Sum(nil)) {
		return Grant{}, bad
	}
	sec, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return Grant{}, bad
	}
	exp := time.Unix(sec, 0)
	if !now.Before(exp) {
		return Grant{}, fmt.Errorf("the session has expired (sign in again): %w", errExpired)
	}
	return Grant{Scope: scope, Expires: exp}, nil
}

// sessionCookieName is the name of the session cookie: one per server
// secret, so that two jobrun servers on one host (cookies do not tell
// ports apart) do not overwrite each other's sessions.
func (a *Auth) sessionCookieName() string {
	h := sha256.Sum256(append([]byte("jobrun cookie\x00"), a.key()...))
	return "jobrun_session_" + hex.EncodeToString(h[:4])
}

// shareCookieName is the cookie that holds a share link's token for job
// uid; each shared job has its own, so several links work side by side.
func shareCookieName(uid jobs.UID) string { return shareCookiePrefix + string(uid) }

const shareCookiePrefix = "jobrun_share_"
