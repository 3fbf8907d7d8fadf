// The job page: the header (status, progress, duration, cancel), the live
// virtualized log, and the connection that keeps it complete. See
// transport.js (reconnects and fallbacks), logwindow.js (which part of the
// log is held) and logview.js (what is rendered).

import { JobStream } from './transport.js';
import { LogWindow } from './logwindow.js';
import { LogView } from './logview.js';
import { drawChart, mergeProgress } from './chart.js';
import { commandLine, elapsed, formatDuration, formatEta, formatPercent, isLive, jobTitle, ms, progressOf, statusIcon } from './format.js';
import { EndNotifier } from './notify.js';
import { offerSignOut } from './session.js';
import { END, LogSearch, searchStatus } from './search.js';

const $ = (id) => document.getElementById(id);
const ref = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop());
const api = `/api/jobs/${encodeURIComponent(ref)}`;
const TRANSPORT_NAMES = { websocket: 'WebSocket', sse: 'Server-Sent Events', polling: 'long polling' };

let job = null;
let win = null;
let view = null;
let stream = null;
let search = null; // LogSearch: the whole log, through the server
let searchTimer = 0;
let heartbeatMs = 20000;
let canChange = true; // the access is full: Cancel is offered
let role = ''; // "exec" or "serve": who serves this page
let refreshTimer = 0;
let progressHistory = null; // the whole progress history, downsampled by the server: {points, last_seq}
let historyGen = 0;
let storage = null;
try { storage = localStorage; } catch { /* storage disabled */ }
const notifier = new EndNotifier({ Notification: globalThis.Notification, storage, document });

async function getJSON(url) {
  const r = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!r.ok) {
    let msg = `HTTP ${r.status}`;
    try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return r.json();
}

/** A range read of the job's events; retried a few times on network errors. */
async function fetchEvents(params) {
  const q = new URLSearchParams({ collapse: '1' });
  for (const [k, v] of Object.entries(params)) q.set(k, String(v));
  let lastErr;
  for (let i = 0; i < 4; i++) {
    try {
      const r = await fetch(`${api}/events?${q}`, { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (r.status === 204) return [];
      if (!r.ok) throw new Error(`events: HTTP ${r.status}`);
      const body = await r.json();
      return Array.isArray(body) ? body : body.events || [];
    } catch (e) {
      lastErr = e;
      await new Promise((res) => setTimeout(res, 300 * 2 ** i));
    }
  }
  throw lastErr;
}

function setJob(j) {
  job = j;
  $('jobid').textContent = `job ${j.id}`;
  $('name').textContent = j.name || `job ${j.id}`;
  const st = $('status');
  st.textContent = j.status;
  st.className = `badge ${j.status}`;
  document.body.dataset.status = j.status;
  $('progress').className = j.status;
  const icon = statusIcon(j.status);
  if ($('favicon').getAttribute('href') !== icon) $('favicon').setAttribute('href', icon);
  if (notifier.update(j, Date.now())) {
    const b = $('notify');
    b.dataset.sent = String(Number(b.dataset.sent || 0) + 1);
  }
  $('exit').textContent = j.exit_code == null ? (j.signal || '') : `exit ${j.exit_code}${j.signal ? ` (${j.signal})` : ''}`;
  // The runner could not store all of the output: the log below ends early.
  $('incomplete').hidden = !j.incomplete;
  $('incomplete').textContent = j.incomplete ? `The stored log is incomplete: ${j.incomplete_reason || 'the runner could not store all of the output'}.` : '';
  if (j.host) {
    $('host').textContent = j.host;
    $('host-fact').hidden = false;
  }
  $('command').textContent = commandLine(j.command);
  $('raw').href = `${api}/log`;
  $('raw').setAttribute('download', `job-${j.id}.log`);
  $('cancel').hidden = !canChange || !isLive(j.status);
  showNotify(notifier.state);
  tick();
}

/** Updates what changes with time: duration, ETA, time-based progress, chart. */
function tick() {
  if (!job) return;
  const now = Date.now();
  const title = jobTitle(job, now);
  if (document.title !== title) document.title = title;
  $('duration').textContent = formatDuration(elapsed(job, now)) || '–';
  const p = progressOf(job, now);
  const bar = $('progress');
  if (p.percent === null) {
    bar.removeAttribute('value');
    bar.setAttribute('aria-valuetext', isLive(job.status) ? 'in progress' : job.status);
  } else {
    bar.value = p.percent;
    bar.setAttribute('aria-valuetext', formatPercent(p.percent));
  }
  bar.dataset.percent = p.percent === null ? '' : String(p.percent);
  $('percent').textContent = p.percent === null ? '' : formatPercent(p.percent);
  $('pmessage').textContent = p.message || p.note;
  $('eta').textContent = formatEta(p.eta);
  drawProgress(now);
}

function drawProgress(now) {
  const chart = $('chart');
  const pts = mergeProgress(progressHistory, win ? win.progress : []);
  // An <svg> has no .hidden property: use the attribute.
  if (pts.length < 2) {
    chart.setAttribute('hidden', '');
    return;
  }
  const start = ms(job.started_at || job.created_at);
  const end = isLive(job.status) ? now : ms(job.finished_at) || now;
  chart.removeAttribute('hidden');
  drawChart(chart, pts, Number.isNaN(start) ? Date.parse(pts[0].time) : start, end);
}

/** Re-reads the job's metadata (ETA, final status) at most every 2 s. */
function refreshJobSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = 0;
    try { setJob(await getJSON(api)); } catch { /* the stream reports connection trouble */ }
  }, 2000);
}

