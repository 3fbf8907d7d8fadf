package access

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/jobrun/jobrun/stream"
)

// RestrictHost refuses (403, JSON body) requests whose Host is not a
// loopback name: localhost, an address in 127.0.0.0/8 or [::1], with any
// port (so that SSH port forwarding works). It protects a server bound to
// loopback from DNS rebinding, where a page of another site reaches it
// under that site's name.
func RestrictHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			stream.WriteJSONError(w, http.StatusForbidden, fmt.Sprintf("host %q is not allowed: use localhost or 127.0.0.1", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names the loopback interface.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
