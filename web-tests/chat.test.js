// End-to-end test of hubbub's browser client: two real headless Chromium
// pages against a real server binary, including a server restart.
// Run with `node --test` in this directory (after `npm ci`).
// HUBBUB_VIA_NGINX=1: every page loads over https:// and its socket is
// wss://, through nginx running deploy/nginx/hubbub.conf (web-tests/nginx.js)
// in front of each server; Chromium accepts exactly that test certificate.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { sleep, freePort, buildServer, serverBin } = require('./support');
const { Nginx, VIA_NGINX, missingTool: nginxMissing, testCertificate } = require('./nginx');

const REPO = path.resolve(__dirname, '..');
// HUBBUB_TEST_SCYLLA=host:port: the server stores in that CQL node (the
// test Cassandra of ./test.sh), in a fresh keyspace it creates at start.
// Screenshots go to a fresh temp dir, so a test run never rewrites tracked
// files; HUBBUB_SCREENSHOTS_DIR=docs/screenshots refreshes the committed
// ones (on the SQLite run).
const SCYLLA = process.env.HUBBUB_TEST_SCYLLA || '';
// One keyspace per Server (a restart of it keeps it), so every test starts
// as empty as on SQLite, where each has its own data directory: with one
// keyspace for the file, a later test registering a name an earlier one
// used (ben) got "username taken".
let keyspaces = 0;
function newKeyspace() { return `hubbub_e2e_${process.pid}_${Date.now() % 1000000}_${keyspaces++}`; }
const SHOTS = (!SCYLLA && !VIA_NGINX && process.env.HUBBUB_SCREENSHOTS_DIR)
  ? path.resolve(REPO, process.env.HUBBUB_SCREENSHOTS_DIR)
  : fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-shots-'));
// Creating a keyspace of ~30 tables on a loaded Cassandra takes a while.
const START_MS = SCYLLA ? 180000 : 20000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT_MS = 15000;
const CI = process.env.CI === 'true';
if (VIA_NGINX && nginxMissing()) throw new Error(`HUBBUB_VIA_NGINX=1 needs ${nginxMissing()}`);

// Builds target/debug/hubbub with the same command and so the same feature
// set as ./test.sh's Rust suite (`cargo test --workspace`), so that after it
// this is a no-op. A plain `cargo build` resolves fewer features (no
// dev-dependencies, no loadtest): in CI it compiled part of the dependency
// tree and hubbub itself a second time.



async function waitHealthy(base, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`server at ${base} never became healthy`);
    await sleep(100);
  }
}

// The server binary as a child process; its output is kept for the log check.
// Under HUBBUB_VIA_NGINX=1 an nginx in front of it (kept across restarts:
// the port stays the same) is what the browsers talk to.
class Server {
  constructor(port, dataDir) {
    this.port = port; this.dataDir = dataDir; this.log = ''; this.child = null; this.keyspace = newKeyspace();
  }
  /** The origin the browsers load: the node's own, or its nginx's https://. */
  get base() { return this.front ? this.front.base : `http://127.0.0.1:${this.port}`; }
  async start() {
    if (VIA_NGINX && !this.front) this.front = await new Nginx({ upstreams: [this.port] }).start();
    const args = ['--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--bcrypt-cost', '4',
      '--metrics-listen', 'off'];
    if (this.front) args.push('--trusted-proxies', '127.0.0.1/32', '--public-hosts', this.front.publicHost);
    if (SCYLLA) args.push('--scylla', SCYLLA, '--scylla-keyspace', this.keyspace, '--scylla-migrate');
    this.child = spawn(serverBin(), args, {
      cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HUBBUB_LOG: 'info' },
    });
    this.child.stdout.on('data', (d) => { this.log += d; });
    this.child.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((r) => this.child.once('exit', (code, sig) => r({ code, sig })));
    await waitHealthy(`http://127.0.0.1:${this.port}`, START_MS);
    if (this.front) await this.front.healthy(WAIT_MS);
  }
  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // graceful: sockets get close code 4000
    const t = setTimeout(() => child.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(t);
  }
  /** Stops the server and its nginx for good. */
  async close() {
    await this.stop();
    if (this.front) await this.front.stop();
  }
}

