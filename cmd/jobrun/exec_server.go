package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/stream/api"
)

// serverFlag is the --server flag of the commands that can work against a
// jobrun serve.
func serverFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "server", Usage: usage, EnvVars: []string{"JOBRUN_SERVER"}}
}

// normalizeServer checks a server URL (http:// or https://, a host, no
// query) and returns it without a trailing slash.
func normalizeServer(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server %q: want a URL such as http://buildhost:7070", s)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// execServer decides where exec reports: the server named by --server or
// JOBRUN_SERVER; else, unless --standalone or --db is given, a jobrun serve
// found at exec's address (GET /api/info says role "serve"); else nowhere
// ("": exec works standalone). It returns the HTTP client for the server
// (token, --ca-cert). A server that refuses exec's token (or its lack), or
// whose certificate cannot be verified, is an error: exec never falls back
// to working alone because of it. A server that cannot be reached is not:
// the job starts, and its spool is delivered later.
func execServer(c *cli.Context) (string, *http.Client, error) {
	if c.Bool("standalone") {
		return "", nil, nil
	}
	if s := c.String("server"); s != "" {
		server, err := normalizeServer(s)
		if err != nil {
			return "", nil, err
		}
		hc, err := remoteHTTP(c, server)
		if err != nil {
			return "", nil, err
		}
		info, err := probeServer(c.Context, server, hc, 3*time.Second)
		if err := checkAgentAccess(server, info, err); err != nil {
			return "", nil, err
		}
		return server, hc, nil
	}
	if c.IsSet("db") {
		return "", nil, nil
	}
	addr := c.String("addr")
	if addr == "" {
		addr = defaultAddr
	}
	server := "http://" + addr
	hc, err := remoteHTTP(c, server)
	if err != nil {
		return "", nil, err
	}
	info, err := probeServer(c.Context, server, hc, 500*time.Millisecond)
	if errors.Is(err, errNeedsCredential) {
		return "", nil, fmt.Errorf("%s (or run the job alone with --standalone)", credentialHelp(server, err))
	}
	if err == nil && info.Role == "serve" {
		if err := checkAgentAccess(server, info, nil); err != nil {
			return "", nil, err
		}
		return server, hc, nil
	}
	return "", nil, nil
}

// checkAgentAccess turns what probing the server said into exec's error:
// a refused or read-only token, or a certificate that cannot be verified.
func checkAgentAccess(server string, info api.Info, err error) error {
	switch {
	case errors.Is(err, errNeedsCredential), errors.Is(err, errCertificate):
		return errors.New(credentialHelp(server, err))
	case err == nil && info.Access != "" && info.Access != "full":
		return fmt.Errorf("the token gives %s access to %s; reporting a job needs its full token (--token)", info.Access, server)
	}
	return nil
}

// probeRole asks what jobrun process, if any, answers at addr.
func probeRole(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/info", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info api.Info
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil || info.App != "jobrun" {
		return ""
	}
	return info.Role
}
