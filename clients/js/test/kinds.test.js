// Every request kind round-trips through the SDK's typed methods against the
// real binary, and every event the server pushes reaches the emitter.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Server, makeClient, next, waitFor, uname } from './harness.js';
import { KINDS, methodName, HubbubError } from '../src/index.js';

test('every request kind round-trips', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const a = makeClient(t, server.url);
  const b = makeClient(t, server.url);
  const c = makeClient(t, server.url);
  const [an, bn, cn] = [uname('ann'), uname('bob'), uname('cid')];
  const done = new Set();
  const call = async (kind, client, fields) => {
    const d = kind.startsWith('auth.') || kind === 'message.send' ? null : await client[methodName(kind)](fields);
    done.add(kind);
    return d;
  };
  await a.register({ username: an, password: 'password-a', display_name: 'Ann' }); done.add('auth.register');
  await b.register({ username: bn, password: 'password-b' });
  await c.register({ username: cn, password: 'password-c' });
  assert.equal(a.state, 'online');

  const m = await a.sendMessage({ to: bn, text: 'hello' }); done.add('message.send');
  assert.equal(m.text, 'hello');
  assert.match(m.nonce, /^n[0-9a-f]{24}$/);
  await waitFor(() => b.seen.some((x) => x.id === m.id), 'bob to see hello');
  const conv = m.conversation_id;
  assert.equal((await call('message.edit', a, { conversation: conv, message_id: m.id, text: 'hello!' })).message.text, 'hello!');
  assert.equal((await call('message.history', b, { with: an })).messages.length, 1);
  assert.equal((await call('message.sync', b, { since: '0' })).messages[0].id, m.id);
  assert.equal((await call('conversation.list', b, {})).conversations.length, 1);
  await call('conversation.read', b, { conversation: conv, message_id: m.id });
  await call('change.sync', a, {});
  await call('message.react', b, { conversation: conv, message_id: m.id, emoji: '👍' });
  await call('message.unreact', b, { conversation: conv, message_id: m.id, emoji: '👍' });
  await call('message.delete', a, { conversation: conv, message_id: m.id });

  const g = (await call('group.create', a, { title: 'Trip', members: [bn] })).group;
  const gid = g.conversation_id;
  await call('group.get', b, { conversation: gid });
  await call('group.update', a, { conversation: gid, topic: 'August' });
  await call('group.members', b, { conversation: gid });
  await call('group.add', a, { conversation: gid, members: [cn] });
  await call('group.role', a, { conversation: gid, username: bn, role: 'admin' });
  await call('group.remove', a, { conversation: gid, username: cn });
  await call('group.leave', b, { conversation: gid });

  await call('settings.get', a, {});
  await call('settings.update', a, { read_receipts: true });
  assert.ok((await call('push.config', a, {})).vapid_public_key);
  const dev = (await call('device.register', a, { platform: 'webpush', endpoint: 'https://push.example.com/ep/1',
    keys: { p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', auth: 'tBHItJI5svbpez7KI4CCXg' } })).device;
  assert.deepEqual((await call('device.list', a, {})).devices.map((d) => d.device_id), [dev.device_id]);
  await call('device.remove', a, { device_id: dev.device_id });
  await call('typing.start', a, { conversation: conv });
  await call('typing.stop', a, { conversation: conv });

  await call('user.block', a, { username: cn });
  await call('user.blocks', a, {});
  await call('user.unblock', a, { username: cn });
  await call('conversation.mute', a, { conversation: conv });
  await call('conversation.unmute', a, { conversation: conv });
  await call('report.create', a, { username: cn, reason: 'spam' });

  await call('presence.query', a, { usernames: [bn] });
  await call('presence.watch', a, { usernames: [bn] });
  await call('presence.unwatch', a, { usernames: [bn] });
  await call('ping', a, {});
  await call('profile.get', a, { username: bn });
  await call('profile.update', a, { bio: 'hi' });
  await call('user.search', a, { query: bn.slice(0, 3) });
  await call('follow.add', b, { username: an });
  await call('follow.followers', a, { username: an });
  await call('follow.following', b, { username: bn });
  await call('follow.remove', b, { username: an });

  const p = (await call('post.create', a, { text: 'first post' })).post;
  await call('post.get', b, { post_id: p.id });
  await call('post.like', b, { post_id: p.id });
  await call('post.unlike', b, { post_id: p.id });
  await call('post.repost', b, { post_id: p.id });
  await call('post.unrepost', b, { post_id: p.id });
  await call('timeline.home', a, {});
  await call('timeline.user', b, { username: an });
  await call('post.delete', a, { post_id: p.id });

  await call('account.password', c, { old_password: 'password-c', new_password: 'password-c2' });
  await c.refresh(); done.add('auth.refresh');
  // auth.token: a second client resumes with the first one's session.
  const c2 = makeClient(t, server.url, { session: c.session, position: c.position });
  c2.connect();
  const auth = await next(c2, 'authenticated');
  assert.equal(auth.user.username, cn); done.add('auth.token');
  await c.logout(); done.add('auth.logout');
  const ended = await next(c2, 'session_ended');
  assert.equal(ended.code, 4500);
  await call('account.delete', b, { password: 'password-b' });
  const d = makeClient(t, server.url);
  await d.login({ username: an, password: 'password-a' }); done.add('auth.login');

  const err = await a.profileGet({ username: 'nobody_here' }).catch((e) => e);
  assert.ok(err instanceof HubbubError);
  assert.equal(err.code, 'not_found');
  assert.deepEqual(KINDS.filter((k) => !done.has(k)), []);
});
