// Formatting shared by the dashboard and the job page: durations, ETAs,
// progress. Pure functions, tested by node --test.

/**
 * A duration for people: "0s", "42s", "4m10s", "1h02m", "3d4h".
 * @param {number} seconds
 */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** Milliseconds since the epoch of an RFC 3339 time, or NaN. */
export function ms(t) {
  return t ? Date.parse(t) : NaN;
}

/**
 * How long a job has run: until finished_at, or until now while running.
 * @param {object} job @param {number} now ms since the epoch
 * @returns {number} seconds, or NaN when the job has not started
 */
export function elapsed(job, now) {
  const start = ms(job.started_at || job.created_at);
  if (Number.isNaN(start)) return NaN;
  const end = isLive(job.status) ? now : ms(job.finished_at);
  return Math.max(0, ((Number.isNaN(end) ? now : end) - start) / 1000);
}

/**
 * The progress a job shows: its reported percent, message and remaining
 * time; or, for a running job that reports none but has an expected
 * duration, a time-based estimate.
 * @param {object} job @param {number} now ms since the epoch
 * @returns {{percent: number|null, message: string, eta: number|null, estimated: boolean, note: string}}
 *   percent null = unknown (indeterminate); eta in seconds from now
 */
export function progressOf(job, now) {
  const p = job.progress;
  const running = isLive(job.status);
  if (p && typeof p.percent === 'number') {
    let eta = null;
    if (running && typeof p.eta_seconds === 'number' && p.eta_seconds >= 0) {
      const since = (now - ms(p.time)) / 1000;
      eta = Math.max(0, p.eta_seconds - (Number.isFinite(since) && since > 0 ? since : 0));
    }
    const percent = job.status === 'succeeded' ? 100 : clamp(p.percent);
    return { percent, message: p.message || '', eta, estimated: false, note: '' };
  }
  const expected = job.expected_seconds;
  if (typeof expected === 'number' && expected > 0) {
    const note = `usually takes ${formatDuration(expected)}`;
    if (!running) return { percent: job.status === 'succeeded' ? 100 : null, message: '', eta: null, estimated: true, note };
    const e = elapsed(job, now);
    const percent = Number.isFinite(e) ? Math.min(99, (100 * e) / expected) : null;
    const eta = Number.isFinite(e) ? Math.max(0, expected - e) : null;
    return { percent, message: '', eta, estimated: true, note };
  }
  return { percent: job.status === 'succeeded' ? 100 : null, message: '', eta: null, estimated: false, note: '' };
}

function clamp(p) {
  return Math.min(100, Math.max(0, p));
}

/** "45%" or "45.5%" (one decimal below 10 and when not whole). */
export function formatPercent(p) {
  if (typeof p !== 'number' || !Number.isFinite(p)) return '';
  const r = Math.round(p * 10) / 10;
  return `${Number.isInteger(r) || r >= 10 ? Math.floor(r) : r.toFixed(1)}%`;
}

/** "ETA 4m10s", or '' when unknown. */
export function formatEta(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '';
  return `ETA ${formatDuration(Math.ceil(seconds))}`;
}

/** Job statuses in the order the dashboard lists them. */
export const STATUSES = ['running', 'unreachable', 'succeeded', 'failed', 'canceled', 'lost'];

/**
 * Whether a job has not ended: running, or reported by an agent that has
 * gone quiet for a while (unreachable), which may still come back.
 * @param {string} status
 */
export function isLive(status) {
  return status === 'running' || status === 'unreachable';
}

/**
 * The dashboard's order: the newest first, except that running jobs of
 * the first page (id >= floor) come before all others. Jobs loaded by
 * scrolling further (below the floor) keep their place by id, so that
 * loading more never moves rows above the ones being read.
 * @param {object} a @param {object} b
 * @param {number|null} [floor] where the first page ends (null: every job is in it)
 */
export function compareJobs(a, b, floor = null) {
  const first = (j) => isLive(j.status) && (floor === null || j.id >= floor);
  const ra = first(a) ? 0 : 1;
  const rb = first(b) ? 0 : 1;
  return ra - rb || b.id - a.id;
}

/** The command line of a job, shell-quoted where needed. */
export function commandLine(argv) {
  if (!Array.isArray(argv)) return '';
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${String(a).replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The mark a finished job's tab title starts with. */
const TITLE_MARKS = { succeeded: '✓', failed: '✗' };

/**
 * The job page's tab title. A live job's percent comes first, so that a
 * background tab shows progress ("45% build.sh · jobrun"); a finished job
 * shows its outcome ("✓ build.sh · jobrun", "✗ build.sh · jobrun"; other
 * statuses by name: "build.sh · canceled · jobrun").
 * @param {object} job @param {number} now ms since the epoch
 */
export function jobTitle(job, now) {
  const name = job.name || `job ${job.id}`;
  if (isLive(job.status)) {
    const p = progressOf(job, now).percent;
    const pct = p === null ? '' : `${Math.floor(p)}% `;
    return `${pct}${name}${job.status === 'running' ? '' : ` · ${job.status}`} · jobrun`;
  }
  const mark = TITLE_MARKS[job.status];
  return mark ? `${mark} ${name} · jobrun` : `${name} · ${job.status || 'loading'} · jobrun`;
}

/**
 * The favicon of a job's status (static SVGs in ui/static, so the pages'
 * Content-Security-Policy needs nothing more than img-src 'self').
 * @param {string} [status] none: the plain jobrun icon
 */
export function statusIcon(status) {
  if (isLive(status)) return '/assets/favicon-running.svg';
  switch (status) {
    case 'succeeded': return '/assets/favicon-succeeded.svg';
    case 'failed':
    case 'lost': return '/assets/favicon-failed.svg';
    case 'canceled': return '/assets/favicon-canceled.svg';
  }
  return '/assets/favicon.svg';
}

/**
 * What the notification of a job that has ended says: its name and status,
 * then the exit code or signal and how long it ran.
 * @param {object} job @param {number} now ms since the epoch
 * @returns {{title: string, body: string}}
 */
export function endNotice(job, now) {
  const name = job.name || `job ${job.id}`;
  const mark = TITLE_MARKS[job.status];
  const parts = [];
  if (job.status === 'failed' && job.exit_code != null) parts.push(`exit ${job.exit_code}`);
  if (job.signal) parts.push(job.signal);
  const d = formatDuration(elapsed(job, now));
  if (d) parts.push(`after ${d}`);
  return { title: `${mark ? `${mark} ` : ''}${name} ${job.status}`, body: parts.join(', ') };
}
