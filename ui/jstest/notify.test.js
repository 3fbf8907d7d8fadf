// Unit tests of ui/static/notify.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndNotifier, STORAGE_KEY } from '../static/notify.js';

/** A fake Notification class: permission, the answer to a request, and what was shown. */
function fakeNotification(permission, answer = permission) {
  class N {
    constructor(title, opts) {
      N.shown.push({ title, ...opts });
    }

    static async requestPermission() {
      N.asked++;
      N.permission = answer;
      return answer;
    }
  }
  N.permission = permission;
  N.shown = [];
  N.asked = 0;
  return N;
}

class Storage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

const hidden = { visibilityState: 'hidden' };
const visible = { visibilityState: 'visible' };
const run = { id: 9, name: 'build', status: 'running', started_at: '2026-11-25T21:00:00Z' };
const done = { ...run, status: 'succeeded', exit_code: 0, finished_at: '2026-11-25T21:00:42Z' };
const T = Date.parse('2026-11-25T21:01:00Z');

test('off until the user turns it on; asks for permission only then', async () => {
  const N = fakeNotification('default', 'granted');
  const storage = new Storage();
  const n = new EndNotifier({ Notification: N, storage, document: hidden });
  assert.equal(n.state, 'off');
  assert.equal(N.asked, 0);
  n.update(run, T);
  n.update(done, T);
  assert.equal(N.shown.length, 0, 'not turned on');
  assert.equal(await n.toggle(), 'on');
  assert.equal(N.asked, 1);
  assert.equal(storage.getItem(STORAGE_KEY), 'on');
  // Remembered by the next page.
  assert.equal(new EndNotifier({ Notification: N, storage, document: hidden }).state, 'on');
  assert.equal(await n.toggle(), 'off');
  assert.equal(storage.getItem(STORAGE_KEY), null);
});

test('notifies once when a job it saw live ends while the page is hidden', async () => {
  const N = fakeNotification('granted');
  const storage = new Storage();
  storage.setItem(STORAGE_KEY, 'on');
  const n = new EndNotifier({ Notification: N, storage, document: hidden });
  assert.equal(n.state, 'on');
  assert.equal(n.update(run, T), null);
  assert.ok(n.update(done, T));
  assert.equal(n.update(done, T), null, 'the refresh after the exit event');
  assert.deepEqual(N.shown, [{ title: '✓ build succeeded', body: 'after 42s', tag: 'jobrun-job-9', icon: '/assets/favicon-succeeded.svg' }]);
});

test('no notice: page visible, job already ended at load, still running, or blocked', async () => {
  const N = fakeNotification('granted');
  const storage = new Storage();
  storage.setItem(STORAGE_KEY, 'on');
  const seen = new EndNotifier({ Notification: N, storage, document: visible });
  seen.update(run, T);
  seen.update(done, T);
  const late = new EndNotifier({ Notification: N, storage, document: hidden });
  late.update(done, T);
  const live = new EndNotifier({ Notification: N, storage, document: hidden });
  live.update(run, T);
  live.update({ ...run, status: 'unreachable' }, T);
  live.update(run, T);
  assert.equal(N.shown.length, 0);

  const B = fakeNotification('denied');
  const blocked = new EndNotifier({ Notification: B, storage, document: hidden });
  assert.equal(blocked.state, 'blocked');
  assert.equal(await blocked.toggle(), 'blocked');
  assert.equal(B.asked, 0);
  blocked.update(run, T);
  blocked.update(done, T);
  assert.equal(B.shown.length, 0);
});

test('a refused permission stays off; no Notification API is unsupported', async () => {
  const N = fakeNotification('default', 'denied');
  const n = new EndNotifier({ Notification: N, storage: new Storage(), document: hidden });
  assert.equal(await n.toggle(), 'blocked');
  const none = new EndNotifier({ Notification: undefined, storage: new Storage(), document: hidden });
  assert.equal(none.state, 'unsupported');
  assert.equal(await none.toggle(), 'unsupported');
});

test('storage that throws: the choice lasts for the page', async () => {
  const N = fakeNotification('granted');
  const broken = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('denied'); }, removeItem() { throw new Error('denied'); } };
  const n = new EndNotifier({ Notification: N, storage: broken, document: hidden });
  assert.equal(n.state, 'off');
  assert.equal(await n.toggle(), 'on');
  n.update(run, T);
  n.update({ ...done, status: 'failed', exit_code: 1 }, T);
  assert.equal(N.shown[0].title, '✗ build failed');
});

test('a Notification constructor that throws (Android Chrome) shows nothing, quietly', async () => {
  const N = fakeNotification('granted');
  class Throws extends N { constructor() { super(); throw new TypeError('Illegal constructor'); } }
  const storage = new Storage();
  storage.setItem(STORAGE_KEY, 'on');
  const n = new EndNotifier({ Notification: Throws, storage, document: hidden });
  n.update(run, T);
  assert.equal(n.update(done, T), null);
});
