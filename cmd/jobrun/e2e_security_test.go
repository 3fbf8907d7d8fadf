package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream/access"
)

// Tokens of the security tests: long enough for serve.
const (
	e2eToken     = "e2e-full-token-5f1c0a9e7b3d"
	e2eReadToken = "e2e-read-token-8a2b4c6d0e1f"
)

// testCA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1 and localhost, as PEM files.
type testCA struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jobrun test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca := testCA{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"),
		pool: x509.NewCertPool()}
	ca.pool.AddCert(caCert)
	for file, block := range map[string]*pem.Block{
		ca.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		ca.certFile: {Type: "CERTIFICATE", Bytes: der},
		ca.keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

var serveAnyURLRE = regexp.MustCompile(`listening.* url=(https?://[^/\s]+)/`)

// startSecureServe starts jobrun serve with args on a free loopback port
// and returns it and its base URL (http or https).
func startSecureServe(t *testing.T, db string, args ...string) (*proc, string) {
	t.Helper()
	p := startJobrun(t, db, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	var base string
	waitFor(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("serve exited: %q", p.stderrString())
		default:
		}
		if m := serveAnyURLRE.FindStringSubmatch(p.stderrString()); m != nil {
			base = m[1]
			return true
		}
		return false
	})
	return p, base
}

