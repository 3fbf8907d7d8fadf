// The log model the job page renders from: line events in, visual rows out,
// built incrementally so that a million-line log costs O(events) in total and
// a virtualized viewer can address rows by index.
//
// Rows. A row is one visual line of one stream (its `line` number, shared by
// the fragments and the \r redraws of that line):
// - a fragment (eol "") is continued by the next event of its stream;
// - a piece ending in "\r" is replaced by the next event of its stream (a
//   progress bar redrawn 10,000 times is one row holding the last frame; the
//   replacement is whole, not a terminal's character-by-character overwrite),
//   except by an empty piece (text ""): that replaces nothing, so the "\n"
//   that a program prints after its last frame (`100%\r`, then `\n`; under
//   a PTY `\r\n`) ends the row with the last frame on it, as a terminal
//   shows it. An empty "" or "\r" piece leaves the replacement pending for
//   the next piece with text;
// - "\n" and "\r\n" end the row.
// A continuation must carry the open row's line number; a different number
// (seq holes with collapse=1) starts a new row. A row stays where its first
// event put it, so a stderr line that arrives while a stdout fragment is open
// comes after the stdout row, which keeps growing in place.
//
// Groups. `::group::name` / `::endgroup::` (GitHub Actions; nested up to
// MAX_GROUP_DEPTH, deeper ones close the innermost first) and Buildkite's
// `--- name` (collapsed), `~~~ name` (collapsed), `+++ name` (expanded) become
// groups; a Buildkite header closes the Buildkite section before it,
// `^^^ +++` expands the current section, and an `::endgroup::` closes the
// innermost GitHub group with whatever was opened inside it (with no GitHub
// group open, it closes the open Buildkite section). The header row carries
// `groupHeader` (the group) and belongs to the enclosing group; `::endgroup::`
// rows belong to the group they close and, like directive rows, are hidden
// unless showDirectives. A row's role is decided by its first piece (ANSI
// stripped), which holds the marker unless a program pauses 100 ms inside it.
//
// Cost. push() is amortised O(events); views (visibleRows) follow it in
// O(new rows), and a directive flag that arrives on a later piece of a row is
// patched into them in place. Only a restructuring (`^^^ +++`, or a prepend
// that moves held rows into groups) makes views rebuild in O(rows).
//
// Starting from the tail. push() may start at any seq. prepend(events) adds
// the events just before the first seq held (older pages). How the boundary
// is stitched:
// - A row that straddles it (the older page's last row of a stream is still
//   open, and the first held row of that stream has the same line number) is
//   merged into the held row, which keeps its place, so every held row's index
//   grows by exactly `added` (when the older page has rows of another stream
//   after the straddling piece, the merged line shows after them): its content
//   is the older pieces followed by the held pieces re-parsed with the older
//   page's ANSI state (or only the held pieces when the older piece ended in
//   "\r" and a held piece has text; with none, the older frame stays), its
//   firstSeq and time are the older ones, and a group role (header
//   or ::endgroup::) of the older row moves to it. A role the held row got
//   from its mid-line piece is dropped; its group becomes `headerless`.
// - Groups still open at the end of the older page adopt the held rows and
//   groups that were at top level, until the held log closes them (an
//   unmatched ::endgroup:: or a top-level Buildkite header); if it never does,
//   rows pushed later go into them too.
// - SGR state set in the older page carries only into the straddling row;
//   later held rows keep the rendering they got (re-parsing them would cost
//   O(rows) per page).

import { INITIAL_STATE, endLine, parseAnsi, sameStyle, spansText } from './ansi.js';

/** The deepest nesting of groups; a deeper `::group::` first closes the innermost one. */
export const MAX_GROUP_DEPTH = 16;

const GH_GROUP = /^::group::(.*)$/s;
const GH_END = /^::endgroup::\s*$/s;
const BK_HEADER = /^(---|\+\+\+|~~~) +(\S.*)$/s;
const BK_EXPAND = /^\^\^\^ \+\+\+\s*$/s;

/**
 * A collapsible group. `parent` is the enclosing group's id or null. A group
 * whose header row was lost in a boundary merge is `headerless` and never
 * collapses (nobody could expand it).
 */
