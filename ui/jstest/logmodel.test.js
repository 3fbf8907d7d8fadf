// Unit tests of ui/static/logmodel.js: run with `node --test ui/jstest/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogModel, MAX_GROUP_DEPTH } from '../static/logmodel.js';
import { DEFAULT_STYLE } from '../static/ansi.js';

const E = '\x1b';

/**
 * Makes line events the way the runner numbers them: per stream, a piece
 * continues the line its stream left open; "\n" and "\r\n" start a new one.
 */
class Writer {
  constructor(seq = 0) {
    this.seq = seq;
    this.lines = {};
    this.events = [];
  }

  write(stream, text, eol = '\n', extra = {}) {
    const line = this.lines[stream] ?? 1;
    const ev = { seq: ++this.seq, time: `t${this.seq}`, type: 'line', stream, line, text, eol, ...extra };
    if (eol === '\n' || eol === '\r\n') this.lines[stream] = line + 1;
    this.events.push(ev);
    return ev;
  }

  out(text, eol) { return this.write('stdout', text, eol); }
  err(text, eol) { return this.write('stderr', text, eol); }

  /** Writes whole stdout lines. */
  lines_(...texts) { for (const t of texts) this.out(t, '\n'); return this; }

  exit() {
    const ev = { seq: ++this.seq, time: `t${this.seq}`, type: 'exit', status: 'succeeded', exit_code: 0 };
    this.events.push(ev);
    return ev;
  }
}

function modelOf(events) {
  const m = new LogModel();
  m.push(events);
  return m;
}

const texts = (m) => Array.from({ length: m.rowCount }, (_, i) => m.row(i).text);
const viewTexts = (v) => Array.from({ length: v.count }, (_, i) => v.row(i).text);

test('fragments continue the row of their stream', () => {
  const w = new Writer();
  w.out('a', ''); w.out('b', ''); w.out('c', '\n'); w.out('d', '\n');
  const m = modelOf(w.events);
  assert.deepEqual(texts(m), ['abc', 'd']);
  const r = m.row(0);
  assert.deepEqual([r.line, r.stream, r.firstSeq, r.lastSeq, r.time], [1, 'stdout', 1, 3, 't1']);
  assert.deepEqual([m.row(1).line, m.row(1).firstSeq], [2, 4]);
  assert.equal(m.row(2), undefined);
});

test('push reports appended rows and changed earlier rows', () => {
  const w = new Writer();
  const m = new LogModel();
  const none = { restructured: false };
  assert.deepEqual(m.push([w.out('a', '')]), { added: 1, changed: [], ...none });
  assert.deepEqual(m.push([w.out('b', '')]), { added: 0, changed: [0], ...none });
  assert.deepEqual(m.push([w.out('c', '\n'), w.out('d', '\n')]), { added: 1, changed: [0], ...none });
  assert.deepEqual(m.push([w.out('e', '\n')]), { added: 1, changed: [], ...none });
  assert.deepEqual(texts(m), ['abc', 'd', 'e']);
  assert.deepEqual(m.push([w.out('--- s', '\n'), w.out('^^^ +++', '\n')]), { added: 2, changed: [], restructured: true });
});

