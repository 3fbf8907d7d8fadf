// The job page's small chart of progress over time: an inline SVG built
// with DOM APIs (no markup strings), from the job's progress events.

import { formatDuration } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 60;

/**
 * The polyline points ("x,y x,y ...") of progress points in a W x H box.
 * A step shape: a value holds until the next one.
 * @param {{time: string, percent: number}[]} points in time order
 * @param {number} start ms since the epoch at x = 0
 * @param {number} end ms since the epoch at x = W
 * @returns {string}
 */
export function chartPoints(points, start, end) {
  const span = Math.max(1, end - start);
  const out = [];
  let prevY = null;
  for (const p of points) {
    const t = Date.parse(p.time);
    if (Number.isNaN(t)) continue;
    const x = round((W * Math.min(span, Math.max(0, t - start))) / span);
    const y = round(H - (H * Math.min(100, Math.max(0, p.percent))) / 100);
    if (prevY !== null) out.push(`${x},${prevY}`);
    out.push(`${x},${y}`);
    prevY = y;
  }
  if (prevY !== null) out.push(`${W},${prevY}`);
  return out.join(' ');
}

/**
 * The points to chart: the server's downsampled history (GET
 * /api/jobs/{ref}/progress, standing for the progress events up to its
 * last_seq), followed by the progress events the page holds after it (the
 * live ones, from its stream). Without a history (an older server, a
 * failed request), the page's own events.
 * @param {{points: {seq: number}[], last_seq: number}|null} history
 * @param {{seq: number}[]} local in seq order
 */
export function mergeProgress(history, local) {
  if (!history) return local;
  const after = local.filter((p) => p.seq > history.last_seq);
  return after.length ? history.points.concat(after) : history.points;
}

function round(v) {
  return Math.round(v * 10) / 10;
}

/**
 * Draws the chart into svg (replacing its content).
 * @param {SVGSVGElement} svg
 * @param {{time: string, percent: number}[]} points
 * @param {number} start ms @param {number} end ms
 */
export function drawChart(svg, points, start, end) {
  const doc = svg.ownerDocument;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const kids = [];
  for (const pct of [0, 50, 100]) {
    const l = doc.createElementNS(NS, 'line');
    const y = String(H - (H * pct) / 100);
    l.setAttribute('x1', '0');
    l.setAttribute('x2', String(W));
    l.setAttribute('y1', y);
    l.setAttribute('y2', y);
    l.setAttribute('class', 'grid');
    kids.push(l);
  }
  const pts = chartPoints(points, start, end);
  if (pts) {
    const line = doc.createElementNS(NS, 'polyline');
    line.setAttribute('points', pts);
    line.setAttribute('class', 'curve');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    kids.push(line);
  }
  svg.replaceChildren(...kids);
  const last = points[points.length - 1];
  const first = points[0];
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', last
    ? `Progress over time: ${Math.round(first.percent)}% to ${Math.round(last.percent)}% in ${formatDuration((end - start) / 1000)}`
    : 'No progress reported yet');
}
