// Checks hubbub's asyncapi.yaml and the frames tests record against it.
// Exports functions the SDK tests can call too; cli.js runs them for ./test.sh.
// The record format (one JSON object per line) is described in README.md.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const yaml = require('js-yaml');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const DEFAULT_SPEC = path.join(__dirname, '..', '..', 'asyncapi.yaml');

/** Parses the document with the official parser; returns its error messages (empty: valid). */
async function checkDocument(specPath = DEFAULT_SPEC) {
  const { Parser } = require('@asyncapi/parser');
  const { diagnostics } = await new Parser().parse(fs.readFileSync(specPath, 'utf8'));
  // Severity 0 is an error; warnings and hints (1-3) do not fail the check.
  return diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('/')}: ${d.message}`);
}

/**
 * Compiles every message payload of the document. `schemaFor(name)` gives
 * the validator of a channel message (`message.send`, `message.send.ok`,
 * `error`, `event.message.new`), or undefined for an unknown name.
 */
function loadSchemas(specPath = DEFAULT_SPEC) {
  const doc = yaml.load(fs.readFileSync(specPath, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'asyncapi');
  const messages = doc.channels.ws.messages;
  const cache = new Map();
  function schemaFor(name) {
    if (!Object.prototype.hasOwnProperty.call(messages, name)) return undefined;
    if (!cache.has(name)) cache.set(name, ajv.getSchema(`asyncapi#/channels/ws/messages/${name}/payload`));
    return cache.get(name);
  }
  return { doc, schemaFor };
}

/** The errors of one frame against one message, as short strings ("" path = the frame). */
function errorsOf(validate, frame) {
  if (validate(frame)) return [];
  return validate.errors.map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` (${e.params.additionalProperty})` : '';
    return `${e.instancePath || '/'} ${e.message}${extra} [${e.schemaPath}]`;
  });
}

const sameId = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * Checks records (objects of the JSONL format) in order. Replies are paired
 * with their request per connection by `id`, so an `ok` is checked against
 * the reply schema of its kind. Returns `{counts, mismatches, refused}`:
 * counts by message name, mismatches as {message, frame, errors, test, source}.
 */
function checkRecords(records, schemas = loadSchemas()) {
  const counts = {};
  const mismatches = [];
  let refused = 0; // schema-invalid sends that were meant to be refused, and were
  const pending = new Map(); // connection -> [{kind, id, invalid, rec}]
  const count = (name) => { counts[name] = (counts[name] || 0) + 1; };
  const fail = (message, rec, errors) => mismatches.push({ message, frame: rec.frame, errors, test: rec.test, source: rec.source });
  const check = (name, rec) => {
    const v = schemas.schemaFor(name);
    if (!v) return [`no message \`${name}\` in asyncapi.yaml`];
    return errorsOf(v, rec.frame);
  };
  for (const rec of records) {
    const conn = `${rec.source || ''}#${rec.conn ?? ''}`;
    if (!pending.has(conn)) pending.set(conn, []);
    const queue = pending.get(conn);
    const f = rec.frame;
    if (rec.dir === 'send') {
      if (rec.mark === 'malformed') { count('send (malformed, not checked)'); queue.push({ id: f && f.id, invalid: false, rec }); continue; }
      const kind = f && typeof f === 'object' && typeof f.type === 'string' ? f.type : undefined;
      const errors = kind ? check(kind, rec) : ['not a JSON object with a string `type`'];
      count(kind && schemas.schemaFor(kind) ? kind : 'send (unknown type)');
      queue.push({ kind: errors.length ? undefined : kind, id: f && f.id, invalid: errors.length > 0, errors, rec });
      if (errors.length && rec.mark !== 'expect_error') fail(kind || '(request)', rec, errors);
      continue;
    }
    if (!f || typeof f !== 'object') { count('recv (not JSON)'); fail('(frame)', rec, ['not a JSON object']); continue; }
    if (f.type === 'event') {
      const name = `event.${f.event}`;
      count(name);
      const errors = check(name, rec);
      if (errors.length) fail(name, rec, errors);
      continue;
    }
    if (f.type !== 'ok' && f.type !== 'error') { count('recv (unknown type)'); fail('(frame)', rec, ['type is not ok, error or event']); continue; }
    const i = queue.findIndex((p) => sameId(p.id, f.id));
    const req = i >= 0 ? queue.splice(i, 1)[0] : undefined;
    if (req && req.invalid && req.rec.mark === 'expect_error') {
      if (f.type === 'error') refused += 1;
      else fail(req.rec.frame.type || '(request)', req.rec, [...req.errors, 'the server answered ok to a request the schema refuses']);
    }
    const name = f.type === 'error' ? 'error' : req && req.kind ? `${req.kind}.ok` : 'ok (request unknown)';
    count(name);
    const errors = name === 'ok (request unknown)' ? genericOk(f) : check(name, rec);
    if (errors.length) fail(name, rec, errors);
  }
  return { counts, mismatches, refused };
}

function genericOk(f) {
  const keys = Object.keys(f).sort().join(',');
  if (keys !== 'data,id,type') return [`ok reply with fields ${keys}`];
  return f.data && typeof f.data === 'object' && !Array.isArray(f.data) ? [] : ['data is not an object'];
}

/** Reads every `*.jsonl` file of `dir` (each line tagged with its file as `source`). */
function readRecords(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    const lines = fs.readFileSync(path.join(dir, name), 'utf8').split('\n');
    lines.forEach((line, n) => {
      if (!line.trim()) return;
      try {
        out.push({ ...JSON.parse(line), source: name });
      } catch (e) {
        out.push({ dir: 'recv', frame: `unparsable record line ${n + 1}: ${e.message}`, source: name });
      }
    });
  }
  return out;
}

/** Checks every recorded frame under `dir`; the result of `checkRecords`. */
function checkFrameDir(dir, specPath = DEFAULT_SPEC) {
  return checkRecords(readRecords(dir), loadSchemas(specPath));
}

module.exports = { checkDocument, loadSchemas, errorsOf, checkRecords, readRecords, checkFrameDir, DEFAULT_SPEC };