test('a \\r line is replaced by the next piece of its stream', async (t) => {
  await t.test('10,000 redraws are one row holding the last frame', () => {
    const w = new Writer();
    w.out('start', '\n');
    for (let i = 1; i <= 10_000; i++) w.out(`[${'#'.repeat(i % 50)}] ${i}/10000`, '\r');
    w.out('done', '\n');
    w.out('after', '\n');
    const m = new LogModel();
    m.push(w.events.slice(0, -2));
    assert.deepEqual(texts(m), ['start', `[${'#'.repeat(0)}] 10000/10000`]);
    m.push(w.events.slice(-2));
    assert.deepEqual(texts(m), ['start', 'done', 'after']);
    assert.deepEqual([m.row(1).firstSeq, m.row(1).lastSeq, m.row(1).time], [2, 10_002, 't2']);
  });
  await t.test('fragments after \\r replace once, then append', () => {
    const w = new Writer();
    const m = new LogModel();
    m.push([w.out('50%', '\r'), w.out('[==', '')]);
    assert.deepEqual(texts(m), ['[==']);
    m.push([w.out('==]', '\r')]);
    assert.deepEqual(texts(m), ['[====]']);
    m.push([w.out('ok', '\n')]);
    assert.deepEqual(texts(m), ['ok']);
  });
  await t.test('an empty piece after \\r replaces nothing: the last frame stays', async (t) => {
    // What the runner makes of `printf '  linking 100%\r'; sleep 1; printf '\n'`:
    // the "\r" is flushed alone, the "\n" comes as an empty piece; under a
    // PTY the terminal sends "\r\n" for "\n", split the same way.
    for (const [eol, name] of [['\n', 'pipe: \\n'], ['\r\n', 'pty: \\r\\n']]) {
      await t.test(name, () => {
        const w = new Writer();
        const m = new LogModel();
        m.push([w.out('  linking 75%', '\r'), w.out('  linking 100%', '\r')]);
        m.push([w.out('', eol), w.out('next', '\n')]);
        assert.deepEqual(texts(m), ['  linking 100%', 'next']);
        assert.deepEqual([m.row(0).firstSeq, m.row(0).lastSeq], [1, 3]);
      });
    }
    const cases = [
      // [pieces after "A\r", the row's text]
      [[['', ''], ['B', '\n']], 'B'],
      [[['', ''], ['', '\n']], 'A'],
      [[['', '\r'], ['', '\n']], 'A'],
      [[['', '\r'], ['B', '\n']], 'B'],
      [[['', ''], ['', '\r'], ['', ''], ['B', ''], ['C', '\n']], 'BC'],
      [[['B', ''], ['', '\r'], ['', '\n']], 'B'],
      [[['    ', '\r'], ['', '\n']], '    '], // spaces clear the line: not empty
      [[[`${E}[0m`, '\n']], ''], // an escape is text: only "" is empty
    ];
    for (const [pieces, want] of cases) {
      await t.test(`A\\r then ${JSON.stringify(pieces)}`, () => {
        const w = new Writer();
        w.out('A', '\r');
        for (const [text, eol] of pieces) w.out(text, eol);
        w.out('next', '\n');
        assert.deepEqual(texts(modelOf(w.events)), [want, 'next']);
        // The same, one event per push (live), is the same.
        const m = new LogModel();
        for (const ev of w.events) m.push([ev]);
        assert.deepEqual(texts(m), [want, 'next']);
      });
    }
  });
  await t.test('a line that starts with \\r (tqdm) and collapse=1 history with holes', () => {
    const w = new Writer();
    w.out('', '\r'); w.out(' 10%', ''); w.out('', '\r'); w.out(' 20%', ''); w.out('', '\r'); w.out('100%', ''); w.out('', '\n');
    assert.deepEqual(texts(modelOf(w.events)), ['100%']);
    // What collapse=1 sends of it: the last frame and the empty "\n".
    assert.deepEqual(texts(modelOf(w.events.slice(5))), ['100%']);
    // A frame kept by the window, then the empty "\n" after a hole.
    assert.deepEqual(texts(modelOf([w.events[3], w.events[4], w.events[6]])), [' 20%']);
  });
  await t.test('\\r\\n ends the row like \\n', () => {
    const w = new Writer();
    w.out('a', '\r\n'); w.out('b', '\n'); w.out('c', '\r\n');
    assert.deepEqual(texts(modelOf(w.events)), ['a', 'b', 'c']);
  });
  await t.test('an unknown or missing eol ends the row', () => {
    const m = modelOf([
      { seq: 1, type: 'line', stream: 'stdout', line: 1, text: 'a' },
      { seq: 2, type: 'line', stream: 'stdout', line: 2, text: 'b', eol: 'x' },
      { seq: 3, type: 'line', stream: 'stdout', line: 3, text: 'c', eol: '\n' },
    ]);
    assert.deepEqual(texts(m), ['a', 'b', 'c']);
  });
});

test('stdout and stderr interleave with an open fragment on each', () => {
  const w = new Writer();
  w.out('out1 ', ''); w.err('err1 ', ''); w.out('out2', '\n'); w.err('err2', '\n');
  w.out('out-line2', '\n'); w.err('progress 1', '\r'); w.out('out-line3', '\n'); w.err('progress 2', '\r');
  w.err('progress done', '\n');
  const m = modelOf(w.events);
  assert.deepEqual(m.rowCount, 5);
  assert.deepEqual(Array.from({ length: 5 }, (_, i) => [m.row(i).stream, m.row(i).line, m.row(i).text]), [
    ['stdout', 1, 'out1 out2'],
    ['stderr', 1, 'err1 err2'],
    ['stdout', 2, 'out-line2'],
    ['stderr', 2, 'progress done'],
    ['stdout', 3, 'out-line3'],
  ]);
  assert.deepEqual([m.row(0).firstSeq, m.row(0).lastSeq, m.row(1).firstSeq, m.row(1).lastSeq], [1, 3, 2, 4]);
});

