// Helpers shared by the browser tests (chat.test.js, proxy.test.js).
'use strict';
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { freePort } = require('./ports');

const REPO = path.resolve(__dirname, '..');

/** Resolves after `ms` milliseconds. */
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** The server binary the tests run: HUBBUB_BIN when set (a prebuilt one,
 * as clients/js/test/harness.js also honours), else the debug build under
 * CARGO_TARGET_DIR (default target/). */
function serverBin() {
  if (process.env.HUBBUB_BIN) return path.resolve(REPO, process.env.HUBBUB_BIN);
  return path.join(path.resolve(REPO, process.env.CARGO_TARGET_DIR || 'target'), 'debug', 'hubbub');
}

/** Builds the server with the test suite's own command (same features as
 * `cargo test --workspace`, so nothing compiles twice after the Rust passes).
 * With HUBBUB_BIN set nothing is built: that binary must exist. */
function buildServer() {
  if (process.env.HUBBUB_BIN) {
    const bin = serverBin();
    assert.ok(require('node:fs').existsSync(bin), `HUBBUB_BIN=${bin} does not exist`);
    return;
  }
  const build = spawnSync('cargo', ['test', '--workspace', '--locked', '--no-run'], { cwd: REPO, stdio: 'inherit', timeout: 900000 });
  assert.strictEqual(build.status, 0, 'cargo build failed');
}

module.exports = { sleep, freePort, buildServer, serverBin };