function onEvents(events) {
  let lines = 0;
  let progressed = false;
  for (const ev of events) {
    if (ev.type === 'line') {
      if (ev.eol === '\n' || ev.eol === '\r\n') lines++;
    } else if (ev.type === 'progress') {
      job.progress = { ...(job.progress || {}), percent: ev.percent, message: ev.message || '', time: ev.time };
      progressed = true;
    } else if (ev.type === 'exit') {
      setJob({ ...job, status: ev.status, exit_code: ev.exit_code ?? null, signal: ev.signal, finished_at: ev.time,
        incomplete: !!ev.incomplete, incomplete_reason: ev.incomplete_reason });
      refreshJobSoon();
    }
  }
  const added = win.pushLive(events);
  view.liveAdded(added, lines);
  if (progressed) {
    tick();
    refreshJobSoon();
  }
}

function onState(s) {
  const banner = $('banner');
  const name = TRANSPORT_NAMES[s.transport] || s.transport;
  document.body.dataset.stream = s.state;
  document.body.dataset.transport = s.transport;
  let text = '';
  switch (s.state) {
    case 'connecting': text = `connecting (${name})…`; break;
    case 'live': text = `live · ${name}`; break;
    case 'reconnecting': text = `reconnecting (${name})…`; break;
    case 'ended': text = `complete · ${name}`; break;
    case 'gone': text = 'job not found'; break;
    default: text = s.reason || s.state;
  }
  $('conn').textContent = text;
  if (s.state === 'reconnecting') {
    banner.textContent = `Connection lost${s.reason ? ` (${s.reason})` : ''}. Reconnecting${s.delay ? ` in ${Math.ceil(s.delay / 1000)} s` : ''}…`;
    banner.hidden = false;
  } else if (s.state === 'gone') {
    banner.textContent = 'This job no longer exists.';
    banner.hidden = false;
  } else if (s.state === 'ended' && role === 'exec') {
    // jobrun exec serves its job only while it runs: it has exited, or
    // is about to. The page keeps what it has; the rest is in the database.
    banner.textContent = `The job has ended, and the jobrun exec that ran it has stopped serving this page. ` +
      `Its whole log is in the database: jobrun logs ${ref}, or open it in jobrun serve.`;
    banner.className = 'banner note';
    banner.hidden = false;
    return finishState(s);
  } else {
    banner.hidden = true;
  }
  banner.className = 'banner';
  finishState(s);
}

function finishState(s) {
  if (s.state === 'ended' && job && isLive(job.status)) refreshJobSoon();
}

function onFollow({ following, newLines }) {
  const b = $('latest');
  b.hidden = following;
  b.textContent = newLines > 0 ? `Jump to latest (${newLines} new line${newLines === 1 ? '' : 's'})` : 'Jump to latest';
}

