// nginx (Debian's package) with TLS in front of hubbub nodes, for the tests
// that run through a real reverse proxy: web-tests/proxy.test.js,
// web-tests/chat.test.js and clients/js/test under HUBBUB_VIA_NGINX=1.
//
// It runs deploy/nginx/hubbub.conf itself, with this run's ports,
// certificate paths and (optionally) proxy_read_timeout substituted; every
// substitution must match, so the deployed file cannot drift away from what
// the tests run. The certificate comes from a throwaway CA made with openssl;
// clients trust that CA (`ca`), never "ignore errors" unless they must.
'use strict';
const assert = require('node:assert');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { freePort } = require('./ports');

const REPO = path.resolve(__dirname, '..');
const NGINX = process.env.NGINX_PATH || (fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');
const START_MS = 15000;

/** True when HUBBUB_VIA_NGINX=1 asks the SDK and browser tests to go through nginx. */
const VIA_NGINX = process.env.HUBBUB_VIA_NGINX === '1';

function found(cmd, args) { return spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined; }

/** The first tool nginx fronting needs that is missing (with how to get it), or null. */
function missingTool() {
  if (!found(NGINX, ['-v'])) return 'nginx (apt-get install -y nginx-light)';
  if (!found('openssl', ['version'])) return 'openssl';
  return null;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000 });
  assert.strictEqual(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
}

/** A throwaway CA and a server certificate for 127.0.0.1 and localhost, in
 * `dir`: { cert, key } are file paths, `ca` the CA certificate's PEM bytes. */
function makeCertificate(dir) {
  const f = (n) => path.join(dir, n);
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=hubbub test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=127.0.0.1', '-keyout', f('privkey.pem'), '-out', f('server.csr')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('fullchain.pem')]);
  return { cert: f('fullchain.pem'), key: f('privkey.pem'), ca: fs.readFileSync(f('ca.pem')) };
}

/** deploy/nginx/hubbub.conf with the upstream listing `upstreams` (node
 * ports on 127.0.0.1), nginx listening on `http`/`https`, `cert`'s files,
 * and proxy_read_timeout `readTimeoutS` when given (else the shipped 60 s). */
function renderSite({ upstreams, http, https, cert, readTimeoutS }) {
  let conf = fs.readFileSync(path.join(REPO, 'deploy', 'nginx', 'hubbub.conf'), 'utf8');
  const swap = (from, to) => {
    assert.ok(conf.includes(from), `deploy/nginx/hubbub.conf no longer contains "${from}"`);
    conf = conf.replace(from, to);
  };
  const servers = upstreams.map((p) => `server 127.0.0.1:${p};`).join('\n    ');
  swap('server 127.0.0.1:8081;\n    server 127.0.0.1:8082;\n    server 127.0.0.1:8083;', servers);
  swap('listen 80;', `listen 127.0.0.1:${http};`);
  swap('listen 443 ssl;', `listen 127.0.0.1:${https} ssl;`);
  swap('/etc/ssl/hubbub/fullchain.pem', cert.cert);
  swap('/etc/ssl/hubbub/privkey.pem', cert.key);
  if (readTimeoutS) swap('proxy_read_timeout 60s;', `proxy_read_timeout ${readTimeoutS}s;`);
  return conf;
}

/** nginx.conf for running as the current user: everything it writes lives
 * under `prefix`, and it includes `site`. Returns the file's path. */
function nginxMain(prefix, site) {
  const p = (n) => path.join(prefix, n);
  fs.writeFileSync(p('hubbub.conf'), site);
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(p(`tmp/${d}`), { recursive: true });
  fs.writeFileSync(p('nginx.conf'), `daemon off;
worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} info;
events { worker_connections 256; }
http {
  access_log ${p('access.log')};
  client_body_temp_path ${p('tmp/body')};
  proxy_temp_path ${p('tmp/proxy')};
  fastcgi_temp_path ${p('tmp/fastcgi')};
  uwsgi_temp_path ${p('tmp/uwsgi')};
  scgi_temp_path ${p('tmp/scgi')};
  include ${p('hubbub.conf')};
}
`);
  return p('nginx.conf');
}

function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

