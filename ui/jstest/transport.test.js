// Unit tests of ui/static/transport.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobStream, backoffDelay, REFUSALS_TO_FALL_BACK } from '../static/transport.js';
import { Clock, fakeWebSocket, fakeEventSource, fakeFetch, flush, hang, lines } from './fakes.js';

/** A stream wired to fakes; `up` says how GET /api/jobs/1 answers. */
function setup({ up = 'up', heartbeatMs = 1000, transport, random = () => 1, pollAnswer } = {}) {
  const clock = new Clock();
  const { FakeWebSocket, sockets } = fakeWebSocket();
  const { FakeEventSource, sources } = fakeEventSource();
  const state = { up };
  const { fetch, requests } = fakeFetch((url, init) => {
    if (url.includes('/events')) return pollAnswer ? pollAnswer(url, init) : hang(init);
    if (state.up === 'up') return { status: 200, body: { id: 1 } };
    if (state.up === 'gone') return { status: 404, body: { error: 'no such job' } };
    if (state.up === 'unauthorized') return { status: 401, body: { error: 'this server needs a token' } };
    if (state.up === 'hang') return hang(init);
    throw new Error('connection refused');
  });
  const got = [];
  const states = [];
  const notices = [];
  let resets = 0;
  let unauthorized = 0;
  const s = new JobStream({
    ref: '1',
    heartbeatMs,
    transport,
    onEvents: (evs, tr) => got.push(...evs.map((e) => ({ seq: e.seq, tr }))),
    onState: (st) => states.push(st),
    onNotice: (n) => notices.push(n),
    onReset: () => { resets++; },
    onUnauthorized: () => { unauthorized++; },
    env: {
      WebSocket: FakeWebSocket,
      EventSource: FakeEventSource,
      fetch,
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      clearTimeout: (id) => clock.clearTimeout(id),
      random,
      location: { protocol: 'http:', host: '127.0.0.1:7070' },
    },
  });
  return { s, clock, sockets, sources, requests, got, states, notices, state, resets: () => resets, unauthorized: () => unauthorized };
}

const seqs = (got) => got.map((g) => g.seq);
const last = (arr) => arr[arr.length - 1];

test('backoff grows exponentially to the cap, with jitter in [d/2, d]', () => {
  assert.equal(backoffDelay(0, 500, 15000, () => 0), 250);
  assert.equal(backoffDelay(0, 500, 15000, () => 1), 500);
  assert.equal(backoffDelay(3, 500, 15000, () => 1), 4000);
  assert.equal(backoffDelay(10, 500, 15000, () => 1), 15000);
  assert.equal(backoffDelay(10, 500, 15000, () => 0), 7500);
  for (let n = 0; n < 40; n++) {
    const d = backoffDelay(n, 500, 15000, Math.random);
    assert.ok(d >= 250 && d <= 15000, `attempt ${n}: ${d}`);
  }
});

test('websocket: events in order, duplicates and notices skipped, resume with after=last seq', async () => {
  const t = setup();
  t.s.start();
  assert.equal(t.sockets.length, 1);
  assert.match(t.sockets[0].url, /^ws:\/\/127\.0\.0\.1:7070\/api\/jobs\/1\/stream\?after=0$/);
  t.sockets[0].open();
  assert.equal(last(t.states).state, 'live');
  assert.equal(last(t.states).transport, 'websocket');
  t.sockets[0].message(lines(1, 3));
  t.sockets[0].message([...lines(2, 5), { type: 'error', error: 'unsupported message' }]);
  t.sockets[0].message([]); // heartbeat
  assert.deepEqual(seqs(t.got), [1, 2, 3, 4, 5]);
  assert.deepEqual(t.notices, [{ type: 'error', error: 'unsupported message' }]);

  t.sockets[0].serverClose(1006);
  assert.equal(last(t.states).state, 'reconnecting');
  await t.clock.advance(last(t.states).delay);
  assert.equal(t.sockets.length, 2);
  assert.match(t.sockets[1].url, /after=5$/);
  t.sockets[1].open();
  t.sockets[1].message(lines(4, 7)); // the server repeats some: skipped
  assert.deepEqual(seqs(t.got), [1, 2, 3, 4, 5, 6, 7]);
});

