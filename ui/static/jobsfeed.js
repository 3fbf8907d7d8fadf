// The dashboard's live list of jobs: one WebSocket on /api/stream whose
// first message is {"type":"snapshot","jobs":[...],"next_before":N} (the
// first page), and whose later messages {"type":"jobs","jobs":[...]} carry
// the jobs that changed and {"type":"remove","id":N} the ones that left
// the filter or were removed. When the WebSocket cannot be had (a proxy
// refuses upgrades, an older server), the feed polls the first page of GET
// /api/jobs instead, and keeps trying the WebSocket now and then.
// Heartbeats (any message, including "[]") keep it alive; silence for
// about two heartbeat intervals drops it.
//
// Older pages come from GET /api/jobs?before=<cursor> (loadMore, as the
// user scrolls): the feed holds every job from the newest down to
// `cursor`, the smallest id loaded (null once the oldest is loaded), and
// `visible()` is exactly those, so that a job the stream sends from
// further down (an old job that changed) waits until paging reaches it.
// `floor` is where the first page ends: the dashboard lifts running jobs
// to the top within it only, so that loading more never reorders rows
// above the ones being read.
//
// Browser APIs come from `env` so that node --test can drive it.

import { backoffDelay } from './transport.js';

export class JobsFeed {
  /**
   * @param {object} o
   * @param {(jobs: Map<number, object>) => void} o.onJobs the whole list after every change
   * @param {(state: {state: string, transport: string}) => void} [o.onState]
   * @param {number} [o.pollMs] polling interval (default 2000)
   * @param {number} [o.heartbeatMs] the server's heartbeat (default 20000)
   * @param {number} [o.limit] jobs of a page (default 100)
   * @param {string} [o.query] the filter's parameters ("status=failed&q=x")
   * @param {object} [o.env] {WebSocket, fetch, setTimeout, clearTimeout, random, location}
   */
  constructor(o) {
    const env = o.env || globalThis;
    this.env = {
      WebSocket: env.WebSocket,
      fetch: env.fetch?.bind(env),
      setTimeout: env.setTimeout.bind(env),
      clearTimeout: env.clearTimeout.bind(env),
      random: env.random || Math.random,
      location: env.location,
    };
    this.onJobs = o.onJobs;
    this.onState = o.onState || (() => {});
    this.pollMs = o.pollMs || 2000;
    this.heartbeatMs = o.heartbeatMs || 20000;
    this.limit = o.limit || 100;
    this.query = o.query || '';
    /** @type {Map<number, object>} */
    this.jobs = new Map();
    /** @type {number|null} the smallest id loaded; null: down to the oldest job */
    this.cursor = null;
    /** @type {number|null} where the first page ends; null: it holds every job */
    this.floor = null;
    this.snapshots = 0; // snapshots since the query was set
    this.loading = null; // the promise of a page being loaded
    this.gen = 0; // changes with the query: answers for an older one are dropped
    this.ws = null;
    this.attempt = 0;
    this.polling = false;
    this.pollTimer = null;
    this.wsTimer = null;
    this.watchdog = null;
    this.stopped = false;
  }

  start() {
    this._openWS();
  }

  /** Starts over with another filter ("status=failed&q=x"). */
  setQuery(query) {
    if (query === this.query) return;
    this.query = query;
    this.gen++;
    this.jobs = new Map();
    this.cursor = this.floor = null;
    this.snapshots = 0;
    this.loading = null;
    this._closeWS();
    this._stopPolling();
    this.env.clearTimeout(this.wsTimer);
    this.attempt = 0;
    this.onJobs(this.jobs);
    this._openWS();
  }

  /** The jobs loaded: every one from the newest down to the cursor. */
  visible() {
    const out = [];
    for (const j of this.jobs.values()) if (this.cursor === null || j.id >= this.cursor) out.push(j);
    return out;
  }

  /** Whether older jobs are left to load. */
  get more() {
    return this.snapshots > 0 && this.cursor !== null;
  }

  /**
   * Loads the next older page (GET /api/jobs?before=cursor); resolves to
   * whether it added anything. One page at a time.
   */
  loadMore() {
    if (this.loading) return this.loading;
    if (!this.more) return Promise.resolve(false);
    const gen = this.gen;
    const before = this.cursor;
    const q = this.query ? `&${this.query}` : '';
    this.loading = (async () => {
      try {
        const r = await this.env.fetch(`/api/jobs?limit=${this.limit}&before=${before}${q}`, { cache: 'no-store' });
        if (!r.ok) return false;
        const body = await r.json();
        if (gen !== this.gen || this.cursor !== before || !Array.isArray(body.jobs)) return false;
        // What the stream sent is as new as this page, or newer.
        for (const j of body.jobs) if (j && typeof j.id === 'number' && !this.jobs.has(j.id)) this.jobs.set(j.id, j);
        this.cursor = typeof body.next_before === 'number' ? body.next_before : null;
        this.onJobs(this.jobs);
        return true;
      } catch {
        return false;
      } finally {
        if (gen === this.gen) this.loading = null;
      }
    })();
    return this.loading;
  }

