// hubbub behind a real nginx (Debian's package) with TLS: two nodes on one
// Redis, nginx in front running deploy/nginx/hubbub.conf (web-tests/nginx.js
// substitutes its ports, certificate paths and a 3 s proxy_read_timeout), a
// certificate the test makes with openssl, and headless Chromium as the
// client: the web client over https, register/login over wss://, a direct
// message between sockets on different nodes, and an idle socket that
// outlives proxy_read_timeout several times over because the nodes ping
// every second. Run with `node --test` in this directory (after `npm ci`).
// Under CI=true a missing nginx, redis-server or chromium fails the test;
// elsewhere it skips loudly.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { sleep, freePort, buildServer, serverBin } = require('./support');
const nginx = require('./nginx');

const REPO = path.resolve(__dirname, '..');
const SCYLLA = process.env.HUBBUB_TEST_SCYLLA || '';
const START_MS = SCYLLA ? 180000 : 20000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT_MS = 15000;
const CI = process.env.CI === 'true';
// HUBBUB_PROXY_SOAK_SECS=N: the by-hand run of README "Deploying": nginx's
// default proxy_read_timeout (60 s, as shipped in deploy/) and the server's
// default ping interval (25 s), idle for N seconds instead of 3 x 3 s.
const SOAK_S = Number(process.env.HUBBUB_PROXY_SOAK_SECS || 0);
const PROXY_READ_TIMEOUT_S = SOAK_S ? 60 : 3;
const PING_S = SOAK_S ? 25 : 1;
const IDLE_MS = SOAK_S ? SOAK_S * 1000 : 3 * PROXY_READ_TIMEOUT_S * 1000 + 1000;

// Every tool this test needs; under CI a missing one fails, elsewhere skips.
function missingTool() {
  const forNginx = nginx.missingTool();
  if (forNginx) return forNginx;
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) return 'redis-server (apt-get install -y redis-server)';
  if (!fs.existsSync(CHROMIUM)) return `chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  return null;
}

// A child process whose output is kept (and shown when the test fails).
class Proc {
  constructor(name, cmd, args, env) {
    this.name = name; this.log = '';
    this.child = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout.on('data', (d) => { this.log += d; });
    this.child.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((r) => this.child.once('exit', (code, sig) => r({ code, sig })));
  }
  alive() { return this.child.exitCode === null && this.child.signalCode === null; }
  async stop() {
    if (!this.alive()) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }
}

async function until(what, ms, probe) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await probe()) return; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${ms} ms`);
    await sleep(100);
  }
}

async function httpOk(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return r.status === 200 ? r.text() : null;
}

// GET over https trusting only the test CA; resolves with [status, body].
function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve([res.statusCode, body]));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

function nodeArgs(port, metricsPort, worker, dataDir, redisUrl, publicHost) {
  const args = ['--listen', `127.0.0.1:${port}`, '--metrics-listen', `127.0.0.1:${metricsPort}`,
    '--data-dir', dataDir, '--redis', redisUrl,
    '--worker-id', String(worker), '--bcrypt-cost', '4', '--presence-ttl', '3',
    '--trusted-proxies', '127.0.0.1/32', '--public-hosts', publicHost];
  if (!SOAK_S) args.push('--ping-interval', String(PING_S));
  if (SCYLLA) args.push('--scylla', SCYLLA, '--scylla-keyspace', `hubbub_proxy_${process.pid}`, '--scylla-migrate');
  return args;
}

// How many sockets each node has open (its own /metrics listener, not through nginx).
async function socketsPerNode(ports) {
  const one = async (port) => {
    const text = await httpOk(`http://127.0.0.1:${port}/metrics`);
    const m = /^hubbub_sockets_open (\d+)/m.exec(text || '');
    return m ? Number(m[1]) : -1;
  };
  return [await one(ports.metrics1), await one(ports.metrics2)];
}