test('a continuation with another line number starts a new row (seq holes with collapse=1)', () => {
  const m = modelOf([
    { seq: 1, type: 'line', stream: 'stdout', line: 1, text: 'frame 1', eol: '\r' },
    { seq: 5, type: 'line', stream: 'stdout', line: 2, text: 'next', eol: '\n' },
  ]);
  assert.deepEqual(texts(m), ['frame 1', 'next']);
});

test('ANSI state is per stream and carries across fragments and lines', () => {
  const w = new Writer();
  w.out(`${E}[31mred `, ''); w.err('plain err', '\n'); w.out('still red', '\n'); w.out('next line', '\n');
  w.out(`${E}[0mreset ${E}[3`, ''); w.out('2mgreen', '\n');
  w.out(`cut ${E}]0;never ended`, '\n'); w.out('shown', '\n');
  const m = modelOf(w.events);
  assert.deepEqual(texts(m), ['red still red', 'plain err', 'next line', 'reset green', 'cut ', 'shown']);
  assert.equal(m.row(0).spans.length, 1, 'fragments in one style merge into one span');
  assert.equal(m.row(0).spans[0].style.fg, 1);
  assert.equal(m.row(1).spans[0].style, DEFAULT_STYLE, 'stderr has its own state');
  assert.equal(m.row(2).spans[0].style.fg, 1, 'colour carries to the next line');
  assert.deepEqual(m.row(3).spans.map((s) => [s.text, s.style.fg]), [['reset ', null], ['green', 2]]);
  assert.equal(m.row(5).spans[0].text, 'shown', 'an unterminated OSC ends with its line');
});

test('skips duplicates, notices and non-line events; keeps exit', () => {
  const w = new Writer();
  w.lines_('a', 'b');
  const m = new LogModel();
  m.push(w.events);
  m.push([...w.events, { type: 'error', error: 'unsupported message' }, null, w.out('c', '\n'), { seq: w.seq + 1, type: 'progress' }]);
  const exit = w.exit();
  exit.seq++;
  m.push([exit]);
  assert.deepEqual(texts(m), ['a', 'b', 'c']);
  assert.equal(m.exit, exit);
  assert.deepEqual([m.firstSeq, m.lastSeq], [1, exit.seq]);
});

test('directive rows are hidden unless showDirectives', () => {
  const w = new Writer();
  w.out('build', '\n');
  w.write('stdout', '::progress 50', '\n', { directive: true });
  w.out('more', '\n');
  const m = modelOf(w.events);
  assert.equal(m.rowCount, 3);
  assert.ok(m.row(1).directive);
  assert.deepEqual(viewTexts(m.visibleRows()), ['build', 'more']);
  assert.deepEqual(viewTexts(m.visibleRows(undefined, { showDirectives: true })), ['build', '::progress 50', 'more']);
});

test('a directive flag on a later piece hides the row in a live view, in place', () => {
  const w = new Writer();
  const m = new LogModel();
  const v = m.visibleRows();
  const all = m.visibleRows(undefined, { showDirectives: true });
  m.push([w.out('x', '\n'), w.out('::progress', ''), w.err('e', '\n')]);
  assert.equal(v.count, 3);
  const r = m.push([w.write('stdout', ' 70', '\r', { directive: true }), w.err('f', '\n')]);
  assert.equal(r.restructured, false, 'no rebuild');
  assert.deepEqual(viewTexts(v), ['x', 'e', 'f']);
  assert.deepEqual(viewTexts(all), ['x', '::progress 70', 'e', 'f']);
  m.push([w.out('plain again', '\n')]);
  assert.deepEqual(viewTexts(v), ['x', 'plain again', 'e', 'f'], 'a replacing piece that is no directive shows it again');
  const late = m.visibleRows();
  m.push([w.out('::progress', ''), w.write('stdout', ' 80', '\n', { directive: true })]);
  assert.deepEqual(viewTexts(late), ['x', 'plain again', 'e', 'f'], 'a flip before the view scanned the row');
});

test('a directive flip of a row from an older page', () => {
  const w = new Writer();
  w.err('::progr', ''); w.out('a', '\n');
  const m = modelOf(w.events.slice(1));
  m.prepend(w.events.slice(0, 1));
  const v = m.visibleRows();
  assert.deepEqual(viewTexts(v), ['::progr', 'a']);
  m.push([w.write('stderr', 'ess 5', '\n', { directive: true })]);
  assert.deepEqual(viewTexts(v), ['a']);
});

/** [text, group name path, header name] of each row. */
function structure(m) {
  return Array.from({ length: m.rowCount }, (_, i) => {
    const r = m.row(i);
    return [r.text, m.groupPath(i).map((id) => m.group(id).name).join('/'), r.groupHeader ? r.groupHeader.name : null];
  });
}

