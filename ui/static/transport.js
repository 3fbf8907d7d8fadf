// The job page's connection to a job's event stream: never miss a line,
// never show one twice, whatever the network does.
//
// - The stream keeps the last seq it delivered (`lastSeq`) and only ever
//   delivers events with a larger seq; every (re)connection asks for
//   after=lastSeq. Out-of-band notices (objects without seq) go to onNotice.
// - Transports, in order: the WebSocket stream; Server-Sent Events
//   (EventSource on /events); long polling (/events?wait=). A transport
//   counts as refused by a proxy when its connection fails before it opens
//   while a plain GET /api/jobs/{ref} succeeds (a server that is down fails
//   both); after REFUSALS_TO_FALL_BACK such refusals the next transport is
//   used for the rest of the page's life.
// - A connection that delivers neither events nor heartbeats for about two
//   heartbeat intervals is dead (laptop sleep, a paused server, a half-open
//   TCP connection): it is dropped without waiting for a close handshake and
//   a new one is opened. A connection attempt that does not open within the
//   same time is abandoned the same way.
// - Retries back off exponentially with jitter: attempt n waits a random
//   time in [d/2, d] with d = min(maxDelay, baseDelay * 2^n); a connection
//   that delivered something resets n.
// - Close codes: 1000 ended; 4404 the job is gone (stop); 4400 a bad request
//   (stop); 4409 start over: lastSeq = 0 and onReset (the page discards what
//   it showed); 4429 resume at once; anything else reconnects with backoff.
//
// Everything the module touches in the browser (WebSocket, EventSource,
// fetch, timers, Math.random, location) comes from `env`, so that Node's
// test runner drives it with fakes.

/** The transports, in fallback order. */
export const TRANSPORTS = ['websocket', 'sse', 'polling'];

/** How many refused connections (server reachable) make the stream fall back. */
export const REFUSALS_TO_FALL_BACK = 2;

/**
 * @typedef {object} StreamState
 * @property {'connecting'|'live'|'reconnecting'|'ended'|'gone'|'error'} state
 * @property {string} transport one of TRANSPORTS
 * @property {number} [attempt] reconnection attempt (reconnecting)
 * @property {number} [delay] ms until the next attempt (reconnecting)
 * @property {string} [reason] why the last connection ended
 */

/**
 * The delay before reconnection attempt n (0-based), with jitter.
 * @param {number} n @param {number} base ms @param {number} max ms @param {() => number} random in [0, 1)
 */
export function backoffDelay(n, base, max, random) {
  const d = Math.min(max, base * 2 ** Math.min(n, 30));
  return Math.round(d / 2 + (d / 2) * random());
}

export class JobStream {
  /**
   * @param {object} o
   * @param {string} o.ref the job's id or uid
   * @param {number} [o.after] deliver events with seq > after (default 0)
   * @param {number} [o.heartbeatMs] the server's heartbeat interval (default 20 s)
   * @param {boolean} [o.collapse] ask for collapse=1 (history skips replaced \r frames)
   * @param {string} [o.transport] start with this transport (default websocket)
   * @param {(events: object[], transport: string) => void} o.onEvents events in seq order, seq > every earlier one
   * @param {(s: StreamState) => void} [o.onState]
   * @param {(notice: object) => void} [o.onNotice]
   * @param {() => void} [o.onReset] the server does not hold what was shown (4409): start over
   * @param {() => void} [o.onUnauthorized] the server wants a credential we do not have (401): the stream has stopped
   * @param {number} [o.baseDelayMs] first backoff step (default 500)
   * @param {number} [o.maxDelayMs] backoff cap (default 15000)
   * @param {object} [o.env] {WebSocket, EventSource, fetch, setTimeout, clearTimeout, random, location}
   */
  constructor(o) {
    const env = o.env || globalThis;
    this.env = {
      WebSocket: env.WebSocket,
      EventSource: env.EventSource,
      fetch: env.fetch?.bind(env),
      setTimeout: env.setTimeout.bind(env),
      clearTimeout: env.clearTimeout.bind(env),
      random: env.random || Math.random,
      location: env.location,
    };
    this.ref = o.ref;
    this.lastSeq = o.after || 0;
    this.heartbeatMs = o.heartbeatMs > 0 ? o.heartbeatMs : 20000;
    this.collapse = !!o.collapse;
    this.onEvents = o.onEvents;
    this.onState = o.onState || (() => {});
    this.onNotice = o.onNotice || (() => {});
    this.onReset = o.onReset || (() => {});
    this.onUnauthorized = o.onUnauthorized || (() => {});
    this.baseDelayMs = o.baseDelayMs ?? 500;
    this.maxDelayMs = o.maxDelayMs ?? 15000;
    this.transport = TRANSPORTS.includes(o.transport) ? o.transport : 'websocket';
    this.refusals = 0; // consecutive refusals of the current transport
    this.attempt = 0; // consecutive failed connections
    this.stopped = false;
    this.conn = null; // the current connection: {close(), opened}
    this.timer = null; // reconnect timer
    this.sawExit = false;
    /** @type {StreamState} */
    this.state = { state: 'connecting', transport: this.transport };
  }

