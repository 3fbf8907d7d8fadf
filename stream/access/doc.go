// Package access decides who may do what on a jobrun server: the Gate in
// front of every request, the Auth that checks tokens and signs sessions
// and share links, the login page's handlers, and the Origin and Host
// checks that stream/api applies again where it matters.
//
// # Invariants
//
//   - Gate is jobrun serve's front door; every request passes it before
//     the API, the ingest endpoint and the pages. It decides the client's
//     address (trusted proxies only), limits requests in progress per
//     client, checks Host (a loopback server without a token), and, when
//     Auth has a token, turns the request's credential (bearer token,
//     signed session cookie, or a share link's cookie) into a Grant in the
//     request's context, refusing what the scope does not allow (401, 403,
//     or a redirect to /login).
//   - A request without a Grant in its context (jobrun exec's embedded
//     server, loopback only behind RestrictHost) has full access: GrantOf
//     says so, so that the API needs no second code path.
//   - Failed sign-ins are counted per client address; past the limit its
//     failures get 429, while its valid credentials still pass.
//   - Tokens and MACs are compared in constant time; nothing logs a token.
//   - Share links and sessions are stateless: HMAC-SHA256 under
//     Auth.Secret, sessions also bound to the token they were opened with,
//     so a new token ends every session and a new secret every link.
//
// Errors are stream's vocabulary (stream.ErrUnauthorized, ErrForbidden,
// ErrTooManyFailures), which stream.StatusCode maps to 401, 403 and 429,
// and stream.CloseCode to 4401 and 4403.
package access
