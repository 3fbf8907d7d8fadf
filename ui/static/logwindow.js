// The part of a job's log the page holds: a window of consecutive pages of
// events (a contiguous seq range), the LogModel built from them, and a
// virtual row space for the whole log around it, so that a virtualized
// viewer can show a log of any length with bounded memory.
//
// - Opening: at the tail (?tail=N), at a line (?line=L, for #L links and
//   jumps), or at the start (?after=0).
// - Growing: loadBefore (?before=firstSeq) and loadAfter (?after=lastSeq)
//   add pages at the edges; pushLive appends the live stream's events while
//   the window reaches the live end ("attached"). While detached, live
//   events are kept in a bounded buffer and the window re-attaches when a
//   loadAfter reaches them.
// - Bounding: trim() drops the pages farthest from what is shown once the
//   window holds more than maxEvents events and rebuilds the model from the
//   rest (a LogModel cannot drop rows); far pages are fetched again when
//   scrolled back to.
// - Virtual rows: rows before the window (`before`) and after it (`after`)
//   are estimates from line numbers (exact at the ends: 0 when the window
//   holds the first event or reaches the live end), scaled by the window's
//   rows per line (two interleaved streams number lines separately; hidden
//   rows count as none). The viewer keeps what it shows in place by
//   anchoring on a row's identity (anchorOf/indexOfAnchor), so that estimates
//   may change under it.
//
// Requests go through fetchEvents(params), params one of {tail}, {after,
// limit}, {before, limit}, {line, limit}, answering the events in seq order.
// A request made before a reopen is ignored when it answers (generation).

import { LogModel } from './logmodel.js';

/** Progress points kept for the chart; older ones are thinned out beyond it. */
const MAX_PROGRESS_POINTS = 2000;

export class LogWindow {
  /**
   * @param {object} o
   * @param {(params: object) => Promise<object[]>} o.fetchEvents
   * @param {number} [o.pageSize] events per request (default 1000)
   * @param {number} [o.maxEvents] events held before trim drops pages (default 30000)
   * @param {number} [o.maxBuffer] live events buffered while detached (default 20000)
   */
  constructor(o) {
    this.fetchEvents = o.fetchEvents;
    this.pageSize = o.pageSize || 1000;
    this.maxEvents = o.maxEvents || 30000;
    this.maxBuffer = o.maxBuffer || 20000;
    /** @type {Set<number>} seqs of group headers the user toggled */
    this.toggled = new Set();
    this.showDirectives = false;
    /** @type {number} the largest line number known in the job */
    this.lastLine = 0;
    /** @type {number} the largest seq known in the job */
    this.lastJobSeq = 0;
    /** @type {{seq: number, time: string, percent: number, message?: string}[]} */
    this.progress = [];
    this._progressSeqs = new Set();
    this.exit = null;
    this.gen = 0;
    this._reset([], false, false);
  }

  _reset(events, atStart, attached) {
    this.pages = [];
    this.model = new LogModel();
    this.events = 0;
    this.atStart = atStart;
    this.attached = attached;
    this.before = 0;
    this.buffer = [];
    this.bufferFrom = Infinity; // the buffer holds every live event with seq >= bufferFrom
    this._addPage(events, false);
    this._view();
  }

  _view() {
    const t = this.toggled;
    this.view = this.model.visibleRows((g) => g.collapsedByDefault !== t.has(g.seq), { showDirectives: this.showDirectives });
  }

  /** Notes what events tell about the whole job (lines, progress, exit). */
  _note(events) {
    for (const ev of events) {
      if (typeof ev.seq !== 'number') continue;
      if (ev.seq > this.lastJobSeq) this.lastJobSeq = ev.seq;
      if (ev.type === 'line' && ev.line > this.lastLine) this.lastLine = ev.line;
      else if (ev.type === 'progress' && typeof ev.percent === 'number' && !this._progressSeqs.has(ev.seq)) {
        this._progressSeqs.add(ev.seq);
        this.progress.push({ seq: ev.seq, time: ev.time, percent: ev.percent, message: ev.message });
        if (this.progress.length > 1 && this.progress[this.progress.length - 2].seq > ev.seq) {
          this.progress.sort((a, b) => a.seq - b.seq);
        }
        if (this.progress.length > MAX_PROGRESS_POINTS) this._thinProgress();
      } else if (ev.type === 'exit') this.exit = ev;
    }
  }

