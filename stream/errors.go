package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

// Close codes of the stream endpoint beyond the standard ones (1000 after
// the exit event, 1001 when the server shuts down, 1011 on an internal
// error). docs/protocol.md has the table.
const (
	CodeInvalid  = 4400 // malformed request (bad job reference or after)
	CodeNotFound = 4404 // unknown job
	CodeConflict = 4409 // after is beyond the job's last stored seq: start over
	CodeTooSlow  = 4429 // the viewer fell too far behind: resume with after=
	// CodeUnauthorized and CodeForbidden: the request's credential is not
	// good, or does not allow this (a share link for another job).
	CodeUnauthorized = 4401
	CodeForbidden    = 4403
)

// Errors of the HTTP transport itself, beside the jobs sentinels.
var (
	// errForbidden: a request that changes something came from another
	// site (no same-origin Origin or Sec-Fetch-Site).
	errForbidden = errors.New("forbidden")
	// errMediaType: a request body that is not application/json.
	errMediaType = errors.New("unsupported media type")
)

// statusCode maps an error to its HTTP status: the one place where domain
// errors become statuses.
func statusCode(err error) int {
	switch {
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errTooManyFailures):
		return http.StatusTooManyRequests
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errShuttingDown):
		return http.StatusServiceUnavailable
	case errors.Is(err, jobs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, jobs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, jobs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, jobs.ErrTooSlow):
		return http.StatusTooManyRequests
	case errors.Is(err, jobs.ErrGone):
		return http.StatusGone
	case errors.Is(err, jobs.ErrMismatch):
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// closeCode maps an error to its WebSocket close code: the one place where
// domain errors become close codes.
func closeCode(err error) websocket.StatusCode {
	switch {
	case errors.Is(err, errUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, errForbidden):
		return CodeForbidden
	case errors.Is(err, jobs.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, jobs.ErrInvalid):
		return CodeInvalid
	case errors.Is(err, jobs.ErrConflict):
		return CodeConflict
	case errors.Is(err, jobs.ErrTooSlow):
		return CodeTooSlow
	case errors.Is(err, jobs.ErrGone):
		return CodeGone // ingest only
	case errors.Is(err, jobs.ErrMismatch):
		return CodeMismatch // ingest only
	}
	return websocket.StatusInternalError
}

// sentinelFor is the inverse of statusCode and closeCode, for the client.
func sentinelFor(code int) error {
	switch code {
	case http.StatusNotFound, CodeNotFound:
		return jobs.ErrNotFound
	case http.StatusBadRequest, CodeInvalid:
		return jobs.ErrInvalid
	case http.StatusConflict, CodeConflict:
		return jobs.ErrConflict
	case http.StatusTooManyRequests, CodeTooSlow:
		return jobs.ErrTooSlow
	case http.StatusGone, CodeGone:
		return jobs.ErrGone
	case http.StatusUnprocessableEntity, CodeMismatch:
		return jobs.ErrMismatch
	}
	return nil
}

// errorBody is the JSON body of every plain HTTP error.
type errorBody struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
}

// writeError answers with err's status and a JSON body. Internal errors
// are logged and not shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusCode(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.logger().Error("stream: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	writeJSONError(w, code, msg)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg, Code: code})
}

// HTTPError is a plain HTTP error answer, as seen by Client. It unwraps to
// the matching jobs sentinel (jobs.ErrNotFound for 404, ...).
type HTTPError struct {
	StatusCode int
	Message    string
}

// Error describes the answer.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Message)
}

// Unwrap returns the jobs sentinel of the status, if any.
func (e *HTTPError) Unwrap() error { return sentinelFor(e.StatusCode) }

// CloseError is a stream that the server closed with an error code, as
// seen by Client. It unwraps to the matching jobs sentinel (jobs.ErrNotFound
// for 4404, ...).
type CloseError struct {
	Code   int
	Reason string
}

// Error describes the close.
func (e *CloseError) Error() string {
	return fmt.Sprintf("stream closed with %d: %s", e.Code, e.Reason)
}

// Unwrap returns the jobs sentinel of the code, if any.
func (e *CloseError) Unwrap() error { return sentinelFor(e.Code) }
