// The login page. The form posts the token to POST /login, which sets an
// HttpOnly session cookie and redirects; it works without this script.
// The script fills in where to go back to, shows why the user is here,
// and, when the browser already holds a good cookie, goes on at once: a
// SameSite=Strict cookie is not sent with a navigation that another site
// started (a link in a chat), so such a visit lands here although the
// user is signed in; this page's own request does carry the cookie.

const MESSAGES = {
  invalid: 'That token is not valid for this server.',
  expired: 'This link or session has expired. Ask for a new share link, or sign in with the server\u2019s token.',
  scope: 'Your access does not reach this page (a share link opens its own job only). Sign in with the server\u2019s token.',
};

/** Only paths on this server, never another site. */
function safeNext(next) {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/';
  return next;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const next = safeNext(params.get('next'));
  document.getElementById('next').value = next;
  const msg = document.getElementById('login-msg');
  const err = params.get('error');
  if (MESSAGES[err]) {
    msg.textContent = MESSAGES[err];
    msg.hidden = false;
  }
  document.getElementById('token').focus();
  if (err) return;
  // Go on at once if the cookie the browser holds is good, but not twice
  // in a row within a few seconds (a cookie the server refuses).
  const last = Number(sessionStorage.getItem('jobrun-login-bounce') || 0);
  if (Date.now() - last < 5000) return;
  try {
    const r = await fetch(`/api/auth?next=${encodeURIComponent(next)}`, { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (!r.ok) return;
    const who = await r.json();
    if (who.next && (who.access !== 'none' || !who.auth)) {
      sessionStorage.setItem('jobrun-login-bounce', String(Date.now()));
      location.replace(next);
    } else if (who.error) {
      msg.textContent = who.error;
      msg.hidden = false;
    }
  } catch { /* the form is there */ }
}

main();