export class Group {
  /** @param {number} id @param {string} name @param {'github'|'buildkite'} dialect
   *  @param {boolean} collapsedByDefault @param {number|null} parent */
  constructor(id, name, dialect, collapsedByDefault, parent) {
    this.id = id;
    this.name = name;
    this.dialect = dialect;
    this.collapsedByDefault = collapsedByDefault;
    this.parent = parent;
    this.headerless = false;
    /** @type {number} the first seq of the header row: a group's identity across
     *  models built from different pages of one log (group ids are per model) */
    this.seq = 0;
  }
}

/**
 * One visual row. Treat as read-only: the model updates an open row in place
 * (lastSeq changes whenever its content does).
 */
export class Row {
  /** @param {object} ev the row's first line event @param {import('./ansi.js').Span[]} spans */
  constructor(ev, spans) {
    /** @type {number} the visual line number (event.line) */
    this.line = ev.line;
    /** @type {string} stdout, stderr or tty */
    this.stream = ev.stream;
    /** @type {import('./ansi.js').Span[]} */
    this.spans = spans;
    this.firstSeq = ev.seq;
    this.lastSeq = ev.seq;
    /** @type {string} the time of the row's first event */
    this.time = ev.time;
    this.directive = !!ev.directive;
    /** @type {boolean} an ::endgroup:: or ^^^ +++ marker (hidden like a directive) */
    this.marker = false;
    /** @type {number|null} the innermost group holding the row */
    this.group = null;
    /** @type {Group|null} set on the header row of a group */
    this.groupHeader = null;
    /** @type {null|'github'|'buildkite'|'expand'} what this top-level row did to groups
     *  that may have been opened before the first held event (see prepend) */
    this.orphan = null;
    /** @type {number} stable position: index = model's front length + key */
    this.key = 0;
  }

  /** @returns {string} the row's text with escapes stripped */
  get text() {
    return spansText(this.spans);
  }
}

function appendSpans(dst, src) {
  for (const sp of src) {
    const last = dst[dst.length - 1];
    if (last && last.href === sp.href && sameStyle(last.style, sp.style)) last.text += sp.text;
    else dst.push(sp);
  }
}

/** Builds rows from events in seq order into `out`; one for push, a fresh one per prepend. */
class Builder {
  constructor(model, out, live) {
    this.model = model;
    this.out = out;
    this.live = live;
    this.streams = new Map(); // stream -> {row: the open row or null, replace: after \r, ansi: state}
    this.stack = []; // open groups, outermost first
    this.head = live ? model._head : new Map(); // stream -> {row, pieces, replaced}: its first row's raw text
    this.pushStart = Infinity;
    this.touched = null;
  }

  restructure() {
    if (this.live) this.model._epoch++;
  }

  /** Notes that a built row's directive flag changed (views update it in place). */
  flip(row) {
    if (this.live) this.model._flips.push(row.key);
  }

  add(ev) {
    const s = ev.stream;
    const text = typeof ev.text === 'string' ? ev.text : '';
    const eol = ev.eol === '' || ev.eol === '\r' ? ev.eol : '\n';
    let o = this.streams.get(s);
    if (!o) this.streams.set(s, (o = { row: null, replace: false, ansi: INITIAL_STATE }));
    const { spans, state } = parseAnsi(text, o.ansi);
    o.ansi = eol === '' ? state : endLine(state);
    let row = o.row;
    let pending = false; // an empty piece keeps a "\r" replacement pending
    if (row && row.line === ev.line) {
      const h = this.head.get(s);
      const dir = !!ev.directive;
      if (o.replace && text === '') {
        // Replaces nothing: the last frame stays (see the file comment).
        pending = true;
      } else if (o.replace) {
        row.spans = spans;
        if (row.directive !== dir) { row.directive = dir; this.flip(row); }
        if (h && h.row === row) { h.replaced = true; h.pieces = []; }
      } else {
        appendSpans(row.spans, spans);
        if (dir && !row.directive) { row.directive = true; this.flip(row); }
        if (h && h.row === row && !h.replaced) h.pieces.push(text);
      }
      row.lastSeq = ev.seq;
      if (this.touched && row.key < this.pushStart) this.touched.add(row);
    } else {
      row = new Row(ev, spans);
      row.key = this.out.length;
      this.classify(row);
      if (row.group === null && this.live) this.model._lastTopKey = row.key;
      this.out.push(row);
      if (!this.head.has(s)) this.head.set(s, { row, pieces: [text], replaced: false });
    }
    o.row = eol === '\n' ? null : row;
    o.replace = eol === '\r' || (pending && eol === '');
  }

