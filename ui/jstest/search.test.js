// Unit tests of ui/static/search.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { END, LogSearch, searchStatus } from '../static/search.js';

/**
 * A stand-in for GET /api/jobs/{ref}/search over lines (one event each,
 * seq = line number), reading at most `budget` lines per request, as the
 * server does with its time budget. Requests wait for `hold` when set.
 */
function server(texts, budget = 1000) {
  const last = texts.length;
  const s = {
    requests: [],
    hold: null,
    async fetchSearch(params, signal) {
      s.requests.push({ ...params, signal });
      if (s.hold) await s.hold;
      if (signal.aborted) throw new DOMException('aborted', 'AbortError');
      if (params.q === '(') throw new Error('q="(": not a regular expression (RE2 syntax)');
      const q = params.q.toLowerCase();
      const limit = Number(params.limit);
      const hit = (seq) => texts[seq - 1].toLowerCase().includes(q);
      const match = (seq) => ({ seq, line: seq, stream: 'stdout', text: texts[seq - 1], ranges: [] });
      const found = [];
      let count = 0;
      if ('before' in params) {
        const before = Math.min(Number(params.before), last + 1);
        let seq = before - 1;
        let scanned = Math.max(1, before - budget);
        for (; seq >= scanned; seq--) {
          if (!hit(seq)) continue;
          count++;
          if (limit) found.unshift(match(seq));
          if (limit && found.length === limit) { scanned = seq; break; }
        }
        return { matches: found, count, scanned_to: scanned, next_before: scanned > 1 ? scanned : null,
          next_after: null, total: null, last_seq: last };
      }
      const after = Number(params.after);
      let scanned = Math.min(last, after + budget);
      for (let seq = after + 1; seq <= scanned; seq++) {
        if (!hit(seq)) continue;
        count++;
        if (limit) found.push(match(seq));
        if (limit && found.length === limit) { scanned = seq; break; }
      }
      const whole = after === 0 && scanned === last;
      return { matches: found, count, scanned_to: scanned, next_after: scanned < last ? scanned : null,
        next_before: null, total: whole ? count : null, last_seq: last };
    },
  };
  return s;
}

/** 10,000 lines, "needle" at lines 5, 5000 and 9990. */
function haystack() {
  const texts = Array.from({ length: 10000 }, (_, i) => `line ${i + 1}`);
  for (const n of [5, 5000, 9990]) texts[n - 1] = `a NEEDLE at ${n}`;
  return texts;
}

/** Waits until the search has settled (the fake answers at once). */
const settle = () => new Promise((r) => setTimeout(r, 0));