test('websocket: 1000 ends, 4404 is gone, 4400 is an error; none reconnects', async () => {
  for (const [code, want] of [[1000, 'ended'], [4404, 'gone'], [4400, 'error']]) {
    const t = setup();
    t.s.start();
    t.sockets[0].open();
    t.sockets[0].message([...lines(1, 2), { seq: 3, type: 'exit', status: 'succeeded', exit_code: 0 }]);
    t.sockets[0].serverClose(code, 'why');
    assert.equal(last(t.states).state, want, `close ${code}`);
    await t.clock.advance(60000);
    assert.equal(t.sockets.length, 1, `close ${code} must not reconnect`);
  }
});

test('websocket: 4409 starts over from 0 and tells the page; 4429 resumes at once', async () => {
  const t = setup();
  t.s.start();
  t.sockets[0].open();
  t.sockets[0].message(lines(1, 4));
  t.sockets[0].serverClose(4429, 'too slow');
  assert.equal(t.sockets.length, 2, '4429 reconnects without waiting');
  assert.match(t.sockets[1].url, /after=4$/);
  t.sockets[1].open();
  t.sockets[1].serverClose(4409, 'after beyond last seq');
  assert.equal(t.resets(), 1);
  assert.equal(t.sockets.length, 3);
  assert.match(t.sockets[2].url, /after=0$/);
  t.sockets[2].open();
  t.sockets[2].message(lines(1, 2));
  assert.deepEqual(seqs(t.got), [1, 2, 3, 4, 1, 2]);
});

test('a silent connection is dropped after about two heartbeats and resumed', async () => {
  const t = setup({ heartbeatMs: 1000 });
  t.s.start();
  t.sockets[0].open();
  t.sockets[0].message(lines(1, 2));
  // heartbeats keep it alive
  for (let i = 0; i < 5; i++) {
    await t.clock.advance(1000);
    t.sockets[0].message([]);
  }
  assert.equal(last(t.states).state, 'live');
  assert.ok(t.s.deadMs >= 2000 && t.s.deadMs <= 3000, `deadMs ${t.s.deadMs}`);
  await t.clock.advance(t.s.deadMs);
  assert.equal(t.sockets[0].closed, true, 'the dead socket is closed');
  assert.equal(last(t.states).state, 'reconnecting');
  assert.match(last(t.states).reason, /no events or heartbeats/);
  await t.clock.advance(last(t.states).delay);
  assert.equal(t.sockets.length, 2);
  assert.match(t.sockets[1].url, /after=2$/);
  // A late close of the dead socket changes nothing.
  t.sockets[0].serverClose(1006);
  t.sockets[1].open();
  assert.equal(last(t.states).state, 'live');
});

test('an upgrade that never answers (paused server) is abandoned; the server down keeps the transport', async () => {
  const t = setup({ up: 'hang' });
  t.s.start();
  await t.clock.advance(t.s.deadMs); // the attempt times out; the probe hangs too
  await t.clock.advance(10000);
  assert.equal(last(t.states).state, 'reconnecting');
  for (let i = 0; i < 4; i++) {
    await t.clock.advance(t.clock.pending() ?? 0);
  }
  assert.ok(t.sockets.length >= 2);
  assert.equal(t.s.transport, 'websocket', 'a server that does not answer is no reason to fall back');
  // The server comes back: the next attempt opens.
  t.state.up = 'up';
  const n = t.sockets.length;
  while (t.sockets.length === n) await t.clock.advance(t.clock.pending());
  const ws = last(t.sockets);
  ws.open();
  ws.message(lines(1, 1));
  assert.equal(last(t.states).state, 'live');
  assert.deepEqual(seqs(t.got), [1]);
});