test('GitHub groups, nested', () => {
  const w = new Writer();
  w.lines_('before', '::group::Build', 'compile', '::group:: Inner step ', 'inner', '::endgroup::', 'link', '::endgroup::', 'after');
  const m = modelOf(w.events);
  assert.deepEqual(structure(m), [
    ['before', '', null],
    ['::group::Build', '', 'Build'],
    ['compile', 'Build', null],
    ['::group:: Inner step ', 'Build', 'Inner step'],
    ['inner', 'Build/Inner step', null],
    ['::endgroup::', 'Build/Inner step', null],
    ['link', 'Build', null],
    ['::endgroup::', 'Build', null],
    ['after', '', null],
  ]);
  const build = m.row(1).groupHeader;
  const inner = m.row(3).groupHeader;
  assert.deepEqual([build.dialect, build.collapsedByDefault, build.parent], ['github', true, null]);
  assert.equal(inner.parent, build.id);
  assert.ok(m.row(5).marker && m.row(7).marker);
  // GitHub groups start collapsed: the headers show.
  assert.deepEqual(viewTexts(m.visibleRows()), ['before', '::group::Build', 'after']);
  assert.deepEqual(viewTexts(m.visibleRows(new Set())), ['before', '::group::Build', 'compile', '::group:: Inner step ', 'inner', 'link', 'after']);
  assert.deepEqual(viewTexts(m.visibleRows(new Set([inner.id]))), ['before', '::group::Build', 'compile', '::group:: Inner step ', 'link', 'after']);
  assert.deepEqual(viewTexts(m.visibleRows((g) => g.id === build.id)), ['before', '::group::Build', 'after']);
  assert.deepEqual(viewTexts(m.visibleRows(new Set(), { showDirectives: true })).length, 9);
  assert.deepEqual(m.groupPath(4), [build.id, inner.id]);
});

test('GitHub nesting deeper than MAX_GROUP_DEPTH closes the innermost first', () => {
  const w = new Writer();
  for (let i = 1; i <= MAX_GROUP_DEPTH + 3; i++) w.out(`::group::g${i}`, '\n');
  w.out('deep', '\n');
  const m = modelOf(w.events);
  const path = m.groupPath(m.rowCount - 1).map((id) => m.group(id).name);
  assert.equal(path.length, MAX_GROUP_DEPTH);
  assert.deepEqual(path.slice(-2), [`g${MAX_GROUP_DEPTH - 1}`, `g${MAX_GROUP_DEPTH + 3}`]);
});

test('an unmatched ::endgroup:: is a hidden marker at top level', () => {
  const w = new Writer();
  w.lines_('a', '::endgroup::', 'b');
  const m = modelOf(w.events);
  assert.deepEqual(structure(m), [['a', '', null], ['::endgroup::', '', null], ['b', '', null]]);
  assert.deepEqual(viewTexts(m.visibleRows()), ['a', 'b']);
});

test('Buildkite sections', () => {
  const w = new Writer();
  w.lines_('pre', '--- :hammer: Build', 'b1', '+++ Test', 't1', '~~~ Upload', 'u1', '^^^ +++', 'u2', '--- Done', 'd1');
  const m = modelOf(w.events);
  assert.deepEqual(structure(m), [
    ['pre', '', null],
    ['--- :hammer: Build', '', ':hammer: Build'],
    ['b1', ':hammer: Build', null],
    ['+++ Test', '', 'Test'],
    ['t1', 'Test', null],
    ['~~~ Upload', '', 'Upload'],
    ['u1', 'Upload', null],
    ['^^^ +++', 'Upload', null],
    ['u2', 'Upload', null],
    ['--- Done', '', 'Done'],
    ['d1', 'Done', null],
  ]);
  const hdr = (i) => m.row(i).groupHeader;
  assert.deepEqual([1, 3, 5, 9].map((i) => [hdr(i).dialect, hdr(i).collapsedByDefault]),
    [['buildkite', true], ['buildkite', false], ['buildkite', false], ['buildkite', true]], '^^^ +++ expanded Upload');
  assert.deepEqual(viewTexts(m.visibleRows()), ['pre', '--- :hammer: Build', '+++ Test', 't1', '~~~ Upload', 'u1', 'u2', '--- Done']);
});

test('Buildkite inside a GitHub group is closed by its ::endgroup::; a stray ::endgroup:: closes a section', () => {
  const w = new Writer();
  w.lines_('::group::outer', '+++ step', 's', '::endgroup::', 'top', '+++ bk', 'x', '::endgroup::', 'top2');
  const m = modelOf(w.events);
  assert.deepEqual(structure(m).map((r) => r.slice(0, 2)), [
    ['::group::outer', ''], ['+++ step', 'outer'], ['s', 'outer/step'], ['::endgroup::', 'outer'],
    ['top', ''], ['+++ bk', ''], ['x', 'bk'], ['::endgroup::', ''], ['top2', ''],
  ]);
});

