// Pure pieces of the SDK: the close-code policy of protocol.md section 7,
// id order, the bounded id set, nonces and method names.
import test from 'node:test';
import assert from 'node:assert/strict';
import { closeAction, cmpId, maxId, BoundedSet, newNonce, methodName, KINDS } from '../src/index.js';

test('close codes: reconnect, pause, relogin or stop, as protocol.md section 7 says', () => {
  const want = { 4000: 'reconnect', 4001: 'reconnect', 4002: 'reconnect', 4003: 'pause', 4500: 'relogin',
    4501: 'relogin', 1006: 'reconnect', 1009: 'reconnect', 1001: 'reconnect', 1007: 'stop', 1002: 'stop', 4999: 'relogin', 4499: 'reconnect' };
  for (const [code, action] of Object.entries(want)) assert.equal(closeAction(Number(code)), action, `close ${code}`);
});

test('ids compare as numbers, beyond 2^53', () => {
  assert.ok(cmpId('9007199254740993', '9007199254740992') > 0);
  assert.ok(cmpId('99', '100') < 0);
  assert.equal(maxId(null, '5'), '5');
  assert.equal(maxId('187856615498579968', '187856615498579967'), '187856615498579968');
});

test('the seen-id set forgets the oldest past its bound', () => {
  const s = new BoundedSet(3);
  for (const id of ['1', '2', '3', '4']) assert.ok(s.add(id));
  assert.equal(s.size, 3);
  assert.ok(!s.has('1'));
  assert.ok(!s.add('4'), 'a repeat is not new');
});

test('nonces fit the server rule (1-64 printable ASCII) and differ', () => {
  const a = newNonce(); const b = newNonce();
  assert.match(a, /^[!-~]{1,64}$/);
  assert.notEqual(a, b);
});

test('one method name per kind, all distinct', () => {
  const names = KINDS.map(methodName);
  assert.equal(new Set(names).size, KINDS.length);
  assert.equal(methodName('conversation.mute'), 'conversationMute');
  assert.equal(methodName('group.member_added'), 'groupMemberAdded');
});
