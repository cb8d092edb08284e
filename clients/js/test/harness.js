// Test harness: the real hubbub binary, real redis-server, a TCP proxy that
// can cut sockets, and SDK clients that record their frames when
// HUBBUB_RECORD_FRAMES=DIR is set (DIR/sdk-<pid>.jsonl, one JSON object per
// line: {"dir":"send"|"recv","frame":...,"test":"<test name>"}).
//
// HUBBUB_VIA_NGINX=1: every socket goes through nginx with TLS, running
// deploy/nginx/hubbub.conf (web-tests/nginx.js): each Server and each
// CutProxy gets its own nginx in front (client -> nginx -> [CutProxy ->]
// node), `url` is its wss:// address, and clients trust the test's CA.
// A node keeps its port across restarts, so nginx's upstream stays right;
// a CutProxy sits behind nginx, where frames are plain WebSocket again.

import { after } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { HubbubClient } from '../src/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
const requireCjs = createRequire(import.meta.url);
// Ports outside the kernel's ephemeral range (see web-tests/ports.js).
export const { freePort } = requireCjs(path.join(REPO, 'web-tests', 'ports.js'));
const nginx = requireCjs(path.join(REPO, 'web-tests', 'nginx.js'));
/** True when the sockets go through nginx with TLS (HUBBUB_VIA_NGINX=1). */
export const VIA_NGINX = nginx.VIA_NGINX;
if (VIA_NGINX) {
  const missing = nginx.missingTool();
  if (missing) throw new Error(`HUBBUB_VIA_NGINX=1 needs ${missing}`);
  after(() => nginx.stopAll());
}
// One certificate for every nginx of this process; clients trust its CA.
const CERT = VIA_NGINX ? nginx.testCertificate() : null;

// The runtime's WebSocket (Node 22; Node 20 with --experimental-websocket),
// else the `ws` package (a dev dependency, for the tests only). Through
// nginx: `ws`, trusting the test CA (the standard API has no TLS options).
async function webSocketImpl() {
  if (!VIA_NGINX) return globalThis.WebSocket || (await import('ws')).WebSocket;
  const { WebSocket } = await import('ws');
  return class TrustingTestCa extends WebSocket {
    constructor(url, protocols) { super(url, protocols, { ca: CERT.ca }); }
  };
}
export const WebSocketImpl = await webSocketImpl();

/** nginx in front of 127.0.0.1:`port`, started (only under HUBBUB_VIA_NGINX). */
function front(port) {
  return new nginx.Nginx({ upstreams: [port], cert: CERT }).start();
}
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
export const BIN = process.env.HUBBUB_BIN || path.join(TARGET, 'debug', 'hubbub');
export const WAIT_MS = 20000;
export const CI = process.env.CI === 'true';
const SCYLLA = process.env.HUBBUB_TEST_SCYLLA || '';
const RECORD = process.env.HUBBUB_RECORD_FRAMES || '';
const START_MS = SCYLLA ? 180000 : 20000;

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

export function tempDir(name) { return fs.mkdtempSync(path.join(os.tmpdir(), `hubbub-sdk-${name}-`)); }

