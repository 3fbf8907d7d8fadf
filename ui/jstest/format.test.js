// Unit tests of ui/static/format.js and chart.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandLine, compareJobs, elapsed, endNotice, formatDuration, formatEta, formatPercent, isLive, jobTitle, progressOf, statusIcon } from '../static/format.js';
import { chartPoints, mergeProgress } from '../static/chart.js';

test('durations', () => {
  for (const [s, want] of [[0, '0s'], [42.9, '42s'], [60, '1m00s'], [250, '4m10s'], [3725, '1h02m'], [90000, '1d1h'], [-1, ''], [NaN, '']]) {
    assert.equal(formatDuration(s), want, `${s}`);
  }
});

test('percent and ETA', () => {
  assert.equal(formatPercent(45), '45%');
  assert.equal(formatPercent(45.5), '45%');
  assert.equal(formatPercent(4.25), '4.3%');
  assert.equal(formatPercent(100), '100%');
  assert.equal(formatPercent(null), '');
  assert.equal(formatEta(249.2), 'ETA 4m10s');
  assert.equal(formatEta(null), '');
});

const T0 = Date.parse('2026-11-25T21:00:00Z');

test('elapsed ticks while running and stops at finished_at', () => {
  const run = { status: 'running', started_at: '2026-11-25T21:00:00Z' };
  assert.equal(elapsed(run, T0 + 5000), 5);
  const done = { status: 'failed', started_at: '2026-11-25T21:00:00Z', finished_at: '2026-11-25T21:01:00Z' };
  assert.equal(elapsed(done, T0 + 999999), 60);
  assert.ok(Number.isNaN(elapsed({ status: 'running' }, T0)));
});

test('progress: reported percent with a counting-down ETA', () => {
  const j = { status: 'running', started_at: '2026-11-25T21:00:00Z', progress: { percent: 40, message: 'step 4', time: '2026-11-25T21:00:10Z', eta_seconds: 15 } };
  const p = progressOf(j, T0 + 15000);
  assert.deepEqual(p, { percent: 40, message: 'step 4', eta: 10, estimated: false, note: '' });
  assert.equal(progressOf({ ...j, status: 'succeeded' }, T0).percent, 100);
  assert.equal(progressOf({ ...j, status: 'failed' }, T0).eta, null);
  assert.equal(progressOf({ ...j, progress: { percent: 150 } }, T0).percent, 100);
});

test('progress: time-based from expected_seconds, indeterminate without anything', () => {
  const j = { status: 'running', started_at: '2026-11-25T21:00:00Z', expected_seconds: 200 };
  const p = progressOf(j, T0 + 50000);
  assert.equal(p.percent, 25);
  assert.equal(p.eta, 150);
  assert.equal(p.estimated, true);
  assert.equal(p.note, 'usually takes 3m20s');
  assert.equal(progressOf(j, T0 + 500000).percent, 99, 'never 100 before the end');
  assert.equal(progressOf({ status: 'running' }, T0).percent, null);
  assert.equal(progressOf({ status: 'succeeded' }, T0).percent, 100);
});

test('dashboard order: running jobs of the first page first, the rest by id', () => {
  const jobs = [{ id: 1, status: 'succeeded' }, { id: 2, status: 'running' }, { id: 3, status: 'failed' }, { id: 4, status: 'running' }, { id: 5, status: 'succeeded' }];
  assert.deepEqual(jobs.slice().sort(compareJobs).map((j) => j.id), [4, 2, 5, 3, 1]);
  assert.deepEqual(jobs.slice().sort((a, b) => compareJobs(a, b, null)).map((j) => j.id), [4, 2, 5, 3, 1]);
  // The first page ends at 3: job 2, loaded by scrolling, keeps its place.
  assert.deepEqual(jobs.slice().sort((a, b) => compareJobs(a, b, 3)).map((j) => j.id), [4, 5, 3, 2, 1]);
});

test('command lines are quoted for a shell', () => {
  assert.equal(commandLine(['sh', '-c', "echo 'hi' there"]), `sh -c 'echo '\\''hi'\\'' there'`);
  assert.equal(commandLine(['make', '-j4', 'all']), 'make -j4 all');
  assert.equal(commandLine(null), '');
});