test('markers are found in styled text; look-alikes are not markers', () => {
  const w = new Writer();
  w.lines_(`${E}[1m--- ${E}[32mstyled${E}[0m`, 'in', '---', '-----', '--- ', '---x', ' --- indented', 'x ::group::no', '::groupie', '++ no');
  const m = modelOf(w.events);
  assert.equal(m.row(0).groupHeader.name, 'styled');
  for (let i = 1; i < m.rowCount; i++) {
    assert.equal(m.row(i).groupHeader, null, `row ${i} ${JSON.stringify(m.row(i).text)}`);
    assert.equal(m.row(i).group, m.row(0).groupHeader.id);
  }
});

test('a view follows pushes and maps indices', () => {
  const w = new Writer();
  const m = new LogModel();
  const v = m.visibleRows();
  m.push([w.out('a', '\n'), w.out('::group::G', '\n'), w.out('in1', '\n')]);
  assert.deepEqual(viewTexts(v), ['a', '::group::G']);
  m.push([w.out('in2', '\n'), w.out('::endgroup::', '\n'), w.out('b', '\n')]);
  assert.deepEqual(viewTexts(v), ['a', '::group::G', 'b']);
  assert.deepEqual([v.rowIndex(0), v.rowIndex(1), v.rowIndex(2), v.rowIndex(3), v.rowIndex(-1)], [0, 1, 5, -1, -1]);
  assert.deepEqual([v.indexOf(0), v.indexOf(2), v.indexOf(5)], [0, -1, 2]);
  assert.deepEqual([v.lowerBound(0), v.lowerBound(2), v.lowerBound(5), v.lowerBound(6)], [0, 2, 2, 3]);
  assert.equal(v.row(7), undefined);
  const open = m.visibleRows((g) => false);
  assert.equal(open.count, 5);
});

test('search: next and previous, case-insensitive, over text without escapes', () => {
  const w = new Writer();
  w.lines_('alpha', `${E}[31mERR${E}[0mor one`, 'beta', 'error two', 'gamma');
  w.write('stdout', '::progress error', '\n', { directive: true });
  const m = modelOf(w.events);
  assert.equal(m.search('error'), 1);
  assert.equal(m.search('error', 1), 3);
  assert.equal(m.search('error', 3), 1, 'wraps around, skipping the hidden directive');
  assert.equal(m.search('error', 3, 1, { showDirectives: true }), 5);
  assert.equal(m.search('error', 3, 1, { wrap: false }), -1);
  assert.equal(m.search('ERROR', undefined, -1), 3, 'backward from the end');
  assert.equal(m.search('error', 3, -1), 1);
  assert.equal(m.search('error', 1, -1), 3, 'wraps backward');
  assert.equal(m.search('error', 1, -1, { wrap: false }), -1);
  assert.equal(m.search('nothing'), -1);
  assert.equal(m.search(''), -1);
  assert.equal(m.search('gamma', 4), 4, 'the starting row is searched last');
  assert.equal(m.search('alpha', 99), 0);
  assert.equal(m.search('[31m'), -1, 'escapes are not text');
  assert.equal(new LogModel().search('x'), -1);
});

test('findLine finds a visual line', () => {
  const w = new Writer();
  w.out('a', '\n'); w.err('e1', '\n'); w.out('b', ''); w.out('c', '\n'); w.err('e2', '\n');
  const m = modelOf(w.events);
  assert.equal(m.findLine(2), 2);
  assert.equal(m.findLine(2, 'stderr'), 3);
  assert.equal(m.findLine(9), -1);
});

