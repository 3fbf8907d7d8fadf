// ANSI rendering of terminal output for the log viewer: one piece of a line
// in, styled spans out. Job output is hostile input, so this module never
// builds markup from text: renderSpans uses textContent-style text nodes only,
// links only to http(s) URLs, and every escape sequence it does not render is
// stripped rather than shown.
//
// Choices (documented because a terminal would not need to make them):
// - C0 controls other than TAB are dropped (not shown as placeholders);
//   BACKSPACE erases the previous character produced by the same parseAnsi
//   call (so "_\bX" overstrike and "|\b/" spinners show their last state).
//   DEL and C1 controls (U+0080..U+009F) are dropped; the 8-bit introducers
//   CSI (U+009B), OSC (U+009D), DCS (U+0090), SOS/PM/APC (U+0098/9E/9F) and
//   ST (U+009C) are honoured like their ESC forms so that their parameters
//   are stripped too.
// - An escape sequence cut at the end of a piece is carried in the state and
//   completed by the next piece (fragments). endLine() abandons it: an escape
//   never spans a line terminator, so a stray "ESC ]" cannot swallow the rest
//   of the log.
// - SGR state (colours, attributes) and an open OSC 8 link carry across
//   pieces and lines, as in a terminal, until reset or closed.
// - Colours: null is the default colour, a number 0..255 a palette index,
//   a string "#rrggbb" a 24-bit colour. Out-of-range palette indices are
//   ignored, out-of-range RGB components clamped to 255; nothing throws.

/**
 * @typedef {null|number|string} Color null = default, 0..255 = palette index, "#rrggbb" = 24-bit.
 * @typedef {{fg: Color, bg: Color, bold: boolean, dim: boolean, italic: boolean,
 *   underline: boolean, inverse: boolean, strike: boolean}} Style
 * @typedef {{text: string, style: Style, href: (string|null)}} Span
 * @typedef {{style: Style, href: (string|null), mode: number, buf: string, over: boolean}} AnsiState
 *   Opaque to callers; immutable: parseAnsi returns a new one.
 */

/** The default style; frozen and shared by every unstyled span. @type {Readonly<Style>} */
export const DEFAULT_STYLE = Object.freeze({
  fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false, strike: false,
});

// Parser modes.
const GROUND = 0, ESC = 1, ESC_INT = 2, CSI = 3, OSC = 4, OSC_ESC = 5, STR = 6, STR_ESC = 7;
const MAX_CSI = 256; // longer parameter strings are consumed but not acted on
const MAX_OSC = 8192; // longer OSC payloads (inline images...) are consumed but not acted on

/** The state before any output. @type {Readonly<AnsiState>} */
export const INITIAL_STATE = Object.freeze({ style: DEFAULT_STYLE, href: null, mode: GROUND, buf: '', over: false });

/**
 * Ends a visual line: abandons an escape sequence still open, keeps colours
 * and links (terminals keep them across newlines).
 * @param {AnsiState} state
 * @returns {AnsiState}
 */
export function endLine(state) {
  if (!state || state.mode === GROUND) return state || INITIAL_STATE;
  return { style: state.style, href: state.href, mode: GROUND, buf: '', over: false };
}

/** The 16 base colours (xterm's defaults); the CSS classes fg-N/bg-N theme them. */
const BASE16 = ['#000000', '#cd0000', '#00cd00', '#cdcd00', '#0000ee', '#cd00cd', '#00cdcd', '#e5e5e5',
  '#7f7f7f', '#ff0000', '#00ff00', '#ffff00', '#5c5cff', '#ff00ff', '#00ffff', '#ffffff'];
let palette = null;

/**
 * The xterm 256-colour palette as "#rrggbb" strings: the 16 base colours,
 * the 6x6x6 cube (levels 0, 95, 135, 175, 215, 255) and 24 greys (8 + 10i).
 * @returns {string[]} a fresh copy, 256 entries
 */
export function xtermPalette() {
  return cachedPalette().slice();
}

function cachedPalette() {
  if (!palette) {
    palette = BASE16.slice();
    const level = (v) => (v ? 55 + 40 * v : 0);
    for (let r = 0; r < 6; r++) for (let g = 0; g < 6; g++) for (let b = 0; b < 6; b++) palette.push(hex(level(r), level(g), level(b)));
    for (let i = 0; i < 24; i++) palette.push(hex(8 + 10 * i, 8 + 10 * i, 8 + 10 * i));
  }
  return palette;
}

