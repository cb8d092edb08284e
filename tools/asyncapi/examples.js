// Checks the whole-frame examples of protocol.md against asyncapi.yaml, so a
// documented example cannot drift from the schemas (and, through the recorded
// frames, from the server). Reply-data fragments (no `type`) and examples with
// `{...}` placeholders are not whole frames and are skipped.
'use strict';

const fs = require('node:fs');
const { checkRecords, loadSchemas, errorsOf } = require('./validate');

/** The JSON values of fenced code blocks, each with its line, in order. */
function examples(markdown) {
  const out = [];
  let inBlock = false;
  let block = 0;
  let buf = null;
  let heading = '';
  markdown.split('\n').forEach((raw, n) => {
    const h = /^#{2,4} ([a-z_]+\.[a-z_.]+)\b/.exec(raw);
    if (h) heading = h[1];
    else if (raw.startsWith('#')) heading = '';
    if (raw.startsWith('```')) {
      inBlock = !inBlock;
      block += 1;
      buf = null;
      return;
    }
    if (!inBlock) return;
    let line = raw;
    let dir;
    const m = /^\s*([<>]) (.*)$/.exec(line);
    if (m) {
      dir = m[1] === '>' ? 'send' : 'recv';
      line = m[2];
    }
    if (line.trimStart().startsWith('{')) buf = { text: '', line: n + 1, dir };
    if (!buf) return;
    buf.text += `${line}\n`;
    try {
      out.push({ value: JSON.parse(buf.text), line: buf.line, dir: buf.dir, block, heading });
      buf = null;
    } catch {
      // not complete yet (or a placeholder example that never parses)
    }
  });
  return out;
}

/**
 * Checks protocol.md's whole frames: requests by `type`, `ok` replies by the
 * request before them in the same block, events by name, errors. Returns the
 * result of `checkRecords` plus `checked` (frames) and `skipped` (values
 * without a `type`).
 */
function checkExamples(mdPath, schemas = loadSchemas()) {
  const records = [];
  let skipped = 0;
  const data = []; // reply-data fragments, checked on their own
  for (const ex of examples(fs.readFileSync(mdPath, 'utf8'))) {
    const v = ex.value;
    if (v && typeof v === 'object' && !('type' in v) && schemas.schemaFor(`${ex.heading}.ok`)) {
      // Reply data under a request kind's heading: checked as that kind's ok reply.
      const frame = { type: 'ok', id: null, data: v };
      const errors = errorsOf(schemas.schemaFor(`${ex.heading}.ok`), frame);
      data.push({ message: `${ex.heading}.ok`, frame, errors, test: `protocol.md:${ex.line}`, source: 'protocol.md' });
      continue;
    }
    if (!v || typeof v !== 'object' || typeof v.type !== 'string') {
      skipped += 1;
      continue;
    }
    // Not a WebSocket frame: a push notification's payload (an unknown type without an id).
    if (!['ok', 'error', 'event'].includes(v.type) && !schemas.schemaFor(v.type) && !('id' in v)) {
      skipped += 1;
      continue;
    }
    const dir = ex.dir || (['ok', 'error', 'event'].includes(v.type) ? 'recv' : 'send');
    // One connection per code block: a reply pairs with a request of its own block.
    records.push({ dir, frame: v, test: `protocol.md:${ex.line}`, conn: ex.block, source: 'protocol.md' });
  }
  const sends = records.filter((r) => r.dir === 'send');
  const result = checkRecords(records, schemas);
  result.mismatches.push(...data.filter((d) => d.errors.length));
  result.counts['reply data fragments'] = data.length;
  return { ...result, checked: records.length + data.length, requests: sends.length, skipped };
}

module.exports = { checkExamples, examples };