// Through nginx, Chromium accepts the test certificate by its public key
// (and nothing else that fails verification).
function certificateArgs() {
  if (!VIA_NGINX) return [];
  const { X509Certificate, createHash } = require('node:crypto');
  const pem = fs.readFileSync(testCertificate().cert);
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return [`--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`];
}

async function launch(name) {
  const { chromium } = require('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `hubbub-chromium-${name}-`));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 700 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...certificateArgs()],
    timeout: 30000,
  });
  ctx.setDefaultTimeout(WAIT_MS);
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on('pageerror', (e) => console.error(`[${name}] page error:`, e));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`[${name}] console:`, m.text()); });
  return { ctx, page, userDataDir };
}

async function online(page) {
  await page.waitForSelector('#conn-status[data-state="online"]', { timeout: WAIT_MS });
}

async function register(page, base, username, displayName, password, shot) {
  await page.goto(base + '/');
  await page.waitForSelector('#auth:not([hidden])');
  await page.click('#tab-register');
  await page.fill('#auth-username', username);
  await page.fill('#auth-display', displayName);
  await page.fill('#auth-password', password);
  if (shot) await page.screenshot({ path: path.join(SHOTS, shot) });
  await page.click('#auth-submit');
  await page.waitForSelector('#app:not([hidden])');
  await online(page);
}

// Waits until the open chat shows `text` and returns how many times it is shown.
async function waitForMessage(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li.msg[data-id] .text')].some((e) => e.textContent === t),
    text, { timeout: WAIT_MS });
  return page.evaluate(
    (t) => [...document.querySelectorAll('#messages li.msg .text')].filter((e) => e.textContent === t).length, text);
}

// The reaction chips ("emoji count", and whether highlighted as mine) under the message showing `text`.
async function waitForChips(page, text, want) {
  await page.waitForFunction(([t, w]) => {
    const li = [...document.querySelectorAll('#messages li.msg[data-id]')]
      .find((l) => l.querySelector('.text').textContent === t);
    if (!li) return false;
    const got = [...li.querySelectorAll('.reactions .chip[data-emoji]')]
      .map((c) => `${c.textContent}${c.classList.contains('mine') ? ' mine' : ''}`);
    return JSON.stringify(got) === JSON.stringify(w);
  }, [text, want], { timeout: WAIT_MS });
}

// Clicks the picker's `emoji` under the message showing `text`.
async function react(page, text, emoji) {
  const li = page.locator('#messages li.msg[data-id]', { has: page.locator(`.text:text-is("${text}")`) });
  await li.locator('.chip.add').click();
  await li.locator(`.picker .pick[data-emoji="${emoji}"]`).click();
}

async function send(page, text) {
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
}

