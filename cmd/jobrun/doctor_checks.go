package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/remote"
)

// The fixes doctor suggests most often.
const (
	fixUpgrade = "pass WebSocket upgrades on every proxy and load balancer on the way; nginx: " +
		"proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; " +
		"(docs/deploy.md). Meanwhile pages fall back to Server-Sent Events or long polling"
	fixBuffering = "turn off response buffering for /api/: nginx: proxy_buffering off, and no proxy_ignore_headers X-Accel-Buffering " +
		"(jobrun sends X-Accel-Buffering: no); CDNs and corporate proxies: do not buffer text/event-stream"
	fixTimeout = "raise the idle (read) timeout of the proxy or load balancer well above the heartbeat: " +
		"nginx: proxy_read_timeout 1h; proxy_send_timeout 1h; a cloud load balancer: idle timeout of at least twice the heartbeat (docs/deploy.md)"
)

// get makes a GET request with a timeout and returns the answer with at
// most 4 KiB of its body read, and how long it took.
func (d *doctor) get(ctx context.Context, path string, timeout time.Duration, header ...string) (*http.Response, []byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url(path), nil)
	if err != nil {
		return nil, nil, 0, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp, body, time.Since(start), err
}

// jobrunError returns the message of a jobrun JSON error body, or "".
func jobrunError(body []byte) string { return (&remote.Refusal{Body: body}).JobrunError() }

// checkTLS checks the certificate of an https server: trusted, for this
// host name, not expired (nor soon).
func (d *doctor) checkTLS(ctx context.Context) check {
	ck := check{name: "tls"}
	host := d.base.Hostname()
	if d.base.Scheme == "http" {
		if isLoopbackHost(host) {
			ck.status, ck.msg = statusOK, "plain http to this machine: nothing crosses the network"
			return ck
		}
		ck.status, ck.msg = statusWarn, "plain http: the token and every job's output cross the network unencrypted"
		ck.fix = "serve https: jobrun serve --tls-cert FILE --tls-key FILE, or TLS at the proxy (docs/deploy.md)"
		return ck
	}
	addr := d.base.Host
	if d.base.Port() == "" {
		addr = net.JoinHostPort(host, "443")
	}
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{RootCAs: d.roots, ServerName: host}}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknown):
		ck.status = statusFail
		issuer := "unknown"
		if unknown.Cert != nil {
			issuer = certName(&x509.Certificate{Subject: unknown.Cert.Issuer})
		}
		ck.msg = fmt.Sprintf("the certificate of %s is signed by an authority this machine does not trust (%s)", host, issuer)
		ck.fix = "pass --ca-cert FILE with your CA's certificate (PEM; exec, push and the other clients take the same flag) " +
			"and install that CA in the browsers; or use a certificate from a public CA"
	case errors.As(err, &hostname):
		ck.status = statusFail
		ck.msg = fmt.Sprintf("the certificate is for %s, not %s", certNames(hostname.Certificate), host)
		ck.fix = "use a URL with a name the certificate covers, or issue a certificate for " + host
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		ck.status = statusFail
		ck.msg = fmt.Sprintf("the certificate is out of its validity period (%s to %s): %s",
			invalid.Cert.NotBefore.Format(time.DateOnly), invalid.Cert.NotAfter.Format(time.DateOnly), invalid.Detail)
		ck.fix = "renew the certificate, then restart jobrun serve (or reload the proxy that holds it)"
	case err != nil:
		ck.status = statusFail
		ck.msg = fmt.Sprintf("no TLS connection to %s: %v", addr, err)
		ck.fix = "is this port serving https? Use an http:// URL for a plain server, or serve with --tls-cert and --tls-key"
	default:
		cert := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		conn.Close()
		left := time.Until(cert.NotAfter)
		ck.msg = fmt.Sprintf("certificate valid for %s until %s (%d days left), issued by %s",
			host, cert.NotAfter.Format(time.DateOnly), int(left.Hours()/24), certName(&x509.Certificate{Subject: cert.Issuer}))
		ck.status = statusOK
		if left < 14*24*time.Hour {
			ck.status, ck.fix = statusWarn, "renew the certificate soon"
		}
	}
	return ck
}

