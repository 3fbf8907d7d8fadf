package api

import (
	"errors"
	"net/http"

	"github.com/jobrun/jobrun/jobs"

	"github.com/jobrun/jobrun/stream"
)

// writeError answers with err's status (stream.StatusCode) and a JSON
// body. Internal errors are logged and not shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := stream.StatusCode(err)
	msg := err.Error()
	switch {
	case code == http.StatusInternalServerError:
		s.logger().Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	case errors.Is(err, jobs.ErrUnavailable):
		// The database's address is none of the client's business.
		s.logger().Warn("api: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "database unavailable; retry later"
	}
	stream.WriteJSONError(w, code, msg)
}
