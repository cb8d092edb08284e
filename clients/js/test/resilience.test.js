// What the application sees through failures: a server restart (resume fails,
// sync fills in), a socket cut mid-send (the outbox resends with the same
// nonce; stored once), and a Redis kill on a two-node cluster. In every case
// each message is seen once, in order per conversation.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Server, Redis, CutProxy, makeClient, waitFor, texts, uname, tempDir, newKeyspace } from './harness.js';

async function pair(t, urlA, urlB) {
  const a = makeClient(t, urlA);
  const b = makeClient(t, urlB);
  const an = uname('ann'); const bn = uname('bob');
  await a.register({ username: an, password: 'password-a' });
  await b.register({ username: bn, password: 'password-b' });
  return { a, b, an, bn };
}

/** The stored messages of a conversation, as message.history returns them (oldest first). */
async function stored(client, peer) {
  const d = await client.messageHistory({ with: peer, limit: 100 });
  return d.messages.map((m) => m.text).reverse();
}

test('server restart: resume fails, sync fills the gap, nothing lost or doubled', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const { a, b, an, bn } = await pair(t, server.url, server.url);
  for (const x of ['one', 'two']) await b.sendMessage({ to: an, text: x });
  await waitFor(() => texts(a).length === 2, 'ann to see two messages');

  const recovered = [];
  a.on('authenticated', (x) => recovered.push(x.recovered));
  await server.stop(); // close code 4000 to both
  // Typed while offline: queued in the outbox, sent once after the reconnect.
  const sent = a.sendMessage({ to: bn, text: 'typed offline' });
  assert.equal(a.outbox.length, 1);
  await server.start(); // same port, same data directory, new inbox epoch
  await waitFor(() => b.state === 'online' && a.state === 'online', 'both back online');
  for (const x of ['three', 'four']) await b.sendMessage({ to: an, text: x });
  await sent;
  await waitFor(() => texts(a).length === 5 && texts(b).length === 5, 'every message on both sides');
  assert.deepEqual(texts(a).filter((x) => x !== 'typed offline'), ['one', 'two', 'three', 'four']);
  assert.deepEqual(texts(b).filter((x) => x !== 'typed offline'), ['one', 'two', 'three', 'four']);
  assert.ok(recovered.includes(false), 'the restart lost the inbox history: resume is refused');
  const ids = a.seen.map((m) => m.id);
  assert.deepEqual(ids, [...ids].sort((x, y) => x.length - y.length || (x < y ? -1 : 1)), 'in id order');
  const st = await stored(a, bn);
  assert.equal(st.filter((x) => x === 'typed offline').length, 1);
});

test('socket cut mid-send: the outbox resends with the same nonce, stored once', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const proxy = await new CutProxy(server.port).start();
  t.after(() => proxy.close());
  const { a, b, an, bn } = await pair(t, proxy.url, server.url);
  const nonces = [];
  a.opts.onFrame = ((rec) => (dir, f) => {
    if (rec) rec(dir, f);
    if (dir === 'send' && f.type === 'message.send') nonces.push(f.nonce);
  })(a.opts.onFrame);

  await a.sendMessage({ to: bn, text: 'before' });
  proxy.cutAfter('"cut me"'); // the request reaches the server; the reply never comes back
  const m = await a.sendMessage({ to: bn, text: 'cut me' });
  assert.equal(proxy.cuts, 1);
  await a.sendMessage({ to: bn, text: 'after' });
  assert.equal(nonces.filter((n) => n === m.nonce).length, 2, 'resent once, with the same nonce');
  await waitFor(() => texts(b).length === 3, 'bob to see three messages');
  assert.deepEqual(texts(b), ['before', 'cut me', 'after']);
  assert.deepEqual(texts(a), ['before', 'cut me', 'after']);
  assert.deepEqual(await stored(b, an), ['before', 'cut me', 'after']);
});

test('network drop: resume replays what was missed, once, in order', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const proxy = await new CutProxy(server.port).start();
  t.after(() => proxy.close());
  const { a, b, an } = await pair(t, proxy.url, server.url);
  await b.sendMessage({ to: an, text: 'r0' });
  await waitFor(() => texts(a).length === 1, 'ann to see r0');
  const auths = [];
  a.on('authenticated', (x) => auths.push(x.recovered));
  proxy.refusing = true;
  proxy.cutAll(); // no close frame: 1006
  await waitFor(() => a.state !== 'online', 'ann to notice the drop');
  for (const x of ['r1', 'r2', 'r3']) await b.sendMessage({ to: an, text: x });
  proxy.refusing = false;
  await waitFor(() => texts(a).length === 4, 'ann to see r1-r3');
  assert.deepEqual(texts(a), ['r0', 'r1', 'r2', 'r3']);
  assert.deepEqual(auths, [true], 'resumed from the last pos: recovered, no sync needed');
});

test('redis kill on a two-node cluster: every message once, in order', { skip: !Redis.available() && 'redis-server is not installed' }, async (t) => {
  const redis = await new Redis().start();
  t.after(() => redis.kill());
  const [dataDir, keyspace] = [tempDir('cluster'), newKeyspace()];
  const n1 = await new Server({ dataDir, keyspace, redis: redis.url, workerId: 1 }).start();
  t.after(() => n1.stop());
  const n2 = await new Server({ dataDir, keyspace, redis: redis.url, workerId: 2 }).start();
  t.after(() => n2.stop());
  const { a, b, an } = await pair(t, n1.url, n2.url);
  await b.sendMessage({ to: an, text: 'm0' });
  await waitFor(() => texts(a).length === 1, 'ann to see m0 across nodes');

  redis.kill();
  for (let i = 1; i <= 3; i++) await b.sendMessage({ to: an, text: `m${i}` }); // stored; publish fails
  await redis.start(); // same port, empty
  for (let i = 4; i <= 6; i++) await b.sendMessage({ to: an, text: `m${i}` });
  const want = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6'];
  await waitFor(() => texts(a).length >= want.length, 'ann to see every message', 40000);
  assert.deepEqual(texts(a), want);
  assert.deepEqual(texts(b), want);
});
