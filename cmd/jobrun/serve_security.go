package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/stream/access"
)

// minTokenLen is the shortest token serve accepts: tokens are the only
// thing between the network and every job's output.
const minTokenLen = 16

// securityFlags are serve's flags about who may connect and how.
func securityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "token", EnvVars: []string{"JOBRUN_TOKEN"},
			Usage: "require `TOKEN` (full access: watch, cancel, report jobs, share) from every client; prefer JOBRUN_TOKEN or --token-file, which other users cannot see in ps"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"JOBRUN_TOKEN_FILE"}, Usage: "read the full-access token from `FILE`"},
		&cli.StringFlag{Name: "read-token", EnvVars: []string{"JOBRUN_READ_TOKEN"}, Usage: "also accept `TOKEN` for read-only access (watch only)"},
		&cli.StringFlag{Name: "read-token-file", EnvVars: []string{"JOBRUN_READ_TOKEN_FILE"}, Usage: "read the read-only token from `FILE`"},
		&cli.StringFlag{Name: "tls-cert", Usage: "serve https and wss with the certificate (chain) in `FILE` (PEM); needs --tls-key"},
		&cli.StringFlag{Name: "tls-key", Usage: "the private key of --tls-cert, in `FILE` (PEM)"},
		&cli.StringFlag{Name: "public-url", EnvVars: []string{"JOBRUN_PUBLIC_URL"},
			Usage: "the server's address as users reach it, such as https://jobs.example.com behind a proxy: its host may come in Host and Origin, and printed and share links use it"},
		&cli.StringSliceFlag{Name: "allow-origin", Usage: "also let pages of origins matching `PATTERN` (a host such as *.example.com, or scheme://host) open streams and make changes (repeatable)"},
		&cli.StringSliceFlag{Name: "trusted-proxy", Usage: "believe X-Forwarded-For and X-Forwarded-Proto from peers in `CIDR` (or an address; repeatable)"},
		&cli.IntFlag{Name: "max-client-conns", Value: access.DefaultMaxClientConns,
			Usage: "at most `N` requests and streams in progress per client address (beyond: 429); -1 for no limit"},
	}
}

// serveSecurity is serve's security configuration, checked.
type serveSecurity struct {
	auth      *access.Auth
	tls       *tls.Config // nil: plain http
	publicURL string
	origins   []string
	proxies   []netip.Prefix
	maxConns  int
}

// securityConfig checks the flags; loopback tells whether serve listens on
// loopback only. The secret is read or made once the database is open.
func securityConfig(c *cli.Context, addr string, loopback bool) (*serveSecurity, error) {
	s := &serveSecurity{auth: &access.Auth{}, maxConns: c.Int("max-client-conns")}
	var err error
	if s.auth.Token, err = serverToken(c, "token", "token-file"); err != nil {
		return nil, err
	}
	if s.auth.ReadToken, err = serverToken(c, "read-token", "read-token-file"); err != nil {
		return nil, err
	}
	if s.auth.Token != "" && s.auth.Token == s.auth.ReadToken {
		return nil, usageError("serve: --read-token must differ from --token")
	}
	if !loopback && !s.auth.Enabled() && !c.Bool("insecure") {
		return nil, usageError("serve: refusing to listen on %s without a token: anyone who can reach it could read every job's output; "+
			"give --token (or JOBRUN_TOKEN, --token-file), bind a loopback address (127.0.0.1:7070), or pass --insecure to serve without one", addr)
	}
	cert, key := c.String("tls-cert"), c.String("tls-key")
	if (cert == "") != (key == "") {
		return nil, usageError("serve: --tls-cert and --tls-key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, usageError("serve: --tls-cert/--tls-key: %v", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}} // WebSockets need HTTP/1.1
	}
	if p := c.String("public-url"); p != "" {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			return nil, usageError("serve: --public-url %q: want the root URL, such as https://jobs.example.com", p)
		}
		s.publicURL = u.Scheme + "://" + u.Host
	}
	for _, p := range c.StringSlice("allow-origin") {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, usageError("serve: --allow-origin %q: not a pattern", p)
		}
		s.origins = append(s.origins, p)
	}
	for _, p := range c.StringSlice("trusted-proxy") {
		pre, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, usageError("serve: --trusted-proxy %q: want a CIDR such as 10.0.0.0/8, or an address", p)
			}
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		s.proxies = append(s.proxies, pre.Masked())
	}
	if s.maxConns == 0 || s.maxConns < -1 {
		return nil, usageError("serve: --max-client-conns %d: want a positive number, or -1 for no limit", s.maxConns)
	}
	return s, nil
}

// serverToken reads one of serve's tokens from its flag or its file flag.
func serverToken(c *cli.Context, flag, fileFlag string) (string, error) {
	tok, file := strings.TrimSpace(c.String(flag)), c.String(fileFlag)
	if tok != "" && file != "" {
		return "", usageError("serve: give one of --%s and --%s, not both", flag, fileFlag)
	}
	if file != "" {
		var err error
		if tok, err = readTokenFile(file, "--"+fileFlag); err != nil {
			return "", usageError("serve: %v", err)
		}
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o004 != 0 {
			fmt.Fprintf(c.App.ErrWriter, "jobrun: warning: serve: --%s %s can be read by every user (mode %v); chmod o-r it\n", fileFlag, file, fi.Mode().Perm())
		}
	}
	if tok != "" && len(tok) < minTokenLen {
		return "", usageError("serve: --%s is %d characters long; use at least %d (such as: openssl rand -hex 32)", flag, len(tok), minTokenLen)
	}
	return tok, nil
}

// gate returns the front door for h.
func (s *serveSecurity) gate(h http.Handler, loopback bool, logger *slog.Logger) http.Handler {
	return &access.Gate{
		Next:           h,
		Auth:           s.auth,
		PublicURL:      s.publicURL,
		RestrictHost:   loopback && !s.auth.Enabled(), // DNS rebinding
		TrustedProxies: s.proxies,
		MaxClientConns: s.maxConns,
		Logger:         logger,
	}
}

// listener wraps ln in TLS when serving https.
func (s *serveSecurity) listener(ln net.Listener) net.Listener {
	if s.tls == nil {
		return ln
	}
	return tls.NewListener(ln, s.tls)
}

// url is the address serve prints: --public-url, or the listener's.
func (s *serveSecurity) url(ln net.Listener) string {
	if s.publicURL != "" {
		return s.publicURL + "/"
	}
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String() + "/"
}
