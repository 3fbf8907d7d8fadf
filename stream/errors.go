package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

// The error vocabulary of the wire, shared by every endpoint (stream/api,
// stream/access, stream/ingest) and their clients: close codes, the HTTP
// statuses and close codes of errors, the JSON error body, and the errors
// a client sees. Domain errors become statuses in StatusCode and close
// codes in CloseCode, nowhere else.

// Close codes beyond the standard ones (1000 after the exit event, 1001
// when the server shuts down, 1009 for a message over the read limit, 1011
// on an internal error). docs/protocol.md has the table.
const (
	CodeInvalid  = 4400 // malformed request (bad job reference or after)
	CodeNotFound = 4404 // unknown job
	CodeConflict = 4409 // after is beyond the job's last stored seq: start over
	CodeTooSlow  = 4429 // the viewer fell too far behind: resume with after=
	// CodeUnauthorized and CodeForbidden: the request's credential is not
	// good, or does not allow this (a share link for another job).
	CodeUnauthorized = 4401
	CodeForbidden    = 4403
	// Ingest only.
	CodeSilent   = 4408 // the agent sent nothing for longer than the agent timeout
	CodeGone     = 4410 // the job was ended as lost: the server takes no more events for it
	CodeMismatch = 4422 // a resent seq carries other content than the stored event
)

// Errors of the transports themselves, beside the jobs sentinels.
var (
	// ErrUnauthorized: no credential, or one that is not valid (401, 4401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the credential does not allow this, or a request that
	// changes something came from another site (403, 4403).
	ErrForbidden = errors.New("forbidden")
	// ErrTooManyFailures: too many failed sign-ins from one address (429).
	ErrTooManyFailures = errors.New("too many failed authentications")
	// ErrMediaType: a request body that is not application/json (415).
	ErrMediaType = errors.New("unsupported media type")
	// ErrShuttingDown: a request that came after the server began to
	// close (503, 1001).
	ErrShuttingDown = errors.New("server shutting down")
)

// StatusCode maps an error to its HTTP status: the one place where domain
// errors become statuses.
func StatusCode(err error) int {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrTooManyFailures):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrShuttingDown), errors.Is(err, jobs.ErrUnavailable):
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

// CloseCode maps an error to its WebSocket close code: the one place where
// domain errors become close codes.
func CloseCode(err error) websocket.StatusCode {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrForbidden):
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

// sentinelFor is the inverse of StatusCode and CloseCode, for clients.
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

// ErrorBody is the JSON body of every plain HTTP error.
type ErrorBody struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
}

// WriteJSONError answers with status code and an ErrorBody.
func WriteJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: msg, Code: code})
}

// IsUpgrade reports whether r asks for a WebSocket.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// HTTPError is a plain HTTP error answer, as a client sees it. It unwraps
// to the matching jobs sentinel (jobs.ErrNotFound for 404, ...).
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

// ReadHTTPError turns an error answer into an *HTTPError, with the
// message of its ErrorBody (or the start of its body).
func ReadHTTPError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var eb ErrorBody
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	return &HTTPError{StatusCode: resp.StatusCode, Message: msg}
}

// CloseError is a WebSocket that the server closed with an error code, as
// a client sees it. It unwraps to the matching jobs sentinel
// (jobs.ErrNotFound for 4404, ...).
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

// CloseErrorOf turns the error of a read that ended with a close frame
// into a *CloseError; other errors are returned as they are.
func CloseErrorOf(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return err
}
