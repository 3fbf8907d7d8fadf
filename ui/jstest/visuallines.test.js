// The visual lines that search (stream/api/search_lines.go) matches must be
// the rows the page shows: testdata/visual-lines.json holds events and the
// lines they make, checked here against LogModel and by the Go tests
// (stream/api/search_lines_test.go) against the server's scanner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LogModel } from '../static/logmodel.js';

const cases = JSON.parse(readFileSync(new URL('./testdata/visual-lines.json', import.meta.url), 'utf8'));

for (const c of cases) {
  test(`visual lines: ${c.name}`, () => {
    const m = new LogModel();
    m.push(c.events);
    const got = [];
    for (let i = 0; i < m.rowCount; i++) {
      const r = m.row(i);
      got.push({ seq: r.firstSeq, line: r.line, stream: r.stream, text: r.text, hidden: r.directive || r.marker });
    }
    assert.deepEqual(got, c.lines);
  });
}
