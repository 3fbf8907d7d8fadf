// The dashboard: the jobs a filter selects, newest first with the running
// ones of the first page on top, live over /api/stream (or by polling
// /api/jobs when the WebSocket cannot be had), older pages loaded as the
// list is scrolled to its end. The filter lives in the page's address
// (?status=failed&q=deploy&host=ci&since=24h&until=...), kept in step with
// the controls, so that a filtered view can be shared. Rows are updated in
// place, so progress bars move smoothly and focus stays where it is.

import { JobsFeed } from './jobsfeed.js';
import { offerSignOut } from './session.js';
import { commandLine, compareJobs, elapsed, formatDuration, formatEta, formatPercent, isLive, progressOf } from './format.js';
import { apiParams, filtersToSearch, isEmptyFilter, matchesFilter, parseFilters } from './dashfilter.js';

const $ = (id) => document.getElementById(id);
const tbody = document.querySelector('#jobs tbody');
const rows = new Map(); // job id -> {tr, cells}
let feed = null;
let filter = parseFilters(location.search);
let queryTimer = 0; // a changed filter waits for the server to be asked
let info = {};

function td(cls, label) {
  const c = document.createElement('td');
  if (cls) c.className = cls;
  if (label) c.dataset.label = label;
  return c;
}

function makeRow(j) {
  const tr = document.createElement('tr');
  const id = td('num', 'ID');
  const name = td('name');
  const a = document.createElement('a');
  const cmd = document.createElement('code');
  cmd.className = 'command';
  name.append(a, cmd);
  const status = td('status');
  const badge = document.createElement('span');
  const warn = document.createElement('span');
  warn.className = 'incomplete';
  warn.textContent = 'log incomplete';
  status.append(badge, warn);
  const prog = td('prog');
  const bar = document.createElement('progress');
  bar.max = 100;
  const pct = document.createElement('span');
  pct.className = 'percent';
  const detail = document.createElement('span');
  detail.className = 'detail';
  prog.append(bar, ' ', pct, detail);
  const dur = td('num duration', 'Duration');
  const exit = td('num exit', 'Exit');
  const host = td('host', 'Host');
  tr.append(id, name, status, prog, dur, exit, host);
  const r = { tr, id, a, cmd, badge, warn, bar, pct, detail, dur, exit, host, key: '' };
  rows.set(j.id, r);
  return r;
}

/** Fills a row from its job; only what changed is touched. */
function fillRow(r, j, now) {
  const key = `${j.status}|${j.name}|${j.exit_code}|${j.host}|${j.incomplete}`;
  if (r.key !== key) {
    r.key = key;
    r.tr.className = j.status;
    r.tr.dataset.id = String(j.id);
    r.tr.dataset.status = j.status;
    r.id.textContent = String(j.id);
    r.a.href = `/jobs/${j.id}`;
    r.a.textContent = j.name || `job ${j.id}`;
    r.cmd.textContent = commandLine(j.command);
    r.badge.className = `badge ${j.status}`;
    r.badge.textContent = j.status;
    // The runner could not store all of the output: the log ends early.
    r.warn.hidden = !j.incomplete;
    r.warn.title = j.incomplete_reason || '';
    r.exit.textContent = j.exit_code == null ? (j.signal || '') : String(j.exit_code);
    r.host.textContent = j.host || '';
  }
  const p = progressOf(j, now);
  // A finished job that never reported progress has no bar to show.
  r.bar.hidden = p.percent === null && !isLive(j.status);
  if (p.percent === null) {
    if (r.bar.hasAttribute('value')) r.bar.removeAttribute('value');
  } else if (r.bar.value !== p.percent || !r.bar.hasAttribute('value')) r.bar.value = p.percent;
  r.bar.dataset.percent = p.percent === null ? '' : String(p.percent);
  r.bar.setAttribute('aria-label', `Progress of ${j.name || `job ${j.id}`}`);
  r.bar.setAttribute('aria-valuetext', p.percent === null ? j.status : formatPercent(p.percent));
  r.pct.textContent = p.percent === null ? '' : formatPercent(p.percent);
  const detail = [p.message || p.note, formatEta(p.eta)].filter(Boolean).join(' · ');
  if (r.detail.textContent !== detail) r.detail.textContent = detail;
  r.dur.textContent = formatDuration(elapsed(j, now));
}

