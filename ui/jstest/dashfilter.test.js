// Unit tests of ui/static/dashfilter.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiParams, filtersToSearch, isEmptyFilter, lowerASCII, matchesFilter, parseFilters, sinceTime } from '../static/dashfilter.js';

const NOW = Date.parse('2026-11-25T21:00:00Z');

test('the address holds the filter, and reads back the same', () => {
  const f = parseFilters('?status=failed&status=lost,bogus,failed&q=Deploy+prod&host=ci&since=24h&until=2026-11-20T00:00:00Z&x=1');
  assert.deepEqual(f, { statuses: ['failed', 'lost'], q: 'Deploy prod', host: 'ci', since: '24h', until: '2026-11-20T00:00:00Z' });
  assert.equal(filtersToSearch(f), '?status=failed%2Clost&q=Deploy+prod&host=ci&since=24h&until=2026-11-20T00%3A00%3A00Z');
  assert.deepEqual(parseFilters(filtersToSearch(f)), f);
  assert.deepEqual(parseFilters(''), { statuses: [], q: '', host: '', since: '', until: '' });
  assert.equal(filtersToSearch(parseFilters('')), '');
  assert.equal(isEmptyFilter(parseFilters('')), true);
  assert.equal(isEmptyFilter(parseFilters('?status=failed')), false);
  assert.deepEqual(parseFilters('?since=soon&until=never'), { statuses: [], q: '', host: '', since: '', until: '' }, 'bad times are dropped');
});

test('since: a duration ago or a time', () => {
  assert.equal(sinceTime('24h', NOW), NOW - 86400e3);
  assert.equal(sinceTime('7d', NOW), NOW - 7 * 86400e3);
  assert.equal(sinceTime('90m', NOW), NOW - 90 * 60e3);
  assert.equal(sinceTime('1.5h', NOW), NOW - 5400e3);
  assert.equal(sinceTime('2026-11-25T20:00:00Z', NOW), NOW - 3600e3);
  assert.ok(Number.isNaN(sinceTime('', NOW)));
  assert.ok(Number.isNaN(sinceTime('yesterday', NOW)));
});

test('the API gets the filter with RFC 3339 times', () => {
  const f = parseFilters('?status=failed,lost&q=deploy&host=ci&since=1h&until=2026-11-25T22:00:00%2B01:00');
  assert.equal(apiParams(f, NOW), 'status=failed%2Clost&q=deploy&host=ci&since=2026-11-25T20%3A00%3A00.000Z&until=2026-11-25T21%3A00%3A00.000Z');
  assert.equal(apiParams(parseFilters(''), NOW), '');
});

test('the filter selects jobs as the server does', () => {
  const job = { id: 3, name: 'Nightly DEPLOY été', status: 'failed', host: 'ci', created_at: '2026-11-25T20:30:00Z' };
  const ok = (search) => matchesFilter(job, parseFilters(search), NOW);
  assert.equal(ok(''), true);
  assert.equal(ok('?status=failed'), true);
  assert.equal(ok('?status=running,lost'), false);
  assert.equal(ok('?q=deploy'), true);
  assert.equal(ok('?q=nightly+deploy'), true);
  assert.equal(ok('?q=%C3%A9t%C3%A9'), true, 'été as written');
  assert.equal(ok('?q=%C3%89T%C3%89'), false, 'ÉTÉ: only ASCII letters ignore case, as on the server');
  assert.equal(ok('?q=3'), false, 'the name, not the id');
  assert.equal(ok('?host=ci'), true);
  assert.equal(ok('?host=c'), false);
  assert.equal(ok('?since=1h'), true);
  assert.equal(ok('?since=10m'), false);
  assert.equal(ok('?until=2026-11-25T20:30:00Z'), false, 'until is exclusive');
  assert.equal(ok('?until=2026-11-25T20:30:00.001Z'), true);
  assert.equal(lowerASCII('ABC Été'), 'abc Été');
});
