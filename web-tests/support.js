// Helpers shared by the browser tests (chat.test.js, proxy.test.js).
'use strict';
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { freePort } = require('./ports');

const REPO = path.resolve(__dirname, '..');

/** Resolves after `ms` milliseconds. */
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Builds the server with the test suite's own command (same features as
 * `cargo test --workspace`, so nothing compiles twice after the Rust passes). */
function buildServer() {
  const build = spawnSync('cargo', ['test', '--workspace', '--locked', '--no-run'], { cwd: REPO, stdio: 'inherit', timeout: 900000 });
  assert.strictEqual(build.status, 0, 'cargo build failed');
}

module.exports = { sleep, freePort, buildServer };
