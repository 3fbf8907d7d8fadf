// The dashboard's filters, in three forms: the page's address
// (?status=failed&q=deploy&host=ci&since=24h&until=...), so that a filtered
// view can be shared; the parameters of GET /api/jobs and /api/stream,
// which select on the server; and the same selection applied to the jobs
// the page holds, so that the list narrows at once while the server's
// answer comes. Pure functions, tested by node --test.

import { STATUSES } from './format.js';

/**
 * @typedef {object} Filter
 * @property {string[]} statuses none: any status
 * @property {string} q part of the name, ignoring the case of ASCII letters
 * @property {string} host the host, exactly
 * @property {string} since a duration ago ("24h", "7d", "90m") or a time
 * @property {string} until a time
 */

/** The filter of a page address's query string; unknown values are dropped. */
export function parseFilters(search) {
  const p = new URLSearchParams(search);
  const statuses = [];
  for (const v of p.getAll('status')) {
    for (const s of v.split(',')) if (STATUSES.includes(s) && !statuses.includes(s)) statuses.push(s);
  }
  const since = p.get('since') || '';
  const until = p.get('until') || '';
  return {
    statuses,
    q: p.get('q') || '',
    host: p.get('host') || '',
    since: Number.isNaN(sinceTime(since, 0)) ? '' : since,
    until: Number.isNaN(Date.parse(until)) ? '' : until,
  };
}

/** The query string ("?status=failed&q=x", or "") of a page address. */
export function filtersToSearch(f) {
  const p = new URLSearchParams();
  if (f.statuses.length) p.set('status', f.statuses.join(','));
  if (f.q) p.set('q', f.q);
  if (f.host) p.set('host', f.host);
  if (f.since) p.set('since', f.since);
  if (f.until) p.set('until', f.until);
  const s = p.toString();
  return s ? `?${s}` : '';
}

const UNITS = { s: 1000, m: 60e3, h: 3600e3, d: 86400e3 };

/**
 * The time (ms since the epoch) a since value names: now minus a duration
 * ("90m", "24h", "7d", "30s"), or a date and time; NaN when it is neither.
 * @param {string} since @param {number} now
 */
export function sinceTime(since, now) {
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(since);
  if (m) return now - Number(m[1]) * UNITS[m[2]];
  return since ? Date.parse(since) : NaN;
}

/**
 * The filter as parameters of GET /api/jobs and /api/stream ("status=...&q=..."):
 * times in RFC 3339, a since duration counted back from now.
 * @param {Filter} f @param {number} now
 */
export function apiParams(f, now) {
  const p = new URLSearchParams();
  if (f.statuses.length) p.set('status', f.statuses.join(','));
  if (f.q) p.set('q', f.q);
  if (f.host) p.set('host', f.host);
  const since = f.since ? sinceTime(f.since, now) : NaN;
  if (!Number.isNaN(since)) p.set('since', new Date(since).toISOString());
  const until = f.until ? Date.parse(f.until) : NaN;
  if (!Number.isNaN(until)) p.set('until', new Date(until).toISOString());
  return p.toString();
}

/** s with the ASCII letters A-Z as a-z, as the server compares names. */
export function lowerASCII(s) {
  return String(s).replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * Whether the filter selects a job, as the server would.
 * @param {object} job @param {Filter} f @param {number} now
 */
export function matchesFilter(job, f, now) {
  if (f.statuses.length && !f.statuses.includes(job.status)) return false;
  if (f.host && job.host !== f.host) return false;
  if (f.q && !lowerASCII(job.name || '').includes(lowerASCII(f.q))) return false;
  const created = Date.parse(job.created_at);
  const since = f.since ? sinceTime(f.since, now) : NaN;
  if (!Number.isNaN(since) && created < since) return false;
  const until = f.until ? Date.parse(f.until) : NaN;
  if (!Number.isNaN(until) && created >= until) return false;
  return true;
}

/** Whether the filter selects every job. */
export function isEmptyFilter(f) {
  return !f.statuses.length && !f.q && !f.host && !f.since && !f.until;
}