// certName names a certificate's subject.
func certName(c *x509.Certificate) string {
	if c == nil {
		return "unknown"
	}
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.Subject.Organization) > 0 {
		return c.Subject.Organization[0]
	}
	return c.Subject.String()
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return certName(c)
	}
	return strings.Join(names, ", ")
}

// checkServer checks that jobrun answers GET /api/info, and learns its
// role and heartbeat.
func (d *doctor) checkServer(ctx context.Context) check {
	ck := check{name: "server", status: statusFail}
	resp, body, _, err := d.get(ctx, "/api/info", 15*time.Second)
	if err != nil {
		ck.msg = fmt.Sprintf("cannot reach %s: %v", d.base, err)
		ck.fix = "check the URL, that jobrun serve runs, and that it listens on an address this machine can reach (serve --addr)"
		return ck
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && jobrunError(body) != "":
		ck.status, ck.msg = statusOK, "jobrun answers (and asks for a token)"
		d.role = "serve"
		return ck
	case resp.StatusCode == http.StatusForbidden && strings.Contains(jobrunError(body), "host"):
		ck.msg = "jobrun refuses the host name of the URL: " + jobrunError(body)
		ck.fix = "start jobrun serve with --public-url " + d.probe.Origin() + " (behind a proxy: and pass the Host header, proxy_set_header Host $host)"
		return ck
	case resp.StatusCode != http.StatusOK:
		ck.msg = fmt.Sprintf("GET /api/info answers HTTP %d %s", resp.StatusCode, firstLine(body))
		ck.fix = "a proxy on the way cannot reach jobrun serve, or jobrun is not at this URL's root; check the proxy's upstream (docs/deploy.md)"
		return ck
	}
	var info api.Info
	if err := json.Unmarshal(body, &info); err != nil || info.App != "jobrun" {
		ck.msg = fmt.Sprintf("something other than jobrun answers GET /api/info (%s)", resp.Header.Get("Content-Type"))
		ck.fix = "check the URL: jobrun must be served at its root (a proxy location / to jobrun serve)"
		return ck
	}
	d.role, d.access = info.Role, info.Access
	if info.HeartbeatSeconds > 0 {
		d.heartbeat = time.Duration(info.HeartbeatSeconds * float64(time.Second))
	}
	ck.status = statusOK
	ck.msg = fmt.Sprintf("jobrun %s %s answers; its streams send a heartbeat every %s", info.Role, info.Version, roundDuration(d.heartbeat))
	if info.Role != "serve" {
		ck.status = statusWarn
		ck.msg = fmt.Sprintf("this is the page server of one jobrun %s (%s), not jobrun serve: it shows one job and stops after it", info.Role, info.Version)
		ck.fix = "point --server at jobrun serve to see every job"
	}
	return ck
}

// firstLine is the start of a body, for messages.
func firstLine(body []byte) string {
	if m := jobrunError(body); m != "" {
		return "(" + m + ")"
	}
	s, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// checkToken checks that the token (or none) is accepted.
func (d *doctor) checkToken(ctx context.Context) check {
	ck := check{name: "token", status: statusFail}
	resp, body, _, err := d.get(ctx, "/api/info", 15*time.Second)
	if err != nil {
		ck.msg = err.Error()
		return ck
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		if d.token == "" {
			ck.msg = "the server needs a token: " + jobrunError(body)
			ck.fix = "pass --token or set JOBRUN_TOKEN (its value is serve's --token, or --read-token to watch only); browsers sign in at " + d.url("/login")
		} else {
			ck.msg = "the server refuses this token: " + jobrunError(body)
			ck.fix = "use the value of serve's --token (full access) or --read-token (watch only)"
		}
		return ck
	case http.StatusTooManyRequests:
		ck.msg = "the server refuses this address for a while after too many failed attempts"
		ck.fix = "wait a minute, then check the token"
		return ck
	default:
		ck.msg = fmt.Sprintf("HTTP %d %s", resp.StatusCode, firstLine(body))
		return ck
	}
	ck.status = statusOK
	if d.token == "" {
		ck.msg = "the server needs no token"
		return ck
	}
	// Accepted: or not checked at all? Ask without it.
	plain := &http.Client{Transport: d.hc.Transport.(bearer).next}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.url("/api/info"), nil)
	if r, err := plain.Do(req); err == nil {
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			ck.msg = "the server needs no token (the one given is not checked)"
			return ck
		}
	}
	ck.msg = "the token is accepted"
	switch d.access {
	case "full":
		ck.msg += ": full access"
	case "read":
		ck.msg += ": read-only (watching; cancel, rm, prune and exec --server need the full token)"
	}
	return ck
}

