// The virtualized log viewer: renders only the rows in and near the
// viewport, at a fixed row height, in an absolutely positioned block inside
// a scroller whose spacer is as tall as the whole log (scaled down when the
// log is taller than browsers can lay out). It asks its LogWindow for pages
// as the viewport nears the window's edges, jumps (reopens the window) when
// the viewport lands far from it, and keeps what is shown in place across
// window changes by anchoring on a row's identity.
//
// Follow mode: while the window reaches the live end and the viewport is at
// the bottom, new rows scroll into view; scrolling up pauses that and the
// page shows "jump to latest (N new lines)".
//
// Text is only ever set through text nodes (renderSpans); nothing from the
// log becomes markup or an attribute other than an http(s) href.

import { markSpans, renderSpans } from './ansi.js';

/** Rows rendered beyond each edge of the viewport. */
const OVERSCAN = 60;
/** Rows from a window edge at which the next page is requested. */
const PREFETCH = 300;
/** The tallest spacer, in px (browsers cap layout heights near 2^25 px). */
const MAX_PX = 15_000_000;

export class LogView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.scroller the scrolling element (holds a .spacer and a .rows child)
   * @param {import('./logwindow.js').LogWindow} o.win
   * @param {(state: {following: boolean, newLines: number}) => void} [o.onFollow]
   * @param {(line: number, stream: string) => void} [o.onLineClick]
   */
  constructor(o) {
    this.el = o.scroller;
    this.win = o.win;
    this.onFollow = o.onFollow || (() => {});
    this.doc = this.el.ownerDocument;
    this.spacer = this.el.querySelector('.spacer');
    this.rowsEl = this.el.querySelector('.rows');
    this.rowH = this._measure();
    this.following = true;
    this.newLines = 0;
    this.showTimes = false;
    this.highlight = null; // {seq, stream} of the #L target
    this.hit = null; // {seq, stream, line, matchSeq, ranges} of the current search match (showMatch)
    this.cache = new Map(); // row key -> {el, lastSeq, epoch}
    this.epoch = 0; // bumped when every row must be rebuilt
    this.busy = 0;
    this.frame = 0;
    this.k = 1; // virtual px per scroll px
    this.digits = 0; // the line numbers' width, in digits (--ln-digits)
    this.lastScrollTop = 0;
    /** Set once the first window is open and positioned: until then nothing is loaded on scroll. */
    this.ready = false;
    this.el.addEventListener('scroll', () => this._onScroll(), { passive: true });
    // Intent to read back pauses following at once, before any scroll event.
    this.el.addEventListener('wheel', (e) => { if (e.deltaY < 0) this._pause(); }, { passive: true });
    this.el.addEventListener('keydown', (e) => {
      if (['ArrowUp', 'PageUp', 'Home'].includes(e.key)) this._pause();
    });
    this.rowsEl.addEventListener('click', (e) => this._onClick(e));
    if (typeof ResizeObserver === 'function') new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  _measure() {
    const probe = this.doc.createElement('div');
    probe.className = 'row';
    probe.textContent = 'M';
    this.rowsEl.appendChild(probe);
    const h = probe.getBoundingClientRect().height || 20;
    probe.remove();
    return h;
  }

  /** Renders on the next animation frame. */
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** The virtual px at the top of the viewport. */
  _virtualTop() {
    return this.el.scrollTop * this.k;
  }

  /** Scrolls so that virtual px y is at the top of the viewport. */
  _scrollToVirtual(y) {
    this._layout();
    this.el.scrollTop = Math.max(0, y / this.k);
    this.lastScrollTop = this.el.scrollTop; // as clamped: a later scroll event is not "up"
  }

  /** Sizes the spacer for the current total. */
  _layout() {
    const full = this.win.total * this.rowH;
    const ch = this.el.clientHeight;
    const h = Math.min(full, MAX_PX);
    this.k = full > MAX_PX && MAX_PX > ch ? (full - ch) / (MAX_PX - ch) : 1;
    const px = `${Math.ceil(h)}px`;
    if (this.spacer.style.height !== px) this.spacer.style.height = px;
  }

  /** The visible row at the top of the viewport and its offset, to restore after a change. */
  _anchor() {
    const y = this._virtualTop();
    const v = Math.floor(y / this.rowH);
    const local = Math.min(Math.max(0, v - this.win.before), this.win.count - 1);
    const a = this.win.anchorOf(local);
    if (!a) return null;
    return { a, offset: (this.win.before + local) * this.rowH - y };
  }

  _restore(anchor) {
    if (!anchor) return;
    const local = this.win.indexOfAnchor(anchor.a);
    if (local < 0) return;
    this._scrollToVirtual((this.win.before + local) * this.rowH - anchor.offset);
  }

  /** Whether the viewport shows the end of the log. */
  atBottom() {
    const el = this.el;
    return el.scrollTop + el.clientHeight >= el.scrollHeight - this.rowH / 2;
  }

  scrollToBottom() {
    this._layout();
    this.el.scrollTop = this.el.scrollHeight;
    this.lastScrollTop = this.el.scrollTop;
  }

  /** Re-renders every row (settings changed). */
  refresh() {
    this.epoch++;
    this.render();
  }

  /** Runs a window change that may move rows, keeping the viewport on the same row. */
  async _change(fn) {
    this.busy++;
    this._busyAttr();
    try {
      const anchor = this.following ? null : this._anchor();
      const res = await fn();
      if (this.following && this.win.attached) this.scrollToBottom();
      else this._restore(anchor);
      delete this.el.dataset.error;
      return res;
    } catch (e) {
      this._failed(e);
      return undefined;
    } finally {
      this.busy--;
      this._busyAttr();
      this.schedule();
    }
  }

  /** A page load failed (the server is unreachable): say so and try again soon. */
  _failed(e) {
    this.el.dataset.error = String(e?.message || e);
    setTimeout(() => this.schedule(), 2000);
  }

  /** Notes a window operation in data-ops (the last few), for tests and debugging. */
  _op(name) {
    const ops = (this.el.dataset.ops || '').split(' ').filter(Boolean);
    ops.push(name);
    this.el.dataset.ops = ops.slice(-12).join(' ');
  }

  _busyAttr() {
    this.el.dataset.busy = String(this.busy);
    this.el.setAttribute('aria-busy', this.busy ? 'true' : 'false');
  }

  /** Live events reached the window: show them; follow when following. */
  liveAdded(rows, lines) {
    // The viewport moved up since we last scrolled it, and its scroll event
    // has not come yet: the user is scrolling away, do not snap back.
    if (this.following && this.el.scrollTop < this.lastScrollTop - 1 && !this.atBottom()) this._pause();
    if (this.win.events > this.win.maxEvents) this._trimLive();
    if (this.following && this.win.attached) {
      this.render();
      this.scrollToBottom();
      this.render();
      return;
    }
    if (lines > 0) {
      this.newLines += lines;
      this.onFollow({ following: false, newLines: this.newLines });
    }
    const anchor = this._anchor();
    this._layout();
    if (anchor) this._restore(anchor);
    this.schedule();
  }

  /**
   * Keeps memory bounded while a long job streams in: drops the pages far
   * from the viewport (the oldest ones while following).
   */
  _trimLive() {
    const win = this.win;
    const y = this._virtualTop();
    const a = Math.floor(y / this.rowH) - win.before;
    const b = a + Math.ceil(this.el.clientHeight / this.rowH);
    const anchor = this.following ? null : this._anchor();
    if (!win.trim(Math.max(0, a - OVERSCAN), Math.min(win.count - 1, b + OVERSCAN))) return;
    this._op(`trim:${win.attached ? 'att' : 'det'}`);
    this.cache.clear();
    if (anchor) this._restore(anchor);
  }

  /** Goes to the live end and follows it. */
  async jumpToLatest() {
    this.following = true;
    this.newLines = 0;
    this.onFollow({ following: true, newLines: 0 });
    if (!this.win.attached) {
      this._op('tail');
      await this._change(() => this.win.openTail());
    }
    this.scrollToBottom();
    this.render();
  }

  /**
   * Shows line `line` (of stream, or any) in the middle of the viewport and
   * highlights it, loading the page around it when needed.
   * @returns {Promise<boolean>} whether the line was found
   */
  async goToLine(line, stream) {
    const v = await this._reach(line, stream);
    if (v < 0) return false;
    this.highlight = this.win.anchorOf(v);
    this.showLocal(v);
    return true;
  }

  /**
   * Shows a search match (search.js) like goToLine, as the current hit with
   * its ranges highlighted.
   * @param {{seq: number, line: number, stream: string, ranges: number[][]}} m
   * @returns {Promise<boolean>} whether its line was found
   */
  async showMatch(m) {
    const v = await this._reach(m.line, m.stream);
    if (v < 0) return false;
    // The row's first seq on the page may be later than the match's (the
    // page leaves out replaced frames): the row is known by the page's.
    this.hit = { ...this.win.anchorOf(v), line: m.line, matchSeq: m.seq, ranges: m.ranges };
    this.showLocal(v);
    return true;
  }

  /** The window-local index of line `line`, loading the page around it when needed; -1 when not found. */
  async _reach(line, stream) {
    this._pause();
    let v = this.win.showLine(line, stream);
    if (v < 0) {
      this.busy++;
      this._busyAttr();
      try {
        await this.win.openAtLine(line);
      } catch (e) {
        this._failed(e);
        return -1;
      } finally {
        this.busy--;
        this._busyAttr();
      }
      v = this.win.showLine(line, stream);
    }
    if (v < 0) this.render();
    return v;
  }

  /** The first and last window-local rows in the viewport, or null when it shows none. */
  shownRows() {
    const top = Math.floor(this._virtualTop() / this.rowH) - this.win.before;
    const a = Math.max(0, top);
    const b = Math.min(this.win.count - 1, top + Math.floor(this.el.clientHeight / this.rowH) - 1);
    return a <= b ? [a, b] : null;
  }

  /** Scrolls window-local row v to the middle of the viewport. */
  showLocal(v) {
    const rowsInView = Math.floor(this.el.clientHeight / this.rowH);
    this._scrollToVirtual((this.win.before + v - Math.floor(rowsInView / 2)) * this.rowH);
    this.refresh();
  }

  _pause() {
    if (this.following) {
      this.following = false;
      this.onFollow({ following: false, newLines: this.newLines });
    }
  }

  _onScroll() {
    const top = this.el.scrollTop;
    const up = top < this.lastScrollTop - 1;
    this.lastScrollTop = top;
    if (up && !this.atBottom()) this._pause();
    else if (!this.following && this.win.attached && this.atBottom()) {
      this.following = true;
      this.newLines = 0;
      this.onFollow({ following: true, newLines: 0 });
    }
    this.schedule();
  }

  _onClick(e) {
    const fold = e.target.closest('button.fold');
    if (fold) {
      const rowEl = fold.closest('.row');
      const local = this.win.indexOfAnchor({ seq: Number(rowEl.dataset.seq), stream: rowEl.dataset.stream });
      if (local >= 0) {
        const anchor = this._anchor();
        this.win.toggleGroup(local);
        this._layout();
        this._restore(anchor);
        this.refresh();
        const again = this.rowsEl.querySelector(`.row[data-seq="${rowEl.dataset.seq}"] button.fold`);
        if (again) again.focus();
      }
    }
  }

  /** Renders the rows around the viewport and asks for what is missing. */
  render() {
    const win = this.win;
    this._layout();
    const y = this._virtualTop();
    const first = Math.floor(y / this.rowH);
    const inView = Math.ceil(this.el.clientHeight / this.rowH) + 1;
    const a = first - win.before; // window-local
    const b = a + inView;
    this._need(a, b);
    const from = Math.max(0, a - OVERSCAN);
    const to = Math.min(win.count, b + OVERSCAN);
    const keep = new Set();
    const frag = this.doc.createDocumentFragment();
    for (let v = from; v < to; v++) {
      const row = win.row(v);
      const key = `${row.firstSeq}:${row.stream}`;
      keep.add(key);
      let c = this.cache.get(key);
      if (!c || c.lastSeq !== row.lastSeq || c.epoch !== this.epoch) {
        c = { el: this._rowEl(row, v), lastSeq: row.lastSeq, epoch: this.epoch };
        this.cache.set(key, c);
      }
      frag.appendChild(c.el);
    }
    for (const key of this.cache.keys()) if (!keep.has(key)) this.cache.delete(key);
    this.rowsEl.replaceChildren(frag);
    // The gutter fits the largest line number of the job (so it does not
    // change width while scrolling), or of what is shown.
    let maxLine = win.lastLine || 0;
    if (to > from) maxLine = Math.max(maxLine, win.row(to - 1).line);
    const digits = String(Math.max(1, maxLine)).length;
    if (digits !== this.digits) {
      this.digits = digits;
      this.el.style.setProperty('--ln-digits', String(digits));
    }
    // Place the block: row `from` at its virtual position, in scroll px.
    const top = this.el.scrollTop + ((win.before + from) * this.rowH - y);
    this.rowsEl.style.transform = `translateY(${Math.round(top)}px)`;
    const d = this.el.dataset;
    d.total = String(win.total);
    d.count = String(win.count);
    d.before = String(win.before);
    d.firstSeq = String(win.firstSeq ?? 0);
    d.lastSeq = String(win.lastSeq ?? 0);
    d.attached = String(win.attached);
    d.atStart = String(win.atStart);
  }

  /** Starts the page loads the viewport needs (one at a time). */
  _need(a, b) {
    const win = this.win;
    if (this.busy || !this.ready) return;
    const n = win.count;
    const far = 3 * win.pageSize;
    if (n && (b < -far || a > n + far)) {
      this._op(`jump:${a}:${b}:${n}`);
      this._jump(win.before + a);
    } else if (a < PREFETCH && !win.atStart) {
      this._op('before');
      this._change(async () => {
        await win.loadBefore();
        win.trim(Math.max(0, a + 1000), b + 1000);
      });
    } else if (b > n - PREFETCH && !win.attached) {
      this._op('after');
      this._change(async () => {
        await win.loadAfter();
        win.trim(Math.max(0, a), b);
      });
    } else if (!n && !win.attached) {
      this._change(() => win.loadAfter());
    }
  }

  /** Reopens the window at virtual row `target` (a far scroll, e.g. a dragged scrollbar). */
  async _jump(target) {
    const win = this.win;
    const d = win.density();
    const firstLine = win.count ? win.row(0).line : 1;
    const lastLine = win.count ? win.row(win.count - 1).line : 1;
    const line = target < win.before
      ? Math.round(firstLine - (win.before - target) / d)
      : Math.round(lastLine + (target - win.before - win.count) / d);
    const y = this._virtualTop();
    const offset = target * this.rowH - y;
    this.busy++;
    this._busyAttr();
    try {
      if (line <= 1 || target <= 0) {
        await win.openStart();
        this._scrollToVirtual(0);
      } else if (line >= win.lastLine || target >= win.total - 1) {
        await win.openTail();
        this.scrollToBottom();
      } else {
        await win.openAtLine(line);
        let v = win.indexOfLine(line);
        if (v < 0) v = 0;
        if (!win.atStart) win.before = Math.max(0, target - v);
        this._scrollToVirtual((win.before + v) * this.rowH - offset);
      }
    } catch (e) {
      this._failed(e);
    } finally {
      this.busy--;
      this._busyAttr();
      this.schedule();
    }
  }

  _rowEl(row, v) {
    const doc = this.doc;
    const el = doc.createElement('div');
    let cls = 'row';
    if (row.stream === 'stderr') cls += ' stderr';
    if (row.directive || row.marker) cls += ' directive';
    const depth = this._depth(v);
    el.className = cls;
    el.dataset.line = String(row.line);
    el.dataset.stream = row.stream;
    el.dataset.seq = String(row.firstSeq);
    if (depth) el.style.paddingLeft = `${depth * 1.5}ch`;
    const ln = doc.createElement('a');
    ln.className = 'ln';
    ln.href = `#L${row.line}`; // line numbers are shared by the streams
    ln.textContent = String(row.line);
    el.appendChild(ln);
    if (this.showTimes) {
      const ts = doc.createElement('span');
      ts.className = 'ts';
      ts.textContent = clock(row.time);
      el.appendChild(ts);
    }
    const g = row.groupHeader;
    if (g && !g.headerless) {
      const open = !this.win.isCollapsed(g);
      const b = doc.createElement('button');
      b.type = 'button';
      b.className = 'fold';
      b.setAttribute('aria-expanded', String(open));
      b.setAttribute('aria-label', `${open ? 'Collapse' : 'Expand'} group ${g.name}`);
      b.textContent = open ? '▾' : '▸';
      el.appendChild(b);
      el.classList.add('group');
    }
    const key = { seq: row.firstSeq, stream: row.stream };
    const txt = doc.createElement('span');
    txt.className = 'txt';
    if (g && !g.headerless && !this.win.showDirectives) {
      // A header shows its group's name, not the marker (::group::, ---).
      txt.textContent = g.name || ' ';
    } else {
      const marks = this.hit && same(this.hit, key) ? this.hit.ranges : null;
      txt.appendChild(renderSpans(marks?.length ? markSpans(row.spans, marks) : row.spans, doc));
    }
    el.appendChild(txt);
    if (this.highlight && same(this.highlight, key)) el.classList.add('hl');
    if (this.hit && same(this.hit, key)) el.classList.add('hit');
    return el;
  }

  _depth(v) {
    const i = this.win.view.rowIndex(v);
    if (i < 0) return 0;
    return this.win.model.groupPath(i).length;
  }
}

function same(a, b) {
  return a.seq === b.seq && a.stream === b.stream;
}

/** "HH:MM:SS.mmm" in local time for an RFC 3339 time. */
export function clock(t) {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
