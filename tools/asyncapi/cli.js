#!/usr/bin/env node
// ./test.sh's entry: `node cli.js [--frames DIR]... [--examples FILE]`.
// Always checks asyncapi.yaml with the official parser; then every recorded
// frame under each DIR and the whole-frame examples of FILE. Exits 1 listing
// every mismatch (grouped), 0 when everything validates.
'use strict';

const { checkDocument, checkFrameDir, loadSchemas, DEFAULT_SPEC } = require('./validate');
const { checkExamples } = require('./examples');

function report(title, result) {
  const { counts, mismatches, refused } = result;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const kinds = Object.keys(counts).filter((k) => !k.includes(' ')).length;
  console.log(`${title}: ${total} frames of ${kinds} message types checked; ${refused} schema-invalid requests refused by the server as intended; ${mismatches.length} mismatches`);
  if (process.env.ASYNCAPI_VERBOSE) for (const k of Object.keys(counts).sort()) console.log(`  ${k}: ${counts[k]}`);
  const groups = new Map();
  for (const m of mismatches) {
    const key = `${m.message}: ${m.errors.join('; ')}`;
    if (!groups.has(key)) groups.set(key, { n: 0, first: m, tests: new Set() });
    const g = groups.get(key);
    g.n += 1;
    g.tests.add(`${m.source || ''} ${m.test || ''}`.trim());
  }
  for (const [key, g] of groups) {
    console.log(`\nMISMATCH x${g.n} ${key}`);
    console.log(`  frame: ${JSON.stringify(g.first.frame).slice(0, 600)}`);
    console.log(`  tests: ${[...g.tests].slice(0, 8).join(', ')}${g.tests.size > 8 ? ', ...' : ''}`);
  }
  return mismatches.length;
}

async function main() {
  const args = process.argv.slice(2);
  const frames = [];
  const mds = [];
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === '--frames') frames.push(args[i + 1]);
    else if (args[i] === '--examples') mds.push(args[i + 1]);
    else throw new Error(`usage: cli.js [--frames DIR]... [--examples protocol.md]... (got ${args[i]})`);
  }
  let bad = 0;
  const docErrors = await checkDocument(DEFAULT_SPEC);
  console.log(`asyncapi.yaml: ${docErrors.length ? 'INVALID' : 'valid'} (@asyncapi/parser)`);
  for (const e of docErrors) console.log(`  ${e}`);
  bad += docErrors.length;
  const schemas = loadSchemas(DEFAULT_SPEC);
  for (const md of mds) {
    const r = checkExamples(md, schemas);
    bad += report(`${md} examples (${r.skipped} data fragments skipped)`, r);
  }
  for (const dir of frames) bad += report(`recorded frames in ${dir}`, checkFrameDir(dir, DEFAULT_SPEC));
  process.exit(bad ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