test('prepend: older pages go in front', async (t) => {
  await t.test('plain lines', () => {
    const w = new Writer();
    for (let i = 1; i <= 30; i++) w.out(`line ${i}`, '\n');
    const m = modelOf(w.events.slice(20));
    const v = m.visibleRows();
    assert.equal(v.count, 10);
    assert.deepEqual(m.prepend(w.events.slice(10, 20)), { added: 10, changed: [], restructured: false });
    assert.deepEqual(m.prepend(w.events.slice(0, 10)).added, 10);
    assert.deepEqual(texts(m), w.events.map((e) => e.text));
    assert.deepEqual(viewTexts(v), w.events.map((e) => e.text), 'a view follows prepends');
    assert.deepEqual([m.firstSeq, m.lastSeq], [1, 30]);
    m.push([w.out('line 31', '\n')]);
    assert.equal(texts(m).at(-1), 'line 31');
  });
  await t.test('events at or after firstSeq are skipped; prepend on an empty model pushes', () => {
    const w = new Writer();
    w.lines_('a', 'b', 'c');
    const m = modelOf(w.events.slice(1));
    assert.deepEqual(m.prepend(w.events), { added: 1, changed: [], restructured: false });
    assert.deepEqual(texts(m), ['a', 'b', 'c']);
    assert.deepEqual(m.prepend(w.events).added, 0);
    const e = new LogModel();
    assert.equal(e.prepend(w.events).added, 3);
    assert.deepEqual(texts(e), ['a', 'b', 'c']);
  });
  await t.test('a fragment straddling the boundary merges into the held row', () => {
    const w = new Writer();
    w.out('one', '\n'); w.out('hello ', ''); w.err('err', '\n'); w.out('wor', ''); w.out('ld', '\n'); w.out('next', '\n');
    const m = modelOf(w.events.slice(4)); // starts at "ld"
    assert.deepEqual(texts(m), ['ld', 'next']);
    const r = m.prepend(w.events.slice(0, 4));
    assert.deepEqual(texts(m), ['one', 'err', 'hello world', 'next']);
    assert.deepEqual(r, { added: 2, changed: [2], restructured: false });
    assert.deepEqual([m.row(2).firstSeq, m.row(2).lastSeq, m.row(2).time, m.row(2).line], [2, 5, 't2', 2]);
  });
  await t.test('a \\r line straddling the boundary keeps the held frame', () => {
    const w = new Writer();
    w.out('50%', '\r'); w.out('100%', '\n'); w.out('x', '\n');
    const m = modelOf(w.events.slice(1));
    m.prepend(w.events.slice(0, 1));
    assert.deepEqual(texts(m), ['100%', 'x']);
    assert.equal(m.row(0).firstSeq, 1);
  });
  await t.test('an empty piece after an older \\r keeps the older frame', async (t) => {
    for (const eol of ['\n', '\r\n', '\r']) {
      await t.test(`eol ${JSON.stringify(eol)}`, () => {
        const w = new Writer();
        w.out('50%', '\r'); w.out('100%', '\r'); w.out('', eol); w.out('x', '\n');
        const m = modelOf(w.events.slice(2));
        assert.deepEqual(texts(m), eol === '\r' ? ['x'] : ['', 'x']);
        m.prepend(w.events.slice(0, 2));
        const want = eol === '\r' ? ['x'] : ['100%', 'x'];
        assert.deepEqual(texts(modelOf(w.events)), want);
        assert.deepEqual(texts(m), want);
        assert.equal(m.row(0).firstSeq, 1);
      });
    }
    await t.test('an empty fragment at the boundary leaves the replacement pending', () => {
      const w = new Writer();
      w.out('100%', '\r'); w.out('', '');
      const m = modelOf(w.events.slice(1));
      m.prepend(w.events.slice(0, 1));
      assert.deepEqual(texts(m), ['100%']);
      m.push([w.out('done', ''), w.out('!', '\n')]);
      assert.deepEqual(texts(m), ['done!']);
    });
    await t.test('and across three pages', () => {
      const w = new Writer();
      w.out('a', ''); w.out('b', '\r'); w.out('', ''); w.out('', '\n');
      const m = modelOf(w.events.slice(3));
      m.prepend(w.events.slice(2, 3));
      m.prepend(w.events.slice(1, 2));
      m.prepend(w.events.slice(0, 1));
      assert.deepEqual(texts(m), ['ab']);
    });
  });
  await t.test('an escape cut at the boundary and the older colour apply to the merged row', () => {
    const w = new Writer();
    w.out(`${E}[32mgreen `, ''); w.out(`more ${E}[1`, ''); w.out(';4mbold', '\n'); w.out('after', '\n');
    const m = modelOf(w.events.slice(2));
    assert.equal(texts(m)[0], ';4mbold', 'without the older page the cut escape shows');
    m.prepend(w.events.slice(0, 2));
    assert.deepEqual(texts(m), ['green more bold', 'after']);
    assert.deepEqual(m.row(0).spans.map((s) => [s.text, s.style.fg, s.style.bold, s.style.underline]),
      [['green more ', 2, false, false], ['bold', 2, true, true]]);
  });
  await t.test('an open row of a stream the held page lacks stays open', () => {
    const w = new Writer();
    w.err('prompt> ', ''); w.out('a', '\n');
    const m = modelOf(w.events.slice(1));
    m.prepend(w.events.slice(0, 1));
    const r = m.push([w.err(`${E}[1myes`, '\n')]);
    assert.deepEqual(texts(m), ['prompt> yes', 'a']);
    assert.deepEqual(r, { added: 0, changed: [0], restructured: false });
  });
  await t.test('a merge across three pages', () => {
    const w = new Writer();
    w.out('a', ''); w.out('b', ''); w.out('c', ''); w.out('d', '\n');
    const m = modelOf(w.events.slice(3));
    m.prepend(w.events.slice(1, 3));
    m.prepend(w.events.slice(0, 1));
    assert.deepEqual(texts(m), ['abcd']);
    assert.equal(m.row(0).firstSeq, 1);
  });
  await t.test('a group open at the boundary adopts held rows until it closes', () => {
    const w = new Writer();
    w.lines_('pre', '::group::Build', 'compile', 'link', '::endgroup::', 'after');
    const m = modelOf(w.events.slice(3));
    assert.deepEqual(viewTexts(m.visibleRows()), ['link', 'after']);
    const v = m.visibleRows();
    const r = m.prepend(w.events.slice(0, 3));
    assert.equal(r.restructured, true);
    assert.deepEqual(structure(m).map((x) => x.slice(0, 2)),
      [['pre', ''], ['::group::Build', ''], ['compile', 'Build'], ['link', 'Build'], ['::endgroup::', 'Build'], ['after', '']]);
    assert.deepEqual(viewTexts(v), ['pre', '::group::Build', 'after']);
  });
  await t.test('a group never closed in the held page takes later pushes', () => {
    const w = new Writer();
    w.lines_('::group::Long', 'x', 'y');
    const m = modelOf(w.events.slice(1));
    m.prepend(w.events.slice(0, 1));
    m.push([w.out('z', '\n'), w.out('::endgroup::', '\n'), w.out('out', '\n')]);
    assert.deepEqual(structure(m).map((x) => x.slice(0, 2)),
      [['::group::Long', ''], ['x', 'Long'], ['y', 'Long'], ['z', 'Long'], ['::endgroup::', 'Long'], ['out', '']]);
  });
  await t.test('a Buildkite section open at the boundary is closed by the next header', () => {
    const w = new Writer();
    w.lines_('--- one', 'a', 'b', '^^^ +++', '+++ two', 'c');
    const m = modelOf(w.events.slice(2));
    m.prepend(w.events.slice(0, 2));
    assert.deepEqual(structure(m).map((x) => x.slice(0, 2)),
      [['--- one', ''], ['a', 'one'], ['b', 'one'], ['^^^ +++', 'one'], ['+++ two', ''], ['c', 'two']]);
    assert.equal(m.row(0).groupHeader.collapsedByDefault, false, '^^^ +++ in the held page expanded it');
  });
  await t.test('a group header straddling the boundary keeps its role', () => {
    const w = new Writer();
    w.out('::group::Bu', ''); w.out('ild', '\n'); w.out('in', '\n'); w.out('::endgroup::', '\n');
    const m = modelOf(w.events.slice(1));
    m.prepend(w.events.slice(0, 1));
    assert.deepEqual(structure(m), [['::group::Build', '', 'Bu'], ['in', 'Bu', null], ['::endgroup::', 'Bu', null]]);
    assert.deepEqual(viewTexts(m.visibleRows()), ['::group::Build']);
  });
  await t.test('a marker seen mid-line loses its role when the line start arrives', () => {
    const w = new Writer();
    w.out('echo ', ''); w.out('--- not a header', '\n'); w.out('x', '\n');
    const m = modelOf(w.events.slice(1));
    assert.ok(m.row(0).groupHeader, 'alone, the piece looks like a header');
    const g = m.row(0).groupHeader;
    m.prepend(w.events.slice(0, 1));
    assert.equal(m.row(0).groupHeader, null);
    assert.ok(g.headerless);
    assert.deepEqual(viewTexts(m.visibleRows()), ['echo --- not a header', 'x'], 'a headerless group never collapses');
  });
});

