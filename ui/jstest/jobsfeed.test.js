// Unit tests of ui/static/jobsfeed.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobsFeed } from '../static/jobsfeed.js';
import { Clock, fakeWebSocket, fakeFetch, flush } from './fakes.js';

function setup(listing = [], o = {}) {
  const clock = new Clock();
  const { FakeWebSocket, sockets } = fakeWebSocket();
  const { fetch, requests } = fakeFetch(o.fetch || (() => ({ status: 200, body: { jobs: listing, next_before: null } })));
  const seen = [];
  const states = [];
  const feed = new JobsFeed({
    heartbeatMs: 1000,
    pollMs: 500,
    limit: o.limit,
    query: o.query,
    onJobs: (m) => seen.push([...m.values()].map((j) => `${j.id}:${j.status}`).sort()),
    onState: (s) => states.push(`${s.state}/${s.transport}`),
    env: {
      WebSocket: FakeWebSocket,
      fetch,
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      clearTimeout: (id) => clock.clearTimeout(id),
      random: () => 1,
      location: { protocol: 'http:', host: 'h:1' },
    },
  });
  return { feed, clock, sockets, requests, seen, states };
}

test('a snapshot, then changed jobs merged into it', () => {
  const t = setup();
  t.feed.start();
  assert.equal(t.sockets[0].url, 'ws://h:1/api/stream?limit=100');
  t.sockets[0].open();
  t.sockets[0].message({ type: 'snapshot', jobs: [{ id: 1, status: 'succeeded' }, { id: 2, status: 'running' }] });
  t.sockets[0].message({ type: 'jobs', jobs: [{ id: 2, status: 'failed' }, { id: 3, status: 'running' }] });
  t.sockets[0].message([]);
  t.sockets[0].message({ type: 'something-new' });
  assert.deepEqual(t.seen, [['1:succeeded', '2:running'], ['1:succeeded', '2:failed', '3:running']]);
  assert.deepEqual(t.states, ['live/websocket', 'live/websocket']);
});

test('no WebSocket: polls /api/jobs, and tries the WebSocket again later', async () => {
  const t = setup([{ id: 5, status: 'running' }]);
  t.feed.start();
  t.sockets[0].serverClose(1006); // refused before opening
  await flush();
  assert.equal(t.requests[0].url, '/api/jobs?limit=100');
  assert.deepEqual(t.seen[0], ['5:running']);
  assert.ok(t.states.includes('live/polling'));
  await t.clock.advance(2000);
  assert.ok(t.requests.length >= 4, `${t.requests.length} polls`);
  await t.clock.advance(30000);
  assert.equal(t.sockets.length, 2, 'the WebSocket is tried again');
  const n = t.requests.length;
  t.sockets[1].open();
  t.sockets[1].message({ type: 'snapshot', jobs: [] });
  await t.clock.advance(5000);
  assert.equal(t.requests.length, n, 'polling stops once the WebSocket is back');
});

test('a silent WebSocket is dropped after about two heartbeats', async () => {
  const t = setup();
  t.feed.start();
  t.sockets[0].open();
  t.sockets[0].message({ type: 'snapshot', jobs: [] });
  await t.clock.advance(7001);
  assert.equal(t.sockets[0].closed, true);
  assert.ok(t.states.includes('polling/polling'));
});

const ids = (feed) => feed.visible().map((j) => j.id).sort((a, b) => b - a);

/** Jobs id from..to (newest first), status succeeded. */
function range(from, to) {
  const out = [];
  for (let id = from; id >= to; id--) out.push({ id, status: 'succeeded' });
  return out;
}

test('paging back: older pages load down to the oldest job, one request at a time', async () => {
  // The server holds jobs 1..7; pages of 3.
  const all = range(7, 1);
  const t = setup([], {
    limit: 3,
    query: 'status=failed',
    fetch: (url) => {
      const before = Number(new URL(url, 'http://h').searchParams.get('before')) || Infinity;
      const page = all.filter((j) => j.id < before).slice(0, 3);
      return { status: 200, body: { jobs: page, next_before: page.length === 3 ? page[2].id : null } };
    },
  });
  t.feed.start();
  assert.equal(t.sockets[0].url, 'ws://h:1/api/stream?limit=3&status=failed');
  assert.equal(t.feed.more, false, 'nothing to page before the snapshot');
  t.sockets[0].open();
  t.sockets[0].message({ type: 'snapshot', jobs: all.slice(0, 3), next_before: 5 });
  assert.deepEqual([t.feed.more, t.feed.cursor, t.feed.floor], [true, 5, 5]);
  // A change to an old job, not loaded yet, waits for its page.
  t.sockets[0].message({ type: 'jobs', jobs: [{ id: 2, status: 'failed' }] });
  assert.deepEqual(ids(t.feed), [7, 6, 5]);
  const a = t.feed.loadMore();
  assert.equal(t.feed.loadMore(), a, 'one page at a time');
  assert.equal(await a, true);
  assert.equal(t.requests[0].url, '/api/jobs?limit=3&before=5&status=failed');
  assert.deepEqual(ids(t.feed), [7, 6, 5, 4, 3, 2]);
  assert.equal(t.feed.jobs.get(2).status, 'failed', 'the stream\'s state is kept over the page\'s');
  assert.equal(await t.feed.loadMore(), true);
  assert.deepEqual(ids(t.feed), [7, 6, 5, 4, 3, 2, 1]);
  assert.equal(t.feed.more, false);
  assert.equal(await t.feed.loadMore(), false);
  assert.equal(t.requests.length, 2);
  assert.equal(t.feed.floor, 5, 'the first page still ends at 5');
});

