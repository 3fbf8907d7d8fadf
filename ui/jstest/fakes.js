// Fakes of the browser APIs that transport.js and jobsfeed.js take from
// their env: a manual clock, WebSocket, EventSource and fetch. Faults are
// injected by the tests; nothing here is jobrun code.

/** A manual clock: timers fire only when the test advances time. */
export class Clock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
  }

  setTimeout(fn, ms = 0) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  /** Advances time by ms, firing due timers in order (and ones they set). */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
      await flush();
    }
    this.now = end;
    await flush();
  }

  /** The delay of the earliest pending timer, or null. */
  pending() {
    let min = null;
    for (const t of this.timers.values()) if (min === null || t.at - this.now < min) min = t.at - this.now;
    return min;
  }
}

/** Lets promise callbacks run. */
export async function flush() {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Makes a fake WebSocket class whose instances the test drives. */
export function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
    }
    send(s) { this.sent.push(s); }
    close() { this.closed = true; }
    // test side
    open() { this.onopen?.({}); }
    message(data) { this.onmessage?.({ data: typeof data === 'string' ? data : JSON.stringify(data) }); }
    serverClose(code, reason = '') { this.closed = true; this.onclose?.({ code, reason }); }
  }
  return { FakeWebSocket, sockets };
}

/** Makes a fake EventSource class. */
export function fakeEventSource() {
  const sources = [];
  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.closed = false;
      this.listeners = {};
      sources.push(this);
    }
    addEventListener(name, fn) { (this.listeners[name] ||= []).push(fn); }
    close() { this.closed = true; }
    open() { this.onopen?.({}); }
    event(ev) { this.onmessage?.({ data: JSON.stringify(ev), lastEventId: String(ev.seq ?? '') }); }
    named(name) { for (const fn of this.listeners[name] || []) fn({ data: '' }); }
    error() { this.onerror?.({}); }
  }
  return { FakeEventSource, sources };
}

/**
 * A fake fetch: each request is recorded and answered by handler(url, init),
 * which returns {status, body} or a promise of it, or throws (network error).
 */
export function fakeFetch(handler) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    requests.push({ url, init });
    const res = await handler(url, init);
    return {
      status: res.status,
      ok: res.status >= 200 && res.status < 300,
      json: async () => res.body,
    };
  };
  return { fetch, requests };
}

/** A promise that never settles unless the request's signal aborts it. */
export function hang(init) {
  return new Promise((_, reject) => {
    init?.signal?.addEventListener('abort', () => reject(new Error('aborted')));
  });
}

/** Line events seq from..to of one stream, line = seq. */
export function lines(from, to, stream = 'stdout') {
  const out = [];
  for (let s = from; s <= to; s++) out.push({ seq: s, time: `2026-01-01T00:00:${String(s % 60).padStart(2, '0')}Z`, type: 'line', stream, line: s, text: `line ${s}`, eol: '\n' });
  return out;
}
