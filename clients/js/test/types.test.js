// The hand-written index.d.ts compiles and describes the API (tsc --noEmit).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KINDS, methodName, HubbubClient } from '../src/index.js';
import fs from 'node:fs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

test('index.d.ts type-checks a usage sample', () => {
  const tsc = path.join(HERE, '..', 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(HERE, 'types')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('index.d.ts names every request kind and every generated method', () => {
  const dts = fs.readFileSync(path.join(HERE, '..', 'src', 'index.d.ts'), 'utf8');
  for (const k of KINDS) {
    assert.ok(dts.includes(`'${k}': [`), `Requests lacks ${k}`);
    const m = methodName(k);
    if (typeof HubbubClient.prototype[m] === 'function' && !['authRegister', 'authLogin', 'authToken', 'authRefresh', 'authLogout', 'messageSend'].includes(m)) {
      assert.ok(dts.includes(`  ${m}: Method<'${k}'>;`), `HubbubClient lacks ${m}`);
    }
  }
});