  /** Gives a new row its group role and membership. */
  classify(row) {
    const stack = this.stack;
    const top = () => (stack.length ? stack[stack.length - 1].id : null);
    const t = spansText(row.spans);
    const c = t.charCodeAt(0);
    let m;
    if (c === 0x3a && (m = GH_GROUP.exec(t))) {
      if (stack.length >= MAX_GROUP_DEPTH) stack.pop();
      this.openGroup(row, m[1].trim(), 'github', true);
    } else if (c === 0x3a && GH_END.test(t)) {
      row.marker = true;
      let i = stack.length - 1;
      while (i >= 0 && stack[i].dialect !== 'github') i--;
      if (i >= 0) {
        row.group = stack[i].id;
        stack.length = i;
      } else {
        // Only a Buildkite section can be open: this closes it too.
        stack.length = 0;
        row.orphan = 'github';
      }
    } else if ((c === 0x2d || c === 0x2b || c === 0x7e) && (m = BK_HEADER.exec(t))) {
      if (stack.length && stack[stack.length - 1].dialect === 'buildkite') stack.pop();
      else if (!stack.length) row.orphan = 'buildkite';
      if (stack.length >= MAX_GROUP_DEPTH) stack.pop();
      this.openGroup(row, m[2].trim(), 'buildkite', m[1] !== '+++');
    } else if (c === 0x5e && BK_EXPAND.test(t)) {
      row.marker = true;
      row.group = top();
      const g = stack[stack.length - 1];
      if (!g) row.orphan = 'expand';
      else if (g.dialect === 'buildkite' && g.collapsedByDefault) { g.collapsedByDefault = false; this.restructure(); }
    } else {
      row.group = top();
    }
  }

  openGroup(row, name, dialect, collapsed) {
    const parent = this.stack.length ? this.stack[this.stack.length - 1].id : null;
    const g = new Group(this.model._nextGroup++, name, dialect, collapsed, parent);
    g.seq = row.firstSeq;
    this.model._groups.set(g.id, g);
    row.group = parent;
    row.groupHeader = g;
    this.stack.push(g);
  }
}

/**
 * The rows of one job's log.
 *
 * Index-based access (`rowCount`, `row(i)`) covers every row, hidden or not;
 * `visibleRows()` gives the rows a viewer shows. Indices shift by `added`
 * after prepend(); push() only appends.
 */
export class LogModel {
  constructor() {
    this._front = []; // rows before the first pushed one, in reverse order (row 0 is last)
    this._back = []; // rows from push(), in order
    this._groups = new Map();
    this._nextGroup = 1;
    this._head = new Map();
    this._lastTopKey = null; // key of the last row at top level, bounds the adoption scan
    this._epoch = 0; // bumped when rows already built change group structure: views rebuild
    this._flips = []; // keys of built rows whose directive flag changed: views patch them
    this._live = new Builder(this, this._back, true);
    /** @type {number|null} the smallest seq held */
    this.firstSeq = null;
    /** @type {number|null} the largest seq held */
    this.lastSeq = null;
    /** @type {object|null} the exit event, once seen */
    this.exit = null;
  }

  /** @returns {number} the number of rows, hidden ones included */
  get rowCount() {
    return this._front.length + this._back.length;
  }

  /** @param {number} i @returns {Row|undefined} */
  row(i) {
    const f = this._front.length;
    return i < f ? this._front[f - 1 - i] : this._back[i - f];
  }

  /** @param {number} id @returns {Group|undefined} */
  group(id) {
    return this._groups.get(id);
  }

  /**
   * The groups holding row i, outermost first (to expand before showing it).
   * @param {number} i @returns {number[]}
   */
  groupPath(i) {
    const path = [];
    for (let id = this.row(i)?.group ?? null; id !== null; id = this._groups.get(id).parent) path.unshift(id);
    return path;
  }

