// The dashboard's live list of jobs: one WebSocket on /api/stream whose
// first message is {"type":"snapshot","jobs":[...]} and whose later
// messages {"type":"jobs","jobs":[...]} carry the jobs that changed. When
// the WebSocket cannot be had (a proxy refuses upgrades, an older server),
// the feed polls GET /api/jobs instead, and keeps trying the WebSocket now
// and then. Heartbeats (any message, including "[]") keep it alive; silence
// for about two heartbeat intervals drops it.
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
   * @param {number} [o.limit] jobs asked for when polling (default 200)
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
    this.limit = o.limit || 200;
    /** @type {Map<number, object>} */
    this.jobs = new Map();
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

  stop() {
    this.stopped = true;
    this._closeWS();
    this.env.clearTimeout(this.pollTimer);
    this.env.clearTimeout(this.wsTimer);
  }

  /** Applies a message of the stream; returns whether it was understood. */
  apply(msg) {
    if (Array.isArray(msg)) return msg.length === 0; // a heartbeat
    if (!msg || !Array.isArray(msg.jobs)) return false;
    if (msg.type === 'snapshot') this.jobs = new Map();
    else if (msg.type !== 'jobs') return false;
    for (const j of msg.jobs) if (j && typeof j.id === 'number') this.jobs.set(j.id, j);
    this.onJobs(this.jobs);
    return true;
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
      ws = new this.env.WebSocket(`${proto}//${loc.host}/api/stream`);
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
    try {
      const r = await this.env.fetch(`/api/jobs?limit=${this.limit}`, { cache: 'no-store' });
      if (r.ok && this.polling) {
        const body = await r.json();
        if (this.polling) this.apply({ type: 'snapshot', jobs: body.jobs || [] });
        this.onState({ state: 'live', transport: 'polling' });
      } else if (this.polling) this.onState({ state: 'reconnecting', transport: 'polling' });
    } catch {
      if (this.polling) this.onState({ state: 'reconnecting', transport: 'polling' });
    }
    if (this.polling && !this.stopped) this.pollTimer = this.env.setTimeout(() => this._poll(), this.pollMs);
  }
}
