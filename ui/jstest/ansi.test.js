// Unit tests of ui/static/ansi.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_STYLE, INITIAL_STATE, endLine, markSpans, parseAnsi, renderSpans, sameStyle, spansText, xtermPalette,
} from '../static/ansi.js';

const E = '\x1b';
const BEL = '\x07';
const ST = `${E}\\`;

/** The style of the first span whose text includes needle. */
function styleOf(spans, needle) {
  const sp = spans.find((s) => s.text.includes(needle));
  assert.ok(sp, `no span holds ${JSON.stringify(needle)} in ${JSON.stringify(spans)}`);
  return sp.style;
}

/** Parses pieces in sequence, carrying state, and returns all spans and the last state. */
function parseAll(...pieces) {
  let state = INITIAL_STATE;
  const spans = [];
  for (const p of pieces) {
    const r = parseAnsi(p, state);
    spans.push(...r.spans);
    state = r.state;
  }
  return { spans, state, text: spansText(spans) };
}

const style = (over) => ({ ...DEFAULT_STYLE, ...over });

test('plain text is one default span and keeps the state object', () => {
  const { spans, state } = parseAnsi('hello world', INITIAL_STATE);
  assert.deepEqual(spans, [{ text: 'hello world', style: DEFAULT_STYLE, href: null }]);
  assert.equal(state, INITIAL_STATE);
  assert.deepEqual(parseAnsi('').spans, []);
  assert.equal(parseAnsi('x', undefined).spans[0].text, 'x');
});

test('SGR attributes', async (t) => {
  const cases = [
    ['bold', '1', { bold: true }],
    ['dim', '2', { dim: true }],
    ['italic', '3', { italic: true }],
    ['underline', '4', { underline: true }],
    ['double underline', '21', { underline: true }],
    ['underline style 4:3', '4:3', { underline: true }],
    ['no underline 4:0', '4;4:0', {}],
    ['inverse', '7', { inverse: true }],
    ['strike', '9', { strike: true }],
    ['22 ends bold and dim', '1;2;22', {}],
    ['23 ends italic', '3;23', {}],
    ['24 ends underline', '4;24', {}],
    ['27 ends inverse', '7;27', {}],
    ['29 ends strike', '9;29', {}],
    ['22 keeps italic', '1;3;22', { italic: true }],
    ['ignored codes (blink, conceal, overline, font)', '5;6;8;53;11', {}],
  ];
  for (const [name, params, want] of cases) {
    await t.test(name, () => {
      const { spans } = parseAnsi(`${E}[${params}mX`);
      assert.deepEqual(styleOf(spans, 'X'), style(want));
    });
  }
});

test('SGR 16 colours', async (t) => {
  const cases = [];
  for (let n = 0; n < 8; n++) {
    cases.push([`fg ${30 + n}`, `${30 + n}`, { fg: n }]);
    cases.push([`bright fg ${90 + n}`, `${90 + n}`, { fg: n + 8 }]);
    cases.push([`bg ${40 + n}`, `${40 + n}`, { bg: n }]);
    cases.push([`bright bg ${100 + n}`, `${100 + n}`, { bg: n + 8 }]);
  }
  cases.push(['39 default fg', '31;44;39', { bg: 4 }]);
  cases.push(['49 default bg', '31;44;49', { fg: 1 }]);
  for (const [name, params, want] of cases) {
    await t.test(name, () => {
      assert.deepEqual(styleOf(parseAnsi(`${E}[${params}mX`).spans, 'X'), style(want));
    });
  }
});

