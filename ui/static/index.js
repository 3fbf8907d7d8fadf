// The dashboard: every job, running ones first, live over /api/stream (or
// by polling /api/jobs when the WebSocket cannot be had). Rows are updated
// in place, so progress bars move smoothly and focus stays where it is.

import { JobsFeed } from './jobsfeed.js';
import { offerSignOut } from './session.js';
import { STATUSES, commandLine, compareJobs, elapsed, formatDuration, formatEta, formatPercent, isLive, matches, progressOf } from './format.js';

const $ = (id) => document.getElementById(id);
const tbody = document.querySelector('#jobs tbody');
const rows = new Map(); // job id -> {tr, cells}
let jobs = new Map();
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
  const status = $('status-filter').value;
  const q = $('name-filter').value.trim();
  const list = [...jobs.values()].sort(compareJobs);
  const shown = list.filter((j) => matches(j, status, q));
  // Reorder only when the order changed, so that focus and hover survive.
  const want = shown.map((j) => {
    const r = rows.get(j.id) || makeRow(j);
    fillRow(r, j, now);
    return r.tr;
  });
  const have = [...tbody.children];
  if (want.length !== have.length || want.some((tr, i) => tr !== have[i])) tbody.replaceChildren(...want);
  for (const id of rows.keys()) if (!jobs.has(id)) rows.delete(id);
  $('empty').hidden = list.length > 0;
  $('nomatch').hidden = !list.length || shown.length > 0;
  const running = list.filter((j) => isLive(j.status)).length;
  document.title = running ? `(${running}) jobrun` : 'jobrun';
}

function tick() {
  const now = Date.now();
  for (const [id, r] of rows) {
    const j = jobs.get(id);
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

function main() {
  // Filters from the URL (?status=running&q=build), kept in it on change.
  const params = new URLSearchParams(location.search);
  const sf = $('status-filter');
  if (STATUSES.includes(params.get('status'))) sf.value = params.get('status');
  $('name-filter').value = params.get('q') || '';
  const onFilter = () => {
    const p = new URLSearchParams();
    if (sf.value) p.set('status', sf.value);
    if ($('name-filter').value) p.set('q', $('name-filter').value);
    history.replaceState(null, '', p.size ? `?${p}` : location.pathname);
    render();
  };
  sf.addEventListener('change', onFilter);
  $('name-filter').addEventListener('input', onFilter);
  document.querySelector('.filters').addEventListener('submit', (e) => e.preventDefault());
  offerSignOut($('signout'));
  fetch('/api/info', { cache: 'no-store' }).then((r) => {
    if (r.status === 401) location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return r.ok ? r.json() : {};
  }).catch(() => ({})).then((i) => {
    info = i;
    const feed = new JobsFeed({
      heartbeatMs: info.heartbeat_seconds > 0 ? info.heartbeat_seconds * 1000 : 20000,
      onJobs: (m) => { jobs = m; render(); },
      onState,
    });
    feed.start();
  });
  setInterval(tick, 1000);
}

main();
