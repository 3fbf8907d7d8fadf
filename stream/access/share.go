package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
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
// stream.ErrUnauthorized; an expired one errExpired.
func VerifyShare(secret []byte, tok string, now time.Time) (jobs.UID, time.Time, error) {
	bad := fmt.Errorf("the share link is not valid: %w", stream.ErrUnauthorized)
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