  /** The time without any message after which a connection counts as dead. */
  get deadMs() {
    return 2 * this.heartbeatMs + Math.min(5000, this.heartbeatMs / 2);
  }

  /** Opens the first connection. */
  start() {
    this.stopped = false;
    this._connect();
  }

  /** Closes the connection for good. */
  stop() {
    this.stopped = true;
    this.env.clearTimeout(this.timer);
    this._drop();
  }

  /** Sends a client message over the WebSocket; false when not connected by WebSocket. */
  send(msg) {
    const c = this.conn;
    if (!c || !c.ws || !c.opened) return false;
    try {
      c.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  _setState(state, extra = {}) {
    this.state = { state, transport: this.transport, ...extra };
    this.onState(this.state);
  }

  _path(suffix, params) {
    const q = new URLSearchParams({ after: String(this.lastSeq), ...params });
    if (this.collapse) q.set('collapse', '1');
    return `/api/jobs/${encodeURIComponent(this.ref)}/${suffix}?${q}`;
  }

  /** Delivers events past lastSeq, in order; notices aside. */
  _deliver(events) {
    const fresh = [];
    for (const ev of events) {
      if (!ev || typeof ev !== 'object') continue;
      if (typeof ev.seq !== 'number') {
        this.onNotice(ev);
        continue;
      }
      if (ev.seq <= this.lastSeq) continue;
      this.lastSeq = ev.seq;
      if (ev.type === 'exit') this.sawExit = true;
      fresh.push(ev);
    }
    if (fresh.length) {
      this.attempt = 0;
      this.onEvents(fresh, this.transport);
    }
  }

  _connect() {
    if (this.stopped) return;
    this._drop();
    this._setState(this.attempt ? 'reconnecting' : 'connecting', { attempt: this.attempt });
    if (this.transport === 'websocket') this._openWS();
    else if (this.transport === 'sse') this._openSSE();
    else this._poll();
  }

  /** Forgets the current connection: its handlers no longer act. */
  _drop() {
    const c = this.conn;
    this.conn = null;
    if (c) {
      c.dead = true;
      this.env.clearTimeout(c.watchdog);
      try { c.close(); } catch { /* already closed */ }
    }
  }

  /** (Re)arms c's watchdog: no message for deadMs drops it. */
  _arm(c) {
    this.env.clearTimeout(c.watchdog);
    c.watchdog = this.env.setTimeout(() => {
      if (c.dead) return;
      this._lost(c, c.opened ? 'no events or heartbeats' : 'connection attempt timed out');
    }, this.deadMs);
  }

  /** The connection c ended without a verdict: reconnect, or check for a refusal first. */
  _lost(c, reason) {
    if (c.dead || this.stopped) return;
    // The exit event is the last event: once it is here nothing can be
    // missing, whatever ended the connection (a server that shut down
    // right after it, 1001).
    if (this.sawExit) { this._finish('ended', 'job finished'); return; }
    const opened = c.opened;
    this._drop();
    if (opened) {
      this.refusals = 0;
      this._retry(reason);
      return;
    }
    this._probe().then((verdict) => {
      if (this.stopped || this.conn) return;
      if (verdict === 'gone') { this._finish('gone', 'no such job'); return; }
      if (verdict === 'unauthorized') {
        this._finish('error', 'not signed in (the session ended)');
        this.onUnauthorized();
        return;
      }
      if (verdict === 'up') {
        // The server answers plain requests but this transport failed: a
        // proxy in between does not pass it.
        this.refusals++;
        const i = TRANSPORTS.indexOf(this.transport);
        if (this.refusals >= REFUSALS_TO_FALL_BACK && i < TRANSPORTS.length - 1) {
          this.transport = TRANSPORTS[i + 1];
          this.refusals = 0;
          this.attempt = 0;
          this._connect();
          return;
        }
      }
      this._retry(reason);
    });
  }

  /** Asks GET /api/jobs/{ref}: 'up', 'gone', 'unauthorized' or 'down'. */
  async _probe() {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const t = this.env.setTimeout(() => ctl?.abort(), Math.min(10000, this.deadMs));
    try {
      const r = await this.env.fetch(`/api/jobs/${encodeURIComponent(this.ref)}`, { signal: ctl?.signal, cache: 'no-store' });
      if (r.status === 404) return 'gone';
      if (r.status === 401) return 'unauthorized';
      return r.ok ? 'up' : 'down';
    } catch {
      return 'down';
    } finally {
      this.env.clearTimeout(t);
    }
  }

  _retry(reason) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt, this.baseDelayMs, this.maxDelayMs, this.env.random);
    this.attempt++;
    this._setState('reconnecting', { attempt: this.attempt, delay, reason });
    this.env.clearTimeout(this.timer);
    this.timer = this.env.setTimeout(() => this._connect(), delay);
  }