  stop() {
    this.stopped = true;
    this._closeWS();
    this.env.clearTimeout(this.pollTimer);
    this.env.clearTimeout(this.wsTimer);
  }

  /** Applies a message of the stream; returns whether it was understood. */
  apply(msg) {
    if (Array.isArray(msg)) return msg.length === 0; // a heartbeat
    if (msg && msg.type === 'remove' && typeof msg.id === 'number') {
      this.jobs.delete(msg.id);
      this.onJobs(this.jobs);
      return true;
    }
    if (!msg || !Array.isArray(msg.jobs)) return false;
    const list = msg.jobs.filter((j) => j && typeof j.id === 'number');
    if (msg.type === 'snapshot') this._snapshot(list, typeof msg.next_before === 'number' ? msg.next_before : null);
    else if (msg.type === 'jobs') for (const j of list) this.jobs.set(j.id, j);
    else return false;
    this.onJobs(this.jobs);
    return true;
  }

  /**
   * Takes a first page (a snapshot, or a poll) whose jobs go down to next
   * (null: all of them). It replaces what is held from next up; older
   * pages stay, unless jobs may be missing between them and this page
   * (more than a page of jobs came while the feed was away): then they go,
   * and paging starts again from this page.
   */
  _snapshot(list, next) {
    let newest = -Infinity;
    for (const id of this.jobs.keys()) newest = Math.max(newest, id);
    const first = this.snapshots++ === 0;
    const gap = next !== null && next > newest;
    for (const id of [...this.jobs.keys()]) if (next === null || id >= next || first || gap) this.jobs.delete(id);
    for (const j of list) this.jobs.set(j.id, j);
    if (first || gap || next === null) this.cursor = next;
    else if (this.cursor !== null) this.cursor = Math.min(this.cursor, next);
    this.floor = next;
  }

  _closeWS() {
    const ws = this.ws;
    this.ws = null;
    this.env.clearTimeout(this.watchdog);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch { /* closed */ }
    }
  }

  _arm(ws) {
    this.env.clearTimeout(this.watchdog);
    this.watchdog = this.env.setTimeout(() => {
      if (this.ws === ws) this._wsFailed(ws, true);
    }, 2 * this.heartbeatMs + 5000);
  }

  _openWS() {
    if (this.stopped || !this.env.WebSocket) {
      if (!this.stopped) this._startPolling();
      return;
    }
    const loc = this.env.location;
    const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      const q = this.query ? `&${this.query}` : '';
      ws = new this.env.WebSocket(`${proto}//${loc.host}/api/stream?limit=${this.limit}${q}`);
    } catch {
      this._startPolling();
      return;
    }
    this.ws = ws;
    let opened = false;
    this._arm(ws);
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this._arm(ws);
    };
    ws.onmessage = (m) => {
      this._arm(ws);
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (this.apply(msg) && !Array.isArray(msg)) {
        this._stopPolling();
        this.onState({ state: 'live', transport: 'websocket' });
      }
    };
    ws.onclose = () => {
      if (this.ws === ws) this._wsFailed(ws, opened);
    };
    ws.onerror = () => {};
  }

  _wsFailed(ws, opened) {
    this._closeWS();
    if (this.stopped) return;
    // Keep the list fresh by polling until the WebSocket is back.
    this._startPolling();
    const delay = opened ? backoffDelay(this.attempt++, 1000, 30000, this.env.random) : 30000;
    this.env.clearTimeout(this.wsTimer);
    this.wsTimer = this.env.setTimeout(() => this._openWS(), delay);
  }

  _startPolling() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    this.onState({ state: 'polling', transport: 'polling' });
    this._poll();
  }

  _stopPolling() {
    this.polling = false;
    this.env.clearTimeout(this.pollTimer);
  }

  async _poll() {
    if (!this.polling || this.stopped) return;
    const gen = this.gen;
    try {
      const q = this.query ? `&${this.query}` : '';
      const r = await this.env.fetch(`/api/jobs?limit=${this.limit}${q}`, { cache: 'no-store' });
      if (r.ok && this.polling && gen === this.gen) {
        const body = await r.json();
        if (this.polling && gen === this.gen) this.apply({ type: 'snapshot', jobs: body.jobs || [], next_before: body.next_before ?? null });
        this.onState({ state: 'live', transport: 'polling' });
      } else if (this.polling) this.onState({ state: 'reconnecting', transport: 'polling' });
    } catch {
      if (this.polling) this.onState({ state: 'reconnecting', transport: 'polling' });
    }
    if (this.polling && !this.stopped) this.pollTimer = this.env.setTimeout(() => this._poll(), this.pollMs);
  }
}