// The status of a GET over https trusting only `ca`.
function httpsStatus(url, ca) {
  return new Promise((resolve, reject) => {
    const req = require('node:https').get(url, { ca, timeout: 2000 }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

let shared = null; // one certificate per process is enough
let sharedDir = null;
/** This process's test certificate (made on first use, removed at exit). */
function testCertificate() {
  if (!shared) {
    sharedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-cert-'));
    shared = makeCertificate(sharedDir);
  }
  return shared;
}
const running = new Set();
// A test process that ends without stopping its nginx must not leave it
// behind (nginx is unref'd, so it never keeps a finished test alive).
process.on('exit', () => {
  for (const n of running) n.child.kill('SIGKILL');
  if (sharedDir) fs.rmSync(sharedDir, { recursive: true, force: true });
});

/**
 * One nginx in front of the nodes on `upstreams` (ports on 127.0.0.1; they
 * need not be up yet, so a node can be told `publicHost` before it starts).
 * `start()` resolves once nginx accepts TLS connections; `base` is its
 * https:// origin, `wss` the socket URL, `ca` the CA clients must trust.
 * Keep the upstream ports stable across node restarts: nginx keeps them.
 */
class Nginx {
  constructor({ upstreams, readTimeoutS, dir, cert } = {}) {
    this.upstreams = upstreams; this.readTimeoutS = readTimeoutS;
    this.dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-nginx-'));
    this.ownDir = !dir;
    fs.mkdirSync(this.dir, { recursive: true });
    this.cert = cert || null;
    this.child = null;
  }
  get base() { return `https://127.0.0.1:${this.ports.https}`; }
  get wss() { return `wss://127.0.0.1:${this.ports.https}/ws`; }
  /** host:port as browsers see it, for the nodes' --public-hosts. */
  get publicHost() { return `127.0.0.1:${this.ports.https}`; }
  get ca() { return this.cert.ca; }
  get errorLog() { return path.join(this.dir, 'error.log'); }
  /** Picks the ports and makes the certificate (start() does it if not done). */
  async prepare() {
    if (this.ports) return this;
    this.ports = { http: await freePort(), https: await freePort() };
    if (!this.cert) this.cert = testCertificate();
    return this;
  }
  async start() {
    await this.prepare();
    const site = renderSite({ upstreams: this.upstreams, ...this.ports, cert: this.cert, readTimeoutS: this.readTimeoutS });
    const main = nginxMain(this.dir, site);
    const base = ['-e', this.errorLog, '-p', this.dir, '-c', main];
    run(NGINX, ['-t', ...base]);
    this.child = spawn(NGINX, base, { stdio: 'ignore' });
    this.child.unref();
    this.exited = new Promise((r) => this.child.once('exit', (code, sig) => r({ code, sig })));
    running.add(this);
    const deadline = Date.now() + START_MS;
    while (!(await listening(this.ports.https))) {
      if (this.child.exitCode !== null) throw new Error(`nginx exited: ${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`nginx not listening within ${START_MS} ms: ${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this;
  }
  /** Resolves once GET /healthz through nginx (trusting only the test CA)
   * answers 200, i.e. nginx and a node behind it are up; rejects after `ms`. */
  async healthy(ms = START_MS) {
    const deadline = Date.now() + ms;
    for (;;) {
      if ((await httpsStatus(`${this.base}/healthz`, this.ca).catch(() => 0)) === 200) return;
      if (Date.now() > deadline) throw new Error(`${this.base}/healthz not 200 within ${ms} ms: ${this.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  /** nginx's access log so far (a request is logged when it ends). */
  accessLog() {
    try { return fs.readFileSync(path.join(this.dir, 'access.log'), 'utf8'); } catch { return ''; }
  }
  /** How many WebSocket upgrades (status 101) the access log shows. */
  upgrades() { return (this.accessLog().match(/ 101 /g) || []).length; }
  /** The end of nginx's error log (for a failing test's output). */
  tail(n = 4000) {
    try { return fs.readFileSync(this.errorLog, 'utf8').slice(-n); } catch { return '(no error.log)'; }
  }
  async stop() {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM'); // fast shutdown: open sockets are closed
      const t = setTimeout(() => c.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(t);
    }
    running.delete(this);
    if (this.ownDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Stops every nginx this process started and has not stopped yet. */
async function stopAll() { for (const n of [...running]) await n.stop(); }

module.exports = { Nginx, stopAll, testCertificate, VIA_NGINX, NGINX, missingTool, makeCertificate, renderSite, nginxMain };