  _finish(state, reason) {
    this._drop();
    this.stopped = true;
    this._setState(state, { reason });
  }

  /** Handles a close code (WebSocket) or its HTTP equivalent. */
  _closed(c, code, reason) {
    if (c.dead) return;
    switch (code) {
      case 1000:
        this._finish('ended', reason || 'job finished');
        return;
      case 4404:
        this._finish('gone', reason || 'no such job');
        return;
      case 4400:
        this._finish('error', reason || 'bad request');
        return;
      case 4409:
        this._drop();
        this.lastSeq = 0;
        this.sawExit = false;
        this.onReset();
        this._connect();
        return;
      case 4429:
        if (this.sawExit) { this._finish('ended', 'job finished'); return; }
        this._drop();
        this.attempt = 0;
        this._connect();
        return;
      default:
        this._lost(c, reason || `closed (${code})`);
    }
  }

  _openWS() {
    const loc = this.env.location;
    const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new this.env.WebSocket(`${proto}//${loc.host}${this._path('stream', {})}`);
    const c = { ws, opened: false, dead: false, watchdog: null, close: () => ws.close() };
    this.conn = c;
    this._arm(c);
    ws.onopen = () => {
      if (c.dead) return;
      c.opened = true;
      this.refusals = 0;
      this._arm(c);
      this._setState('live');
    };
    ws.onmessage = (m) => {
      if (c.dead) return;
      this._arm(c);
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      this._deliver(Array.isArray(msg) ? msg : [msg]);
    };
    ws.onclose = (e) => {
      this.env.clearTimeout(c.watchdog);
      if (c.dead) return;
      // The server closes with 1000 only after the exit event.
      this._closed(c, e.code === 1000 && !this.sawExit && !c.opened ? 1006 : e.code, e.reason);
    };
    ws.onerror = () => {}; // onclose follows
  }

  _openSSE() {
    const es = new this.env.EventSource(this._path('events', {}));
    const c = { es, opened: false, dead: false, watchdog: null, close: () => es.close(), queue: [], flush: null };
    this.conn = c;
    this._arm(c);
    const flush = () => {
      c.flush = null;
      const q = c.queue;
      c.queue = [];
      if (!c.dead) this._deliver(q);
      if (!c.dead && this.sawExit) this._finish('ended', 'job finished');
    };
    es.onopen = () => {
      if (c.dead) return;
      c.opened = true;
      this.refusals = 0;
      this._arm(c);
      this._setState('live');
    };
    es.onmessage = (m) => {
      if (c.dead) return;
      this._arm(c);
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      // Batch the events of one burst: one page update per burst, not per event.
      if (Array.isArray(ev)) c.queue.push(...ev);
      else c.queue.push(ev);
      if (!c.flush) c.flush = this.env.setTimeout(flush, 0);
    };
    es.addEventListener('heartbeat', () => { if (!c.dead) this._arm(c); });
    es.onerror = () => {
      if (c.dead) return;
      if (c.flush) { this.env.clearTimeout(c.flush); flush(); }
      if (c.dead) return;
      // EventSource would reconnect by itself with Last-Event-ID; we do it
      // ourselves, with backoff and the refusal check.
      this._lost(c, c.opened ? 'event stream interrupted' : 'event stream refused');
    };
  }

  _poll() {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const c = { opened: false, dead: false, watchdog: null, close: () => ctl?.abort() };
    this.conn = c;
    const waitS = Math.max(1, Math.min(25, Math.round(this.heartbeatMs / 1000)));
    this._arm(c);
    const url = this._path('events', { wait: `${waitS}s` });
    this.env.fetch(url, { signal: ctl?.signal, cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(async (r) => {
        if (c.dead) return;
        if (r.status === 204) { this._finish('ended', 'job finished'); return; }
        if (r.status === 404) { this._finish('gone', 'no such job'); return; }
        if (r.status === 400) { this._finish('error', 'bad request'); return; }
        if (r.status === 409) { this._closed(c, 4409, 'start over'); return; }
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const body = await r.json();
        if (c.dead) return;
        if (!c.opened) {
          c.opened = true;
          this.refusals = 0;
          this._setState('live');
        }
        this._deliver(Array.isArray(body) ? body : []);
        if (this.sawExit) { this._finish('ended', 'job finished'); return; }
        this.env.clearTimeout(c.watchdog);
        this.conn = null;
        this._poll(); // the next request at once
        // keep showing live between requests
        if (this.conn) this.conn.opened = true;
      })
      .catch((err) => {
        if (c.dead) return;
        this._lost(c, err?.message || 'request failed');
      });
  }
}