/** A small seeded PRNG (mulberry32), so failures reproduce. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random log of two streams with fragments, \r redraws, styled pieces
 * (each ends reset) and groups of both dialects. Markers are whole lines
 * written while no row of either stream is open, which is when a page
 * boundary cannot change their meaning.
 */
function randomLog(rand, n) {
  const w = new Writer();
  const open = { stdout: false, stderr: false };
  let gh = 0; // open GitHub groups, kept well below MAX_GROUP_DEPTH
  let names = 0;
  const pick = (a) => a[Math.floor(rand() * a.length)];
  for (let i = 0; i < n; i++) {
    const s = rand() < 0.7 ? 'stdout' : 'stderr';
    const quiet = !open.stdout && !open.stderr;
    if (quiet && rand() < 0.15) {
      const k = rand();
      if (k < 0.3 && gh < 6) { w.write(s, `::group::G${++names}`); gh++; }
      else if (k < 0.5) { w.write(s, '::endgroup::'); gh = Math.max(0, gh - 1); }
      else if (k < 0.8) w.write(s, `${pick(['---', '+++', '~~~'])} B${++names}`);
      else w.write(s, `::progress ${names}`, '\n', { directive: true });
      continue;
    }
    const word = pick(['abc', 'xyz', 'hello world', 'a\tb', 'é😀', '']);
    const text = rand() < 0.2 ? `${E}[${pick(['1', '31', '38;5;200', '48;2;1;2;3'])}m${word}${E}[0m` : word;
    const eol = pick(['', '', '\n', '\n', '\n', '\r', '\r\n']);
    w.write(s, text, eol);
    open[s] = eol === '' || eol === '\r';
  }
  return w.events;
}