test('SGR 256 and 24-bit colours, semicolon and colon forms', async (t) => {
  const cases = [
    ['38;5;n', '38;5;196', { fg: 196 }],
    ['48;5;n', '48;5;17', { bg: 17 }],
    ['38;5 low index', '38;5;3', { fg: 3 }],
    ['38:5:n', '38:5:208', { fg: 208 }],
    ['48:5:n', '48:5:255', { bg: 255 }],
    ['38;2;r;g;b', '38;2;1;2;3', { fg: '#010203' }],
    ['48;2;r;g;b', '48;2;255;128;0', { bg: '#ff8000' }],
    ['38:2::r:g:b (empty colour space)', '38:2::10:20:30', { fg: '#0a141e' }],
    ['38:2:cs:r:g:b', '38:2:0:10:20:30', { fg: '#0a141e' }],
    ['38:2:r:g:b (no colour space)', '38:2:10:20:30', { fg: '#0a141e' }],
    ['48:2::r:g:b', '48:2::0:0:255', { bg: '#0000ff' }],
    ['rgb clamped', '38;2;300;256;999999', { fg: '#ffffff' }],
    ['empty rgb components are 0', '38;2;;;', { fg: '#000000' }],
    ['index out of range ignored', '31;38;5;256', { fg: 1 }],
    ['colon index out of range ignored', '31;38:5:1000', { fg: 1 }],
    ['truncated 38;5 ignored', '31;38;5', { fg: 1 }],
    ['truncated 38;2 ignored', '31;38;2;1;2', { fg: 1 }],
    ['unknown 38 form ignored, later params apply', '38;7;1', { inverse: true, bold: true }],
    ['huge number ignored', '99999999999999999999999', {}],
    ['params after a colour apply', '38;5;196;1;4', { fg: 196, bold: true, underline: true }],
    ['58 underline colour consumed, not read as bold', '58;5;1', {}],
    ['58;2 consumed', '58;2;1;2;3', {}],
    ['58:2 colon form ignored', '58:2::1:2:3;3', { italic: true }],
  ];
  for (const [name, params, want] of cases) {
    await t.test(name, () => {
      assert.deepEqual(styleOf(parseAnsi(`${E}[${params}mX`).spans, 'X'), style(want));
    });
  }
});

test('combined codes and resets', () => {
  const { spans } = parseAnsi(`a${E}[1;31;42mb${E}[0mc${E}[4;33md${E}[me${E}[3m${E}[;35mf`);
  assert.deepEqual(spans.map((s) => [s.text, s.style]), [
    ['a', DEFAULT_STYLE],
    ['b', style({ bold: true, fg: 1, bg: 2 })],
    ['c', DEFAULT_STYLE],
    ['d', style({ underline: true, fg: 3 })],
    ['e', DEFAULT_STYLE],
    ['f', style({ fg: 5 })], // an empty parameter is 0: reset, then magenta
  ]);
  assert.equal(styleOf(spans, 'c'), DEFAULT_STYLE, 'a full reset returns the shared default style');
});

test('adjacent text in an unchanged style is one span', () => {
  const { spans } = parseAnsi(`${E}[31mab${E}[31mcd${E}[2Kef`);
  assert.deepEqual(spans.map((s) => s.text), ['abcdef']);
});

test('colours carry across fragments and lines until reset', () => {
  let r = parseAnsi(`plain ${E}[1;32mgreen`);
  r = parseAnsi(' still green', r.state);
  assert.deepEqual(r.spans[0].style, style({ bold: true, fg: 2 }));
  r = parseAnsi('next line', endLine(r.state));
  assert.deepEqual(r.spans[0].style, style({ bold: true, fg: 2 }), 'terminals keep SGR across newlines');
  r = parseAnsi(`${E}[0mreset`, r.state);
  assert.equal(r.spans[0].style, DEFAULT_STYLE);
});

test('parseAnsi does not mutate the state it is given', () => {
  const r1 = parseAnsi(`${E}[31mred`);
  const before = JSON.stringify(r1.state);
  parseAnsi(`${E}[0;44m${E}]8;;https://a.example/${BEL}x${E}[`, r1.state);
  assert.equal(JSON.stringify(r1.state), before);
  assert.throws(() => { r1.state.style.fg = 3; }, TypeError, 'styles are frozen');
});