/** Resolves when `cond()` is truthy; rejects after `ms` with `what` in the message. */
export async function waitFor(cond, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === "function" ? what() : what}`);
    await sleep(25);
  }
}

let keyspaces = 0;
/** A fresh CQL keyspace name (used only with HUBBUB_TEST_SCYLLA). */
export function newKeyspace() { return `hubbub_sdk_${process.pid}_${Date.now() % 1000000}_${keyspaces++}`; }

/** The hubbub binary as a child process on its own port and data directory. */
export class Server {
  /** Nodes of one cluster share `dataDir` and (on CQL) `keyspace`: see newKeyspace(). */
  constructor({ dataDir, redis, workerId, keyspace } = {}) {
    this.dataDir = dataDir || tempDir('data');
    this.redis = redis; this.workerId = workerId; this.log = '';
    this.keyspace = keyspace || newKeyspace();
  }
  /** The socket URL clients use: the node's own, or its nginx's wss://. */
  get url() { return this.front ? this.front.wss : `ws://127.0.0.1:${this.port}/ws`; }
  async start() {
    if (!this.port) this.port = await freePort();
    if (VIA_NGINX && !this.front) this.front = await front(this.port);
    const args = ['--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--bcrypt-cost', '4',
      '--metrics-listen', 'off'];
    if (this.front) args.push('--trusted-proxies', '127.0.0.1/32', '--public-hosts', this.front.publicHost);
    if (this.redis) args.push('--redis', this.redis, '--worker-id', String(this.workerId || 0), '--presence-ttl', '3');
    if (SCYLLA) args.push('--scylla', SCYLLA, '--scylla-keyspace', this.keyspace, '--scylla-migrate');
    this.child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HUBBUB_LOG: 'info' } });
    this.child.stdout.on('data', (d) => { this.log += d; });
    this.child.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((r) => this.child.once('exit', (code, sig) => r({ code, sig })));
    const deadline = Date.now() + START_MS;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (r.status === 200) return this;
      } catch { /* not up yet */ }
      if (this.child.exitCode !== null) throw new Error(`hubbub exited:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`hubbub never became healthy:\n${this.log}`);
      await sleep(100);
    }
  }
  /** SIGTERM: sockets get close code 4000. */
  async stop() {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(t);
  }
}

/** A redis-server child on a free port, without persistence. */
export class Redis {
  static available() {
    const ok = spawnSync('redis-server', ['--version']).status === 0;
    if (!ok && CI) throw new Error('redis-server is not installed, and CI=true: .ci/run must install it');
    return ok;
  }
  get url() { return `redis://127.0.0.1:${this.port}`; }
  async start() {
    if (!this.port) { this.port = await freePort(); this.dir = tempDir('redis'); }
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', this.dir], { stdio: 'ignore' });
    await waitFor(() => new Promise((res) => {
      const s = net.connect(this.port, '127.0.0.1', () => { s.end(); res(true); });
      s.on('error', () => res(false));
    }), 'redis-server to listen', 10000);
    return this;
  }
  /** SIGKILL, as a crash. */
  kill() {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * A TCP proxy in front of a server. `cutAfter(marker)` forwards the next client
 * chunk containing `marker` to the server, then cuts both sides before any
 * reply comes back (a socket cut mid-send).
 */
export class CutProxy {
  constructor(targetPort) { this.targetPort = targetPort; this.conns = new Set(); this.marker = null; }
  /** The socket URL clients use: the proxy's own, or its nginx's wss://. */
  get url() { return this.front ? this.front.wss : `ws://127.0.0.1:${this.port}/ws`; }
  async start() {
    this.server = net.createServer((c) => {
      if (this.refusing) { c.destroy(); return; }
      const up = net.connect(this.targetPort, '127.0.0.1');
      const pair = { c, up };
      this.conns.add(pair);
      const end = () => { c.destroy(); up.destroy(); this.conns.delete(pair); };
      c.on('data', (d) => {
        up.write(d);
        // Frames from a client are masked, so look for the marker after unmasking.
        if (this.marker && unmaskedText(d).includes(this.marker)) {
          this.marker = null;
          pair.cut = true;
          this.cuts++;
          up.once('drain', () => {}); // the write above is queued on the socket
          setImmediate(end);
        }
      });
      up.on('data', (d) => { if (!pair.cut) c.write(d); });
      c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
    });
    this.cuts = 0;
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    if (VIA_NGINX) this.front = await front(this.port);
    return this;
  }
  cutAfter(marker) { this.marker = marker; }
  /** Cuts every connection now; while `refusing`, new ones are dropped at once. */
  cutAll() { for (const { c, up } of this.conns) { c.destroy(); up.destroy(); } this.conns.clear(); }
  close() {
    for (const { c, up } of this.conns) { c.destroy(); up.destroy(); }
    this.server.close();
    if (this.front) return this.front.stop();
  }
}

/** The payload text of the client frames in one TCP chunk (best effort: whole frames). */
function unmaskedText(buf) {
  let out = '';
  let i = 0;
  while (i + 2 <= buf.length) {
    let len = buf[i + 1] & 0x7f;
    const masked = buf[i + 1] & 0x80;
    let off = i + 2;
    if (len === 126) { len = buf.readUInt16BE(off); off += 2; } else if (len === 127) { len = Number(buf.readBigUInt64BE(off)); off += 8; }
    if (!masked) return out + buf.toString('utf8', off);
    const mask = buf.subarray(off, off + 4);
    off += 4;
    const body = Buffer.from(buf.subarray(off, off + len));
    for (let k = 0; k < body.length; k++) body[k] ^= mask[k % 4];
    out += body.toString('utf8');
    i = off + len;
  }
  return out;
}

let recorders = 0;
/**
 * A frame recorder for one client. Each client is its own `conn` to the
 * checker, which pairs replies with requests per conn by `id`: ids count per
 * client (across its reconnects), so two clients of one test may both have a
 * request 5 in flight at once.
 */
function recorder(testName) {
  if (!RECORD) return undefined;
  fs.mkdirSync(RECORD, { recursive: true });
  const file = path.join(RECORD, `sdk-${process.pid}.jsonl`);
  const conn = recorders++;
  return (dir, frame) => fs.appendFileSync(file, JSON.stringify({ dir, frame, test: testName, conn }) + '\n');
}

/**
 * An SDK client for test `t`, with fast backoff, its frames recorded, and the
 * `message` stream collected in `client.seen` (the application's view).
 */
export function makeClient(t, url, opts = {}) {
  if (VIA_NGINX && !url.startsWith('wss://')) throw new Error(`HUBBUB_VIA_NGINX=1 but a client connects to ${url}`);
  const client = new HubbubClient({ url, WebSocket: WebSocketImpl, backoffMinMs: 100, backoffMaxMs: 1000, onFrame: recorder(t.name), ...opts });
  client.seen = [];
  client.on('message', (m) => client.seen.push(m));
  client.events = [];
  client.on('event', (name, data, f) => client.events.push(f));
  t.after(() => client.close());
  return client;
}

/** Resolves with the next `name` emitted by `client` (rejects after WAIT_MS). */
export function next(client, name, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${name} within ${ms} ms`)); }, ms);
    const off = client.once(name, (v) => { clearTimeout(timer); resolve(v); });
  });
}

/** Texts of the messages `client`'s application saw in conversation `conv`, in order. */
export function texts(client, conv) {
  return client.seen.filter((m) => !conv || m.conversation_id === conv).map((m) => m.text);
}

/** A unique-enough username for one test run. */
let names = 0;
export function uname(base) { return `${base}${process.pid % 10000}${names++}`; }