test('chart points: a step line over the job\'s time span', () => {
  const pts = [{ time: '2026-11-25T21:00:00Z', percent: 0 }, { time: '2026-11-25T21:00:30Z', percent: 50 }, { time: 'bad', percent: 70 }];
  assert.equal(chartPoints(pts, T0, T0 + 60000), '0,60 150,60 150,30 300,30');
  assert.equal(chartPoints([], T0, T0 + 1), '');
  assert.equal(chartPoints([{ time: '2026-11-25T22:00:00Z', percent: 200 }], T0, T0 + 1000), '300,0 300,0');
});

test('chart data: the server\'s history, then the page\'s points after it', () => {
  const history = { points: [{ seq: 2, percent: 0 }, { seq: 900, percent: 50 }], last_seq: 1000 };
  const local = [{ seq: 990, percent: 49 }, { seq: 1000, percent: 50 }, { seq: 1005, percent: 60 }, { seq: 1010, percent: 70 }];
  assert.deepEqual(mergeProgress(history, local).map((p) => p.seq), [2, 900, 1005, 1010]);
  assert.deepEqual(mergeProgress(history, []).map((p) => p.seq), [2, 900]);
  assert.deepEqual(mergeProgress(null, local), local, 'no history: the loaded pages');
});

test('an unreachable agent job is still live: it ticks, sorts first and keeps its ETA', () => {
  assert.equal(isLive('running'), true);
  assert.equal(isLive('unreachable'), true);
  for (const s of ['succeeded', 'failed', 'canceled', 'lost']) assert.equal(isLive(s), false);
  const now = Date.parse('2026-11-25T21:01:00Z');
  const job = { id: 1, status: 'unreachable', started_at: '2026-11-25T21:00:00Z', finished_at: null };
  assert.equal(elapsed(job, now), 60);
  assert.ok(compareJobs(job, { id: 2, status: 'succeeded' }) < 0);
});

test('the tab title: a live job\'s percent first, a finished job\'s outcome', () => {
  const run = { id: 7, name: 'build.sh', status: 'running', started_at: '2026-11-25T21:00:00Z', progress: { percent: 45.9 } };
  const cases = [
    [run, '45% build.sh · jobrun'],
    [{ ...run, progress: { percent: 4.5 } }, '4% build.sh · jobrun'],
    [{ ...run, progress: null }, 'build.sh · jobrun'],
    [{ ...run, progress: null, expected_seconds: 20 }, '25% build.sh · jobrun'], // 5 s of a usual 20 s
    [{ ...run, status: 'unreachable' }, '45% build.sh · unreachable · jobrun'],
    [{ ...run, status: 'succeeded' }, '✓ build.sh · jobrun'],
    [{ ...run, status: 'failed' }, '✗ build.sh · jobrun'],
    [{ ...run, status: 'canceled' }, 'build.sh · canceled · jobrun'],
    [{ ...run, status: 'lost' }, 'build.sh · lost · jobrun'],
    [{ id: 7, status: 'running' }, 'job 7 · jobrun'],
  ];
  for (const [job, want] of cases) assert.equal(jobTitle(job, T0 + 5000), want, JSON.stringify(job));
});

test('the favicon of each status', () => {
  const cases = [
    ['running', 'favicon-running.svg'], ['unreachable', 'favicon-running.svg'], ['succeeded', 'favicon-succeeded.svg'],
    ['failed', 'favicon-failed.svg'], ['lost', 'favicon-failed.svg'], ['canceled', 'favicon-canceled.svg'],
    [undefined, 'favicon.svg'], ['something new', 'favicon.svg'],
  ];
  for (const [status, want] of cases) assert.equal(statusIcon(status), `/assets/${want}`, String(status));
});

test('the notice of a job that ended', () => {
  const j = { id: 3, name: 'deploy', started_at: '2026-11-25T21:00:00Z', finished_at: '2026-11-25T21:04:10Z' };
  const cases = [
    [{ ...j, status: 'succeeded', exit_code: 0 }, { title: '✓ deploy succeeded', body: 'after 4m10s' }],
    [{ ...j, status: 'failed', exit_code: 2 }, { title: '✗ deploy failed', body: 'exit 2, after 4m10s' }],
    [{ ...j, status: 'canceled', exit_code: null, signal: 'SIGTERM' }, { title: 'deploy canceled', body: 'SIGTERM, after 4m10s' }],
    [{ id: 4, status: 'lost' }, { title: 'job 4 lost', body: '' }],
  ];
  for (const [job, want] of cases) assert.deepEqual(endNotice(job, T0), want, job.status);
});