test('an escape cut at the end of a fragment completes in the next', async (t) => {
  const cases = [
    ['after ESC', [`a${E}`, '[31mred']],
    ['after ESC [', [`a${E}[`, '31mred']],
    ['inside the parameters', [`a${E}[3`, '1mred']],
    ['before the final byte', [`a${E}[31`, 'mred']],
    ['8-bit CSI', ['a\u009b3', '1mred']],
  ];
  for (const [name, pieces] of cases) {
    await t.test(name, () => {
      const { spans, text } = parseAll(...pieces);
      assert.equal(text, 'ared');
      assert.deepEqual(styleOf(spans, 'red'), style({ fg: 1 }));
    });
  }
  await t.test('byte by byte', () => {
    const { spans, text } = parseAll(...`a${E}[31mred`);
    assert.equal(text, 'ared');
    assert.deepEqual(spans.slice(1).map((s) => s.style), [style({ fg: 1 }), style({ fg: 1 }), style({ fg: 1 })]);
  });
  await t.test('OSC 8 cut in the URI and in ST', () => {
    const { spans, text } = parseAll(`see ${E}]8;;https://exa`, 'mple.com/x', `${E}`, '\\here', `${E}]8;;${E}`, '\\ done');
    assert.equal(text, 'see here done');
    assert.equal(spans.find((s) => s.text === 'here').href, 'https://example.com/x');
    assert.equal(spans.find((s) => s.text === ' done').href, null);
  });
  await t.test('a window title split over pieces is stripped', () => {
    assert.equal(parseAll(`a${E}]0;my `, 'title', BEL + 'b').text, 'ab');
  });
});

test('endLine abandons an unterminated escape but keeps style and link', () => {
  let r = parseAnsi(`${E}[33m${E}]8;;https://x.example/${BEL}text${E}]0;never terminated`);
  assert.equal(spansText(r.spans), 'text');
  const st = endLine(r.state);
  r = parseAnsi('next', st);
  assert.deepEqual(r.spans, [{ text: 'next', style: style({ fg: 3 }), href: 'https://x.example/' }]);
  assert.equal(endLine(INITIAL_STATE), INITIAL_STATE);
  assert.equal(endLine(undefined), INITIAL_STATE);
});

test('OSC 8 hyperlinks: http and https only', async (t) => {
  const cases = [
    ['https with BEL', `${E}]8;;https://example.com/a?b=1${BEL}`, 'https://example.com/a?b=1'],
    ['http with ESC \\', `${E}]8;;http://example.com/${ST}`, 'http://example.com/'],
    ['with params, C1 ST', `${E}]8;id=42:x=y;https://example.com/p\u009c`, 'https://example.com/p'],
    ['8-bit OSC', `\u009d8;;https://example.com/${BEL}`, 'https://example.com/'],
    ['upper-case scheme normalised', `${E}]8;;HTTPS://Example.COM${BEL}`, 'https://example.com/'],
    ['javascript: is not linked', `${E}]8;;javascript:alert(1)${BEL}`, null],
    ['JavaScript: with spaces is not linked', `${E}]8;; JavaScript:alert(1)${BEL}`, null],
    ['data: is not linked', `${E}]8;;data:text/html,<script>alert(1)</script>${BEL}`, null],
    ['file: is not linked', `${E}]8;;file:///etc/passwd${BEL}`, null],
    ['relative is not linked', `${E}]8;;/api/jobs${BEL}`, null],
    ['garbage is not linked', `${E}]8;;http://[::1${BEL}`, null],
    ['missing params separator', `${E}]8;https://example.com/${BEL}`, null],
  ];
  for (const [name, open, want] of cases) {
    await t.test(name, () => {
      const { spans, text } = parseAll(`before ${open}`, 'the link', `${E}]8;;${BEL} after`);
      assert.equal(text, 'before the link after', 'the link text is always kept');
      assert.equal(spans.find((s) => s.text === 'the link').href, want);
      assert.equal(spans.find((s) => s.text === ' after').href, null, 'the empty URI closes the link');
      assert.equal(spans.find((s) => s.text === 'before ').href, null);
    });
  }
  await t.test('a new link replaces an open one; SGR reset keeps it', () => {
    const { spans } = parseAll(`${E}]8;;https://a.example/${BEL}a${E}[0m${E}[1mb${E}]8;;https://b.example/${BEL}c`);
    assert.deepEqual(spans.map((s) => [s.text, s.href]), [['a', 'https://a.example/'], ['b', 'https://a.example/'], ['c', 'https://b.example/']]);
  });
});