/**
 * Fetches the job's whole progress history for the chart: the log window
 * holds only the pages loaded (a job opened at its tail would chart its
 * last minutes), so the server reads every progress event and answers a
 * few thousand points; the live ones are added from the stream.
 */
async function loadHistory() {
  const gen = ++historyGen;
  progressHistory = null;
  try {
    const h = await getJSON(`${api}/progress`);
    if (gen === historyGen && Array.isArray(h.points) && typeof h.last_seq === 'number') progressHistory = h;
  } catch { /* the chart makes do with the loaded pages */ }
  tick();
}

/** Starts (or restarts, after a 4409) the log and the stream. */
async function openLog(target) {
  loadHistory();
  view.ready = false; // no loads on scroll until the new window is positioned
  for (let attempt = 0; ; attempt++) {
    try {
      if (target) await win.openAtLine(target.line);
      else await win.openTail();
      break;
    } catch (e) {
      $('conn').textContent = `cannot load the log (${e.message}); retrying…`;
      await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** attempt)));
    }
  }
  if (target) await view.goToLine(target.line, target.stream);
  else view.scrollToBottom();
  view.ready = true;
  view.render();
  const after = win.attached ? (win.lastSeq ?? 0) : Math.max(job.last_seq || 0, win.lastJobSeq);
  stream = new JobStream({
    ref,
    after,
    heartbeatMs,
    collapse: true,
    onEvents,
    onState,
    onUnauthorized: toLogin,
    onReset: () => {
      // The server does not hold what we showed (restored database): start over.
      stream.stop();
      win.toggled.clear();
      openLog(null);
    },
  });
  stream.start();
}

/** #L1234 (stdout/tty) or #L1234-stderr. */
function parseHash() {
  const m = /^#L(\d+)(?:-(stdout|stderr|tty))?$/.exec(location.hash);
  return m ? { line: Number(m[1]), stream: m[2] } : null;
}

/** One search request (GET .../search); rejects with the server's message. */
async function fetchSearch(params, signal) {
  let r;
  try {
    r = await fetch(`${api}/search?${new URLSearchParams(params)}`, { cache: 'no-store', signal, headers: { Accept: 'application/json' } });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new Error(`cannot reach the server (${e.message})`);
  }
  if (!r.ok) {
    let msg = `HTTP ${r.status}`;
    try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

function searchOptions() {
  return { regex: $('qregex').checked, case: $('qcase').checked, directives: win.showDirectives };
}

function showSearch() {
  const f = $('found');
  f.textContent = searchStatus(search, view.hit);
  f.dataset.total = search.total === null ? '' : String(search.total);
  f.dataset.count = String(search.count);
}

/** The query or its options changed: abort at once, search again soon. */
function searchChanged() {
  clearTimeout(searchTimer);
  search.stop();
  view.hit = null;
  view.refresh();
  searchTimer = setTimeout(() => restartSearch(1), 250);
}

function restartSearch(dir) {
  clearTimeout(searchTimer);
  search.start($('q').value, searchOptions());
  if (search.query) goToMatch(dir);
}

/**
 * Shows the next (dir 1) or previous (dir -1) match: after/before the
 * current one, else from the rows on screen; the server's search covers the
 * whole log and wraps around it.
 */
async function goToMatch(dir) {
  const q = $('q').value;
  const o = searchOptions();
  if (!q) return;
  if (!search.started || search.query !== q || ['regex', 'case', 'directives'].some((k) => !!search.opts[k] !== o[k])) {
    return restartSearch(dir);
  }
  let from = view.hit?.matchSeq;
  if (from === undefined) {
    const shown = view.shownRows();
    if (dir > 0) from = shown ? win.row(shown[0]).firstSeq - 1 : 0;
    else from = shown ? win.row(shown[1]).lastSeq + 1 : END;
  }
  const m = await search.find(dir, from);
  if (m === undefined) return; // another search took over
  if (m === null) {
    view.hit = null;
    view.refresh();
  } else if (!(await view.showMatch(m))) {
    view.hit = { seq: m.seq, stream: m.stream, line: m.line, matchSeq: m.seq, ranges: m.ranges };
  }
  showSearch();
}

function wire() {
  search = new LogSearch({ fetchSearch, onChange: showSearch });
  $('search').addEventListener('submit', (e) => { e.preventDefault(); goToMatch(1); });
  $('prev').addEventListener('click', () => goToMatch(-1));
  $('q').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.shiftKey) { e.preventDefault(); goToMatch(-1); }
    if (e.key === 'Escape') { $('q').value = ''; searchChanged(); }
  });
  $('q').addEventListener('input', searchChanged);
  $('qcase').addEventListener('change', searchChanged);
  $('qregex').addEventListener('change', searchChanged);
  $('times').addEventListener('change', (e) => { view.showTimes = e.target.checked; document.body.classList.toggle('times', e.target.checked); view.refresh(); });
  $('directives').addEventListener('change', (e) => {
    win.setShowDirectives(e.target.checked);
    view.refresh();
    if (search.query) searchChanged(); // directive lines are searched only when shown
  });
  $('latest').addEventListener('click', () => view.jumpToLatest());
  $('cancel').addEventListener('click', cancelJob);
  $('notify').addEventListener('click', async () => showNotify(await notifier.toggle()));
  addEventListener('hashchange', () => {
    const t = parseHash();
    if (t) view.goToLine(t.line, t.stream);
  });
  setInterval(tick, 1000);
}

