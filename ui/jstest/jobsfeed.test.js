// Unit tests of ui/static/jobsfeed.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobsFeed } from '../static/jobsfeed.js';
import { Clock, fakeWebSocket, fakeFetch, flush } from './fakes.js';

function setup(listing = []) {
  const clock = new Clock();
  const { FakeWebSocket, sockets } = fakeWebSocket();
  const { fetch, requests } = fakeFetch(() => ({ status: 200, body: { jobs: listing } }));
  const seen = [];
  const states = [];
  const feed = new JobsFeed({
    heartbeatMs: 1000,
    pollMs: 500,
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
  assert.equal(t.sockets[0].url, 'ws://h:1/api/stream');
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
  assert.equal(t.requests[0].url, '/api/jobs?limit=200');
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