  /**
   * Appends events in seq order. Events at or below lastSeq are skipped (a
   * resumed stream may repeat some), so are objects without seq (notices).
   * @param {object[]} events
   * @returns {{added: number, changed: number[], restructured: boolean}} rows
   *   appended, indices of earlier rows whose content changed (open fragments
   *   and \r rows), and whether group structure changed (`^^^ +++`)
   */
  push(events) {
    const b = this._live;
    const start = this._back.length;
    const epoch = this._epoch;
    b.pushStart = start;
    b.touched = new Set();
    for (const ev of events) {
      if (!ev || typeof ev.seq !== 'number') continue;
      if (this.lastSeq !== null && ev.seq <= this.lastSeq) continue;
      if (this.firstSeq === null) this.firstSeq = ev.seq;
      this.lastSeq = ev.seq;
      if (ev.type === 'line') b.add(ev);
      else if (ev.type === 'exit') this.exit = ev;
    }
    const changed = [...b.touched].map((r) => this._front.length + r.key);
    b.touched = null;
    return { added: this._back.length - start, changed, restructured: epoch !== this._epoch };
  }

  /**
   * Adds the events just before the first seq held, in seq order (an older
   * page); events at or after firstSeq are skipped. See the file comment for
   * how rows straddling the boundary merge.
   * @param {object[]} events
   * @returns {{added: number, changed: number[], restructured: boolean}} rows
   *   added at the front (every earlier index grows by it), indices (after the
   *   shift) of held rows that changed, and whether rows already built changed
   *   group or visibility (views rebuild themselves; a viewer re-renders)
   */
  prepend(events) {
    if (this.firstSeq === null) return this.push(events);
    const first = this.firstSeq;
    const rows = [];
    const b = new Builder(this, rows, false);
    let minSeq = null;
    for (const ev of events) {
      if (!ev || typeof ev.seq !== 'number' || ev.seq >= first) continue;
      if (minSeq === null) minSeq = ev.seq;
      if (ev.type === 'line') b.add(ev);
    }
    if (minSeq === null) return { added: 0, changed: [], restructured: false };
    this.firstSeq = minSeq;
    let restructured = b.stack.length ? this._adopt(b.stack.slice()) : false;

    // Stitch rows that straddle the boundary, and hand open rows and ANSI
    // state to the live builder for streams it has not seen.
    const drop = new Set();
    const merged = [];
    for (const [s, o] of b.streams) {
      const h = this._head.get(s);
      if (!h) {
        this._live.streams.set(s, o);
        this._head.set(s, b.head.get(s));
        continue;
      }
      const bh = b.head.get(s);
      if (o.row && h.row.line === o.row.line) {
        // After the older "\r", the held row replaces the older frame when
        // it has text; when all its pieces are empty, the older frame stays
        // and a replacement is still pending for the next piece with text.
        const replaces = o.replace && (h.replaced || h.pieces.some((p) => p !== ''));
        const live = this._live.streams.get(s);
        if (o.replace && !replaces && live && live.row === h.row) live.replace = true;
        restructured = this._merge(o, h, replaces) || restructured;
        drop.add(o.row);
        merged.push(h.row);
        if (bh.row === o.row) {
          // The merged row is now the stream's first row: keep its raw text whole.
          h.replaced = h.replaced || bh.replaced || replaces;
          h.pieces = h.replaced ? [] : bh.pieces.concat(h.pieces);
          continue;
        }
      }
      this._head.set(s, bh);
    }

    const kept = drop.size ? rows.filter((r) => !drop.has(r)) : rows;
    for (let i = kept.length - 1; i >= 0; i--) {
      this._front.push(kept[i]);
      kept[i].key = -this._front.length;
    }
    if (this._lastTopKey === null) {
      for (let i = kept.length - 1; i >= 0; i--) {
        if (kept[i].group === null) { this._lastTopKey = kept[i].key; break; }
      }
    }
    for (const r of merged) {
      if (r.group === null && (this._lastTopKey === null || r.key > this._lastTopKey)) this._lastTopKey = r.key;
    }
    if (restructured) this._epoch++;
    return { added: kept.length, changed: merged.map((r) => this._front.length + r.key), restructured };
  }