test('other escape sequences are stripped', async (t) => {
  const cases = [
    ['erase line', `${E}[2Kx`],
    ['erase display', `${E}[2J${E}[Hx`],
    ['cursor moves', `${E}[1A${E}[10;20H${E}[5Gx${E}[3C`],
    ['hide cursor (private)', `${E}[?25lx${E}[?25h`],
    ['private-marker m is not SGR', `${E}[>4;2mx`],
    ['intermediate-byte m is not SGR', `${E}[1 mx`],
    ['window title with BEL', `${E}]0;my title${BEL}x`],
    ['window title with ESC \\', `${E}]2;title${ST}x`],
    ['OSC 9;4 progress', `${E}]9;4;1;50${ST}x`],
    ['OSC colour query', `${E}]11;?${BEL}x`],
    ['DCS', `${E}Pq#0;2;0;0;0#1!10~${ST}x`],
    ['8-bit DCS', `\u0090sixel\u009cx`],
    ['APC, PM, SOS', `${E}_apc${ST}${E}^pm${ST}${E}Xsos${ST}x`],
    ['charset designation', `${E}(B${E})0x`],
    ['save/restore cursor, keypad', `${E}7${E}8${E}=${E}>x`],
    ['double ESC', `${E}${E}[31mx`],
    ['8-bit CSI erase', `\u009b2Kx`],
    ['CSI cancelled by CAN shows the rest', `${E}[31\x18x`],
    ['OSC cancelled by SUB', `${E}]0;ti\x1ax`],
  ];
  for (const [name, input] of cases) {
    await t.test(name, () => {
      assert.equal(parseAll(input).text, 'x');
    });
  }
  await t.test('a huge OSC payload over many pieces is consumed', () => {
    const payload = 'A'.repeat(100_000);
    const { text, state } = parseAll(`a${E}]1337;File=inline=1:`, payload, payload, `${BEL}b`);
    assert.equal(text, 'ab');
    assert.ok(state.buf.length < 10_000, 'the payload is not kept');
  });
  await t.test('a long CSI is consumed, not applied', () => {
    assert.deepEqual(parseAll(`${E}[${'1;'.repeat(500)}31mx`).spans, [{ text: 'x', style: DEFAULT_STYLE, href: null }]);
  });
  await t.test('non-ASCII inside a CSI ends it and is shown', () => {
    assert.equal(parseAll(`${E}[3é`).text, 'é');
  });
  await t.test('ESC followed by a non-ASCII character shows the character', () => {
    assert.equal(parseAll(`${E}é`).text, 'é');
  });
});

test('control characters', async (t) => {
  await t.test('C0 controls other than TAB are dropped, TAB kept', () => {
    assert.equal(parseAll('a\x00b\x01c\x07d\te\x0bf\x0cg\x7fh').text, 'abcd\tefgh');
  });
  await t.test('C1 controls are dropped', () => {
    assert.equal(parseAll('a\u0080b\u0085c\u009cd').text, 'abcd');
  });
  await t.test('backspace erases the previous character', () => {
    assert.equal(parseAll('abc\bd').text, 'abd');
    assert.equal(parseAll('_\bX').text, 'X');
    assert.equal(parseAll('|\b/\b-\b\\').text, '\\');
    assert.equal(parseAll('\bx').text, 'x');
    assert.equal(parseAll('ok 😀\b!').text, 'ok !', 'a surrogate pair is one character');
  });
  await t.test('backspace across a style change', () => {
    const { spans } = parseAll(`a${E}[31mb\b\bc`);
    assert.deepEqual(spans.map((s) => [s.text, s.style.fg]), [['c', 1]]);
  });
});