  _thinProgress() {
    const keep = this.progress.filter((_, i) => i % 2 === 0 || i === this.progress.length - 1);
    this.progress = keep;
    this._progressSeqs = new Set(keep.map((p) => p.seq));
  }

  /** Adds a page at the back (push) or front (prepend) of the model. */
  _addPage(events, front) {
    if (!events.length) return { added: 0 };
    this._note(events);
    if (front) {
      this.pages.unshift({ events });
      this.events += events.length;
      return this.model.prepend(events);
    }
    this.pages.push({ events });
    this.events += events.length;
    return this.model.push(events);
  }

  /** @returns {number} visible rows held */
  get count() {
    return this.view.count;
  }

  /** @returns {number} estimated rows after the window (0 when attached) */
  get after() {
    if (this.attached) return 0;
    const last = this._edgeLine(-1);
    if (last === null) return 0;
    return Math.max(0, Math.round((this.lastLine - last) * this.density()));
  }

  /** @returns {number} the virtual row count of the whole log */
  get total() {
    return this.before + this.count + this.after;
  }

  /** Visible rows per line number in the window (1 for one stream without hidden rows). */
  density() {
    const n = this.count;
    const a = this._edgeLine(0);
    const b = this._edgeLine(-1);
    if (!n || a === null || b === null || b <= a) return 1;
    return Math.min(8, Math.max(0.01, n / (b - a + 1)));
  }

  /** The line of the first (0) or last (-1) visible row, or null. */
  _edgeLine(which) {
    const n = this.count;
    if (!n) return null;
    return this.view.row(which < 0 ? n - 1 : 0).line;
  }

  /** The model's first and last seq, or null. */
  get firstSeq() { return this.model.firstSeq; }
  get lastSeq() { return this.model.lastSeq; }

  /** @param {number} v a window-local visible index */
  row(v) {
    return this.view.row(v);
  }

  /** A row's identity across rebuilds. @param {number} v */
  anchorOf(v) {
    const r = this.view.row(v);
    return r ? { seq: r.firstSeq, stream: r.stream } : null;
  }