  /** Moves held top-level rows and groups into the older page's open groups S. */
  _adopt(S) {
    if (this._lastTopKey === null) {
      this._live.stack = S.concat(this._live.stack);
      return false;
    }
    const end = this._front.length + this._lastTopKey;
    let changed = false;
    for (let i = 0; i <= end && S.length; i++) {
      const row = this.row(i);
      if (row.group !== null) continue;
      changed = true;
      if (row.orphan === 'github') {
        let j = S.length - 1;
        while (j >= 0 && S[j].dialect !== 'github') j--;
        if (j >= 0) {
          row.group = S[j].id;
          row.orphan = null;
        }
        S.length = Math.max(0, j); // still unmatched: it closes everything, as when read in order
        continue;
      }
      if (row.orphan === 'buildkite') {
        if (S[S.length - 1].dialect === 'buildkite') S.pop();
        row.orphan = null;
      } else if (row.orphan === 'expand') {
        const g = S[S.length - 1];
        if (g.dialect === 'buildkite') g.collapsedByDefault = false;
        row.orphan = null;
      }
      const top = S.length ? S[S.length - 1].id : null;
      row.group = top;
      if (row.groupHeader) row.groupHeader.parent = top;
    }
    if (S.length) {
      // Every held top-level row now sits in S; S stays open for later pushes.
      this._live.stack = S.concat(this._live.stack);
      this._lastTopKey = null;
    }
    return changed;
  }

  /**
   * Merges the older page's open row (o: its stream record) into the held
   * head row h; replaces: the held pieces replace the older frame.
   */
  _merge(o, h, replaces) {
    const older = o.row;
    const newer = h.row;
    let restructured = false;
    if (!h.replaced) {
      const tail = parseAnsi(h.pieces.join(''), o.ansi).spans;
      if (replaces) newer.spans = tail;
      else if (o.replace) newer.spans = older.spans;
      else {
        appendSpans(older.spans, tail);
        newer.spans = older.spans;
      }
    }
    newer.firstSeq = older.firstSeq;
    newer.time = older.time;
    if (older.directive && !newer.directive) { newer.directive = true; restructured = true; }
    if (newer.groupHeader) {
      // A marker seen mid-line is no marker: its group loses its header.
      newer.groupHeader.headerless = true;
      newer.groupHeader = null;
      restructured = true;
    }
    if (older.groupHeader || older.marker) {
      newer.groupHeader = older.groupHeader;
      newer.group = older.group;
      newer.orphan = older.orphan;
      restructured = true;
    }
    if (newer.marker !== older.marker) { newer.marker = older.marker; restructured = true; }
    return restructured;
  }

  /**
   * A live view of the rows a viewer shows: rows in collapsed groups and, unless
   * showDirectives, directive and marker rows are left out. The view follows
   * push() and prepend() by itself in amortised O(new rows); only a
   * restructuring (`restructured: true`) makes it rebuild in O(rows). Call
   * visibleRows() again after changing what is collapsed.
   * @param {Set<number>|((g: Group) => boolean)} [collapsed] ids of collapsed
   *   groups, or a predicate; default: each group's collapsedByDefault. A viewer
   *   with a set of toggled ids passes g => g.collapsedByDefault !== toggled.has(g.id).
   * @param {{showDirectives?: boolean}} [opts]
   * @returns {RowView}
   */
  visibleRows(collapsed, { showDirectives = false } = {}) {
    return new RowView(this, collapsed, showDirectives);
  }

  /**
   * Finds the next row whose text (ANSI stripped) contains query, ignoring case.
   * @param {string} query
   * @param {number} [fromRow] the search starts after (before, backward) this row;
   *   default -1 forward (row 0 is first), rowCount backward (the last row is first)
   * @param {number} [direction] 1 forward, -1 backward
   * @param {{showDirectives?: boolean, wrap?: boolean}} [opts] hidden directive
   *   rows are skipped unless showDirectives; wraps around unless wrap is false
   * @returns {number} a row index, or -1
   */
  search(query, fromRow, direction = 1, { showDirectives = false, wrap = true } = {}) {
    const n = this.rowCount;
    if (!query || n === 0) return -1;
    const q = query.toLowerCase();
    const step = direction < 0 ? -1 : 1;
    let i = Number.isFinite(fromRow) ? Math.max(-1, Math.min(n, Math.trunc(fromRow))) : step > 0 ? -1 : n;
    for (let k = 0; k < n; k++) {
      i += step;
      if (i >= n || i < 0) {
        if (!wrap) return -1;
        i = step > 0 ? 0 : n - 1;
      }
      const r = this.row(i);
      if (!showDirectives && (r.directive || r.marker)) continue;
      if (spansText(r.spans).toLowerCase().includes(q)) return i;
    }
    return -1;
  }

