// Every event kind reaches the SDK's emitter, and carries `pos` exactly when
// README's event table says (inbox events do; typing and presence do not).
import test from 'node:test';
import assert from 'node:assert/strict';
import { Server, makeClient, waitFor, uname } from './harness.js';

// event -> has pos (README "Events: who receives them"; sync.needed: when known)
const HAS_POS = {
  'message.new': true, 'message.updated': true, 'message.deleted': true,
  'group.updated': true, 'group.member_added': true, 'group.member_removed': true,
  'conversation.read': true, 'message.read': true, 'message.reactions': true,
  'typing.start': false, 'typing.stop': false, 'profile.updated': true, 'follow.new': true,
  'post.new': true, 'post.liked': true, 'post.reposted': true, 'presence.changed': false,
};

test('every event reaches the emitter, with pos as documented', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const a = makeClient(t, server.url);
  const a2 = makeClient(t, server.url); // ann's second device
  const b = makeClient(t, server.url);
  const [an, bn] = [uname('ann'), uname('bob')];
  await a.register({ username: an, password: 'password-a' });
  await b.register({ username: bn, password: 'password-b' });
  await a2.login({ username: an, password: 'password-a' });
  const got = new Map(); // event -> frames, over ann's two sockets
  for (const c of [a, a2]) c.on('event', (name, _d, f) => got.set(name, [...(got.get(name) || []), f]));
  const named = {};
  for (const name of Object.keys(HAS_POS)) a.on(name, () => { named[name] = true; });

  await a.presenceWatch({ usernames: [bn] });
  await b.followAdd({ username: an }); // follow.new
  await a.followAdd({ username: bn });
  const m = await b.sendMessage({ to: an, text: 'hi' }); // message.new
  const conv = m.conversation_id;
  await waitFor(() => got.has('message.new'), 'message.new');
  await b.messageEdit({ conversation: conv, message_id: m.id, text: 'hi!' }); // message.updated
  await b.messageReact({ conversation: conv, message_id: m.id, emoji: '👍' }); // message.reactions
  await a2.conversationRead({ conversation: conv, message_id: m.id }); // conversation.read on a
  const m2 = await a.sendMessage({ to: bn, text: 'yo' });
  await b.conversationRead({ conversation: conv, message_id: m2.id }); // message.read to ann
  await b.typingStart({ conversation: conv });
  await b.typingStop({ conversation: conv });
  await b.messageDelete({ conversation: conv, message_id: m.id }); // message.deleted
  await a2.profileUpdate({ bio: 'new bio' }); // profile.updated on a
  const p = (await b.postCreate({ text: 'a post' })).post; // post.new to follower ann
  const mine = (await a2.postCreate({ text: 'mine' })).post; // post.new on a too
  await b.postLike({ post_id: mine.id }); // post.liked
  await b.postRepost({ post_id: mine.id }); // post.reposted
  const g = (await b.groupCreate({ title: 'G', members: [an] })).group; // group.member_added
  await b.groupUpdate({ conversation: g.conversation_id, topic: 't' }); // group.updated
  await b.groupLeave({ conversation: g.conversation_id }); // group.member_removed
  void p;
  b.close(); // presence.changed (offline)

  await waitFor(() => Object.keys(HAS_POS).every((n) => got.has(n)),
    () => `events: missing ${Object.keys(HAS_POS).filter((n) => !got.has(n))}`);
  for (const [name, pos] of Object.entries(HAS_POS)) {
    for (const f of got.get(name)) assert.equal(!!f.pos, pos, `${name} pos`);
  }
  assert.ok(Object.keys(HAS_POS).filter((n) => !['conversation.read', 'profile.updated'].includes(n)).every((n) => named[n]),
    'named handlers fire too');
});