// In the page: a protocol client over one WebSocket (requests by id,
// events kept, the close code recorded).
function installClient() {
  window.hub = {};
  window.hubOpen = (name, url) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const c = { ws, next: 1, waiting: {}, events: [], closed: null };
    ws.onmessage = (m) => {
      const f = JSON.parse(m.data);
      if (f.type === 'event') c.events.push(f);
      else if (c.waiting[f.id]) { c.waiting[f.id](f); delete c.waiting[f.id]; }
    };
    ws.onclose = (e) => { c.closed = e.code; };
    ws.onopen = () => { window.hub[name] = c; resolve(); };
    ws.onerror = () => reject(new Error('websocket error'));
  });
  window.hubRequest = (name, type, fields) => new Promise((resolve) => {
    const c = window.hub[name];
    const id = c.next++;
    c.waiting[id] = resolve;
    c.ws.send(JSON.stringify({ ...fields, type, id }));
  });
}

test('behind nginx with TLS: web client, wss:// across two nodes, idle sockets kept alive by pings', { timeout: 600000 + SOAK_S * 1000 }, async (t) => {
  const missing = missingTool();
  if (missing) {
    if (CI) throw new Error(`the proxy test needs ${missing}; CI must install it (.ci/run)`);
    console.error(`\n!!!!! SKIPPING the nginx proxy test: ${missing} not found !!!!!\n`);
    t.skip(`${missing} missing`);
    return;
  }
  buildServer();
  const bin = serverBin();

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-proxy-'));
  const ports = { redis: await freePort(), node1: await freePort(), node2: await freePort(),
    metrics1: await freePort(), metrics2: await freePort() };
  const front = await new nginx.Nginx({ upstreams: [ports.node1, ports.node2], dir: path.join(tmp, 'nginx'),
    readTimeoutS: SOAK_S ? undefined : PROXY_READ_TIMEOUT_S }).prepare();
  Object.assign(ports, front.ports);
  const base = front.base;
  const procs = [];
  let ctx = null;
  try {
    const redis = new Proc('redis', 'redis-server', ['--port', String(ports.redis), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no']);
    procs.push(redis);
    const redisUrl = `redis://127.0.0.1:${ports.redis}`;
    await until('redis', WAIT_MS, () => new Promise((r) => {
      const s = net.connect(ports.redis, '127.0.0.1', () => { s.end(); r(true); });
      s.on('error', () => r(false));
    }));
    const dataDir = path.join(tmp, 'data');
    const publicHost = front.publicHost;
    const env = { HUBBUB_LOG: 'info' };
    procs.push(new Proc('node1', bin, nodeArgs(ports.node1, ports.metrics1, 1, dataDir, redisUrl, publicHost), env));
    await until('node 1', START_MS, () => httpOk(`http://127.0.0.1:${ports.node1}/healthz`));
    procs.push(new Proc('node2', bin, nodeArgs(ports.node2, ports.metrics2, 2, dataDir, redisUrl, publicHost), env));
    await until('node 2', START_MS, () => httpOk(`http://127.0.0.1:${ports.node2}/healthz`));

    await front.start();
    const cert = front.cert;
    await until('nginx', WAIT_MS, async () => (await httpsGet(`${base}/healthz`, cert.ca))[0] === 200);

    // TLS with the test CA; plain HTTP redirects to https.
    const [status, body] = await httpsGet(`${base}/`, cert.ca);
    assert.strictEqual(status, 200);
    assert.match(body, /<script[^>]* src="\/?app\.js"/);
    const redirect = await fetch(`http://127.0.0.1:${ports.http}/ws`, { redirect: 'manual' });
    assert.strictEqual(redirect.status, 301);

    const { chromium } = require('playwright-core');
    ctx = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'chromium-')), {
      executablePath: CHROMIUM, headless: true, ignoreHTTPSErrors: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30000,
    });
    ctx.setDefaultTimeout(WAIT_MS);
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on('pageerror', (e) => console.error('page error:', e));

    // The web client over https: register through the form; its socket is wss://.
    await page.goto(base + '/');
    await page.waitForSelector('#auth:not([hidden])');
    await page.click('#tab-register');
    await page.fill('#auth-username', 'wendy');
    await page.fill('#auth-display', 'Wendy Web');
    await page.fill('#auth-password', 'correct-horse');
    await page.click('#auth-submit');
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForSelector('#conn-status[data-state="online"]');

    // Protocol-level sockets from the same https page: ann on one node,
    // bob on the other (each node's /metrics says where a socket landed).
    await page.evaluate(installClient);
    const wss = `wss://127.0.0.1:${ports.https}/ws`;
    const before = await socketsPerNode(ports);
    await page.evaluate(([u]) => window.hubOpen('ann', u), [wss]);
    const afterAnn = await socketsPerNode(ports);
    const annNode = afterAnn[0] > before[0] ? 0 : 1;
    let bob = null;
    for (let i = 0; i < 6 && bob === null; i++) {
      const prior = await socketsPerNode(ports);
      await page.evaluate(([n, u]) => window.hubOpen(n, u), [`bob${i}`, wss]);
      const now = await socketsPerNode(ports);
      if (now[1 - annNode] > prior[1 - annNode]) bob = `bob${i}`;
    }
    assert.ok(bob, 'nginx spread sockets over both nodes');

    const req = (name, type, fields) => page.evaluate(([n, ty, f]) => window.hubRequest(n, ty, f), [name, type, fields]);
    const reg = await req('ann', 'auth.register', { username: 'ann', password: 'password123' });
    assert.strictEqual(reg.type, 'ok', JSON.stringify(reg));
    assert.strictEqual(reg.data.ping_interval, PING_S, 'the client learns the ping interval');
    assert.strictEqual((await req(bob, 'auth.register', { username: 'bob', password: 'password123' })).type, 'ok');
    // Login over wss:// too.
    await page.evaluate(([u]) => window.hubOpen('ann2', u), [wss]);
    assert.strictEqual((await req('ann2', 'auth.login', { username: 'ann', password: 'password123' })).type, 'ok');

    // A direct message from bob's node to ann's.
    const sent = await req(bob, 'message.send', { to: 'ann', text: 'across nodes, through nginx' });
    assert.strictEqual(sent.type, 'ok', JSON.stringify(sent));
    await page.waitForFunction(() => window.hub.ann.events.some((e) => e.event === 'message.new'
      && e.data.message.text === 'across nodes, through nginx'), null, { timeout: WAIT_MS });

    // Idle for three times nginx's proxy_read_timeout: no frame from the
    // client, only the nodes' pings (answered by the browser) cross nginx.
    // Any change of the web client's connection state is recorded.
    await page.evaluate(() => {
      window.statusChanges = [];
      const el = document.querySelector('#conn-status');
      new MutationObserver(() => window.statusChanges.push(el.dataset.state))
        .observe(el, { attributes: true, attributeFilter: ['data-state'] });
    });
    const idleFrom = Date.now();
    await sleep(IDLE_MS);
    const states = await page.evaluate(() => Object.fromEntries(
      Object.entries(window.hub).map(([n, c]) => [n, { readyState: c.ws.readyState, closed: c.closed }])));
    for (const [n, s] of Object.entries(states)) {
      assert.deepStrictEqual(s, { readyState: 1, closed: null }, `socket ${n} stayed open`);
    }
    assert.strictEqual((await req('ann', 'ping', {})).type, 'ok');
    console.error(`idle sockets stayed open through nginx for ${Math.round((Date.now() - idleFrom) / 1000)} s ` +
      `(proxy_read_timeout ${PROXY_READ_TIMEOUT_S} s, ping interval ${PING_S} s)`);
    assert.deepStrictEqual(await page.evaluate(() => window.statusChanges), [], 'the web client never went offline');
    await page.waitForSelector('#conn-status[data-state="online"]');
  } catch (e) {
    for (const p of procs) console.error(`--- ${p.name} output ---\n${p.log.slice(-4000)}`);
    console.error(`--- nginx error.log ---\n${front.tail()}`);
    throw e;
  } finally {
    if (ctx) await ctx.close();
    await front.stop();
    for (const p of procs.reverse()) await p.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