test('two browsers chat live and survive a server restart', { timeout: 600000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    if (CI) throw new Error(`chromium not found at ${CHROMIUM}; CI must install it (apt-get install -y chromium)`);
    console.error(`\n!!!!! SKIPPING the browser test: chromium not found at ${CHROMIUM}. Install it: apt-get install -y chromium !!!!!\n`);
    t.skip('chromium missing');
    return;
  }
  buildServer();
  fs.mkdirSync(SHOTS, { recursive: true });

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-'));
  const server = new Server(await freePort(), dataDir);
  const browsers = [];
  try {
    await server.start();
    const base = server.base;
    const a = await launch('alice'); browsers.push(a);
    const b = await launch('bob'); browsers.push(b);
    const A = a.page;
    const B = b.page;

    // Both register (the page's own origin opens the WebSocket).
    await register(A, base, 'alice', 'Alice Liddell', 'correct-horse', 'register.png');
    await register(B, base, 'bob', 'Bob Builder', 'battery-staple');
    assert.strictEqual(await A.textContent('#me-name'), 'Alice Liddell');
    if (VIA_NGINX) assert.match(A.url(), /^https:\/\/127\.0\.0\.1:\d+\/$/);

    // Bob fills in his profile.
    await B.click('#btn-my-profile');
    await B.waitForSelector('#profile-edit:not([hidden])');
    await B.fill('#edit-bio', 'Builds things.\nCan we fix it? Yes we can. <b>not bold</b>');
    await B.fill('#edit-color', '#e07a2f');
    await B.click('#edit-save');
    await B.waitForSelector('.toast >> text=Profile saved');

    // Alice searches for Bob, opens his profile and follows him.
    await A.fill('#search-input', 'bo');
    await A.click('#search-results li[data-username="bob"] button');
    await A.waitForSelector('#view-profile:not([hidden])');
    assert.strictEqual(await A.textContent('#profile-username'), '@bob');
    assert.match(await A.textContent('#profile-bio'), /<b>not bold<\/b>/, 'user text is shown literally');
    await A.click('#btn-follow');
    await A.waitForSelector('#btn-follow[data-following="true"]');
    await A.waitForFunction(() => document.querySelector('#profile-followers').textContent === '1');
    await B.waitForSelector('.toast >> text=@alice started following you');
    await A.screenshot({ path: path.join(SHOTS, 'profile.png') });

    // Messages both ways, seen live.
    await A.click('#btn-message');
    await A.waitForSelector('#view-chat:not([hidden])');
    await send(A, 'hi bob!');
    assert.strictEqual(await waitForMessage(A, 'hi bob!'), 1);
    await B.waitForFunction(() => {
      const li = document.querySelector('#conversations li[data-username="alice"]');
      return li && li.querySelector('.preview').textContent.includes('hi bob!');
    });
    await B.click('#conversations li[data-username="alice"] button');
    assert.strictEqual(await waitForMessage(B, 'hi bob!'), 1);
    await send(B, 'hey alice, welcome');
    assert.strictEqual(await waitForMessage(A, 'hey alice, welcome'), 1);
    await send(A, 'how are you?');
    assert.strictEqual(await waitForMessage(B, 'how are you?'), 1);
    await A.waitForFunction(() => document.querySelector('#conversations li[data-username="bob"] .preview')
      .textContent === 'You: how are you?');
    await B.screenshot({ path: path.join(SHOTS, 'chat.png') });

    // Reactions: alice reacts from the picker, bob sees it live and adds
    // his by clicking the chip, alice sees the count and takes hers back.
    const thumbs = '\u{1F44D}';
    await react(A, 'hey alice, welcome', thumbs);
    await waitForChips(A, 'hey alice, welcome', [`${thumbs} 1 mine`]);
    await waitForChips(B, 'hey alice, welcome', [`${thumbs} 1`]);
    await B.click(`#messages li.msg .reactions .chip[data-emoji="${thumbs}"]`);
    await waitForChips(B, 'hey alice, welcome', [`${thumbs} 2 mine`]);
    await waitForChips(A, 'hey alice, welcome', [`${thumbs} 2 mine`]);
    await A.click(`#messages li.msg .reactions .chip[data-emoji="${thumbs}"]`);
    await waitForChips(A, 'hey alice, welcome', [`${thumbs} 1`]);
    await waitForChips(B, 'hey alice, welcome', [`${thumbs} 1 mine`]);

    // Chat state: unread counts while bob looks elsewhere, a read receipt
    // once he opens the chat, and alice's typing indicator.
    await B.click('#btn-home');
    await send(A, 'unread one');
    await send(A, 'unread two');
    await B.waitForSelector('#conversations li[data-username="alice"] .badge:text-is("2")');
    await B.waitForSelector('#unread-total:text-is("2 unread")');
    await B.click('#conversations li[data-username="alice"] button');
    assert.strictEqual(await waitForMessage(B, 'unread two'), 1);
    await B.waitForSelector('#unread-total', { state: 'hidden' });
    assert.strictEqual(await B.$('#conversations li[data-username="alice"] .badge'), null, 'read: no badge');
    await A.waitForSelector('#messages li.msg:has(.text:text-is("unread two")) .seen:text-is("Seen")');
    await A.fill('#composer-input', 'typing a reply');
    await B.waitForSelector('#typing:text-is("Alice Liddell is typing…")');
    await B.screenshot({ path: path.join(SHOTS, 'typing.png') });
    await A.press('#composer-input', 'Enter');
    assert.strictEqual(await waitForMessage(B, 'typing a reply'), 1);
    await B.waitForSelector('#typing', { state: 'hidden' });

    // The server restarts (graceful: close code 4000). Alice writes while it is down.
    await server.stop();
    await A.waitForSelector('#conn-status:not([data-state="online"])');
    await B.waitForSelector('#conn-status:not([data-state="online"])');
    await send(A, 'sent while the server was down');
    await A.waitForSelector('#messages li.msg.pending');
    await A.screenshot({ path: path.join(SHOTS, 'reconnecting.png') });
    await server.start();
    await online(A);
    await online(B);
    // nginx logs a WebSocket when it ends: both pages' sockets went through it.
    if (VIA_NGINX) assert.ok(server.front.upgrades() >= 2, `WebSocket upgrades through nginx: ${server.front.upgrades()}`);

    // Nothing lost, nothing doubled, and the chat goes on.
    assert.strictEqual(await waitForMessage(B, 'sent while the server was down'), 1);
    assert.strictEqual(await waitForMessage(A, 'sent while the server was down'), 1);
    await send(B, 'back again');
    assert.strictEqual(await waitForMessage(A, 'back again'), 1);
    await send(A, 'great');
    assert.strictEqual(await waitForMessage(B, 'great'), 1);
    for (const text of ['hi bob!', 'hey alice, welcome', 'how are you?']) {
      assert.strictEqual(await waitForMessage(A, text), 1, `alice sees "${text}" once`);
      assert.strictEqual(await waitForMessage(B, text), 1, `bob sees "${text}" once`);
    }

    // A reload stays logged in (tokens in localStorage) and shows the history.
    await A.reload();
    await A.waitForSelector('#app:not([hidden])');
    await online(A);
    await A.click('#conversations li[data-username="bob"] button');
    for (const text of ['hi bob!', 'back again', 'great', 'sent while the server was down']) {
      assert.strictEqual(await waitForMessage(A, text), 1, `after reload alice sees "${text}" once`);
    }

    // Tokens: a minute before the access token expires the page rotates it
    // with auth.refresh; with an expired one it reconnects through auth.refresh.
    const tokens = async () => JSON.parse(await A.evaluate(() => localStorage.getItem('hubbub.session')));
    const setExpiry = (inMs) => A.evaluate((ms) => {
      const s = JSON.parse(localStorage.getItem('hubbub.session'));
      s.expires_at = Date.now() + ms;
      localStorage.setItem('hubbub.session', JSON.stringify(s));
    }, inMs);
    let before = (await tokens()).refresh_token;
    await setExpiry(61000);
    await A.reload();
    await online(A);
    await A.waitForFunction((old) => JSON.parse(localStorage.getItem('hubbub.session')).refresh_token !== old, before);
    before = (await tokens()).refresh_token;
    assert.ok((await tokens()).expires_at > Date.now() + 800000, 'a fresh 15-minute access token');
    await setExpiry(-1000);
    await A.reload();
    await online(A);
    await A.waitForFunction((old) => JSON.parse(localStorage.getItem('hubbub.session')).refresh_token !== old, before);
    await A.click('#conversations li[data-username="bob"] button');
    await send(A, 'still here after a token refresh');
    assert.strictEqual(await waitForMessage(B, 'still here after a token refresh'), 1);

    // History pages in as you scroll up: a fresh browser logged in as bob
    // (no stored sync cursor) gets the newest 30 and pages back with next_before.
    for (let i = 1; i <= 35; i++) await send(A, `n${String(i).padStart(2, '0')}`);
    assert.strictEqual(await waitForMessage(B, 'n35'), 1);
    const c = await launch('bob2'); browsers.push(c);
    const C = c.page;
    await C.goto(base + '/');
    await C.fill('#auth-username', 'bob');
    await C.fill('#auth-password', 'battery-staple');
    await C.click('#auth-submit');
    await online(C);
    await C.click('#conversations li[data-username="alice"] button');
    assert.strictEqual(await waitForMessage(C, 'n35'), 1);
    const shown = () => C.evaluate(() => document.querySelectorAll('#messages li.msg[data-id]').length);
    // n35 can arrive through the first sync before the history page lands.
    await C.waitForFunction(() => document.querySelectorAll('#messages li.msg[data-id]').length >= 30);
    assert.strictEqual(await shown(), 30, 'one history page at first');
    assert.strictEqual(await C.isVisible('#messages li.msg .text >> text="hi bob!"'), false);
    await C.evaluate(() => { document.querySelector('#messages-scroll').scrollTop = 0; });
    await C.waitForFunction(() => document.querySelectorAll('#messages li.msg[data-id]').length === 45);
    assert.strictEqual(await waitForMessage(C, 'hi bob!'), 1);
    await C.waitForSelector('#history-status >> text=Start of the conversation');

    // Posts: bob posts, alice (a follower) sees it on her home timeline,
    // likes and reposts it, and sees his next post arrive live.
    await B.click('#btn-home');
    await B.fill('#post-input', 'Can we fix it? <i>Yes</i> we can!');
    await B.click('#post-submit');
    await B.waitForSelector('#timeline li.post .text >> text="Can we fix it? <i>Yes</i> we can!"');
    await A.click('#btn-home');
    const post = '#timeline li.post:has(.text:text-is("Can we fix it? <i>Yes</i> we can!"))';
    await A.waitForSelector(post);
    await A.click(`${post} button.like`);
    await A.waitForSelector(`${post} button.like[aria-pressed="true"]:text-is("♥ 1")`);
    await B.waitForSelector('.toast >> text=@alice liked your post');
    await A.click(`${post} button.repost`);
    await A.waitForSelector(`${post} button.repost[aria-pressed="true"]:text-is("⟳ 1")`);
    await B.waitForSelector('.toast >> text=@alice reposted your post');
    await B.fill('#post-input', 'Second post, live');
    await B.click('#post-submit');
    await A.waitForSelector('#timeline li.post .text >> text="Second post, live"');
    await A.fill('#post-input', 'Hello from alice');
    await A.screenshot({ path: path.join(SHOTS, 'home.png') });

    // A wrong password gets a clear message.
    await B.click('#btn-logout');
    await B.waitForSelector('#auth:not([hidden])');
    await B.fill('#auth-username', 'bob');
    await B.fill('#auth-password', 'wrong-password');
    await B.click('#auth-submit');
    await B.waitForSelector('#auth-error >> text=Wrong username or password.');
    await B.screenshot({ path: path.join(SHOTS, 'login-error.png') });

    // No secrets in the server's logs.
    const session = JSON.parse(await A.evaluate(() => localStorage.getItem('hubbub.session')));
    assert.ok(session.access_token && session.refresh_token);
    assert.ok(!server.log.includes(session.access_token), 'access token in server log');
    assert.ok(!server.log.includes(session.refresh_token.split('.')[1]), 'refresh secret in server log');
    assert.ok(!server.log.includes('correct-horse'), 'password in server log');
    if (VIA_NGINX) {
      const access = server.front.accessLog();
      assert.ok(!access.includes(session.access_token) && !access.includes(session.refresh_token.split('.')[1]),
        'a token in nginx\'s access log');
    }
  } finally {
    for (const x of browsers) {
      await x.ctx.close().catch(() => {});
      fs.rmSync(x.userDataDir, { recursive: true, force: true });
    }
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a group: create it, add and remove members, chat in it, see member changes live', { timeout: 600000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    if (CI) throw new Error(`chromium not found at ${CHROMIUM}; CI must install it (apt-get install -y chromium)`);
    console.error(`\n!!!!! SKIPPING the browser group test: chromium not found at ${CHROMIUM} !!!!!\n`);
    t.skip('chromium missing');
    return;
  }
  buildServer();
  fs.mkdirSync(SHOTS, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-groups-'));
  const server = new Server(await freePort(), dataDir);
  const browsers = [];
  const groupLi = '#conversations li[data-group]';
  const members = (page) => page.textContent('#chat-sub');
  try {
    await server.start();
    const base = server.base;
    const [a, b, c] = [await launch('ann'), await launch('ben'), await launch('cat')];
    browsers.push(a, b, c);
    const [A, B, C] = [a.page, b.page, c.page];
    await register(A, base, 'ann', 'Ann', 'correct-horse');
    await register(B, base, 'ben', 'Ben', 'battery-staple');
    await register(C, base, 'cat', 'Cat', 'tr0ub4dor&3');

    // Ann creates a group with Ben; it opens for her and appears live for him.
    await A.click('#btn-new-group');
    await A.fill('#new-group-title', 'Weekend plans');
    await A.fill('#new-group-members', 'ben');
    await A.click('#new-group-submit');
    await A.waitForSelector('#view-chat:not([hidden])');
    assert.strictEqual(await A.textContent('#chat-title'), 'Weekend plans');
    await A.waitForFunction(() => document.querySelector('#chat-sub').textContent.startsWith('2 members'));
    await B.waitForSelector('.toast >> text=@ann added you to Weekend plans');
    await B.waitForSelector(groupLi);

    // They chat in it, live both ways; group messages name their sender.
    await send(A, 'hello group');
    assert.strictEqual(await waitForMessage(A, 'hello group'), 1);
    await B.waitForFunction((sel) => {
      const li = document.querySelector(sel);
      return li && li.querySelector('.preview').textContent === 'ann: hello group';
    }, groupLi);
    await B.click(`${groupLi} button`);
    assert.strictEqual(await waitForMessage(B, 'hello group'), 1);
    await B.waitForSelector('#messages li.msg:not(.mine) .sender >> text=ann');
    await send(B, 'hi ann');
    assert.strictEqual(await waitForMessage(A, 'hi ann'), 1);

    // Ann adds Cat from the members panel: Cat gets the group with its whole
    // history, Ben's header counts three members, live.
    await A.click('#btn-group-members');
    await A.waitForSelector('#group-members li[data-username="ben"]');
    await A.fill('#group-add-input', 'cat');
    await A.click('#group-add-form button[type="submit"]');
    await A.waitForSelector('#group-members li[data-username="cat"]');
    await C.waitForSelector('.toast >> text=@ann added you to Weekend plans');
    await B.waitForFunction(() => document.querySelector('#chat-sub').textContent.startsWith('3 members'));
    await C.click(`${groupLi} button`);
    assert.strictEqual(await waitForMessage(C, 'hello group'), 1);
    assert.strictEqual(await waitForMessage(C, 'hi ann'), 1);
    await send(C, 'cat is here');
    assert.strictEqual(await waitForMessage(A, 'cat is here'), 1);
    assert.strictEqual(await waitForMessage(B, 'cat is here'), 1);
    await A.screenshot({ path: path.join(SHOTS, 'group.png') });

    // Ann removes Ben: his client drops the group live; the rest go on.
    await A.click('#group-members li[data-username="ben"] button');
    await B.waitForSelector('.toast >> text=@ann removed you from Weekend plans');
    await B.waitForFunction((sel) => !document.querySelector(sel), groupLi);
    await C.waitForFunction(() => document.querySelector('#chat-sub').textContent.startsWith('2 members'));
    await send(A, 'just us now');
    assert.strictEqual(await waitForMessage(C, 'just us now'), 1);
    assert.strictEqual(await B.$(groupLi), null, 'nothing of the group comes back for ben');

    // Cat leaves; Ann sees the group shrink to one member.
    await C.click('#btn-group-members');
    await C.click('#btn-group-leave');
    await C.waitForSelector('.toast >> text=You left the group');
    await A.waitForFunction(() => document.querySelector('#chat-sub').textContent.startsWith('1 member'));
    assert.match(await members(A), /^1 member\b/);
  } finally {
    for (const x of browsers) {
      await x.ctx.close().catch(() => {});
      fs.rmSync(x.userDataDir, { recursive: true, force: true });
    }
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('safety: mute a conversation, block and unblock a user, report a user', { timeout: 600000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    if (CI) throw new Error(`chromium not found at ${CHROMIUM}; CI must install it (apt-get install -y chromium)`);
    console.error(`\n!!!!! SKIPPING the browser safety test: chromium not found at ${CHROMIUM} !!!!!\n`);
    t.skip('chromium missing');
    return;
  }
  buildServer();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-safety-'));
  const server = new Server(await freePort(), dataDir);
  const browsers = [];
  const benLi = '#conversations li[data-username="ben"]';
  try {
    await server.start();
    const base = server.base;
    const [a, b] = [await launch('amy'), await launch('ben')];
    browsers.push(a, b);
    const [A, B] = [a.page, b.page];
    await register(A, base, 'amy', 'Amy', 'correct-horse');
    await register(B, base, 'ben', 'Ben', 'battery-staple');

    // Ben writes to Amy.
    await B.fill('#search-input', 'am');
    await B.click('#search-results li[data-username="amy"] button');
    await B.waitForSelector('#view-profile:not([hidden])');
    await B.click('#btn-message');
    await B.waitForSelector('#view-chat:not([hidden])');
    await send(B, 'hello amy');
    assert.strictEqual(await waitForMessage(B, 'hello amy'), 1);
    await A.waitForSelector(benLi);

    // Amy mutes the conversation; the list marks it, also after a reload
    // (the server keeps it), and she unmutes it again.
    await A.click(`${benLi} button`);
    assert.strictEqual(await waitForMessage(A, 'hello amy'), 1);
    await A.click('#btn-mute');
    await A.waitForSelector('#btn-mute[data-muted="true"]');
    await A.waitForSelector(`${benLi} .muted-mark`);
    await A.reload();
    await online(A);
    await A.waitForSelector(`${benLi} .muted-mark`);
    await A.click(`${benLi} button`);
    await A.waitForSelector('#btn-mute[data-muted="true"]');
    await A.click('#btn-mute');
    await A.waitForSelector('#btn-mute[data-muted="false"]');
    await A.waitForFunction((sel) => !document.querySelector(sel + ' .muted-mark'), benLi);

    // Amy blocks Ben from his profile: his next message is refused with a
    // clear error, and nothing reaches her.
    await A.click('#btn-chat-profile');
    await A.waitForSelector('#view-profile:not([hidden])');
    await A.click('#btn-block');
    await A.waitForSelector('#btn-block[data-blocked="true"]');
    await A.waitForSelector('.toast >> text=You blocked @ben');
    await send(B, 'are you there?');
    await B.waitForSelector('.toast >> text=you cannot message this user');

    // She reports him.
    await A.click('#btn-report');
    await A.fill('#report-reason', 'spam');
    await A.fill('#report-details', 'keeps writing');
    await A.click('#report-submit');
    await A.waitForSelector('.toast >> text=Your report about @ben was sent');
    assert.ok(await A.isHidden('#report-form'));

    // Unblocked, his messages reach her again.
    await A.click('#btn-block');
    await A.waitForSelector('#btn-block[data-blocked="false"]');
    await send(B, 'back again');
    assert.strictEqual(await waitForMessage(B, 'back again'), 1);
    await A.waitForFunction((sel) => {
      const li = document.querySelector(sel);
      return li && li.querySelector('.preview').textContent === 'back again';
    }, benLi);
    assert.ok(!server.log.includes('panicked'), 'no panic in the server log');
  } finally {
    for (const x of browsers) {
      await x.ctx.close().catch(() => {});
      fs.rmSync(x.userDataDir, { recursive: true, force: true });
    }
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// The body text of the message shown in `page` whose body or quote matches.
async function waitForBody(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li.msg[data-id] .body')].some((e) => e.textContent === t),
    text, { timeout: WAIT_MS });
}

// Clicks the action `label` (Reply, Edit, Delete) of the message whose body is `text`.
async function act(page, text, label) {
  const li = page.locator('#messages li.msg[data-id]', { has: page.locator('.body', { hasText: text }) }).last();
  await li.locator('.msg-actions button', { hasText: label }).click();
}

test('message lifecycle: edit, reply, delete (author and group owner) seen live', { timeout: 600000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    if (CI) throw new Error(`chromium not found at ${CHROMIUM}; CI must install it (apt-get install -y chromium)`);
    console.error(`\n!!!!! SKIPPING the browser lifecycle test: chromium not found at ${CHROMIUM} !!!!!\n`);
    t.skip('chromium missing');
    return;
  }
  buildServer();
  fs.mkdirSync(SHOTS, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-lifecycle-'));
  const server = new Server(await freePort(), dataDir);
  const browsers = [];
  try {
    await server.start();
    const base = server.base;
    const [a, b] = [await launch('eve'), await launch('fay')];
    browsers.push(a, b);
    const [A, B] = [a.page, b.page];
    A.on('dialog', (d) => d.accept());
    B.on('dialog', (d) => d.accept());
    await register(A, base, 'eve', 'Eve', 'correct-horse');
    await register(B, base, 'fay', 'Fay', 'battery-staple');

    // Eve writes to Fay, then fixes her typo: Fay sees the new text, marked edited.
    await A.fill('#search-input', 'fay');
    await A.click('#search-results li[data-username="fay"] button');
    await A.waitForSelector('#view-profile:not([hidden])');
    await A.click('#btn-message');
    await A.waitForSelector('#view-chat:not([hidden])');
    await send(A, 'see you at noen');
    await waitForBody(A, 'see you at noen');
    await B.waitForSelector('#conversations li[data-username="eve"]');
    await B.click('#conversations li[data-username="eve"] button');
    await waitForBody(B, 'see you at noen');
    await act(A, 'see you at noen', 'Edit');
    assert.strictEqual(await A.inputValue('#composer-input'), 'see you at noen');
    await A.fill('#composer-input', 'see you at noon');
    await A.press('#composer-input', 'Enter');
    await waitForBody(B, 'see you at noon');
    await B.waitForSelector('#messages li.msg:not(.mine) .time >> text=edited');

    // Fay replies to it: both see the quoted preview above her message.
    await act(B, 'see you at noon', 'Reply');
    await B.waitForSelector('#reply-bar:not([hidden])');
    await send(B, 'deal');
    for (const P of [A, B]) {
      await P.waitForFunction(() => [...document.querySelectorAll('#messages li.msg[data-id]')].some((li) =>
        li.querySelector('.body').textContent === 'deal' && li.querySelector('.quote-text').textContent === 'see you at noon'));
    }
    await B.screenshot({ path: path.join(SHOTS, 'lifecycle.png') });

    // Eve deletes her message: a tombstone for both, and the quote says so.
    await act(A, 'see you at noon', 'Delete');
    for (const P of [A, B]) {
      await P.waitForSelector('#messages li.msg .tombstone .body >> text=message deleted');
      await P.waitForSelector('#messages li.msg .quote-text >> text=message deleted');
      assert.strictEqual(await P.$('#messages .body >> text=see you at noon'), null);
    }
    // Fay has no Edit or Delete on Eve's messages.
    const others = await B.$$eval('#messages li.msg:not(.mine) .msg-actions button', (bs) => bs.map((x) => x.textContent));
    assert.ok(!others.includes('Edit') && !others.includes('Delete'), others.join());

    // In a group the owner may delete a member's message.
    await A.click('#btn-new-group');
    await A.fill('#new-group-title', 'Lunch');
    await A.fill('#new-group-members', 'fay');
    await A.click('#new-group-submit');
    await A.waitForSelector('#view-chat:not([hidden])');
    await B.waitForSelector('#conversations li[data-group]');
    await B.click('#conversations li[data-group] button');
    await send(B, 'pizza again?');
    await waitForBody(A, 'pizza again?');
    await act(A, 'pizza again?', 'Delete');
    await B.waitForSelector('#messages li.msg.mine .tombstone .body >> text=message deleted');
  } finally {
    for (const x of browsers) {
      await x.ctx.close().catch(() => {});
      fs.rmSync(x.userDataDir, { recursive: true, force: true });
    }
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
