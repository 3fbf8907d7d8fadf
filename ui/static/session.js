// Sign out. A browser signed in to jobrun serve with its token holds a
// session cookie (HttpOnly, so scripts cannot see it); POST /logout removes
// it and redirects to the login page. The pages show their "Sign out" form
// (a plain same-origin form post, which the server's Origin check accepts)
// only when GET /api/auth says the request came with a session: a server
// without a token (jobrun exec, serve --insecure) has nothing to sign out
// of, and a share link's cookie is not a session (logout keeps it).

/**
 * Whether GET /api/auth's answer is a signed-in session: the server needs a
 * token, and the browser (which sends no Authorization header) has full or
 * read access, which only the session cookie gives.
 * @param {object|null} who
 */
export function hasSession(who) {
  return !!who && who.auth === true && (who.access === 'full' || who.access === 'read');
}

/**
 * Shows form (the Sign out form) when the browser holds a session.
 * @param {HTMLFormElement} form
 * @param {typeof fetch} [fetchFn]
 */
export async function offerSignOut(form, fetchFn = fetch) {
  try {
    const r = await fetchFn('/api/auth', { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (r.ok && hasSession(await r.json())) form.hidden = false;
  } catch { /* no answer: nothing to offer */ }
}