function hex(r, g, b) {
  return '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
}

/** A parameter as a number: "" is 0 (as in xterm); digits only reach here. */
function num(s) {
  return s === '' || s === undefined ? 0 : Number(s);
}

function rgb(r, g, b) {
  if (r === undefined || g === undefined || b === undefined) return undefined;
  return hex(...[r, g, b].map((v) => Math.min(255, num(v))));
}

function indexed(n) {
  if (n === undefined) return undefined;
  const v = num(n);
  return v <= 255 ? v : undefined;
}

/**
 * Applies one SGR parameter string (e.g. "1;38;5;196" or "38:2::1:2:3") to style.
 * @param {Style} style @param {string} params @returns {Style}
 */
function applySgr(style, params) {
  const s = { ...style };
  const parts = params.split(';');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    let code;
    let color; // undefined: no colour parsed
    if (p.includes(':')) {
      const sub = p.split(':');
      code = num(sub[0]);
      if (code === 38 || code === 48 || code === 58) {
        if (sub[1] === '5') color = indexed(sub[2]);
        else if (sub[1] === '2') color = sub.length >= 6 ? rgb(sub[3], sub[4], sub[5]) : rgb(sub[2], sub[3], sub[4]);
      } else if (code === 4) {
        s.underline = num(sub[1]) !== 0; // 4:0 is "no underline", 4:1..4:5 are underline styles
        continue;
      }
    } else {
      code = num(p);
      if (code === 38 || code === 48 || code === 58) {
        if (parts[i + 1] === '5') {
          color = indexed(parts[i + 2]);
          i += 2;
        } else if (parts[i + 1] === '2') {
          color = rgb(parts[i + 2], parts[i + 3], parts[i + 4]);
          i += 4;
        }
      }
    }
    if (code === 38 || code === 48) {
      if (color !== undefined) s[code === 38 ? 'fg' : 'bg'] = color;
      continue;
    }
    if (code === 0) Object.assign(s, DEFAULT_STYLE);
    else if (code === 1) s.bold = true;
    else if (code === 2) s.dim = true;
    else if (code === 3) s.italic = true;
    else if (code === 4 || code === 21) s.underline = true;
    else if (code === 7) s.inverse = true;
    else if (code === 9) s.strike = true;
    else if (code === 22) s.bold = s.dim = false;
    else if (code === 23) s.italic = false;
    else if (code === 24) s.underline = false;
    else if (code === 27) s.inverse = false;
    else if (code === 29) s.strike = false;
    else if (code >= 30 && code <= 37) s.fg = code - 30;
    else if (code === 39) s.fg = null;
    else if (code >= 40 && code <= 47) s.bg = code - 40;
    else if (code === 49) s.bg = null;
    else if (code >= 90 && code <= 97) s.fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) s.bg = code - 100 + 8;
    // anything else (blink, conceal, fonts, overline, 58/59 underline colour...) is ignored
  }
  return sameStyle(s, style) ? style : sameStyle(s, DEFAULT_STYLE) ? DEFAULT_STYLE : Object.freeze(s);
}

/** Reports whether two styles render the same. @param {Style} a @param {Style} b */
export function sameStyle(a, b) {
  return a === b || (a.fg === b.fg && a.bg === b.bg && a.bold === b.bold && a.dim === b.dim && a.italic === b.italic &&
    a.underline === b.underline && a.inverse === b.inverse && a.strike === b.strike);
}

