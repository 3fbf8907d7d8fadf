// Searching the whole log, for the job page. The server searches (GET
// /api/jobs/{ref}/search, docs/protocol.md): each request reads as much of
// the log as its budget allows and answers how far it got; this module
// follows the cursors, so a search covers a log of any length.
//
// - start(query, opts) begins a search (each keystroke does): it aborts the
//   one before, and counts the matches of the whole log in the background,
//   "N+" while counting, N at the end.
// - find(dir, from) looks for the next match after seq `from` (dir 1) or
//   the previous one before it (dir -1), request after request, wrapping
//   around the log's end once. It resolves to the match, to null when the
//   log has none, or to undefined when another find or search took over.
//
// Every request carries an AbortSignal: a new search aborts the running
// count and find, a new find the running find, and the server stops
// reading when its request is aborted. The fetch and the state callback are
// passed in, so node tests drive this with fakes.

/** A before= past the end of any log: a backward search from the end. */
export const END = Number.MAX_SAFE_INTEGER;

/** A signal aborted when either a or b is. */
function either(a, b) {
  const c = new AbortController();
  const abort = () => c.abort();
  if (a.aborted || b.aborted) abort();
  a.addEventListener('abort', abort, { once: true });
  b.addEventListener('abort', abort, { once: true });
  return c.signal;
}

export class LogSearch {
  /**
   * @param {object} o
   * @param {(params: object, signal: AbortSignal) => Promise<object>} o.fetchSearch
   *   one request: resolves to the answer, rejects on errors (the server's
   *   message as the error's message)
   * @param {(s: LogSearch) => void} [o.onChange] the state below changed
   */
  constructor(o) {
    this.fetchSearch = o.fetchSearch;
    this.onChange = o.onChange || (() => {});
    this._reset('', {});
  }

  _reset(query, opts) {
    /** @type {string} */
    this.query = query;
    /** @type {{regex?: boolean, case?: boolean, directives?: boolean}} */
    this.opts = { ...opts };
    /** @type {number} matches counted so far */
    this.count = 0;
    /** @type {number|null} the matches of the whole log, once counted */
    this.total = null;
    /** @type {number} how much of the log is counted, 0..1 */
    this.counted = 0;
    /** @type {number|null} how far the running find got, 0..1; null: none runs */
    this.finding = null;
    /** @type {boolean} the last find found nothing */
    this.none = false;
    /** @type {string} why the search failed (a bad regular expression...) */
    this.error = '';
  }

  /** Starts a search for query (empty: none), aborting the running one. */
  start(query, opts = {}) {
    this.stop();
    this._reset(query, opts);
    if (query) {
      this._ctl = new AbortController();
      this._count(this._ctl.signal);
    }
    this.onChange(this);
  }

  /** Whether a search is started and not stopped (it may have ended). */
  get started() {
    return !!this._ctl;
  }

  /** Aborts what runs. */
  stop() {
    this._ctl?.abort();
    this._findCtl?.abort();
    this._ctl = this._findCtl = null;
  }

  _params(p) {
    const q = { q: this.query, ...p };
    for (const k of ['regex', 'case', 'directives']) if (this.opts[k]) q[k] = '1';
    return q;
  }

  async _count(signal) {
    let after = 0;
    try {
      for (;;) {
        const res = await this.fetchSearch(this._params({ after, limit: 0 }), signal);
        if (signal.aborted) return;
        this.count += res.count;
        this.counted = res.last_seq > 0 ? Math.min(1, res.scanned_to / res.last_seq) : 1;
        if (res.next_after == null) {
          this.total = this.count;
          this.counted = 1;
          this.onChange(this);
          return;
        }
        after = res.next_after;
        this.onChange(this);
      }
    } catch (e) {
      if (signal.aborted) return;
      this.error = e.message || String(e);
      this.onChange(this);
    }
  }

  /**
   * The next (dir 1) or previous (dir -1) match from seq `from` (0, or END
   * backward: from an end of the log).
   * @returns {Promise<object|null|undefined>} the match, null when there is
   *   none, undefined when superseded
   */
  async find(dir, from) {
    if (!this._ctl || this.total === 0) return this.total === 0 ? null : undefined;
    this._findCtl?.abort();
    const ctl = new AbortController();
    this._findCtl = ctl;
    const signal = either(ctl.signal, this._ctl.signal);
    const fwd = dir > 0;
    let cursor = from;
    let wrapped = false;
    this.finding = 0;
    this.none = false;
    this.onChange(this);
    try {
      for (;;) {
        const res = await this.fetchSearch(this._params(fwd ? { after: cursor, limit: 1 } : { before: cursor, limit: 1 }), signal);
        if (signal.aborted) return undefined;
        if (res.matches.length) return res.matches[fwd ? 0 : res.matches.length - 1];
        const next = fwd ? res.next_after : res.next_before;
        // wrapped: the pass from the other end ends where the first began
        const past = wrapped && next != null && (fwd ? next >= from : next <= from);
        if (next != null && !past) {
          cursor = next;
          const done = res.last_seq > 0 ? res.scanned_to / res.last_seq : 1;
          this.finding = Math.min(1, Math.max(0, fwd ? done : 1 - done));
          this.onChange(this);
          continue;
        }
        if (wrapped || (fwd ? from <= 0 : from >= END)) {
          this.none = true;
          return null;
        }
        wrapped = true;
        cursor = fwd ? 0 : END;
      }
    } catch (e) {
      if (signal.aborted) return undefined;
      this.error = e.message || String(e);
      return null;
    } finally {
      if (this._findCtl === ctl) {
        this._findCtl = null;
        this.finding = null;
        this.onChange(this);
      }
    }
  }
}

const fmt = (n) => n.toLocaleString('en-US');

/**
 * The search's status line: where the current match is and how many there
 * are ("line 1,234 · 5 matches"; "1,000+ matches" while counting).
 * @param {LogSearch} s
 * @param {{line: number}|null} hit the match shown
 * @returns {string}
 */
export function searchStatus(s, hit) {
  if (!s.query) return '';
  if (s.error) return `search failed: ${s.error}`;
  if (s.total === 0 || (s.none && s.total === null && s.count === 0)) return 'no matches';
  const parts = [];
  if (s.finding !== null) parts.push(`searching… ${Math.floor(s.finding * 100)}%`);
  else if (hit) parts.push(`line ${fmt(hit.line)}`);
  if (s.total !== null) parts.push(`${fmt(s.total)} match${s.total === 1 ? '' : 'es'}`);
  else if (s.count > 0) parts.push(`${fmt(s.count)}+ matches (${Math.floor(s.counted * 100)}%)`);
  else parts.push(`counting… ${Math.floor(s.counted * 100)}%`);
  return parts.join(' · ');
}