test('refused upgrades with a reachable server fall back to SSE, then to long polling', async () => {
  let polls = 0;
  const t = setup({
    pollAnswer: (url, init) => {
      if (!url.includes('wait=')) return hang(init);
      polls++;
      const after = Number(new URL(url, 'http://x').searchParams.get('after'));
      if (polls === 1) return { status: 200, body: lines(after + 1, after + 2) };
      if (polls === 2) return { status: 200, body: [...lines(after + 1, after + 1), { seq: after + 2, type: 'exit', status: 'succeeded', exit_code: 0 }] };
      return hang(init);
    },
  });
  t.s.start();
  for (let i = 0; i < REFUSALS_TO_FALL_BACK; i++) {
    last(t.sockets).serverClose(1006); // the proxy answers the upgrade with 502
    await flush(); // the probe: GET /api/jobs/1 answers 200
    if (t.s.transport === 'websocket') await t.clock.advance(t.clock.pending() ?? 0);
  }
  assert.equal(t.s.transport, 'sse');
  assert.equal(t.sources.length, 1);
  assert.match(t.sources[0].url, /^\/api\/jobs\/1\/events\?after=0$/);
  t.sources[0].open();
  t.sources[0].event(lines(1, 1)[0]);
  t.sources[0].event(lines(2, 2)[0]);
  await t.clock.advance(0);
  assert.deepEqual(seqs(t.got), [1, 2]);
  assert.equal(t.got[0].tr, 'sse');
  t.sources[0].named('heartbeat');
  // The SSE connection drops after delivering: resume, not a refusal.
  t.sources[0].error();
  assert.equal(t.sources[0].closed, true);
  await t.clock.advance(last(t.states).delay);
  assert.equal(t.sources.length, 2);
  assert.match(t.sources[1].url, /after=2$/);
  // Now SSE is refused too, twice.
  for (let i = 0; i < REFUSALS_TO_FALL_BACK; i++) {
    last(t.sources).error();
    await flush();
    if (t.s.transport === 'sse') await t.clock.advance(t.clock.pending() ?? 0);
  }
  assert.equal(t.s.transport, 'polling');
  await t.clock.advance(0);
  const pollURLs = t.requests.map((r) => r.url).filter((u) => u.includes('wait='));
  assert.match(pollURLs[0], /\/api\/jobs\/1\/events\?after=2&wait=1s$/);
  assert.match(pollURLs[1], /after=4&wait=1s$/);
  assert.deepEqual(seqs(t.got), [1, 2, 3, 4, 5, 6]);
  assert.equal(last(t.states).state, 'ended');
  assert.equal(last(t.states).transport, 'polling');
});

test('long polling: 204 ends the stream, 404 is gone', async () => {
  for (const [status, want] of [[204, 'ended'], [404, 'gone']]) {
    const t = setup({ transport: 'polling', pollAnswer: () => ({ status, body: null }) });
    t.s.start();
    await t.clock.advance(0);
    assert.equal(last(t.states).state, want);
  }
});

test('the job being gone stops the retries', async () => {
  const t = setup({ up: 'gone' });
  t.s.start();
  t.sockets[0].serverClose(1006);
  await flush();
  assert.equal(last(t.states).state, 'gone');
  await t.clock.advance(60000);
  assert.equal(t.sockets.length, 1);
});

test('a server that no longer takes our credential (401) stops the retries and says so', async () => {
  const t = setup({ up: 'unauthorized' });
  t.s.start();
  t.sockets[0].serverClose(1006);
  await flush();
  assert.equal(last(t.states).state, 'error');
  assert.equal(t.unauthorized(), 1);
  await t.clock.advance(60000);
  assert.equal(t.sockets.length, 1);
});

test('collapse=1 is asked for on every transport', async () => {
  const t = setup();
  t.s.collapse = true;
  t.s.start();
  assert.match(t.sockets[0].url, /after=0&collapse=1$/);
});

test('send goes over an open WebSocket only', () => {
  const t = setup();
  t.s.start();
  assert.equal(t.s.send({ type: 'cancel' }), false);
  t.sockets[0].open();
  assert.equal(t.s.send({ type: 'cancel' }), true);
  assert.deepEqual(t.sockets[0].sent, ['{"type":"cancel"}']);
});

test('after the exit event, a close that would resume (1001, 1006, 4429) ends the stream instead', async () => {
  for (const code of [1001, 1006, 4429]) {
    const t = setup();
    t.s.start();
    t.sockets[0].open();
    t.sockets[0].message([...lines(1, 2), { seq: 3, type: 'exit', status: 'canceled', exit_code: 143 }]);
    t.sockets[0].serverClose(code, 'server shutting down');
    assert.equal(last(t.states).state, 'ended', `close ${code}`);
    await t.clock.advance(60000);
    assert.equal(t.sockets.length, 1, `close ${code} after the exit must not reconnect`);
  }
});