/** The href an OSC 8 URI opens: only absolute http(s) URLs, normalised by URL. */
function linkTarget(uri) {
  if (uri === '') return null;
  try {
    const u = new URL(uri);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

// Characters that need the state machine: C0 except TAB, ESC, DEL, C1.
const SPECIAL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

/**
 * Parses one piece of a line of terminal output.
 * @param {string} text the piece (without its line terminator)
 * @param {AnsiState} [state] the state after the previous piece of the same stream
 * @returns {{spans: Span[], state: AnsiState}} spans with non-empty text; adjacent
 *   spans differ in style or href
 */
export function parseAnsi(text, state = INITIAL_STATE) {
  state = state || INITIAL_STATE;
  if (state.mode === GROUND && !SPECIAL.test(text)) {
    return { spans: text === '' ? [] : [{ text, style: state.style, href: state.href }], state };
  }
  let { style, href, mode, buf, over } = state;
  const spans = [];
  let run = ''; // text not yet emitted, in the current style and href
  const flush = () => {
    if (run === '') return;
    const last = spans[spans.length - 1];
    if (last && last.href === href && sameStyle(last.style, style)) last.text += run;
    else spans.push({ text: run, style, href });
    run = '';
  };
  const startString = (m) => { mode = m; buf = ''; over = false; };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    switch (mode) {
      case GROUND: {
        if (c >= 0x20 && c !== 0x7f && (c < 0x80 || c > 0x9f)) {
          // copy the whole run of plain characters at once
          let j = i + 1;
          while (j < text.length) {
            const d = text.charCodeAt(j);
            if ((d < 0x20 && d !== 9) || d === 0x7f || (d >= 0x80 && d <= 0x9f)) break;
            j++;
          }
          run += text.slice(i, j);
          i = j - 1;
        } else if (c === 9) run += '\t';
        else if (c === 0x1b) mode = ESC;
        else if (c === 0x08) {
          flush();
          const last = spans[spans.length - 1];
          if (last) {
            const cut = last.text.length >= 2 && /[\udc00-\udfff]/.test(last.text[last.text.length - 1]) ? 2 : 1;
            last.text = last.text.slice(0, -cut);
            if (last.text === '') spans.pop();
          }
        } else if (c === 0x9b) startString(CSI);
        else if (c === 0x9d) startString(OSC);
        else if (c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f) startString(STR);
        // other C0, DEL and C1 controls are dropped
        break;
      }
      case ESC:
        if (c === 0x5b) startString(CSI); // [
        else if (c === 0x5d) startString(OSC); // ]
        else if (c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) startString(STR); // P X ^ _
        else if (c >= 0x20 && c <= 0x2f) mode = ESC_INT; // e.g. ESC ( B
        else if (c >= 0x30 && c <= 0x7e) mode = GROUND; // e.g. ESC 7, ESC =, ESC c
        else if (c === 0x1b) mode = ESC;
        else if (c === 0x18 || c === 0x1a) mode = GROUND; // CAN, SUB cancel
        else if (c >= 0x20) { mode = GROUND; i--; } // not an escape: show the character
        break;
      case ESC_INT:
        if (c >= 0x30 && c <= 0x7e) mode = GROUND;
        else if (c === 0x1b) mode = ESC;
        else if (c === 0x18 || c === 0x1a) mode = GROUND;
        else if (c > 0x7e) { mode = GROUND; i--; }
        break;
      case CSI:
        if (c >= 0x20 && c <= 0x3f) {
          if (buf.length < MAX_CSI) buf += text[i];
          else over = true;
        } else if (c >= 0x40 && c <= 0x7e) {
          mode = GROUND;
          if (c === 0x6d && !over && /^[0-9;:]*$/.test(buf)) {
            const next = applySgr(style, buf);
            if (next !== style) { flush(); style = next; }
          }
        } else if (c === 0x1b) mode = ESC;
        else if (c === 0x18 || c === 0x1a) mode = GROUND;
        else if (c > 0x7f) { mode = GROUND; i--; } // malformed: the character is text
        break;
      case OSC:
        if (c === 0x07 || c === 0x9c) { mode = GROUND; if (!over) { flush(); href = osc(buf, href); } }
        else if (c === 0x1b) mode = OSC_ESC;
        else if (c === 0x18 || c === 0x1a) mode = GROUND;
        else if (c >= 0x20) { if (buf.length < MAX_OSC) buf += text[i]; else over = true; }
        break;
      case OSC_ESC:
        if (c === 0x5c) { mode = GROUND; if (!over) { flush(); href = osc(buf, href); } } // ESC \ = ST
        else { mode = ESC; i--; } // the OSC is abandoned; the ESC starts a new sequence
        break;
      case STR:
        if (c === 0x9c || c === 0x18 || c === 0x1a) mode = GROUND;
        else if (c === 0x1b) mode = STR_ESC;
        break;
      case STR_ESC:
        if (c === 0x5c) mode = GROUND;
        else { mode = ESC; i--; }
        break;
    }
  }
  flush();
  if (mode === GROUND) buf = '';
  return { spans, state: { style, href, mode, buf, over } };
}

/** Applies an OSC payload; only OSC 8 (hyperlinks) changes anything. */
function osc(payload, href) {
  if (!payload.startsWith('8;')) return href; // titles, OSC 9;4 progress, colours...: stripped
  const semi = payload.indexOf(';', 2);
  if (semi < 0) return href;
  return linkTarget(payload.slice(semi + 1));
}

/**
 * Plain text of spans (the output with every escape stripped).
 * @param {Span[]} spans @returns {string}
 */
export function spansText(spans) {
  if (spans.length === 1) return spans[0].text;
  let s = '';
  for (const sp of spans) s += sp.text;
  return s;
}

/**
 * Splits spans at ranges and marks the parts inside them (`mark: true`), for
 * renderSpans to highlight: the matches of a search, as the server gives
 * them (offsets into spansText, in UTF-16 code units, sorted, not
 * overlapping). Ranges past the text are ignored.
 * @param {Span[]} spans @param {number[][]} ranges [start, end) pairs
 * @returns {(Span & {mark?: boolean})[]}
 */
export function markSpans(spans, ranges) {
  const out = [];
  let pos = 0; // the offset of sp in the text
  let r = 0;
  for (const sp of spans) {
    const end = pos + sp.text.length;
    let at = pos; // what of sp is placed
    while (at < end) {
      while (r < ranges.length && ranges[r][1] <= at) r++;
      const rg = ranges[r];
      if (!rg || rg[0] >= end) {
        out.push(at === pos ? sp : { ...sp, text: sp.text.slice(at - pos) });
        break;
      }
      if (rg[0] > at) {
        out.push({ ...sp, text: sp.text.slice(at - pos, rg[0] - pos) });
        at = rg[0];
      }
      const stop = Math.min(end, rg[1]);
      out.push({ ...sp, text: sp.text.slice(at - pos, stop - pos), mark: true });
      at = stop;
    }
    pos = end;
  }
  return out;
}

/**
 * Builds DOM for spans: text nodes for unstyled text, <span> with classes for
 * attributes and the 16 colours (fg-0..fg-15, bg-0..bg-15, bold, dim, italic,
 * underline, strike; with inverse and a default colour: fg-inverse = the
 * default background as text colour, bg-inverse = the default foreground as
 * background), element.style (CSSOM, allowed by a strict style-src) for 256
 * and 24-bit colours, <a href rel="noopener noreferrer nofollow"
 * target="_blank"> around consecutive spans of one link, and <mark> around
 * marked spans (markSpans). Text is only ever set through text nodes, never
 * parsed as markup.
 * @param {Span[]} spans
 * @param {Document} [doc]
 * @returns {DocumentFragment}
 */
export function renderSpans(spans, doc = globalThis.document) {
  const frag = doc.createDocumentFragment();
  const pal = cachedPalette();
  let link = null; // the <a> of the current run of linked spans
  let linkHref = null;
  for (const sp of spans) {
    let parent = frag;
    if (sp.href) {
      if (!link || linkHref !== sp.href) {
        link = doc.createElement('a');
        linkHref = sp.href;
        link.setAttribute('href', sp.href);
        link.setAttribute('rel', 'noopener noreferrer nofollow');
        link.setAttribute('target', '_blank');
        frag.appendChild(link);
      }
      parent = link;
    } else link = null;
    if (sp.mark) parent = parent.appendChild(doc.createElement('mark'));
    const st = sp.style;
    if (st === DEFAULT_STYLE || sameStyle(st, DEFAULT_STYLE)) {
      parent.appendChild(doc.createTextNode(sp.text));
      continue;
    }
    const el = doc.createElement('span');
    const cls = [];
    let fg = st.fg, bg = st.bg;
    let fgInv = false, bgInv = false;
    if (st.inverse) {
      [fg, bg] = [bg, fg];
      fgInv = fg === null;
      bgInv = bg === null;
    }
    if (typeof fg === 'number' && fg < 16) cls.push(`fg-${fg}`);
    else if (typeof fg === 'number') el.style.color = pal[fg];
    else if (typeof fg === 'string') el.style.color = fg;
    else if (fgInv) cls.push('fg-inverse');
    if (typeof bg === 'number' && bg < 16) cls.push(`bg-${bg}`);
    else if (typeof bg === 'number') el.style.backgroundColor = pal[bg];
    else if (typeof bg === 'string') el.style.backgroundColor = bg;
    else if (bgInv) cls.push('bg-inverse');
    for (const a of ['bold', 'dim', 'italic', 'underline', 'strike']) if (st[a]) cls.push(a);
    if (cls.length) el.className = cls.join(' ');
    el.appendChild(doc.createTextNode(sp.text));
    parent.appendChild(el);
  }
  return frag;
}
