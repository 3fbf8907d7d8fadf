// Unit tests of ui/static/logwindow.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogWindow } from '../static/logwindow.js';
import { lines } from './fakes.js';

/**
 * Range reads over a stored log, as the server answers them; `cap` bounds
 * an answer below limit (the server's byte bound).
 */
function server(stored, { cap = Infinity } = {}) {
  const calls = [];
  const fetchEvents = async (p) => {
    calls.push(p);
    const lim = Math.min(p.limit ?? p.tail ?? 1000, cap);
    if (p.tail !== undefined) return stored.slice(Math.max(0, stored.length - lim));
    if (p.after !== undefined) return stored.filter((e) => e.seq > p.after).slice(0, lim);
    if (p.before !== undefined) {
      const older = stored.filter((e) => e.seq < p.before);
      return older.slice(Math.max(0, older.length - lim));
    }
    if (p.line !== undefined) {
      const i = stored.findIndex((e) => e.type === 'line' && e.line >= p.line);
      return i < 0 ? [] : stored.slice(i, i + lim);
    }
    throw new Error(`bad params ${JSON.stringify(p)}`);
  };
  return { fetchEvents, calls };
}

const rowLines = (w) => Array.from({ length: w.count }, (_, v) => w.row(v).line);

function contiguousLines(w) {
  const ls = rowLines(w);
  for (let i = 1; i < ls.length; i++) assert.equal(ls[i], ls[i - 1] + 1, `row ${i}: line ${ls[i]} after ${ls[i - 1]}`);
  return ls;
}

test('opens at the tail with the rows before it estimated from line numbers', async () => {
  const stored = lines(1, 10000);
  const w = new LogWindow({ ...server(stored), pageSize: 1000 });
  w.lastJobSeq = 10000;
  await w.openTail();
  assert.equal(w.count, 1000);
  assert.equal(w.attached, true);
  assert.equal(w.atStart, false);
  assert.equal(w.before, 9000);
  assert.equal(w.total, 10000);
  assert.equal(w.row(0).line, 9001);
  assert.equal(w.after, 0);
});

test('loading earlier pages keeps rows contiguous and reaches the start exactly', async () => {
  const stored = lines(1, 3500);
  const w = new LogWindow({ ...server(stored), pageSize: 1000, maxEvents: 100000 });
  await w.openTail();
  let guard = 0;
  while (!w.atStart && guard++ < 10) {
    await w.loadBefore();
    // a row's virtual index is its line - 1 for one stream without hidden rows
    assert.equal(w.before + w.indexOfLine(w.row(0).line), w.row(0).line - 1);
  }
  assert.equal(w.atStart, true);
  assert.equal(w.before, 0);
  assert.deepEqual(contiguousLines(w), Array.from({ length: 3500 }, (_, i) => i + 1));
  assert.equal(await w.loadBefore(), 0);
});

test('answers shorter than asked (byte bound) are not taken for the ends', async () => {
  const stored = lines(1, 5000);
  const { fetchEvents } = server(stored, { cap: 300 });
  const w = new LogWindow({ fetchEvents, pageSize: 1000 });
  w.lastJobSeq = 5000;
  await w.openAtLine(2000);
  assert.equal(w.attached, false);
  assert.equal(w.atStart, false);
  await w.loadBefore();
  assert.equal(w.atStart, false);
  while (!w.attached) await w.loadAfter();
  assert.equal(w.row(w.count - 1).line, 5000);
});

test('trim bounds the events held and keeps the virtual rows consistent', async () => {
  const stored = lines(1, 20000);
  const w = new LogWindow({ ...server(stored), pageSize: 1000, maxEvents: 4000 });
  await w.openTail();
  for (let i = 0; i < 12; i++) {
    await w.loadBefore();
    w.trim(0, 50); // the viewport at the window's top
    assert.ok(w.events <= 5000, `holds ${w.events} events`);
    const v = 10;
    assert.equal(w.before + v, w.row(v).line - 1, 'virtual index = line - 1');
  }
  assert.equal(w.attached, false, 'the tail pages were dropped');
  contiguousLines(w);
});

test('a deep link opens around the line; live events wait in the buffer until the window reaches them', async () => {
  const stored = lines(1, 5000);
  const srv = server(stored);
  const w = new LogWindow({ ...srv, pageSize: 1000 });
  w.lastJobSeq = 5000;
  await w.openAtLine(1234);
  const v = w.indexOfLine(1234);
  assert.ok(v >= 0);
  assert.equal(w.before + v, 1233);
  assert.equal(w.attached, false);
  // The job goes on: 100 lines arrive live while the window is far above.
  const more = lines(5001, 5100);
  stored.push(...more);
  assert.equal(w.pushLive(more), 0);
  assert.equal(w.lastLine, 5100);
  assert.equal(w.total, 5100);
  let guard = 0;
  while (!w.attached && guard++ < 10) await w.loadAfter();
  assert.equal(w.attached, true);
  const ls = contiguousLines(w);
  assert.equal(ls[ls.length - 1], 5100);
  assert.equal(w.pushLive(lines(5101, 5101)), 1);
  assert.equal(w.row(w.count - 1).line, 5101);
});