// checkWebSocket checks that a WebSocket upgrade passes, as the dashboard
// opens it, and that a message comes through.
func (d *doctor) checkWebSocket(ctx context.Context) check {
	ck := check{name: "websocket", status: statusFail}
	m := d.probe.WebSocket(ctx)
	if m.DialErr != nil {
		r := m.Refused
		switch {
		case r == nil:
			ck.msg = fmt.Sprintf("the upgrade failed: %v", m.DialErr)
			ck.fix = fixUpgrade
		case r.Status == http.StatusUpgradeRequired && r.JobrunError() != "":
			ck.msg = "the upgrade reached jobrun without its Upgrade header (HTTP 426): a proxy on the way drops the Upgrade and Connection headers"
			ck.fix = fixUpgrade
		case r.Status == http.StatusForbidden && strings.Contains(strings.ToLower(string(r.Body)), "origin"):
			ck.msg = fmt.Sprintf("jobrun refuses the origin %s of this server's pages: the Host it sees is not the URL's", d.probe.Origin())
			ck.fix = "pass the Host header to jobrun (nginx: proxy_set_header Host $host;) or start jobrun serve with --public-url " + d.probe.Origin()
		case r.Status == http.StatusUnauthorized:
			ck.msg = "the upgrade needs a token (see the token check)"
			ck.fix = "pass --token or set JOBRUN_TOKEN"
		default:
			ck.msg = fmt.Sprintf("something on the way answers the upgrade with HTTP %d %s", r.Status, firstLine(r.Body))
			ck.fix = fixUpgrade
		}
		return ck
	}
	switch {
	case m.Snapshot:
		ck.status, ck.msg = statusOK, "the upgrade passes and messages come through (the dashboard stream)"
	case m.CloseCode == 4404: // jobrun exec: no dashboard
		ck.status, ck.msg = statusOK, "the upgrade passes"
	case m.ReadTimedOut:
		ck.status = statusWarn
		ck.msg = "the upgrade passes, but no message came through within 10 s"
		ck.fix = "something on the way holds WebSocket messages back; " + fixBuffering
	default:
		ck.msg = fmt.Sprintf("the upgrade passes, but the connection ends at once: %v", m.ReadErr)
		ck.fix = fixUpgrade
	}
	return ck
}

// probeHold is how long the SSE probe holds its stream between its two
// events.
const probeHold = 2 * time.Second

// checkSSE checks that an event stream is not buffered: the probe sends
// an event at once and another after probeHold; a buffering proxy
// delivers both at the end.
func (d *doctor) checkSSE(ctx context.Context) check {
	ck := check{name: "sse", status: statusFail}
	m := d.probe.SSE(ctx, probeHold)
	switch r := m.Refused; {
	case m.Err != nil:
		ck.msg = fmt.Sprintf("no event stream: %v", m.Err)
		ck.fix = fixBuffering
	case r != nil && r.Status == http.StatusNotFound && r.JobrunError() != "":
		ck.status, ck.msg = statusSkip, "not checked: this jobrun has no probe endpoints (an older version)"
	case r != nil:
		ck.msg = fmt.Sprintf("event streams are refused: HTTP %d %s", r.Status, firstLine(r.Body))
		ck.fix = "allow text/event-stream answers for /api/ on the proxy; meanwhile pages fall back to long polling"
	case !strings.HasPrefix(m.ContentType, "text/event-stream"):
		ck.msg = fmt.Sprintf("the event stream arrives as %q: something on the way rewrites it", m.ContentType)
		ck.fix = fixBuffering
	case len(m.Arrivals) < 2:
		ck.msg = fmt.Sprintf("the event stream was cut after %s (%d of 2 events)", roundDuration(m.Elapsed), len(m.Arrivals))
		ck.fix = fixTimeout
	case m.Arrivals[0] >= probeHold/2:
		ck.msg = fmt.Sprintf("buffered: the first event, sent at once, arrived only after %s, with the last one; live output would arrive in bursts or not at all",
			roundDuration(m.Arrivals[0]))
		ck.fix = fixBuffering
	default:
		ck.status = statusOK
		ck.msg = fmt.Sprintf("not buffered: the first event arrived after %s, the second %s later as sent",
			roundDuration(m.Arrivals[0]), roundDuration(m.Arrivals[1]-m.Arrivals[0]))
	}
	return ck
}

