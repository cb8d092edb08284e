// The error codes the server can send, against the two documents that list
// them: protocol.md's section 6 table and asyncapi.yaml's ErrorCode schema.
//
// The server's codes are read from the one place they are defined:
// `ErrorCode` in src/protocol.rs (its variants, their `serde(rename_all =
// "snake_case")` wire names and `as_str`'s strings, which must agree);
// src/error.rs maps every internal error onto those variants, and each
// variant must be reachable from that mapping (`Error::code`). A code added
// there and not documented, or documented and no longer sent, is drift.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const yaml = require('js-yaml');

const REPO = path.join(__dirname, '..', '..');

const snake = (v) => v.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/**
 * The wire codes of `ErrorCode` in the Rust source `src`. Returns
 * `{codes, problems}`: codes in declaration order; problems when the enum
 * or its `as_str` cannot be found or disagree with each other.
 */
function rustCodes(src) {
  const problems = [];
  const en = /pub enum ErrorCode\s*\{([^}]*)\}/.exec(src);
  if (!en) return { codes: [], problems: ['src/protocol.rs: no `pub enum ErrorCode { ... }` found'] };
  const variants = en[1].split('\n').map((l) => l.replace(/\/\/.*$/, '').trim().replace(/,$/, ''))
    .filter((l) => /^[A-Z][A-Za-z0-9]*$/.test(l));
  const before = src.slice(Math.max(0, en.index - 300), en.index);
  if (!/rename_all\s*=\s*"snake_case"/.test(before)) problems.push('ErrorCode: serde(rename_all = "snake_case") not found');
  const arms = new Map();
  for (const m of src.matchAll(/ErrorCode::([A-Za-z0-9]+)\s*=>\s*"([a-z_]+)"/g)) arms.set(m[1], m[2]);
  for (const v of variants) {
    if (!arms.has(v)) problems.push(`ErrorCode::${v}: no \`as_str\` arm found`);
    else if (arms.get(v) !== snake(v)) problems.push(`ErrorCode::${v}: as_str says "${arms.get(v)}", serde sends "${snake(v)}"`);
  }
  return { codes: variants.map(snake), problems };
}

/** The `ErrorCode` variants `Error::code` in src/error.rs maps onto (null: no such fn). */
function mappedVariants(src) {
  const m = /pub fn code\(&self\) -> ErrorCode \{([\s\S]*?)\n    \}/.exec(src);
  if (!m) return null;
  return [...new Set([...m[1].matchAll(/=>\s*ErrorCode::([A-Za-z0-9]+)/g)].map((x) => x[1]))];
}

/** The codes in the first column of protocol.md's "## 6. Error codes" table. */
function docCodes(md) {
  const start = md.search(/^## 6\. Error codes\s*$/m);
  if (start < 0) return null;
  const rest = md.slice(start + 1);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  const codes = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([a-z_]+)`\s*\|\s*(.*?)\s*\|/.exec(line);
    if (m && m[2]) codes.push(m[1]);
  }
  return codes;
}

/** The `enum` of components.schemas.ErrorCode in asyncapi.yaml (null if it has none). */
function schemaCodes(text) {
  const s = yaml.load(text)?.components?.schemas?.ErrorCode;
  return Array.isArray(s?.enum) ? s.enum : null;
}

/**
 * Compares the server's codes with both documents. Returns a list of
 * problems, each a sentence naming the file to fix (empty: no drift).
 */
function checkErrorCodes({ rust, errors, md, spec } = {}) {
  rust = rust ?? fs.readFileSync(path.join(REPO, 'src', 'protocol.rs'), 'utf8');
  errors = errors ?? fs.readFileSync(path.join(REPO, 'src', 'error.rs'), 'utf8');
  md = md ?? fs.readFileSync(path.join(REPO, 'protocol.md'), 'utf8');
  spec = spec ?? fs.readFileSync(path.join(REPO, 'asyncapi.yaml'), 'utf8');
  const { codes, problems } = rustCodes(rust);
  if (codes.length === 0) return problems.length ? problems : ['src/protocol.rs: ErrorCode has no variants'];
  const mapped = mappedVariants(errors);
  if (mapped === null) problems.push('src/error.rs: no `pub fn code(&self) -> ErrorCode` found');
  else {
    for (const v of mapped) if (!codes.includes(snake(v))) problems.push(`src/error.rs maps to ErrorCode::${v}, which the enum lacks`);
    for (const c of codes) if (!mapped.map(snake).includes(c)) problems.push(`ErrorCode \`${c}\`: src/error.rs never maps an error to it`);
  }
  const compare = (where, listed) => {
    for (const c of codes) if (!listed.includes(c)) problems.push(`${where} lacks error code \`${c}\` (the server sends it)`);
    for (const c of listed) if (!codes.includes(c)) problems.push(`${where} lists error code \`${c}\`, which the server never sends`);
    const dup = listed.filter((c, i) => listed.indexOf(c) !== i);
    if (dup.length) problems.push(`${where} lists ${dup.join(', ')} twice`);
  };
  const doc = docCodes(md);
  if (doc === null) problems.push('protocol.md: no "## 6. Error codes" section');
  else compare('protocol.md section 6', doc);
  const enumd = schemaCodes(spec);
  if (enumd === null) problems.push('asyncapi.yaml: components.schemas.ErrorCode has no enum');
  else compare('asyncapi.yaml ErrorCode', enumd);
  return problems;
}

module.exports = { checkErrorCodes, rustCodes, mappedVariants, docCodes, schemaCodes };