test('a buffer that overflowed makes loadAfter fetch the hole before attaching', async () => {
  const stored = lines(1, 2000);
  const w = new LogWindow({ ...server(stored), pageSize: 500, maxBuffer: 100 });
  w.lastJobSeq = 2000;
  await w.openStart();
  const live = lines(2001, 2300);
  stored.push(...live);
  w.pushLive(live); // keeps only the newest 50
  while (!w.attached) await w.loadAfter();
  const ls = contiguousLines(w);
  assert.equal(ls[0], 1);
  assert.equal(ls[ls.length - 1], 2300);
});

test('two interleaved streams: density about 2 rows per line number', async () => {
  const stored = [];
  for (let l = 1, s = 1; l <= 2000; l++) {
    stored.push({ seq: s++, time: 't', type: 'line', stream: 'stdout', line: l, text: `o${l}`, eol: '\n' });
    stored.push({ seq: s++, time: 't', type: 'line', stream: 'stderr', line: l, text: `e${l}`, eol: '\n' });
  }
  const w = new LogWindow({ ...server(stored), pageSize: 1000 });
  await w.openTail();
  assert.equal(w.count, 1000);
  assert.ok(Math.abs(w.density() - 2) < 0.01, `density ${w.density()}`);
  assert.equal(w.before, 3000);
  assert.equal(w.row(w.indexOfLine(1800)).stream, 'stdout');
  assert.equal(w.row(w.indexOfLine(1800, 'stderr')).stream, 'stderr');
});

test('progress events are collected once, in seq order, for the chart', async () => {
  const evs = lines(1, 3).concat([{ seq: 4, time: 't4', type: 'progress', percent: 40, message: 'four' }], lines(5, 6));
  const w = new LogWindow({ fetchEvents: async () => evs, pageSize: 1000 });
  await w.openTail();
  w.pushLive([{ seq: 4, time: 't4', type: 'progress', percent: 40 }, { seq: 7, time: 't7', type: 'progress', percent: 70 }]);
  assert.deepEqual(w.progress.map((p) => [p.seq, p.percent]), [[4, 40], [7, 70]]);
  assert.equal(w.progress[0].message, 'four');
});

test('exit event and directive toggling', async () => {
  const evs = [
    { seq: 1, time: 't', type: 'line', stream: 'stdout', line: 1, text: 'a', eol: '\n' },
    { seq: 2, time: 't', type: 'line', stream: 'stdout', line: 2, text: '::progress 50', eol: '\n', directive: true },
    { seq: 3, time: 't', type: 'line', stream: 'stdout', line: 3, text: 'b', eol: '\n' },
    { seq: 4, time: 't', type: 'exit', status: 'succeeded', exit_code: 0 },
  ];
  const w = new LogWindow({ fetchEvents: async () => evs });
  await w.openTail();
  assert.deepEqual(rowLines(w), [1, 3]);
  w.setShowDirectives(true);
  assert.deepEqual(rowLines(w), [1, 2, 3]);
  assert.equal(w.exit.status, 'succeeded');
});

test('groups collapse by their header seq, across rebuilds', async () => {
  const texts = ['::group::build', 'compiling', '::endgroup::', 'done'];
  const evs = texts.map((t, i) => ({ seq: i + 1, time: 't', type: 'line', stream: 'stdout', line: i + 1, text: t, eol: '\n' }));
  const w = new LogWindow({ fetchEvents: async () => evs });
  await w.openTail();
  assert.deepEqual(rowLines(w), [1, 4], 'GitHub groups start collapsed');
  w.toggleGroup(0);
  assert.deepEqual(rowLines(w), [1, 2, 4]);
  assert.equal(w.toggled.has(1), true);
  await w.openTail(); // a new model: the toggle still applies
  assert.deepEqual(rowLines(w), [1, 2, 4]);
});

test('anchors find rows again after a rebuild', async () => {
  const stored = lines(1, 3000);
  const w = new LogWindow({ ...server(stored), pageSize: 1000, maxEvents: 1500 });
  await w.openTail();
  await w.loadBefore();
  const a = w.anchorOf(1500);
  const line = w.row(1500).line;
  w.trim(1400, 1600);
  assert.equal(w.row(w.indexOfAnchor(a)).line, line);
});

test('a stale answer (a reopen happened meanwhile) is ignored', async () => {
  const stored = lines(1, 5000);
  let release;
  const gate = new Promise((r) => { release = r; });
  const srv = server(stored);
  const w = new LogWindow({
    fetchEvents: async (p) => {
      if (p.before !== undefined) await gate;
      return srv.fetchEvents(p);
    },
    pageSize: 1000,
  });
  await w.openTail();
  const pending = w.loadBefore();
  await w.openStart();
  release();
  assert.equal(await pending, 0);
  assert.equal(w.row(0).line, 1);
  contiguousLines(w);
});

test('showLine expands the groups that hide a line', async () => {
  const texts = ['::group::build', 'compiling', 'linking', '::endgroup::', 'done'];
  const evs = texts.map((t, i) => ({ seq: i + 1, time: 't', type: 'line', stream: 'stdout', line: i + 1, text: t, eol: '\n' }));
  const w = new LogWindow({ fetchEvents: async () => evs });
  await w.openTail();
  assert.equal(w.indexOfLine(3), -1, 'hidden in a collapsed group');
  const v = w.showLine(3);
  assert.equal(w.row(v).text, 'linking');
  assert.deepEqual(rowLines(w), [1, 2, 3, 5]);
  assert.equal(w.showLine(4), -1, 'a marker stays hidden');
  assert.equal(w.showLine(99), -1);
});
