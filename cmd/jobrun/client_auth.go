package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/stream/api"
)

// clientFlags are the flags of the commands that talk to a jobrun serve
// (exec --server, push, ls/logs/rm/prune --server, cancel, share): the
// token they send and the certificate authority they trust.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "token", EnvVars: []string{"JOBRUN_TOKEN"},
			Usage: "send `TOKEN` to the server (Authorization: Bearer); prefer JOBRUN_TOKEN or --token-file, which other users cannot see in ps"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"JOBRUN_TOKEN_FILE"},
			Usage: "read the token to send from `FILE`"},
		&cli.StringFlag{Name: "ca-cert", EnvVars: []string{"JOBRUN_CA_CERT"},
			Usage: "trust the certificate authority in `FILE` (PEM) for https:// servers, besides the system's"},
	}
}

// clientToken is the token named by --token or --token-file ("" for none).
func clientToken(c *cli.Context) (string, error) {
	tok, file := strings.TrimSpace(c.String("token")), c.String("token-file")
	if tok != "" && file != "" {
		return "", errors.New("give one of --token (JOBRUN_TOKEN) and --token-file (JOBRUN_TOKEN_FILE), not both")
	}
	if file != "" {
		return readTokenFile(file, "--token-file")
	}
	return tok, nil
}

// readTokenFile reads a token from a file: its content without the
// surrounding white space (a final newline).
func readTokenFile(path, flag string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s %s: the file is empty", flag, path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s %s: want one token (no white space inside)", flag, path)
	}
	return tok, nil
}

// remoteHTTP returns the HTTP client that talks to server: it trusts
// --ca-cert, speaks HTTP/1.1 (WebSockets need it), and sends the token to
// that server only (never to another host a redirect leads to).
func remoteHTTP(c *cli.Context, server string) (*http.Client, error) {
	tok, err := clientToken(c)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ForceAttemptHTTP2 = false
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if file := c.String("ca-cert"); file != "" {
		pool, err := caPool(file)
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig.RootCAs = pool
	}
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", server, err)
	}
	return &http.Client{Transport: &bearerTransport{base: t, token: tok, scheme: u.Scheme, host: u.Host}}, nil
}

// caPool is the system's roots and the certificates in file.
func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// bearerTransport adds Authorization: Bearer to the requests for one
// server.
type bearerTransport struct {
	base         http.RoundTripper
	token        string
	scheme, host string
}

// RoundTrip sends req, with the token when it goes to the server.
func (b *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if b.token == "" || !strings.EqualFold(req.URL.Host, b.host) || !strings.EqualFold(req.URL.Scheme, b.scheme) {
		return b.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// probeServer asks GET /api/info at base: what jobrun process answers
// there, and what our credential may do. An error wrapping
// errNeedsCredential means the server refuses our credential (none, or a
// wrong one); errCertificate that its certificate cannot be verified.
func probeServer(ctx context.Context, base string, hc *http.Client, timeout time.Duration) (api.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/api/info", nil)
	if err != nil {
		return api.Info{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return api.Info{}, fmt.Errorf("%w: %v", errCertificate, verr.Err)
		}
		return api.Info{}, err
	}
	defer resp.Body.Close()
	var info api.Info
	switch {
	case resp.StatusCode == http.StatusUnauthorized && strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="jobrun"`):
		var eb struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&eb)
		return api.Info{App: "jobrun"}, fmt.Errorf("%w (%s)", errNeedsCredential, eb.Error)
	case resp.StatusCode != http.StatusOK:
		return api.Info{}, fmt.Errorf("GET /api/info: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info.App != "jobrun" {
		return api.Info{}, errors.New("not a jobrun server")
	}
	return info, nil
}

var (
	errNeedsCredential = errors.New("the server needs a token that was not sent or is not valid")
	errCertificate     = errors.New("cannot verify the server's certificate")
)

// credentialHelp says how to fix a refused credential or certificate.
func credentialHelp(server string, err error) string {
	switch {
	case errors.Is(err, errNeedsCredential):
		return fmt.Sprintf("the jobrun serve at %s needs a token: %v; set JOBRUN_TOKEN (or --token-file) to its --token", server, err)
	case errors.Is(err, errCertificate):
		return fmt.Sprintf("%s: %v; if it uses a private certificate authority, name it with --ca-cert FILE (or JOBRUN_CA_CERT)", server, err)
	}
	return fmt.Sprintf("%s: %v", server, err)
}