// pollWait is how long the page's long polls wait: the heartbeat, from 1
// to 25 s (ui/static/transport.js).
func (d *doctor) pollWait() time.Duration {
	return min(max(d.heartbeat.Round(time.Second), time.Second), 25*time.Second)
}

// checkLongPoll checks that a long poll as long as the page's comes back.
func (d *doctor) checkLongPoll(ctx context.Context) check {
	ck := check{name: "longpoll", status: statusFail}
	wait := d.pollWait()
	m := d.probe.LongPoll(ctx, wait)
	switch r := m.Refused; {
	case m.Err != nil:
		ck.msg = fmt.Sprintf("a %s long poll (as the page's) got no answer after %s: %v", wait, roundDuration(m.Took), m.Err)
		ck.fix = fixTimeout
	case r != nil && r.Status == http.StatusNotFound && r.JobrunError() != "":
		ck.status, ck.msg = statusSkip, "not checked: this jobrun has no probe endpoints (an older version)"
	case r != nil:
		ck.msg = fmt.Sprintf("a %s long poll (as the page's) was cut after %s with HTTP %d %s: the proxy's read timeout is shorter",
			wait, roundDuration(m.Took), r.Status, firstLine(r.Body))
		ck.fix = fixTimeout
	default:
		ck.status = statusOK
		ck.msg = fmt.Sprintf("a %s long poll (as the page's) answered after %s", wait, roundDuration(m.Took))
	}
	return ck
}

// checkIdle holds a WebSocket on which nobody sends anything for d.idle
// and reports whether, and when, the way cuts it, compared with the
// heartbeat that keeps real streams busy.
func (d *doctor) checkIdle(ctx context.Context) check {
	ck := check{name: "idle", status: statusFail}
	if d.idle <= 0 {
		ck.status, ck.msg = statusSkip, "not checked (--idle-check 0)"
		return ck
	}
	hb := d.heartbeat
	m := d.probe.Idle(ctx, d.idle)
	switch {
	case m.DialErr != nil && m.Refused != nil && m.Refused.Status == http.StatusNotFound:
		ck.status, ck.msg = statusSkip, "not checked: this jobrun has no probe endpoints (an older version)"
	case m.DialErr != nil:
		ck.msg = fmt.Sprintf("could not open the idle WebSocket: %v", m.DialErr)
		ck.fix = fixUpgrade
	case m.Survived:
		ck.status = statusOK
		ck.msg = fmt.Sprintf("a silent WebSocket stayed open for %s; streams send a heartbeat every %s", roundDuration(d.idle), roundDuration(hb))
		if d.idle < 2*hb {
			ck.msg += fmt.Sprintf(" (run with --idle-check %s or more to be sure)", 2*hb)
		}
	case m.CloseCode == websocket.StatusGoingAway:
		ck.status, ck.msg = statusWarn, "the server closed the idle WebSocket (it is shutting down); run doctor again"
	case m.Cut < hb:
		ck.msg = fmt.Sprintf("the way cuts idle connections after about %s, before jobrun's heartbeat (every %s): live pages would drop and reconnect every %s",
			roundDuration(m.Cut), roundDuration(hb), roundDuration(m.Cut))
		ck.fix = fixTimeout
	case m.Cut < 2*hb:
		ck.status = statusWarn
		ck.msg = fmt.Sprintf("the way cuts idle connections after about %s; the heartbeat (every %s) keeps streams open, with little margin",
			roundDuration(m.Cut), roundDuration(hb))
		ck.fix = fixTimeout
	default:
		ck.status = statusOK
		ck.msg = fmt.Sprintf("the way cuts idle connections after about %s, more than twice the heartbeat (%s): streams stay open",
			roundDuration(m.Cut), roundDuration(hb))
	}
	return ck
}