/** Per stream: each row's line, seqs, time, text, flags and group names. */
function byStream(m) {
  const out = {};
  for (let i = 0; i < m.rowCount; i++) {
    const r = m.row(i);
    const path = m.groupPath(i).map((id) => {
      const g = m.group(id);
      return `${g.name}${g.collapsedByDefault ? '-' : '+'}`;
    });
    (out[r.stream] ??= []).push([r.line, r.firstSeq, r.lastSeq, r.time, r.text, r.directive, r.marker,
      r.groupHeader?.name ?? null, path.join('/')]);
  }
  return out;
}

function visibleByStream(v) {
  const out = {};
  for (let i = 0; i < v.count; i++) (out[v.row(i).stream] ??= []).push(v.row(i).text);
  return out;
}

test('paging backwards gives the rows and groups of reading in order', async (t) => {
  for (let seed = 1; seed <= 60; seed++) {
    await t.test(`seed ${seed}`, () => {
      const rand = rng(seed);
      const events = randomLog(rand, 300);
      const whole = modelOf(events);
      // Open at a random tail, page back in random pages, then go on live.
      const tail = 1 + Math.floor(rand() * (events.length - 1));
      const live = tail + Math.floor(rand() * (events.length - tail));
      const paged = modelOf(events.slice(tail, live));
      const views = [paged.visibleRows(), paged.visibleRows(() => false, { showDirectives: true })];
      for (let end = tail; end > 0;) {
        const start = Math.max(0, end - 1 - Math.floor(rand() * 60));
        paged.prepend(events.slice(start, end));
        end = start;
      }
      paged.push(events.slice(live));
      assert.equal(paged.rowCount, whole.rowCount);
      assert.deepEqual(byStream(paged), byStream(whole));
      assert.deepEqual(visibleByStream(views[0]), visibleByStream(whole.visibleRows()));
      assert.deepEqual(visibleByStream(views[1]), visibleByStream(whole.visibleRows(() => false, { showDirectives: true })));
      assert.equal(views[0].count, whole.visibleRows().count);
    });
  }
});

test('a million events in one push', () => {
  const N = 1_000_000;
  const events = new Array(N);
  for (let i = 0; i < N; i++) {
    const seq = i + 1;
    if (i % 1000 === 999) events[i] = { seq, time: 't', type: 'line', stream: 'stdout', line: seq, text: `::progress ${i / 10000}`, eol: '\n', directive: true };
    else if (i % 100 === 0) events[i] = { seq, time: 't', type: 'line', stream: 'stdout', line: seq, text: `${E}[32mok${E}[0m line ${seq}`, eol: '\n' };
    else events[i] = { seq, time: 't', type: 'line', stream: 'stdout', line: seq, text: `line ${seq} of output`, eol: '\n' };
  }
  const m = new LogModel();
  const t0 = performance.now();
  const r = m.push(events);
  const t1 = performance.now();
  const v = m.visibleRows();
  const count = v.count;
  const t2 = performance.now();
  const hit = m.search('LINE 999998 ', m.rowCount, -1);
  const t3 = performance.now();
  assert.equal(r.added, N);
  assert.equal(m.rowCount, N);
  assert.equal(count, N - N / 1000);
  assert.equal(hit, 999_997);
  assert.equal(v.row(count - 1).text, `line ${N - 1} of output`, "the last event is a hidden directive");
  assert.equal(v.indexOf(999_997), 999_997 - 999);
  console.log(`# 1,000,000 events: push ${(t1 - t0).toFixed(0)} ms, view ${(t2 - t1).toFixed(0)} ms, search ${(t3 - t2).toFixed(0)} ms`);
});