// runJobrun runs a jobrun command to completion with extra environment
// and returns its stdout, stderr and exit code.
func runJobrun(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("jobrun %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

// tlsClient trusts ca and sends tok (if not "").
func tlsClient(ca testCA) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
}

func getWith(t *testing.T, hc *http.Client, u, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestServeTokenTLSAgentAndRemote runs jobrun serve with a token, a read
// token and TLS from a private CA, and uses it as users do: exec --server
// with masking, logs, ls, cancel and share, with and without the right
// credentials.
func TestServeTokenTLSAgentAndRemote(t *testing.T) {
	agentEnv(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "jobrun.db")
	ca := newTestCA(t)
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(e2eToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, base := startSecureServe(t, db, "--token-file", tokFile, "--read-token", e2eReadToken,
		"--tls-cert", ca.certFile, "--tls-key", ca.keyFile)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("serve with TLS prints %s", base)
	}
	if strings.Contains(srv.stderrString(), e2eToken) || strings.Contains(srv.stderrString(), e2eReadToken) {
		t.Errorf("serve logged a token: %q", srv.stderrString())
	}
	if fi, err := os.Stat(db + ".secret"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("server secret: %v %v, want a 0600 file next to the database", fi, err)
	}
	hc := tlsClient(ca)
	caEnv := "JOBRUN_CA_CERT=" + ca.caFile
	full := []string{"JOBRUN_SERVER=" + base, "JOBRUN_TOKEN=" + e2eToken, caEnv}
	read := []string{"JOBRUN_SERVER=" + base, "JOBRUN_TOKEN=" + e2eReadToken, caEnv}

	// Without the CA, or without the token: clear errors, and the job
	// does not start.
	marker := filepath.Join(dir, "ran")
	_, stderr, code := runJobrun(t, []string{"JOBRUN_SERVER=" + base, "JOBRUN_TOKEN=" + e2eToken, "JOBRUN_CA_CERT="},
		"exec", "--", "touch", marker)
	if code != exitFailure || !strings.Contains(stderr, "--ca-cert") {
		t.Errorf("exec to a private-CA server without --ca-cert: exit %d %q", code, stderr)
	}
	_, stderr, code = runJobrun(t, []string{"JOBRUN_SERVER=" + base, "JOBRUN_TOKEN=", caEnv}, "exec", "--", "touch", marker)
	if code != exitFailure || !strings.Contains(stderr, "needs a token") || !strings.Contains(stderr, "JOBRUN_TOKEN") {
		t.Errorf("exec without a token: exit %d %q", code, stderr)
	}
	_, stderr, code = runJobrun(t, read, "exec", "--", "touch", marker)
	if code != exitFailure || !strings.Contains(stderr, "read access") {
		t.Errorf("exec with the read token: exit %d %q", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a refused exec ran its command")
	}

	// With both, exec reports over wss; the secret is masked.
	script := `echo "start"; echo "the key is $DEPLOY_KEY"; printf '::add-mask::%s\n' announced-value; echo "announced-value again"`
	out, stderr, code := runJobrun(t, append(full, "DEPLOY_KEY=k3y-0123456789"), "exec", "--mask-env", "DEPLOY_KEY", "--", "sh", "-c", script)
	if code != 0 {
		t.Fatalf("exec --server over TLS: exit %d %q", code, stderr)
	}
	want := "start\nthe key is ***\n::add-mask::***\n*** again\n"
	if out != want {
		t.Errorf("exec's echo %q, want %q", out, want)
	}
	logs, stderr, code := runJobrun(t, read, "logs", "1")
	if code != 0 || logs != want {
		t.Errorf("logs over https with the read token: exit %d %q %q, want %q", code, logs, stderr, want)
	}
	evs, stderr, code := runJobrun(t, read, "logs", "--json", "1")
	if code != 0 || strings.Contains(evs, "k3y-0123456789") || strings.Contains(evs, "announced-value") {
		t.Errorf("logs --json (the wss stream): exit %d %q", code, stderr)
	}
	if ls, _, code := runJobrun(t, read, "ls"); code != 0 || strings.Contains(ls, "k3y-0123456789") {
		t.Errorf("ls: exit %d %q", code, ls)
	}
	// Remote commands without the token, or with a wrong one.
	_, stderr, code = runJobrun(t, []string{"JOBRUN_SERVER=" + base, "JOBRUN_TOKEN=", caEnv}, "ls")
	if code != exitFailure || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "JOBRUN_TOKEN") {
		t.Errorf("ls without a token: exit %d %q", code, stderr)
	}

	// Cancel needs the full token.
	ex := startJobrun(t, db, "exec", "--server", base, "--ca-cert", ca.caFile, "--token", e2eToken, "--", "sleep", "60")
	j := waitJobStatus(t, hc, base, "2", jobs.StatusRunning)
	_, stderr, code = runJobrun(t, read, "cancel", "2")
	if code != exitFailure || !strings.Contains(stderr, "403") {
		t.Errorf("cancel with the read token: exit %d %q", code, stderr)
	}
	// Share: the server makes a link; it reads job 2 only.
	link, stderr, code := runJobrun(t, full, "share", "--expires", "1h", "2")
	link = strings.TrimSpace(link)
	if code != 0 || !strings.HasPrefix(link, base+"/jobs/"+string(j.UID)+"?token=") {
		t.Fatalf("share --server: exit %d %q %q", code, link, stderr)
	}
	u, _ := url.Parse(link)
	shareTok := u.Query().Get("token")
	if st, _ := getWith(t, hc, base+"/api/jobs/"+string(j.UID), shareTok); st != 200 {
		t.Errorf("shared job with the link's token: %d", st)
	}
	for _, path := range []string{"/api/jobs/1", "/api/jobs", "/api/stream"} {
		if st, _ := getWith(t, hc, base+path, shareTok); st != 403 {
			t.Errorf("%s with a share token: %d, want 403", path, st)
		}
	}
	// A link signed locally with the database's secret works too.
	local, stderr, code := runJobrun(t, []string{"JOBRUN_DB=" + db, "JOBRUN_SERVER="}, "share", "--url", base, "--expires", "10m", "1")
	local = strings.TrimSpace(local)
	if code != 0 || !strings.Contains(local, "?token=") {
		t.Fatalf("local share: exit %d %q %q", code, local, stderr)
	}
	lu, _ := url.Parse(local)
	if st, body := getWith(t, hc, base+"/api/jobs/1/log", lu.Query().Get("token")); st != 200 || body != want {
		t.Errorf("log with a locally signed link: %d %q", st, body)
	}
	_, stderr, code = runJobrun(t, full, "cancel", "2")
	if code != 0 {
		t.Errorf("cancel with the full token: exit %d %q", code, stderr)
	}
	if c := ex.wait(t); c != 143 {
		t.Errorf("canceled exec exit %d, want 143", c)
	}
}

// waitJobStatus polls a job over https with the full token until it has
// status want.
func waitJobStatus(t *testing.T, hc *http.Client, base, ref string, want jobs.Status) jobs.Job {
	t.Helper()
	var j jobs.Job
	waitFor(t, func() bool {
		st, body := getWith(t, hc, base+"/api/jobs/"+ref, e2eToken)
		return st == 200 && json.Unmarshal([]byte(body), &j) == nil && j.Status == want
	})
	return j
}

// TestServeTokenRules checks serve's refusals: no token on a public
// address, a short token, TLS flags alone; and that a token on a public
// address is enough.
func TestServeTokenRules(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"public address, no token", []string{"--addr", "0.0.0.0:0"}, "without a token"},
		{"short token", []string{"--token", "short"}, "at least 16"},
		{"cert without key", []string{"--tls-cert", "x.pem"}, "go together"},
		{"bad public url", []string{"--public-url", "jobs.example.com"}, "root URL"},
		{"bad proxy", []string{"--trusted-proxy", "nginx"}, "CIDR"},
	} {
		_, stderr, code := runJobrun(t, []string{"JOBRUN_DB=" + db, "JOBRUN_TOKEN="}, append([]string{"serve"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d %q, want 2 and %q", tc.name, code, stderr, tc.want)
		}
	}
	// With a token, any address will do; without one, nothing gets in.
	_, base := startSecureServe(t, db, "--addr", "0.0.0.0:0", "--token", e2eToken)
	port := base[strings.LastIndex(base, ":")+1:]
	loop := "http://127.0.0.1:" + port
	if st, _ := getWith(t, http.DefaultClient, loop+"/api/jobs", ""); st != 401 {
		t.Errorf("public serve without a token: %d, want 401", st)
	}
	if st, _ := getWith(t, http.DefaultClient, loop+"/api/jobs", e2eToken); st != 200 {
		t.Errorf("public serve with the token: %d, want 200", st)
	}
	_ = access.ScopeFull
}