function render() {
  const now = Date.now();
  const held = feed ? feed.visible() : [];
  // The server selects too; this narrows the list at once while its answer
  // to a changed filter comes.
  const shown = held.filter((j) => matchesFilter(j, filter, now)).sort((a, b) => compareJobs(a, b, feed.floor));
  // Reorder only when the order changed, so that focus and hover survive.
  const want = shown.map((j) => {
    const r = rows.get(j.id) || makeRow(j);
    fillRow(r, j, now);
    return r.tr;
  });
  const have = [...tbody.children];
  if (want.length !== have.length || want.some((tr, i) => tr !== have[i])) tbody.replaceChildren(...want);
  const ids = new Set(shown.map((j) => j.id));
  for (const id of rows.keys()) if (!ids.has(id)) rows.delete(id);
  const loaded = feed && feed.snapshots > 0;
  $('empty').hidden = !loaded || shown.length > 0 || !isEmptyFilter(filter) || feed.more;
  $('nomatch').hidden = !loaded || shown.length > 0 || isEmptyFilter(filter) || feed.more;
  $('more').hidden = !feed || !feed.more;
  const running = shown.filter((j) => isLive(j.status)).length;
  document.title = running ? `(${running}) jobrun` : 'jobrun';
  loadMoreIfNear();
}

/** Loads older jobs while the end of the list is on (or near) the screen. */
async function loadMoreIfNear() {
  if (!feed || !feed.more || feed.loading || queryTimer) return;
  const more = $('more');
  if (more.hidden || more.getBoundingClientRect().top > innerHeight + 600) return;
  if (await feed.loadMore()) loadMoreIfNear(); // render() follows onJobs
}

function tick() {
  const now = Date.now();
  for (const [id, r] of rows) {
    const j = feed.jobs.get(id);
    if (j && isLive(j.status)) fillRow(r, j, now);
  }
}

function onState(s) {
  document.body.dataset.feed = s.transport;
  document.body.dataset.state = s.state;
  $('live').textContent = s.state === 'live'
    ? (s.transport === 'websocket' ? 'live' : 'live · polling')
    : s.state === 'reconnecting' ? 'reconnecting…' : '';
}

/** Shows the filter in the controls. */
function showFilter() {
  const sf = $('status-filter');
  sf.querySelector('option.custom')?.remove();
  if (filter.statuses.length > 1) {
    // Several statuses (from the address): one option that stands for them.
    const o = new Option(filter.statuses.join(' or '), filter.statuses.join(','));
    o.className = 'custom';
    sf.append(o);
  }
  sf.value = filter.statuses.join(',');
  $('name-filter').value = filter.q;
  $('host-filter').value = filter.host;
  const since = $('since-filter');
  since.querySelector('option.custom')?.remove();
  if (filter.since && ![...since.options].some((o) => o.value === filter.since)) {
    const o = new Option(`since ${filter.since}`, filter.since);
    o.className = 'custom';
    since.append(o);
  }
  since.value = filter.since;
  $('until-filter').hidden = !filter.until;
  $('until-text').textContent = filter.until ? `until ${filter.until}` : '';
}

/**
 * Takes a change of the filter: into the address at once (replaceState:
 * typing makes no history), the list narrowed at once, and the server
 * asked again (after a short pause while typing).
 * @param {boolean} typing
 */
function filterChanged(typing) {
  history.replaceState(null, '', (filtersToSearch(filter) || location.pathname) + location.hash);
  render();
  clearTimeout(queryTimer);
  queryTimer = setTimeout(() => {
    queryTimer = 0;
    feed?.setQuery(apiParams(filter, Date.now()));
  }, typing ? 300 : 0);
}

function wireFilters() {
  showFilter();
  $('status-filter').addEventListener('change', (e) => {
    filter = { ...filter, statuses: e.target.value ? e.target.value.split(',') : [] };
    showFilter();
    filterChanged(false);
  });
  $('since-filter').addEventListener('change', (e) => {
    filter = { ...filter, since: e.target.value };
    showFilter();
    filterChanged(false);
  });
  $('name-filter').addEventListener('input', (e) => {
    filter = { ...filter, q: e.target.value };
    filterChanged(true);
  });
  $('host-filter').addEventListener('input', (e) => {
    filter = { ...filter, host: e.target.value.trim() };
    filterChanged(true);
  });
  $('until-clear').addEventListener('click', () => {
    filter = { ...filter, until: '' };
    showFilter();
    filterChanged(false);
  });
  document.querySelector('.filters').addEventListener('submit', (e) => e.preventDefault());
  $('load-more').addEventListener('click', () => feed?.loadMore());
  addEventListener('scroll', loadMoreIfNear, { passive: true });
  addEventListener('resize', loadMoreIfNear, { passive: true });
}

function main() {
  wireFilters();
  offerSignOut($('signout'));
  fetch('/api/info', { cache: 'no-store' }).then((r) => {
    if (r.status === 401) location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return r.ok ? r.json() : {};
  }).catch(() => ({})).then((i) => {
    info = i;
    feed = new JobsFeed({
      heartbeatMs: info.heartbeat_seconds > 0 ? info.heartbeat_seconds * 1000 : 20000,
      query: apiParams(filter, Date.now()),
      onJobs: render,
      onState,
    });
    feed.start();
  });
  setInterval(() => feed && tick(), 1000);
}

main();