test('hostile text stays text', () => {
  const input = `<script>alert(1)</script>"><img src=x onerror=alert(1)>&amp;${E}[31m<b>`;
  const { spans, text } = parseAll(input);
  assert.equal(text, `<script>alert(1)</script>"><img src=x onerror=alert(1)>&amp;<b>`);
  const frag = renderSpans(spans, fakeDocument());
  assert.equal(frag.textContent, text);
  assert.deepEqual(elementTags(frag), ['SPAN'], 'only the styled span is an element');
});

test('xterm palette', () => {
  const p = xtermPalette();
  assert.equal(p.length, 256);
  assert.deepEqual([p[0], p[1], p[7], p[8], p[15]], ['#000000', '#cd0000', '#e5e5e5', '#7f7f7f', '#ffffff']);
  assert.deepEqual([p[16], p[21], p[46], p[196], p[226], p[231]], ['#000000', '#0000ff', '#00ff00', '#ff0000', '#ffff00', '#ffffff']);
  assert.deepEqual([p[17], p[59], p[145]], ['#00005f', '#5f5f5f', '#afafaf']);
  assert.deepEqual([p[232], p[244], p[255]], ['#080808', '#808080', '#eeeeee']);
  assert.ok(p.every((c) => /^#[0-9a-f]{6}$/.test(c)));
  p[0] = 'changed';
  assert.equal(xtermPalette()[0], '#000000', 'callers get a copy');
});

test('sameStyle compares by value', () => {
  assert.ok(sameStyle(style({ fg: 1 }), style({ fg: 1 })));
  assert.ok(!sameStyle(style({ fg: 1 }), style({ fg: 9 })));
  assert.ok(!sameStyle(style({ fg: '#010203' }), style({ fg: '#010204' })));
});

// A minimal DOM: enough for renderSpans, and loud if markup parsing is used.
class FakeNode {
  constructor(kind, tagName = null, data = '') {
    this.kind = kind;
    this.tagName = tagName;
    this.data = data;
    this.children = [];
    this.attrs = {};
    this.style = {};
    this.className = '';
  }
  appendChild(c) { this.children.push(c); return c; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  getAttribute(k) { return this.attrs[k] ?? null; }
  get textContent() { return this.kind === 'text' ? this.data : this.children.map((c) => c.textContent).join(''); }
  set innerHTML(_) { throw new Error('innerHTML must not be used'); }
  set outerHTML(_) { throw new Error('outerHTML must not be used'); }
  insertAdjacentHTML() { throw new Error('insertAdjacentHTML must not be used'); }
}

function fakeDocument() {
  return {
    createDocumentFragment: () => new FakeNode('fragment'),
    createElement: (tag) => new FakeNode('element', tag.toUpperCase()),
    createTextNode: (data) => new FakeNode('text', null, String(data)),
  };
}

function elementTags(node) {
  const out = [];
  for (const c of node.children) {
    if (c.kind === 'element') out.push(c.tagName, ...elementTags(c));
  }
  return out;
}

test('renderSpans builds classes, CSSOM colours and safe links', async (t) => {
  const doc = fakeDocument();
  await t.test('default text is a text node', () => {
    const frag = renderSpans(parseAnsi('plain').spans, doc);
    assert.equal(frag.children.length, 1);
    assert.equal(frag.children[0].kind, 'text');
    assert.equal(frag.textContent, 'plain');
  });
  await t.test('16 colours and attributes are classes', () => {
    const frag = renderSpans(parseAnsi(`${E}[1;2;3;4;9;31;102mx`).spans, doc);
    const el = frag.children[0];
    assert.equal(el.tagName, 'SPAN');
    assert.equal(el.className, 'fg-1 bg-10 bold dim italic underline strike');
    assert.deepEqual(el.style, {});
    assert.equal(el.textContent, 'x');
  });
  await t.test('256 index below 16 uses the themed class', () => {
    assert.equal(renderSpans(parseAnsi(`${E}[38;5;9mx`).spans, doc).children[0].className, 'fg-9');
  });
  await t.test('256 and 24-bit colours are element.style', () => {
    const el = renderSpans(parseAnsi(`${E}[38;5;196;48;2;1;2;3mx`).spans, doc).children[0];
    assert.deepEqual(el.style, { color: '#ff0000', backgroundColor: '#010203' });
    assert.equal(el.className, '');
    assert.deepEqual(el.attrs, {}, 'no style attribute');
  });
  await t.test('inverse swaps colours', () => {
    let el = renderSpans(parseAnsi(`${E}[7;31;44mx`).spans, doc).children[0];
    assert.equal(el.className, 'fg-4 bg-1');
    el = renderSpans(parseAnsi(`${E}[7mx`).spans, doc).children[0];
    assert.equal(el.className, 'fg-inverse bg-inverse');
    el = renderSpans(parseAnsi(`${E}[7;38;5;200mx`).spans, doc).children[0];
    assert.equal(el.className, 'fg-inverse');
    assert.deepEqual(el.style, { backgroundColor: '#ff00d7' });
  });
  await t.test('a link wraps consecutive spans of one URL', () => {
    const { spans } = parseAll(`a ${E}]8;;https://example.com/x${BEL}li${E}[1mnk${E}[m${E}]8;;${BEL} b ${E}]8;;javascript:alert(1)${BEL}bad${E}]8;;${BEL}`);
    const frag = renderSpans(spans, doc);
    const links = frag.children.filter((c) => c.tagName === 'A');
    assert.equal(links.length, 1);
    assert.deepEqual(links[0].attrs, { href: 'https://example.com/x', rel: 'noopener noreferrer nofollow', target: '_blank' });
    assert.equal(links[0].textContent, 'link');
    assert.equal(frag.textContent, 'a link b bad');
    assert.deepEqual(elementTags(frag), ['A', 'SPAN']);
  });
  await t.test('two adjacent links stay separate', () => {
    const { spans } = parseAll(`${E}]8;;https://a.example/${BEL}a${E}]8;;https://b.example/${BEL}b`);
    const links = renderSpans(spans, doc).children;
    assert.deepEqual(links.map((l) => [l.attrs.href, l.textContent]), [['https://a.example/', 'a'], ['https://b.example/', 'b']]);
  });
  await t.test('uses globalThis.document by default', () => {
    globalThis.document = doc;
    try {
      assert.equal(renderSpans(parseAnsi('x').spans).textContent, 'x');
    } finally {
      delete globalThis.document;
    }
  });
});

test('spansText strips escapes', () => {
  assert.equal(spansText(parseAnsi(`${E}[1mbold${E}[0m and ${E}]8;;https://x.example/${BEL}link${E}]8;;${BEL}`).spans), 'bold and link');
  assert.equal(spansText([]), '');
});

test('markSpans splits spans at the ranges and marks them', () => {
  const { spans } = parseAnsi(`ab${E}[31mcdef${E}[0m`);
  const got = markSpans(spans, [[1, 3], [4, 5], [9, 12]]);
  assert.deepEqual(got.map((s) => [s.text, !!s.mark, s.style.fg]), [
    ['a', false, null], ['b', true, null], ['c', true, 1], ['d', false, 1], ['e', true, 1], ['f', false, 1],
  ]);
  assert.deepEqual(markSpans(spans, []), spans);
  const frag = renderSpans(got, fakeDocument());
  assert.equal(frag.textContent, 'abcdef');
  assert.deepEqual(elementTags(frag), ['MARK', 'MARK', 'SPAN', 'SPAN', 'MARK', 'SPAN', 'SPAN'],
    'marked text sits in <mark>, around its styled span');
});
