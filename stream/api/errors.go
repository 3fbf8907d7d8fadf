package api

import (
	"net/http"

	"github.com/jobrun/jobrun/stream"
)

// writeError answers with err's status (stream.StatusCode) and a JSON
// body. Internal errors are logged and not shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := stream.StatusCode(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.logger().Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	stream.WriteJSONError(w, code, msg)
}