test('counts the whole log request by request, "N+" until the end', async () => {
  const srv = server(haystack());
  const seen = [];
  const s = new LogSearch({ fetchSearch: srv.fetchSearch, onChange: (x) => seen.push(searchStatus(x, null)) });
  s.start('needle');
  for (let i = 0; i < 20 && s.total === null; i++) await settle();
  assert.equal(s.total, 3);
  assert.equal(searchStatus(s, null), '3 matches');
  assert.equal(srv.requests.length, 10, 'one request per 1,000 lines');
  assert.deepEqual(srv.requests.map((r) => r.after), [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
  assert.ok(srv.requests.every((r) => r.limit === 0), 'counting asks for no matches');
  assert.ok(seen.includes('1+ matches (10%)'), seen.join(' | '));
  assert.ok(seen.includes('2+ matches (50%)'), seen.join(' | '));
});

test('find goes on through the log and wraps around its end', async () => {
  const srv = server(haystack());
  const s = new LogSearch({ fetchSearch: srv.fetchSearch });
  s.start('needle');
  // From the tail (the page opens there), forward: nothing after, then
  // from the top.
  assert.equal((await s.find(1, 10000)).seq, 5);
  assert.equal((await s.find(1, 5)).seq, 5000);
  const progress = [];
  s.onChange = (x) => { if (x.finding !== null) progress.push(x.finding); };
  assert.equal((await s.find(1, 5000)).seq, 9990);
  assert.deepEqual([...new Set(progress)], [0, 0.6, 0.7, 0.8, 0.9], 'progress while it searches');
  assert.equal((await s.find(1, 9990)).seq, 5, 'wraps');
  assert.equal((await s.find(-1, 5)).seq, 9990, 'wraps backward');
  assert.equal((await s.find(-1, 9990)).seq, 5000);
  assert.equal((await s.find(-1, END)).seq, 9990, 'backward from the end');
  const before = srv.requests.filter((r) => 'before' in r);
  assert.ok(before.every((r) => r.limit === 1));
});

test('one match is found from itself; none is null', async () => {
  const texts = haystack();
  texts[4999] = texts[9989] = 'hay';
  const srv = server(texts);
  const s = new LogSearch({ fetchSearch: srv.fetchSearch });
  s.start('needle');
  assert.equal((await s.find(1, 5)).seq, 5);
  assert.equal((await s.find(-1, 5)).seq, 5);
  s.start('nothing here');
  const n0 = srv.requests.length;
  assert.equal(await s.find(1, 7000), null);
  const scanned = srv.requests.slice(n0).filter((r) => r.limit === 1);
  assert.ok(scanned.length <= 12, `${scanned.length} requests: the log once, not again and again`);
  for (let i = 0; i < 20 && s.total === null; i++) await settle();
  assert.equal(searchStatus(s, null), 'no matches');
  assert.equal(await s.find(1, 0), null, 'known to have none: no request');
});

test('a new search aborts the running count and find', async () => {
  const srv = server(haystack());
  let release;
  srv.hold = new Promise((r) => { release = r; });
  const s = new LogSearch({ fetchSearch: srv.fetchSearch });
  s.start('need');
  const pending = s.find(1, 0);
  await settle();
  const old = srv.requests.slice();
  assert.equal(old.length, 2, 'a count and a find');
  s.start('needle');
  assert.ok(old.every((r) => r.signal.aborted), 'both aborted');
  release();
  srv.hold = null;
  assert.equal(await pending, undefined, 'the old find resolves to undefined');
  assert.equal((await s.find(1, 0)).seq, 5);
  // A find aborts the find before it, not the count.
  srv.hold = new Promise((r) => { release = r; });
  const first = s.find(1, 5);
  await settle();
  const second = s.find(1, 5000);
  release();
  srv.hold = null;
  assert.equal(await first, undefined);
  assert.equal((await second).seq, 9990);
  for (let i = 0; i < 20 && s.total === null; i++) await settle();
  assert.equal(s.total, 3, 'the count went on');
});

test('options become parameters; errors show', async () => {
  const srv = server(haystack());
  const s = new LogSearch({ fetchSearch: srv.fetchSearch });
  s.start('x', { regex: true, case: true, directives: false });
  await settle();
  assert.equal(srv.requests[0].regex, '1');
  assert.equal(srv.requests[0].case, '1');
  assert.equal('directives' in srv.requests[0], false);
  s.start('(', { regex: true });
  for (let i = 0; i < 5; i++) await settle();
  assert.equal(searchStatus(s, null), 'search failed: q="(": not a regular expression (RE2 syntax)');
  s.start('');
  assert.equal(searchStatus(s, null), '');
});

test('searchStatus', () => {
  const s = { query: 'x', error: '', total: null, count: 1000, counted: 0.456, finding: null, none: false };
  assert.equal(searchStatus(s, { line: 1234 }), 'line 1,234 · 1,000+ matches (45%)');
  assert.equal(searchStatus({ ...s, finding: 0.5 }, { line: 1 }), 'searching… 50% · 1,000+ matches (45%)');
  assert.equal(searchStatus({ ...s, total: 1, count: 1 }, { line: 7 }), 'line 7 · 1 match');
  assert.equal(searchStatus({ ...s, total: 12345 }, null), '12,345 matches');
  assert.equal(searchStatus({ ...s, count: 0, counted: 0.2 }, null), 'counting… 20%');
});