  /**
   * The index of the row showing visual line `line` (for #L1234 links), or -1.
   * @param {number} line @param {string} [stream] any stream when omitted
   */
  findLine(line, stream) {
    for (let i = 0, n = this.rowCount; i < n; i++) {
      const r = this.row(i);
      if (r.line === line && (stream === undefined || r.stream === stream)) return i;
    }
    return -1;
  }
}

/**
 * The visible rows of a LogModel, addressed by visible index 0..count-1.
 * Holds one integer per visible row.
 */
export class RowView {
  constructor(model, collapsed, showDirectives) {
    this._m = model;
    this._isCollapsed = typeof collapsed === 'function' ? collapsed
      : collapsed instanceof Set ? (g) => collapsed.has(g.id) : (g) => g.collapsedByDefault;
    this._show = showDirectives;
    this._reset();
  }

  _reset() {
    this._epoch = this._m._epoch;
    this._front = []; // keys of visible front rows, descending
    this._back = []; // keys of visible back rows, ascending
    this._frontSeen = 0;
    this._backSeen = 0;
    this._flipsSeen = this._m._flips.length;
    this._memo = new Map(); // group id -> hidden by a collapsed group (itself or an ancestor)
  }

  _sync() {
    const m = this._m;
    if (this._epoch !== m._epoch) this._reset();
    for (; this._backSeen < m._back.length; this._backSeen++) {
      if (this._visible(m._back[this._backSeen])) this._back.push(this._backSeen);
    }
    for (; this._frontSeen < m._front.length; this._frontSeen++) {
      if (this._visible(m._front[this._frontSeen])) this._front.push(-this._frontSeen - 1);
    }
    for (; this._flipsSeen < m._flips.length; this._flipsSeen++) this._patch(m._flips[this._flipsSeen]);
  }

  /** Re-decides one scanned row; the open rows that flip sit near the end, so splicing is cheap. */
  _patch(key) {
    const back = key >= 0;
    if (back ? key >= this._backSeen : -key - 1 >= this._frontSeen) return; // not scanned yet
    const keys = back ? this._back : this._front;
    // _back ascends, _front descends: search on the distance from the boundary.
    const dist = back ? key : -key - 1;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((back ? keys[mid] : -keys[mid] - 1) < dist) lo = mid + 1;
      else hi = mid;
    }
    const present = keys[lo] === key;
    const visible = this._visible(this._m.row(this._m._front.length + key));
    if (visible && !present) keys.splice(lo, 0, key);
    else if (!visible && present) keys.splice(lo, 1);
  }

  _visible(row) {
    if (!this._show && (row.directive || row.marker)) return false;
    return !this._hidden(row.group);
  }

  _hidden(id) {
    const chain = [];
    let res = false;
    for (let cur = id; cur !== null; cur = this._m._groups.get(cur).parent) {
      const v = this._memo.get(cur);
      if (v !== undefined) { res = v; break; }
      chain.push(cur);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const g = this._m._groups.get(chain[i]);
      res = res || (!g.headerless && !!this._isCollapsed(g));
      this._memo.set(chain[i], res);
    }
    return res;
  }

  _key(v) {
    const f = this._front.length;
    return v < f ? this._front[f - 1 - v] : this._back[v - f];
  }

  /** @returns {number} the number of visible rows */
  get count() {
    this._sync();
    return this._front.length + this._back.length;
  }

  /** @param {number} v a visible index @returns {number} the model row index, or -1 */
  rowIndex(v) {
    if (!(v >= 0 && v < this.count)) return -1;
    return this._m._front.length + this._key(v);
  }

  /** @param {number} v a visible index @returns {Row|undefined} */
  row(v) {
    const i = this.rowIndex(v);
    return i < 0 ? undefined : this._m.row(i);
  }

  /**
   * The visible index of the first visible row at or after model row i
   * (count when none): where to anchor the scroll position.
   * @param {number} i
   */
  lowerBound(i) {
    const key = i - this._m._front.length;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this._key(mid) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** @param {number} i a model row index @returns {number} its visible index, or -1 when hidden */
  indexOf(i) {
    const v = this.lowerBound(i);
    return v < this.count && this._key(v) === i - this._m._front.length ? v : -1;
  }
}