  /**
   * The window-local visible index of the row an anchor names, or of the
   * nearest row when it is gone or hidden; -1 when the window is empty.
   */
  indexOfAnchor(a) {
    const n = this.count;
    if (!n || !a) return -1;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.view.row(mid).firstSeq < a.seq) lo = mid + 1;
      else hi = mid;
    }
    // Rows are in firstSeq order except around merged rows: look nearby.
    for (let d = 0; d < 64; d++) {
      for (const v of [lo + d, lo - d]) {
        const r = v >= 0 && v < n ? this.view.row(v) : null;
        if (r && r.firstSeq === a.seq && r.stream === a.stream) return v;
      }
    }
    return Math.min(lo, n - 1);
  }

  /**
   * The window-local visible index of the first row showing line `line`
   * (of `stream`, or stdout/tty before stderr when omitted), or -1.
   */
  indexOfLine(line, stream) {
    const n = this.count;
    let other = -1;
    for (let v = 0; v < n; v++) {
      const r = this.view.row(v);
      if (r.line !== line) continue;
      if (stream ? r.stream === stream : r.stream !== 'stderr') return v;
      if (other < 0) other = v;
    }
    return stream ? -1 : other;
  }

  /**
   * Like indexOfLine, but finds the line in the held rows even inside a
   * collapsed group, and expands the groups around it.
   */
  showLine(line, stream) {
    const v = this.indexOfLine(line, stream);
    if (v >= 0) return v;
    let i = this.model.findLine(line, stream);
    if (i < 0 && !stream) i = this.model.findLine(line);
    if (i < 0) return -1;
    this.reveal(i);
    return this.view.indexOf(i);
  }

  /** Whether line `line` falls inside the window's line range. */
  holdsLine(line) {
    const a = this._edgeLine(0);
    const b = this._edgeLine(-1);
    return a !== null && line >= a && line <= b;
  }

  _estimateBefore() {
    if (this.atStart) return 0;
    const first = this._edgeLine(0);
    return first === null ? 0 : Math.max(0, Math.round((first - 1) * this.density()));
  }

  /**
   * Whether a forward read ends at the last event known: an answer may hold
   * fewer events than asked (a byte bound), so only an empty answer or the
   * last known seq says so.
   */
  _reachesEnd(events) {
    return !events.length || events[events.length - 1].seq >= this.lastJobSeq;
  }

  async _fetch(params) {
    const gen = this.gen;
    const events = await this.fetchEvents(params);
    return gen === this.gen ? events.filter((e) => e && typeof e.seq === 'number') : null;
  }

  /** Opens at the last pageSize events; the window is attached to the live end. */
  async openTail() {
    this.gen++;
    const events = await this._fetch({ tail: this.pageSize });
    if (!events) return false;
    this._reset(events, !events.length || events[0].seq === 1, true);
    this.before = this._estimateBefore();
    return true;
  }

  /** Opens at the first event. */
  async openStart() {
    this.gen++;
    const events = await this._fetch({ after: 0, limit: this.pageSize });
    if (!events) return false;
    const end = this._reachesEnd(events); // before the events raise lastJobSeq
    this._reset(events, true, end);
    this.before = 0;
    return true;
  }

  /**
   * Opens at visual line `line`, with `context` lines above it.
   * @param {number} line @param {number} [context]
   */
  async openAtLine(line, context = 200) {
    if (line <= 1) return this.openStart();
    this.gen++;
    const from = Math.max(1, Math.floor(line - context));
    const events = await this._fetch({ line: from, limit: this.pageSize });
    if (!events) return false;
    if (!events.length) return this.openTail();
    const end = this._reachesEnd(events);
    this._reset(events, events[0].seq === 1, end);
    this.before = this._estimateBefore();
    return true;
  }

  /**
   * Loads the page before the window.
   * @returns {Promise<number>} visible rows added at the front (0: none, or at the start)
   */
  async loadBefore() {
    if (this.atStart || this.firstSeq === null) return 0;
    const first = this.firstSeq;
    const events = await this._fetch({ before: first, limit: this.pageSize });
    if (!events || this.firstSeq !== first) return 0;
    const older = events.filter((e) => e.seq < first);
    const n0 = this.count;
    if (older.length) {
      this._addPage(older, true);
      this._view(); // a prepend may restructure groups
    }
    if (!older.length || older[0].seq === 1) {
      this.atStart = true;
      this.before = 0;
    }
    const added = this.count - n0;
    if (!this.atStart) this.before = Math.max(0, this.before - added);
    return added;
  }

  /**
   * Loads the page after the window (detached only); re-attaches when it
   * reaches the buffered live events.
   * @returns {Promise<number>} visible rows added
   */
  async loadAfter() {
    if (this.attached) return 0;
    const last = this.lastSeq ?? 0;
    const events = await this._fetch({ after: last, limit: this.pageSize });
    if (!events || (this.lastSeq ?? 0) !== last || this.attached) return 0;
    const n0 = this.count;
    const newer = events.filter((e) => e.seq > last);
    const end = this._reachesEnd(newer);
    if (newer.length) this._addPage(newer, false);
    if (end) this._attach();
    return this.count - n0;
  }

  /** Appends the buffered live events when they continue the window. */
  _attach() {
    const last = this.lastSeq ?? 0;
    if (this.buffer.length && this.bufferFrom > last + 1) return; // a hole: load more first
    const rest = this.buffer.filter((e) => e.seq > last);
    this.buffer = [];
    this.bufferFrom = Infinity;
    this.attached = true;
    if (rest.length) this._push(rest);
  }

  _push(events) {
    this._note(events);
    const lastPage = this.pages[this.pages.length - 1];
    if (lastPage && lastPage.events.length < this.pageSize) {
      for (const e of events) lastPage.events.push(e);
    } else this.pages.push({ events: events.slice() });
    this.events += events.length;
    const res = this.model.push(events);
    if (res.restructured) this._view();
    return res;
  }

  /**
   * Takes the live stream's events.
   * @param {object[]} events in seq order
   * @returns {number} visible rows added to the window
   */
  pushLive(events) {
    if (!events.length) return 0;
    if (!this.attached) {
      this._note(events);
      if (this.bufferFrom === Infinity) this.bufferFrom = events[0].seq;
      for (const e of events) this.buffer.push(e);
      if (this.buffer.length > this.maxBuffer) {
        // Keep the newest half; what is dropped is stored and loadAfter fetches it.
        this.buffer = this.buffer.slice(this.buffer.length - (this.maxBuffer >> 1));
        this.bufferFrom = this.buffer[0].seq;
      }
      return 0;
    }
    const n0 = this.count;
    this._push(events);
    return this.count - n0;
  }

  /**
   * Drops pages far from the visible rows [a, b] (window-local) when the
   * window holds more than maxEvents events, and rebuilds the model.
   * @returns {boolean} whether anything was dropped
   */
  trim(a, b) {
    if (this.events <= this.maxEvents || this.pages.length < 3) return false;
    const lo = this.view.row(Math.max(0, a))?.firstSeq ?? 0;
    const hi = this.view.row(Math.min(this.count - 1, b))?.lastSeq ?? Infinity;
    const keep = this.maxEvents / 2;
    let events = this.events;
    let dropFront = 0;
    let dropBack = 0;
    // Drop from the end farther from the visible rows first.
    while (events > keep && this.pages.length - dropFront - dropBack > 2) {
      const front = this.pages[dropFront];
      const back = this.pages[this.pages.length - 1 - dropBack];
      const frontFar = front.events[front.events.length - 1].seq < lo;
      const backFar = back.events[0].seq > hi;
      if (!frontFar && !backFar) break;
      const frontDist = lo - front.events[front.events.length - 1].seq;
      const backDist = back.events[0].seq - hi;
      if (frontFar && (!backFar || frontDist >= backDist)) {
        events -= front.events.length;
        dropFront++;
      } else {
        events -= back.events.length;
        dropBack++;
      }
    }
    if (!dropFront && !dropBack) return false;
    const n0 = this.count;
    const firstKept = this.pages[dropFront].events[0];
    const oldIndexOfFirst = dropFront ? this.indexOfAnchor({ seq: firstKept.seq, stream: firstKept.stream }) : 0;
    const pages = this.pages.slice(dropFront, this.pages.length - dropBack);
    const atStart = this.atStart && !dropFront;
    const attached = this.attached && !dropBack;
    const before = this.before;
    this.model = new LogModel();
    this.pages = [];
    this.events = 0;
    for (const p of pages) {
      this.pages.push(p);
      this.events += p.events.length;
      this.model.push(p.events);
    }
    this.atStart = atStart;
    if (!attached && this.attached) {
      this.buffer = [];
      this.bufferFrom = Infinity;
    }
    this.attached = attached;
    this._view();
    this.before = atStart ? 0 : before + Math.max(0, dropFront ? oldIndexOfFirst : 0);
    void n0;
    return true;
  }

  /** Shows or hides directive and marker rows. */
  setShowDirectives(show) {
    this.showDirectives = !!show;
    this._view();
  }

  /** Collapses or expands the group whose header is row v. */
  toggleGroup(v) {
    const g = this.view.row(v)?.groupHeader;
    if (!g) return;
    if (this.toggled.has(g.seq)) this.toggled.delete(g.seq);
    else this.toggled.add(g.seq);
    this._view();
  }

  /** Whether the group of header row r is collapsed. */
  isCollapsed(g) {
    return g.collapsedByDefault !== this.toggled.has(g.seq);
  }

  /** Expands every group holding model row i (to show a search hit). */
  reveal(i) {
    let changed = false;
    for (const id of this.model.groupPath(i)) {
      const g = this.model.group(id);
      if (this.isCollapsed(g)) {
        if (this.toggled.has(g.seq)) this.toggled.delete(g.seq);
        else this.toggled.add(g.seq);
        changed = true;
      }
    }
    if (changed) this._view();
  }
}
