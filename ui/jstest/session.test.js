// Unit tests of ui/static/session.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasSession, offerSignOut } from '../static/session.js';

test('a session is full or read access on a server that needs a token', () => {
  const cases = [
    [{ auth: true, access: 'full', next: true }, true],
    [{ auth: true, access: 'read', next: true }, true],
    [{ auth: true, access: 'share', job: 'k3v0' }, false], // a share link's cookie: logout keeps it
    [{ auth: true, access: 'none', error: 'the session has expired' }, false],
    [{ auth: false, access: 'full', next: true }, false], // no token: nothing to sign out of
    [null, false],
  ];
  for (const [who, want] of cases) assert.equal(hasSession(who), want, JSON.stringify(who));
});

test('the Sign out form shows only for a session', async () => {
  const answer = (status, body) => async (url, opts) => {
    assert.equal(url, '/api/auth');
    assert.equal(opts.cache, 'no-store');
    return { ok: status === 200, status, json: async () => body };
  };
  const cases = [
    [answer(200, { auth: true, access: 'full' }), false],
    [answer(200, { auth: false, access: 'full' }), true],
    [answer(404, { error: 'not found' }), true], // a server without the endpoint
    [async () => { throw new TypeError('network'); }, true],
  ];
  for (const [fetchFn, hidden] of cases) {
    const form = { hidden: true };
    await offerSignOut(form, fetchFn);
    assert.equal(form.hidden, hidden);
  }
});