async function cancelJob() {
  const b = $('cancel');
  const msg = $('cancel-msg');
  b.disabled = true;
  msg.textContent = 'canceling…';
  try {
    const r = await fetch(`${api}/cancel`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    if (r.ok) {
      msg.textContent = 'cancel requested';
      return;
    }
    let err = `HTTP ${r.status}`;
    try { err = (await r.json()).error || err; } catch { /* not JSON */ }
    if ((r.status === 404 || r.status === 405) && stream && stream.send({ type: 'cancel' })) {
      msg.textContent = 'cancel requested';
      return;
    }
    msg.textContent = `cancel failed: ${err}`;
  } catch (e) {
    msg.textContent = `cancel failed: ${e.message}`;
  } finally {
    b.disabled = false;
  }
}

/**
 * Shows the bell while the job runs: its state on, off, blocked (by the
 * user), or no bell where the browser offers no notifications.
 */
function showNotify(state) {
  const b = $('notify');
  b.hidden = state === 'unsupported' || !job || !isLive(job.status);
  b.disabled = state === 'blocked';
  b.setAttribute('aria-pressed', String(state === 'on'));
  b.dataset.state = state;
  b.title = state === 'blocked' ? 'Notifications are blocked for this site (the browser\u2019s site settings allow them)'
    : state === 'on' ? 'You will be notified when this job ends (click to stop)' : 'Notify me when this job ends';
}

/** A server with a token that does not take ours (any more): sign in. */
function toLogin() {
  location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`);
}

async function main() {
  wire();
  offerSignOut($('signout'));
  try {
    const info = await getJSON('/api/info');
    if (info.heartbeat_seconds > 0) heartbeatMs = info.heartbeat_seconds * 1000;
    if (info.access && info.access !== 'full') canChange = false; // read-only: no Cancel
    role = info.role || '';
  } catch (e) {
    if (e.status === 401) return toLogin();
  }
  try {
    setJob(await getJSON(api));
  } catch (e) {
    if (e.status === 401) return toLogin();
    $('name').textContent = e.status === 404 ? 'No such job' : 'Cannot load the job';
    $('status').textContent = e.status === 404 ? 'not found' : 'error';
    $('conn').textContent = e.message;
    document.body.dataset.stream = e.status === 404 ? 'gone' : 'error';
    return;
  }
  win = new LogWindow({ fetchEvents, pageSize: 1000 });
  win.lastLine = job.last_line || 0;
  win.lastJobSeq = job.last_seq || 0;
  if (!job.last_line && job.last_seq > 0) {
    // The job's last line number sizes the scrollbar of a window opened
    // elsewhere (#L links): the last few events tell it.
    try {
      for (const ev of await fetchEvents({ tail: 8 })) if (ev.type === 'line' && ev.line > win.lastLine) win.lastLine = ev.line;
    } catch { /* the window's own lines will do */ }
  }
  view = new LogView({ scroller: $('log'), win, onFollow });
  await openLog(parseHash());
  tick(); // the chart, from the progress events just loaded
}

main();