test('remove messages drop a job; a new snapshot keeps older pages when it reaches them', async () => {
  const t = setup([], { limit: 2, fetch: () => new Promise(() => {}) }); // polls never answer
  t.feed.start();
  t.sockets[0].open();
  t.sockets[0].message({ type: 'snapshot', jobs: range(9, 8), next_before: 8 });
  t.feed.cursor = 5; // as if pages down to 5 were loaded
  for (const j of range(7, 5)) t.feed.jobs.set(j.id, j);
  t.sockets[0].message({ type: 'remove', id: 6 });
  t.sockets[0].message({ type: 'remove', id: 99 });
  assert.deepEqual(ids(t.feed), [9, 8, 7, 5]);
  // Reconnected: a new first page that reaches the jobs held.
  t.sockets[0].serverClose(1001);
  await t.clock.advance(2000);
  t.sockets[1].open();
  t.sockets[1].message({ type: 'snapshot', jobs: [{ id: 10, status: 'running' }, { id: 9, status: 'failed' }], next_before: 9 });
  assert.deepEqual(ids(t.feed), [10, 9, 8, 7, 5], 'the first page is replaced; older pages stay');
  assert.equal(t.feed.jobs.get(9).status, 'failed');
  assert.deepEqual([t.feed.cursor, t.feed.floor], [5, 9]);
  // A first page that does not reach them (many jobs came meanwhile):
  // the older pages go, paging starts again from it.
  t.sockets[1].message({ type: 'snapshot', jobs: range(40, 39), next_before: 39 });
  assert.deepEqual(ids(t.feed), [40, 39]);
  assert.deepEqual([t.feed.cursor, t.feed.more], [39, true]);
  // A first page that holds every job.
  t.sockets[1].message({ type: 'snapshot', jobs: range(3, 1), next_before: null });
  assert.deepEqual(ids(t.feed), [3, 2, 1]);
  assert.deepEqual([t.feed.cursor, t.feed.floor, t.feed.more], [null, null, false]);
});

test('a new filter starts over: a new stream, and answers for the old one are dropped', async () => {
  let release;
  const t = setup([], {
    fetch: () => new Promise((res) => { release = () => res({ status: 200, body: { jobs: [{ id: 1, status: 'failed' }], next_before: null } }); }),
  });
  t.feed.start();
  t.sockets[0].open();
  t.sockets[0].message({ type: 'snapshot', jobs: range(9, 5), next_before: 5 });
  const page = t.feed.loadMore();
  t.feed.setQuery('q=deploy');
  assert.equal(t.sockets[0].closed, true);
  assert.equal(t.sockets[1].url, 'ws://h:1/api/stream?limit=100&q=deploy');
  assert.deepEqual(ids(t.feed), []);
  release();
  assert.equal(await page, false);
  assert.deepEqual(ids(t.feed), [], 'the old filter\'s page is dropped');
  t.sockets[1].open();
  t.sockets[1].message({ type: 'snapshot', jobs: [{ id: 4, status: 'running', name: 'deploy' }], next_before: null });
  assert.deepEqual(ids(t.feed), [4]);
});

test('polling asks for the filter and keeps older pages', async () => {
  const t = setup([], {
    limit: 2,
    query: 'host=ci',
    fetch: (url) => ({ status: 200, body: url.includes('before=') ? { jobs: range(3, 2), next_before: 2 } : { jobs: range(5, 4), next_before: 4 } }),
  });
  t.feed.start();
  t.sockets[0].serverClose(1006);
  await flush();
  assert.equal(t.requests[0].url, '/api/jobs?limit=2&host=ci');
  assert.deepEqual(ids(t.feed), [5, 4]);
  await t.feed.loadMore();
  assert.deepEqual(ids(t.feed), [5, 4, 3, 2]);
  await t.clock.advance(600);
  assert.ok(t.requests.length >= 3);
  assert.deepEqual(ids(t.feed), [5, 4, 3, 2], 'the next poll keeps the page loaded');
});
